"""Plumbing shared by the StatefulSet and DaemonSet controllers.

* informer indexes (children by controller uid, objects by namespace);
* :func:`claim_children`: ``ClaimPods``/``ClaimControllerRevisions`` over the cache
  (owned children plus matching orphans, adopted with a re-read of the owner first);
* :func:`wait_for`: after a write, wait until the shared informer reflects it, so the
  next sync does not act twice on a stale cache (what ``ControllerExpectations`` are for
  in kube-controller-manager).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from kubelite.api import errors
from kubelite.api.podhealth import controller_ref, selector_of
from kubelite.client.base import Client, Resource
from kubelite.machinery.controller_utils import Claimer, new_controller_ref
from kubelite.machinery.informer import Informer

Obj = dict[str, Any]
OWNER_INDEX = "controller-uid"
NAMESPACE_INDEX = "namespace"
CACHE_WAIT = 2.0


class InformerSource(Protocol):
    def get(self, resource: Resource) -> Informer: ...


def controller_uid_index(obj: Obj) -> list[str]:
    """Informer index: objects by the uid of their controller reference."""
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def namespace_index(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [str(ns)] if ns else []


def add_indexes(owners: Informer, *children: Informer) -> None:
    owners.add_indexer(NAMESPACE_INDEX, namespace_index)
    for inf in children:
        inf.add_indexer(NAMESPACE_INDEX, namespace_index)
        inf.add_indexer(OWNER_INDEX, controller_uid_index)


async def wait_for(pred: Callable[[], bool], timeout: float = CACHE_WAIT) -> bool:
    """Poll ``pred`` until true or ``timeout`` seconds passed; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def present(inf: Informer, key: str) -> Callable[[], bool]:
    """A ``wait_for`` predicate: ``key`` is in the cache."""
    return lambda: inf.get(key) is not None


async def claim_children(
    client: Client,
    owner_res: Resource,
    owner: Obj,
    kind: str,
    children: Informer,
    child_res: Resource,
    member: Callable[[Obj], bool] = lambda o: True,
) -> list[Obj]:
    """The children ``owner`` controls, after adopting matching orphans and releasing
    owned children whose labels stopped matching its selector."""
    meta = owner["metadata"]
    uid = str(meta.get("uid"))
    candidates = children.by_index(OWNER_INDEX, uid) + [
        o for o in children.by_index(NAMESPACE_INDEX, str(meta.get("namespace"))) if controller_ref(o) is None
    ]

    async def can_adopt() -> bool:
        try:
            fresh = await client.get(owner_res, meta["namespace"], meta["name"])
        except errors.NotFound:
            return False
        fm = fresh.get("metadata") or {}
        return fm.get("uid") == uid and not fm.get("deletionTimestamp")

    claimer = Claimer(
        client,
        child_res,
        owner,
        new_controller_ref(owner, "apps/v1", kind),
        selector_of((owner.get("spec") or {}).get("selector")),
        can_adopt,
    )
    return await claimer.claim([c for c in candidates if member(c)])


def watch_children(
    owners: Informer, kind: str, enqueue: Callable[[str], None]
) -> Callable[[str, Obj | None, Obj | None], None]:
    """A child handler: enqueue the controlling owner, or owners whose selector matches an
    orphan (so they can adopt it)."""

    def on_change(key: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            if obj is None:
                continue
            ref = controller_ref(obj)
            ns = (obj.get("metadata") or {}).get("namespace", "")
            if ref is not None:
                if ref.get("kind") == kind:
                    enqueue(f"{ns}/{ref.get('name')}")
                continue
            labels = (obj.get("metadata") or {}).get("labels") or {}
            for owner in owners.by_index(NAMESPACE_INDEX, ns):
                if selector_of((owner.get("spec") or {}).get("selector")).matches(labels):
                    enqueue(f"{ns}/{owner['metadata']['name']}")

    return on_change
