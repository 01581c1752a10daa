"""kubectl port-forward's raw SPDY fallback: ``POST .../portforward`` with ``Upgrade: SPDY/3.1``.

When the WebSocket transport is off (``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``) or fails,
kubectl asks for a plain HTTP upgrade to SPDY/3.1 with ``X-Stream-Protocol-Version:
portforward.k8s.io`` and then speaks raw SPDY on the socket.  ASGI has no such upgrade, so this
protocol (uvicorn's httptools one, with the API server's write coalescing) takes the connection
over for exactly those requests and presents it to the application as an ASGI ``websocket``
scope offering ``SPDY/3.1+portforward.k8s.io``: the socket's bytes arrive as binary messages and
the messages sent go out as bytes.  That is the same continuous SPDY byte stream the WebSocket
transport carries, so :mod:`kubelite.apiserver.nodeproxy` relays it to the agent unchanged.
Accepting answers ``101 Switching Protocols`` with ``Upgrade: SPDY/3.1``; a refusal is a plain
HTTP answer.  exec/attach over SPDY are not taken over (kubectl offers them WebSocket first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote

import httptools

from kubelite.apiserver.transport import CoalescingHttpProtocol

log = logging.getLogger("kubelite.apiserver.spdy")
Message = MutableMapping[str, Any]
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
SPDY_PREFIX = "SPDY/3.1+"
WS_SUBPROTOCOL = SPDY_PREFIX + PORTFORWARD_PROTOCOL
# exec/attach over SPDY: the channel protocol versions bridged by kubelite.apiserver.spdyexec
EXEC_PROTOCOLS = ("v4.channel.k8s.io",)
SPDY_EXTENSION = "kubelite.spdy"
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    503: "Service Unavailable",
}


class RawUpgrade(asyncio.Protocol):
    """The upgraded socket, driven through ASGI websocket messages."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.queue.put_nowait({"type": "websocket.connect"})
        self.response: Message | None = None
        self.closed = False

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait({"type": "websocket.receive", "bytes": data})

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})

    # ASGI side
    async def receive(self) -> Message:
        return await self.queue.get()

    async def send(self, msg: Message) -> None:
        kind = msg["type"]
        if self.closed:
            return
        if kind == "websocket.accept":
            version = str(msg.get("subprotocol") or PORTFORWARD_PROTOCOL).removeprefix(SPDY_PREFIX)
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                b"X-Stream-Protocol-Version: " + version.encode() + b"\r\n\r\n"
            )
        elif kind == "websocket.send":
            self.transport.write(msg.get("bytes") or str(msg.get("text") or "").encode())
        elif kind == "websocket.close":
            self._close()
        elif kind == "websocket.http.response.start":
            self.response = msg
        elif kind == "websocket.http.response.body":
            self._write_response(bytes(msg.get("body") or b""))
            if not msg.get("more_body"):
                self._close()

    def _write_response(self, body: bytes) -> None:
        start = self.response or {"status": 500, "headers": []}
        status = int(start["status"])
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}".encode()]
        lines += [bytes(k) + b": " + bytes(v) for k, v in start.get("headers") or []]
        lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close", b"", body]
        self.transport.write(b"\r\n".join(lines))

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.transport.close()

    async def run(self, app: Any, scope: MutableMapping[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            log.exception("SPDY port-forward connection failed path=%s", scope.get("path"))
        finally:
            self._close()


class UpgradingHttpProtocol(CoalescingHttpProtocol):
    """``uvicorn.Config(http=...)``: the API server's protocol plus the SPDY port-forward upgrade."""

    def _spdy_protocols(self) -> list[str]:
        """The stream protocols this SPDY upgrade may speak ([] when it is not one we take over)."""
        if self._get_upgrade() != b"spdy/3.1" or not self.url:
            return []
        path = (httptools.parse_url(self.url).path or b"").rstrip(b"/")
        offered = [
            v.strip().decode("latin-1")
            for k, value in self.headers
            if k == b"x-stream-protocol-version"
            for v in value.split(b",")
        ]
        if path.endswith(b"/portforward"):
            return [SPDY_PREFIX + PORTFORWARD_PROTOCOL] if PORTFORWARD_PROTOCOL in offered else []
        if path.endswith((b"/exec", b"/attach")):
            return [p for p in EXEC_PROTOCOLS if p in offered]
        return []

    def _should_upgrade(self) -> bool:
        return super()._should_upgrade() or bool(self._spdy_protocols())

    def handle_websocket_upgrade(self) -> None:
        protocols = self._spdy_protocols()
        if not protocols:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path or b"/"
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if self.scheme == "https" else "ws",
            "server": self.server,
            "client": self.client,
            "root_path": "",
            "path": unquote(raw_path.decode("ascii", "replace")),
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "headers": list(self.headers),
            "subprotocols": protocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, SPDY_EXTENSION: {}},
        }
        raw = RawUpgrade(self.transport)
        self.transport.set_protocol(raw)
        task = self.loop.create_task(raw.run(self.app, scope))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
