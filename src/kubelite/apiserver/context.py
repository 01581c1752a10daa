"""What a request handler needs from the running server, in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.apiserver.discovery import Discovery
from kubelite.apiserver.objects import ObjectStore
from kubelite.registry.resources import ResourceIndex


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ServerContext:
    index: ResourceIndex
    objects: ObjectStore
    discovery: Discovery
    openapi: Any  # kubelite.apiserver.openapi.OpenAPIV3
    tokens: dict[str, str]  # bearer token -> user name
    server_address: str = "127.0.0.1:6443"
    clock: Callable[[], dt.datetime] = utc_now
    crds: Any = None  # kubelite.apiserver.crds.CRDRegistry
    node_proxy: Any = None  # set by the node-agent layer: streams to kubelets
    extra: dict[str, Any] = field(default_factory=dict)
    # (second, its RFC 3339 text): server timestamps have second precision, and a busy server
    # stamps many writes in the same second (strftime is a visible share of a Lease renewal)
    _now_cache: tuple[int, str] = field(default=(-1, ""), init=False, repr=False)

    def now(self) -> str:
        t = self.clock()
        second = int(t.timestamp())
        if second != self._now_cache[0]:
            self._now_cache = (second, rfc3339(t))
        return self._now_cache[1]
