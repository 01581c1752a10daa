"""Shared informers: one list+watch cache per resource for all controllers of a process.

Like client-go's ``SharedInformerFactory``.  Inside ``kubelite up`` the controller manager,
the scheduler and the simulated kubelets run in one process on one in-process transport;
:meth:`SharedInformers.of` hands them all the same factory, so each resource is watched
once (kube-controller-manager and kube-scheduler share a factory within their binaries for
the same reason).  Every extra watch of pods costs the API server one more delivery of
every pod event (~70 us each in-process), which adds up at thousands of pods a second.

A shared factory is started and stopped by each of its users: informers run from the
first :meth:`start` until the last user's :meth:`stop` (a reference count), and informers
asked for after the first start are started by the next user's :meth:`start`.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer

# transport -> the factory every component on it shares (see SharedInformers.of)
_BY_TRANSPORT: weakref.WeakKeyDictionary[Any, SharedInformers] = weakref.WeakKeyDictionary()


class SharedInformers:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[Resource, Informer] = {}
        self._users = 0

    @classmethod
    def of(cls, client: Client) -> SharedInformers:
        """The process-wide factory of ``client``'s transport (created on first use).

        Components that share a transport (everything inside ``kubelite up``) share their
        caches; a component with a transport of its own (``kubelite scheduler`` against a
        remote server) gets a factory of its own, as before.
        """
        key = getattr(client, "transport", client)  # test doubles may have no transport
        factory = _BY_TRANSPORT.get(key)
        if factory is None:
            factory = _BY_TRANSPORT[key] = cls(client)
        return factory

    def get(self, resource: Resource) -> Informer:
        """The shared informer of ``resource`` (created on first use, started by ``start``)."""
        inf = self._informers.get(resource)
        if inf is None:
            inf = self._informers[resource] = Informer(self.client, resource)
        return inf

    def peek(self, resource: Resource) -> Informer | None:
        """The informer of ``resource`` if some user asked for it already, else None."""
        return self._informers.get(resource)

    async def start(self) -> None:
        """Start every informer asked for so far and wait until their caches are synced."""
        self._users += 1
        for inf in self._informers.values():
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        """One user is done; the informers stop with the last one."""
        self._users = max(0, self._users - 1)
        if self._users:
            return
        for inf in self._informers.values():
            await inf.stop()
