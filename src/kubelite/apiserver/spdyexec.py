"""exec/attach over raw SPDY/3.1 (``v4.channel.k8s.io``), bridged to the agent's WebSocket v5.

kubectl falls back to SPDY when the WebSocket upgrade fails or is turned off
(``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``), and client-go's SPDY executor is still what many
tools use.  There each channel is its own SPDY stream, opened by the client with a
``streamtype`` header - ``error``, ``stdin``, ``stdout``, ``stderr`` (not with a TTY) and
``resize`` (with a TTY, newline-separated JSON sizes) - and every SYN_STREAM is answered with a
SYN_REPLY.  The agent only speaks the WebSocket channel protocol, so this bridge maps streams to
channels: stdin data to channel 0 and its FIN to the v5 close signal, resize JSON to channel 4;
agent channels 1, 2 and 3 to the stdout, stderr and error streams (output that arrives before
its stream is opened is held), and when the agent closes, every stream gets its FIN.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from kubelite.agent.streams.protocol import spdy, wsv5

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_OUTPUT = {wsv5.STDOUT: "stdout", wsv5.STDERR: "stderr", wsv5.ERROR: "error"}
LINGER = 2.0  # after the last stream is finished, how long the client gets to close first


class SpdyExecBridge:
    def __init__(self, receive: Receive, send: Send, upstream: ClientConnection) -> None:
        self.receive = receive
        self.send = send
        self.upstream = upstream
        self.codec = spdy.HeaderCodec()
        self.parser = spdy.FrameParser()
        self.streams: dict[str, int] = {}
        self.kinds: dict[int, str] = {}
        self.held: dict[str, list[bytes]] = {}
        self.resize_buffer = b""
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        client = asyncio.create_task(self._from_client())
        agent = asyncio.create_task(self._from_agent())
        try:
            done, _ = await asyncio.wait((client, agent), return_when=asyncio.FIRST_COMPLETED)
            if agent in done:
                await self._finish_streams()
                await asyncio.wait((client,), timeout=LINGER)
        finally:
            for task in (client, agent):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.upstream.close()
            with contextlib.suppress(Exception):
                await self.send({"type": "websocket.close", "code": 1000})

    async def _write(self, data: bytes) -> None:
        async with self.lock:
            await self.send({"type": "websocket.send", "bytes": data})

    # ------------------------------------------------------------------ client -> agent

    async def _from_client(self) -> None:
        while True:
            msg = await self.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg["type"] != "websocket.receive":
                continue
            for frame in self.parser.feed(bytes(msg.get("bytes") or b"")):
                if isinstance(frame, spdy.DataFrame):
                    await self._client_data(frame)
                elif frame.type == spdy.SYN_STREAM:
                    await self._open(spdy.parse_syn_stream(frame))
                elif frame.type == spdy.PING:
                    await self._write(spdy.encode_ping(spdy.parse_stream_id(frame)))
                elif frame.type == spdy.GOAWAY:
                    return

    async def _open(self, syn: spdy.SynStream) -> None:
        headers = self.codec.decompress(syn.header_block)
        async with self.lock:  # compress and send in one go: the header contexts are ordered
            reply = spdy.encode_syn_reply(syn.stream_id, self.codec.compress({}))
            await self.send({"type": "websocket.send", "bytes": reply})
        kind = headers.get("streamtype", "")
        self.streams[kind] = syn.stream_id
        self.kinds[syn.stream_id] = kind
        for data in self.held.pop(kind, []):
            await self._write(spdy.encode_data(syn.stream_id, data))

    async def _client_data(self, frame: spdy.DataFrame) -> None:
        kind = self.kinds.get(frame.stream_id)
        with contextlib.suppress(ConnectionClosed):
            if kind == "stdin":
                if frame.data:
                    await self.upstream.send(wsv5.encode(wsv5.STDIN, frame.data))
                if frame.fin:
                    await self.upstream.send(wsv5.encode_close(wsv5.STDIN))
            elif kind == "resize":
                self.resize_buffer += frame.data
                *sizes, self.resize_buffer = self.resize_buffer.split(b"\n")
                for size in sizes:
                    if size.strip():
                        await self.upstream.send(wsv5.encode(wsv5.RESIZE, size))

    # ------------------------------------------------------------------ agent -> client

    async def _from_agent(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.upstream:
                data = message if isinstance(message, bytes) else message.encode()
                if not data or data[0] not in _OUTPUT:
                    continue
                kind = _OUTPUT[data[0]]
                sid = self.streams.get(kind)
                if sid is None:
                    self.held.setdefault(kind, []).append(data[1:])
                else:
                    await self._write(spdy.encode_data(sid, data[1:]))

    async def _finish_streams(self) -> None:
        for kind in ("stdout", "stderr", "error"):
            sid = self.streams.get(kind)
            if sid is not None:
                with contextlib.suppress(Exception):
                    await self._write(spdy.encode_data(sid, b"", fin=True))
