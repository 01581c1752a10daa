"""Garbage collector: ownerReferences, background, foreground and orphan deletion.

Mirrors kube-controller-manager's GC observable behaviour:
* an object whose owners are all gone is deleted (background propagation);
* an owner with the ``foregroundDeletion`` finalizer deletes its dependents first
  (those with ``blockOwnerDeletion`` in the foreground) and loses the finalizer when no
  blocking dependent is left;
* an owner with the ``orphan`` finalizer has its uid removed from its dependents'
  ownerReferences, then loses the finalizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.gc")
Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def _graph_view(obj: Obj) -> tuple[str, Any, Any, Any]:
    """What the ownership graph keeps of an object: uid, ownerReferences, deletionTimestamp,
    finalizers."""
    meta = obj.get("metadata") or {}
    return (
        str(meta.get("uid", "")),
        meta.get("ownerReferences") or None,
        meta.get("deletionTimestamp") or None,
        meta.get("finalizers") or (),
    )


def _owner_uids(obj: Obj) -> list[str]:
    return [
        str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")
    ]


class GarbageCollector:
    def __init__(
        self,
        client: Client,
        resources: list[Resource],
        informer_for: Callable[[Resource], Informer] | None = None,
    ) -> None:
        self.client = client
        self._own = informer_for is None
        make = informer_for or (lambda r: Informer(client, r))
        self.informers = {r: make(r) for r in resources}
        self.by_uid: dict[str, tuple[Resource, str]] = {}
        self.ctrl = Controller("garbage-collector", self._reconcile, workers=2)
        for res, inf in self.informers.items():
            inf.add_indexer("owner", _owner_uids)
            inf.add_handler(self._handler(res))

    def _handler(self, res: Resource) -> Any:
        """Like the GC's ``GraphBuilder.processGraphChanges``: an update that changes none of
        the fields the ownership graph is made of (uid, ownerReferences, deletionTimestamp,
        finalizers) is no work at all, so the 500 Lease renewals a second of 5,000 nodes, or
        pod status writes, queue nothing."""

        def on_change(key: str, old: Obj | None, new: Obj | None) -> None:
            if new is None:
                if old is not None:
                    self._gone(old)
                return
            view = _graph_view(new)
            if old is not None:
                before = _graph_view(old)
                if before == view:
                    return
                if before[0] != view[0]:  # replaced under the same name: the old one is gone
                    self._gone(old)
            self.by_uid[view[0]] = (res, key)
            if view[1] or (view[2] and {FOREGROUND, ORPHAN} & set(view[3])):
                self.ctrl.queue.add(view[0])
            owners = set(_owner_uids(new)) | (set(_owner_uids(old)) if old is not None else set())
            self._queue_known(owners)

        return on_change

    def _gone(self, obj: Obj) -> None:
        """An object left: its dependents may be orphans now, and an owner waiting for it
        (foreground deletion) may be done."""
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        self.by_uid.pop(uid, None)
        for dep_uid in self._dependent_uids(uid):
            self.ctrl.queue.add(dep_uid)
        self._queue_known(_owner_uids(obj))

    def _queue_known(self, uids: Iterable[str]) -> None:
        for uid in uids:
            if uid in self.by_uid:
                self.ctrl.queue.add(uid)

    def _dependents(self, uid: str) -> list[tuple[Resource, Obj]]:
        out: list[tuple[Resource, Obj]] = []
        for res, inf in self.informers.items():
            out.extend((res, o) for o in inf.by_index("owner", uid))
        return out

    def _dependent_uids(self, uid: str) -> list[str]:
        return [str(o["metadata"].get("uid")) for _, o in self._dependents(uid)]

    async def start(self) -> None:
        for inf in self.informers.values():
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in self.informers.values()))
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        if self._own:
            for inf in self.informers.values():
                await inf.stop()

    def _lookup(self, uid: str) -> tuple[Resource, Obj] | None:
        ref = self.by_uid.get(uid)
        if ref is None:
            return None
        obj = self.informers[ref[0]].get(ref[1])
        return (ref[0], obj) if obj is not None else None

    async def _reconcile(self, uid: str) -> float | None:
        found = self._lookup(uid)
        if found is None:
            return None
        res, obj = found
        meta = obj.get("metadata") or {}
        finalizers = set(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            return await self._orphan(res, obj)
        if meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            return await self._foreground(res, obj)
        if meta.get("ownerReferences") and not meta.get("deletionTimestamp"):
            return await self._collect_if_orphaned(res, obj)
        return None

    async def _owner_alive(self, owner_uid: str, ref: Obj, namespace: str) -> tuple[bool, bool]:
        """(exists, being deleted in the foreground) for one owner reference."""
        found = self._lookup(owner_uid)
        if found is not None:
            ometa = found[1].get("metadata") or {}
            return True, bool(
                ometa.get("deletionTimestamp") and FOREGROUND in (ometa.get("finalizers") or [])
            )
        return False, False

    async def _collect_if_orphaned(self, res: Resource, obj: Obj) -> float | None:
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        alive = False
        waiting_foreground = False
        for ref in refs:
            exists, fg = await self._owner_alive(str(ref.get("uid")), ref, meta.get("namespace", ""))
            if exists and fg:
                waiting_foreground = True
            alive = alive or (exists and not fg)
        if alive:
            return None
        policy = "Foreground" if waiting_foreground else "Background"
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.client.delete(
                res,
                meta.get("namespace", ""),
                meta["name"],
                propagation_policy=policy,
                preconditions={"uid": meta["uid"]},
            )
            log.info("deleted dependent kind=%s name=%s policy=%s", res.plural, meta["name"], policy)
        return None

    async def _remove_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        fins = [f for f in meta.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": fins or None, "resourceVersion": meta.get("resourceVersion")}}
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(
                res, meta.get("namespace", ""), meta["name"], patch, field_manager="garbage-collector"
            )

    async def _orphan(self, res: Resource, obj: Obj) -> float | None:
        uid = obj["metadata"]["uid"]
        for dres, dep in self._dependents(uid):
            dmeta = dep["metadata"]
            refs = [r for r in dmeta.get("ownerReferences") or [] if r.get("uid") != uid]
            patch = {
                "metadata": {"ownerReferences": refs or None, "resourceVersion": dmeta.get("resourceVersion")}
            }
            with contextlib.suppress(errors.NotFound):
                await self.client.patch(
                    dres, dmeta.get("namespace", ""), dmeta["name"], patch, field_manager="garbage-collector"
                )
        await self._remove_finalizer(res, obj, ORPHAN)
        return None

    async def _foreground(self, res: Resource, obj: Obj) -> float | None:
        uid = obj["metadata"]["uid"]
        blocking = 0
        for dres, dep in self._dependents(uid):
            dmeta = dep["metadata"]
            ref: Obj = next((r for r in dmeta.get("ownerReferences") or [] if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if dmeta.get("deletionTimestamp"):
                continue
            policy = "Foreground" if ref.get("blockOwnerDeletion") else "Background"
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.client.delete(
                    dres,
                    dmeta.get("namespace", ""),
                    dmeta["name"],
                    propagation_policy=policy,
                    preconditions={"uid": dmeta["uid"]},
                )
        if blocking:
            return 0.5
        await self._remove_finalizer(res, obj, FOREGROUND)
        return None


def new(ctx: Any) -> GarbageCollector:
    from kubelite.controllers.manager import watched_resources

    resources = [r for r in watched_resources() if r.plural != "events"]
    return GarbageCollector(ctx.client, resources, ctx.informers.get)
