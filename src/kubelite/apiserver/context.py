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

    def now(self) -> str:
        return rfc3339(self.clock())
