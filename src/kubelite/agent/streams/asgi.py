"""Small ASGI helpers for the agent's endpoint: Status answers and a WebSocket wrapper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 500: "InternalError"}


class StreamError(Exception):
    """Answered to the caller as a Kubernetes Status with this HTTP code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def status(self) -> bytes:
        return status_body(self.code, self.message)


def status_body(code: int, message: str) -> bytes:
    return orjson.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": _REASONS.get(code, "InternalError"),
            "code": code,
        }
    )


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


def query_of(scope: Scope) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        out.setdefault(k, []).append(v)
    return out


def path_parts(scope: Scope) -> list[str]:
    return [unquote(p) for p in str(scope.get("path", "/")).split("/") if p]


async def send_http(send: Send, code: int, body: bytes, content_type: str = "application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def until_disconnect(receive: Receive, work: Awaitable[None]) -> None:
    """Run ``work`` unless the HTTP client disconnects first (then ``work`` is cancelled)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(work), asyncio.ensure_future(disconnected())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[0] in done:
            tasks[0].result()
    finally:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


class WebSocket:
    """The server side of one ASGI WebSocket connection."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.closed = False

    @property
    def subprotocols(self) -> list[str]:
        return [str(p) for p in self.scope.get("subprotocols") or []]

    async def wait_connect(self) -> None:
        msg = await self._receive()
        if msg["type"] != "websocket.connect":
            raise StreamError(400, "expected a WebSocket connection")

    async def accept(self, subprotocol: str | None) -> None:
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})

    async def deny(self, code: int, body: bytes) -> None:
        """Refuse the upgrade with a plain HTTP answer (the client sees the status code and body)."""
        await self._send(
            {
                "type": "websocket.http.response.start",
                "status": code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await self._send({"type": "websocket.http.response.body", "body": body})
        self.closed = True

    async def receive(self) -> bytes | None:
        """The next binary (or text, as bytes) message; None once the peer has gone."""
        while True:
            msg = await self._receive()
            if msg["type"] == "websocket.disconnect":
                self.closed = True
                return None
            if msg["type"] == "websocket.receive":
                data = msg.get("bytes")
                if data is None:
                    data = str(msg.get("text") or "").encode()
                return bytes(data)

    async def send(self, data: bytes) -> None:
        if not self.closed:
            await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
