"""Namespace lifecycle: a terminating namespace has its content deleted, then itself.

Like kube-controller-manager's namespace controller: delete every namespaced object in
it (all resources), requeue while anything is left, then clear ``spec.finalizers``
through ``/finalize`` so the API server removes the namespace.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.namespace")
Obj = dict[str, Any]
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)


class NamespaceController:
    def __init__(self, client: Client, namespaced: list[Resource], informer: Informer | None = None) -> None:
        self.client = client
        self.namespaced = namespaced
        self._own = informer is None
        self.informer = informer or Informer(client, NAMESPACES)
        self.ctrl = Controller("namespace", self._reconcile, workers=2)
        self.informer.add_handler(self._on_change)

    def _on_change(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and (new.get("metadata") or {}).get("deletionTimestamp"):
            self.ctrl.queue.add(key)

    async def start(self) -> None:
        self.informer.start()
        await self.informer.wait_synced()
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        if self._own:
            await self.informer.stop()

    async def _reconcile(self, name: str) -> float | None:
        ns = self.informer.get(name)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        remaining = 0
        for res in self.namespaced:
            try:
                page = await self.client.list(res, name)
            except (errors.NotFound, errors.MethodNotAllowed):
                continue
            for obj in page.get("items") or []:
                remaining += 1
                meta = obj["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                with contextlib.suppress(errors.NotFound, errors.Conflict):
                    await self.client.delete(res, name, meta["name"], propagation_policy="Background")
        if remaining:
            return 0.2
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "spec": {"finalizers": []},
        }
        with contextlib.suppress(errors.NotFound):
            await self.client.update(NAMESPACES, "", body, subresource="finalize")
        log.info("namespace finalized name=%s", name)
        return None


def new(ctx: Any) -> NamespaceController:
    from kubelite.controllers.manager import watched_resources

    return NamespaceController(
        ctx.client, [r for r in watched_resources() if r.namespaced], ctx.informers.get(NAMESPACES)
    )
