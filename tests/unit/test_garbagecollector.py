"""Garbage collector: cascades in the three propagation modes, and no work for updates
that leave the ownership graph as it was (Lease renewals of thousands of nodes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.controllers.garbagecollector import GarbageCollector
from tests.unit.lifecycle_api import LEASES, NODES, api_server, eventually

Obj = dict[str, Any]
CONFIGMAPS = Resource("", "v1", "configmaps")
LEASE_NS = "kube-node-lease"


@asynccontextmanager
async def _gc(c: Client) -> AsyncIterator[tuple[GarbageCollector, list[str]]]:
    """A GC over nodes, leases and configmaps; yields it and the keys it reconciled."""
    gc = GarbageCollector(c, [NODES, LEASES, CONFIGMAPS])
    seen: list[str] = []
    inner = gc.ctrl.reconcile

    async def counting(uid: str) -> float | None:
        seen.append(uid)
        return await inner(uid)

    gc.ctrl.reconcile = counting
    await gc.start()
    try:
        yield gc, seen
    finally:
        await gc.stop()


def _ref(owner: Obj, kind: str, block: bool = False) -> Obj:
    ref = {
        "apiVersion": "v1",
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def _cm(name: str, owners: list[Obj] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def _gone(c: Client, res: Resource, ns: str, name: str) -> bool:
    try:
        await c.get(res, ns, name)
    except errors.NotFound:
        return True
    return False


async def _settle(gc: GarbageCollector, res: Resource, rv: str) -> None:
    """Wait until the GC's informer of ``res`` has seen revision ``rv`` and its queue is idle."""

    async def caught_up() -> bool:
        inf = gc.informers[res]
        return int(inf.resource_version or 0) >= int(rv) and not len(gc.ctrl.queue)

    await eventually(caught_up, timeout=5)
    await asyncio.sleep(0.05)


async def test_lease_renewals_queue_nothing_and_the_lease_goes_with_its_node(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, _gc(api.client) as (gc, seen):
        c = api.client
        node = await c.create(NODES, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        lease: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "n1", "namespace": LEASE_NS, "ownerReferences": [_ref(node, "Node")]},
            "spec": {"holderIdentity": "n1", "renewTime": "2026-01-01T00:00:00.000000Z"},
        }
        lease = await c.create(LEASES, LEASE_NS, lease)
        await _settle(gc, LEASES, lease["metadata"]["resourceVersion"])
        before = len(seen)
        assert before >= 1  # the new Lease was looked at once (its owner exists: kept)
        for i in range(20):
            lease["spec"]["renewTime"] = f"2026-01-01T00:00:{i:02d}.000000Z"
            lease = await c.update(LEASES, LEASE_NS, lease)
        await _settle(gc, LEASES, lease["metadata"]["resourceVersion"])
        assert len(seen) == before
        await c.delete(NODES, "", "n1")
        await eventually(lambda: _gone(c, LEASES, LEASE_NS, "n1"))


async def test_owner_reference_change_is_acted_on(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, _gc(api.client) as (gc, _):
        c = api.client
        owner = await c.create(CONFIGMAPS, "default", _cm("owner"))
        dep = await c.create(CONFIGMAPS, "default", _cm("dep", [_ref(owner, "ConfigMap")]))
        await _settle(gc, CONFIGMAPS, dep["metadata"]["resourceVersion"])
        assert not await _gone(c, CONFIGMAPS, "default", "dep")
        dep["metadata"]["ownerReferences"] = [{**_ref(owner, "ConfigMap"), "uid": "no-such-owner"}]
        await c.update(CONFIGMAPS, "default", dep)
        await eventually(lambda: _gone(c, CONFIGMAPS, "default", "dep"))


async def test_foreground_and_orphan_deletion(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, _gc(api.client):
        c = api.client
        fg = await c.create(CONFIGMAPS, "default", _cm("fg"))
        await c.create(CONFIGMAPS, "default", _cm("fg-dep", [_ref(fg, "ConfigMap", block=True)]))
        orphan = await c.create(CONFIGMAPS, "default", _cm("or"))
        await c.create(CONFIGMAPS, "default", _cm("or-dep", [_ref(orphan, "ConfigMap")]))
        await c.delete(CONFIGMAPS, "default", "fg", propagation_policy="Foreground")
        await c.delete(CONFIGMAPS, "default", "or", propagation_policy="Orphan")
        await eventually(lambda: _gone(c, CONFIGMAPS, "default", "fg-dep"))
        await eventually(lambda: _gone(c, CONFIGMAPS, "default", "fg"))
        await eventually(lambda: _gone(c, CONFIGMAPS, "default", "or"))
        kept = await c.get(CONFIGMAPS, "default", "or-dep")
        assert not kept["metadata"].get("ownerReferences")
