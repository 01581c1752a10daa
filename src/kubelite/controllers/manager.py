"""Start and stop the controllers of the control plane as one supervised group."""

from __future__ import annotations

import logging
from typing import Protocol

from kubelite.client.base import Client, Resource
from kubelite.controllers.garbagecollector import GarbageCollector
from kubelite.controllers.namespace import NamespaceController
from kubelite.registry.resources import BUILTIN

log = logging.getLogger("kubelite.controllers")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def watched_resources() -> list[Resource]:
    """Every stored built-in resource (preferred versions) that can be listed and watched."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in BUILTIN:
        if not r.persisted or not r.preferred or "watch" not in r.verbs or (r.group, r.plural) in seen:
            continue
        if r.group == "events.k8s.io":
            continue
        seen.add((r.group, r.plural))
        out.append(Resource(r.group, r.version, r.plural, r.namespaced))
    return out


class ControllerManager:
    def __init__(self, client: Client) -> None:
        resources = watched_resources()
        self.controllers: list[Startable] = [
            GarbageCollector(client, [r for r in resources if r.plural != "events"]),
            NamespaceController(client, [r for r in resources if r.namespaced]),
        ]

    async def start(self) -> None:
        for c in self.controllers:
            await c.start()
        log.info("controllers started count=%d", len(self.controllers))

    async def stop(self) -> None:
        for c in reversed(self.controllers):
            await c.stop()

    def __repr__(self) -> str:  # pragma: no cover
        return f"ControllerManager({len(self.controllers)} controllers)"
