"""``/portForward/<ns>/<pod>``: kubectl port-forward, SPDY/3.1 streams over a WebSocket.

kubectl opens, per local TCP connection, an ``error`` stream and a ``data`` stream (headers
``streamtype``, ``port``, ``requestID``); every SYN_STREAM is answered with a SYN_REPLY.  The
data stream is joined to a TCP connection to the port inside the pod's network namespace:
entered with ``setns`` for pods with their own namespace (so servers bound to 127.0.0.1 are
reached, as with the kubelet), the pod IP otherwise, or the host for host-network pods.  A
failed connection is reported as text on the error stream; PINGs are echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.streams.asgi import StreamError, WebSocket
from kubelite.agent.streams.protocol import spdy
from kubelite.agent.streams.targets import NodeAgent, find_pod, sandbox_of

log = logging.getLogger("kubelite.agent.streams")
PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 10.0


# ------------------------------------------------------------------ dialing into the pod


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _dial_in_netns(netns: str, port: int) -> socket.socket:
    """Connect to 127.0.0.1:port inside ``netns``: a short-lived thread enters the namespace,
    creates the socket (which stays in that namespace) and the thread ends."""
    result: dict[str, Any] = {}

    def run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(netns, os.O_RDONLY)
        try:
            _setns(target)
            try:
                result["sock"] = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
            except OSError as e:
                result["error"] = e
            finally:
                _setns(own)
        except OSError as e:
            result.setdefault("error", e)
        finally:
            os.close(own)
            os.close(target)

    t = threading.Thread(target=run, name="portforward-dial", daemon=True)
    t.start()
    t.join()
    if "sock" in result:
        sock: socket.socket = result["sock"]
        sock.setblocking(False)
        return sock
    raise result.get("error") or OSError("could not connect")


async def dial(sandbox: Any, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    netns = str(getattr(sandbox, "netns_path", "") or "")
    if netns and os.path.exists(netns):
        sock = await asyncio.to_thread(_dial_in_netns, netns, port)
        return await asyncio.open_connection(sock=sock)
    host = str(getattr(sandbox, "ip", "") or "") or "127.0.0.1"
    return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)


# ------------------------------------------------------------------ the SPDY session


@dataclass
class _Pair:
    port: int
    error_id: int = 0
    data_id: int = 0
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    backlog: list[bytes] = field(default_factory=list)
    client_fin: bool = False


class PortForwardSession:
    def __init__(
        self, ws: WebSocket, sandbox: Any, pod_name: str, allowed_ports: set[int] | None = None
    ) -> None:
        self.ws = ws
        self.sandbox = sandbox
        self.pod_name = pod_name
        self.codec = spdy.HeaderCodec()
        self.parser = spdy.FrameParser()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        try:
            while (msg := await self.ws.receive()) is not None:
                for frame in self.parser.feed(msg):
                    await self._on_frame(frame)
        except spdy.ProtocolError as e:
            log.info("port-forward protocol error pod=%s error=%s", self.pod_name, e)
            with contextlib.suppress(Exception):
                await self.ws.send(spdy.encode_goaway(0, 1))
        finally:
            for pair in self.pairs.values():
                self._close_pair(pair)
            await self.ws.close(1000)

    async def _send(self, data: bytes) -> None:
        async with self.lock:
            await self.ws.send(data)

    async def _on_frame(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            await self._on_data(frame)
        elif frame.type == spdy.SYN_STREAM:
            await self._on_syn(spdy.parse_syn_stream(frame))
        elif frame.type == spdy.PING:
            await self._send(spdy.encode_ping(spdy.parse_stream_id(frame)))
        elif frame.type == spdy.RST_STREAM:
            pair = self.by_stream.get(spdy.parse_stream_id(frame))
            if pair is not None and spdy.parse_stream_id(frame) == pair.data_id:
                self._close_pair(pair)
        elif frame.type == spdy.GOAWAY:
            await self.ws.close(1000)

    async def _on_syn(self, syn: spdy.SynStream) -> None:
        headers = self.codec.decompress(syn.header_block)
        async with self.lock:
            await self.ws.send(spdy.encode_syn_reply(syn.stream_id, self.codec.compress({})))
        kind = headers.get("streamtype", "")
        request = headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            await self._send(spdy.encode_rst_stream(syn.stream_id, spdy.PROTOCOL_ERROR))
            return
        pair = self.pairs.setdefault(request, _Pair(port))
        self.by_stream[syn.stream_id] = pair
        if kind == "error":
            pair.error_id = syn.stream_id
        elif kind == "data":
            pair.data_id = syn.stream_id
            pair.task = asyncio.create_task(self._forward(pair))
        else:
            await self._send(spdy.encode_rst_stream(syn.stream_id, spdy.PROTOCOL_ERROR))

    async def _on_data(self, frame: spdy.DataFrame) -> None:
        pair = self.by_stream.get(frame.stream_id)
        if pair is None or frame.stream_id != pair.data_id:
            return  # the client's (empty) data on its error stream
        if pair.writer is None:
            pair.backlog.append(frame.data)
            pair.client_fin = pair.client_fin or frame.fin
            return
        writer = pair.writer
        if writer.is_closing():
            return  # the pod side is gone; kubectl resets the stream
        with contextlib.suppress(ConnectionError, RuntimeError, OSError):
            if frame.data:
                writer.write(frame.data)
                await writer.drain()
            if frame.fin and writer.can_write_eof():
                writer.write_eof()

    async def _forward(self, pair: _Pair) -> None:
        try:
            reader, writer = await dial(self.sandbox, pair.port)
        except (TimeoutError, OSError) as e:
            await self._report(pair, f"error forwarding port {pair.port} to pod {self.pod_name}: {e}")
            return
        pair.writer = writer
        for chunk in pair.backlog:
            writer.write(chunk)
        pair.backlog.clear()
        if pair.client_fin and writer.can_write_eof():
            writer.write_eof()
        try:
            while chunk := await reader.read(32768):
                await self._send(spdy.encode_data(pair.data_id, chunk))
        except ConnectionError:
            pass
        with contextlib.suppress(Exception):
            await self._send(spdy.encode_data(pair.data_id, b"", fin=True))
        writer.close()

    async def _report(self, pair: _Pair, message: str) -> None:
        with contextlib.suppress(Exception):
            if pair.error_id:
                await self._send(spdy.encode_data(pair.error_id, message.encode(), fin=True))
            await self._send(spdy.encode_data(pair.data_id, b"", fin=True))

    def _close_pair(self, pair: _Pair) -> None:
        if pair.writer is not None:
            pair.writer.close()
        if pair.task is not None and not pair.task.done():
            pair.task.cancel()


async def serve_portforward(agent: NodeAgent, ws: WebSocket, parts: list[str]) -> None:
    if len(parts) != 2:
        raise StreamError(404, "expected /portForward/<namespace>/<pod>")
    if PROTOCOL not in ws.subprotocols:
        raise StreamError(400, f"port-forward needs the {PROTOCOL} WebSocket subprotocol")
    pod = find_pod(agent, parts[0], parts[1])
    sandbox = sandbox_of(agent, pod)
    if sandbox is None:
        raise StreamError(400, f"pod {parts[1]} has no sandbox on this node yet")
    await ws.accept(PROTOCOL)
    await PortForwardSession(ws, sandbox, parts[1]).run()
