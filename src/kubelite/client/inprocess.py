"""In-process transport: call the API server's ASGI app directly (no sockets, no TLS).

Same admission, validation, storage and watch code as an HTTPS request, so components
behave identically whether they run inside ``kubelite up`` or as separate processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

from kubelite.apiserver.http import Message, Scope

ASGIApp = Any


def _scope(method: str, path: str, headers: dict[str, str], token: str) -> Scope:
    parts = urlsplit(path)
    hdrs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    hdrs.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": hdrs,
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }


class ASGITransport:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        sent = False
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body or b"", "more_body": False}
            await asyncio.Event().wait()  # never: the request body was complete
            return {"type": "http.disconnect"}

        async def send(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        await self.app(_scope(method, path, headers, self.token), receive, send)
        return status, b"".join(chunks)

    async def stream(self, method: str, path: str, headers: dict[str, str]) -> AsyncGenerator[bytes, None]:
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        disconnected = asyncio.Event()
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                await queue.put((int(msg["status"]), b""))
            elif msg["type"] == "http.response.body":
                await queue.put((0, msg.get("body", b"")))
                if not msg.get("more_body"):
                    await queue.put(None)

        task = asyncio.ensure_future(self.app(_scope(method, path, headers, self.token), receive, send))
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        try:
            first = await queue.get()
            if first is None:
                return
            status = first[0]
            if status >= 400:
                body = b""
                while (item := await queue.get()) is not None:
                    body += item[1]
                from kubelite.client.base import raise_for_status

                raise_for_status(status, body)
            while (item := await queue.get()) is not None:
                if item[1]:
                    yield item[1]
        finally:
            disconnected.set()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def close(self) -> None:
        return None
