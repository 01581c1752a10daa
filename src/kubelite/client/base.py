"""One client for every component: typed verbs over a pluggable transport.

Two transports give identical semantics: :class:`~kubelite.client.inprocess.ASGITransport`
calls the API server's ASGI app directly (inside ``kubelite up``), and
:class:`~kubelite.client.http.HTTPTransport` speaks HTTPS to a remote API server.
Every request goes through the same admission, validation and storage either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson

from kubelite.api import errors

Obj = dict[str, Any]

_ERRORS: dict[int, type[errors.APIError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    406: errors.NotAcceptable,
    410: errors.Gone,
    413: errors.RequestEntityTooLarge,
    415: errors.UnsupportedMediaType,
    422: errors.Invalid,
    429: errors.TooManyRequests,
    500: errors.InternalError,
    503: errors.ServiceUnavailable,
}


class Transport(Protocol):
    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]: ...

    def stream(self, method: str, path: str, headers: dict[str, str]) -> AsyncGenerator[bytes, None]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Resource:
    """Where a resource lives: ('apps', 'v1', 'deployments', namespaced=True)."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def raise_for_status(status: int, body: bytes) -> None:
    if status < 400:
        return
    message = body.decode(errors="replace")
    reason = ""
    try:
        st = orjson.loads(body)
        message = st.get("message", message)
        reason = st.get("reason", "")
    except orjson.JSONDecodeError:
        pass
    cls = _ERRORS.get(status, errors.InternalError)
    if status == 409:
        cls = errors.AlreadyExists if reason == "AlreadyExists" else errors.Conflict
    raise cls(message)


@dataclass
class WatchEvent:
    type: str
    object: Obj


class Client:
    def __init__(self, transport: Transport, user_agent: str = "kubelite") -> None:
        self.transport = transport
        self.user_agent = user_agent

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        return {"accept": "application/json", "content-type": content_type, "user-agent": self.user_agent}

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v not in (None, "")}, doseq=True)
        raw = await self.send(method, path, body, content_type)
        return orjson.loads(raw) if raw else None

    async def send(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> bytes:
        """One request to ``path`` (query string included); the raw answer, errors raised as
        :mod:`kubelite.api.errors`.  For hot writes whose answer nobody reads (the simulator's
        Lease renewals): no query encoding, no decoding of the reply."""
        data = orjson.dumps(body) if body is not None else None
        status, raw = await self.transport.request(method, path, data, self._headers(content_type))
        raise_for_status(status, raw)
        return raw

    async def get(self, res: Resource, namespace: str, name: str, subresource: str = "") -> Obj:
        out: Obj = await self._call("GET", res.path(namespace, name, subresource))
        return out

    async def list(
        self,
        res: Resource,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
    ) -> Obj:
        q = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit or None,
            "continue": continue_,
            "resourceVersion": resource_version,
        }
        out: Obj = await self._call("GET", res.path(namespace), query=q)
        return out

    async def create(
        self,
        res: Resource,
        namespace: str,
        obj: Obj,
        *,
        field_manager: str = "",
        subresource: str = "",
        name: str = "",
    ) -> Obj:
        out: Obj = await self._call(
            "POST", res.path(namespace, name, subresource), obj, {"fieldManager": field_manager}
        )
        return out

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", field_manager: str = ""
    ) -> Obj:
        name = obj["metadata"]["name"]
        out: Obj = await self._call(
            "PUT", res.path(namespace, name, subresource), obj, {"fieldManager": field_manager}
        )
        return out

    async def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch: Any,
        *,
        patch_type: str = "application/merge-patch+json",
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
    ) -> Obj:
        q: dict[str, Any] = {"fieldManager": field_manager}
        if force:
            q["force"] = "true"
        out: Obj = await self._call("PATCH", res.path(namespace, name, subresource), patch, q, patch_type)
        return out

    async def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        *,
        propagation_policy: str = "",
        grace_period_seconds: int | None = None,
        preconditions: Obj | None = None,
    ) -> Obj | None:
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        out: Obj | None = await self._call("DELETE", res.path(namespace, name), body)
        return out

    async def watch(
        self,
        res: Resource,
        namespace: str = "",
        *,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int = 0,
        bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        q = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds or None,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }
        path = res.path(namespace) + "?" + urlencode({k: v for k, v in q.items() if v not in (None, "")})
        buf = b""
        # aclosing: a caller that stops watching ends the transport's stream (and its
        # connection) now, not whenever the abandoned generator is collected
        async with contextlib.aclosing(self.transport.stream("GET", path, self._headers())) as chunks:
            async for chunk in chunks:
                if b"\n" not in chunk:
                    buf += chunk
                    continue
                # one split per chunk: a chunk may carry a whole round of events (splitting
                # off one line at a time would copy the rest of the chunk for every event)
                lines = (buf + chunk).split(b"\n")
                buf = lines.pop()
                for line in lines:
                    if not line.strip():
                        continue
                    ev = orjson.loads(line)
                    if ev.get("type") == "ERROR":
                        st = ev.get("object") or {}
                        raise_for_status(int(st.get("code") or 500), orjson.dumps(st))
                    yield WatchEvent(ev["type"], ev["object"])

    async def close(self) -> None:
        await self.transport.close()
