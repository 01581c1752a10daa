"""Shared informers: one list+watch cache per resource for all controllers of a process."""

from __future__ import annotations

import asyncio

from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer


class SharedInformers:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[Resource, Informer] = {}

    def get(self, resource: Resource) -> Informer:
        """The shared informer of ``resource`` (created on first use, started by ``start``)."""
        inf = self._informers.get(resource)
        if inf is None:
            inf = self._informers[resource] = Informer(self.client, resource)
        return inf

    async def start(self) -> None:
        """Start every informer asked for so far and wait until their caches are synced."""
        for inf in self._informers.values():
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()
