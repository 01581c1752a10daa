"""Thin ASGI request/response helpers (no framework: the hot path stays short)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from kubelite.api import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's limit for a request body

JSON = "application/json"


@dataclass
class Request:
    scope: Scope
    receive: Receive
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    user: str = ""
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", ()):
            name = k.decode("latin-1").lower()
            val = v.decode("latin-1")
            headers[name] = f"{headers[name]},{val}" if name in headers else val
        query: dict[str, list[str]] = {}
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query.setdefault(k, []).append(v)
        return cls(
            scope=scope,
            receive=receive,
            method=scope.get("method", "GET"),
            path=unquote(scope.get("path", "/")),
            query=query,
            headers=headers,
        )

    def q(self, name: str, default: str = "") -> str:
        v = self.query.get(name)
        return v[-1] if v else default

    def q_bool(self, name: str) -> bool:
        return self.q(name).lower() in ("true", "1")

    def q_int(self, name: str, default: int = 0) -> int:
        raw = self.q(name)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError as e:
            raise errors.BadRequest(f'invalid value for query parameter {name}: "{raw}"') from e

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    async def body(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise errors.RequestEntityTooLarge(
                    f"the request body is too large: limit is {MAX_BODY_BYTES} bytes"
                )
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        return b"".join(chunks)


def _header_list(
    headers: dict[str, str] | None, content_type: str, extra: list[str]
) -> list[tuple[bytes, bytes]]:
    out = [(b"content-type", content_type.encode())]
    if headers:
        out.extend((k.encode(), v.encode()) for k, v in headers.items())
    for w in extra:
        out.append((b"warning", f'299 - "{_escape_warning(w)}"'.encode()))
    return out


def _escape_warning(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = JSON,
    headers: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> None:
    hdrs = _header_list(headers, content_type, warnings or [])
    hdrs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send,
    status: int,
    obj: Any,
    warnings: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    await send_bytes(send, status, orjson.dumps(obj), JSON, headers, warnings)


async def send_error(send: Send, err: errors.APIError, warnings: list[str] | None = None) -> None:
    await send_json(send, err.code, err.to_status(), warnings)


async def start_stream(send: Send, content_type: str, warnings: list[str] | None = None) -> None:
    hdrs = _header_list(None, content_type, warnings or [])
    await send({"type": "http.response.start", "status": 200, "headers": hdrs})


async def stream_chunk(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        out["details"] = details
    return out
