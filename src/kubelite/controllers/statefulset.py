"""StatefulSet controller: ordered, stable pods with per-pod storage and revision history.

Mirrors kube-controller-manager's ``pkg/controller/statefulset``: claims member pods and
ControllerRevisions (adopting matching orphans), keeps the current/update revisions,
runs one :class:`~kubelite.controllers.statefulset_sync.StatefulSetSync`, writes the
status, and prunes history beyond ``revisionHistoryLimit``.  Events use Kubernetes'
reasons and messages (``SuccessfulCreate``: ``create Pod web-0 in StatefulSet web
successful``, ``create Claim www-web-0 Pod web-0 in StatefulSet web success``,
``SuccessfulDelete``, ``SuccessfulUpdate``, ``Failed*``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import is_terminating
from kubelite.client.base import Client, Resource
from kubelite.controllers import statefulset_pods as sp
from kubelite.controllers.history import (
    STATEFULSET_HASH_LABEL,
    equal_data,
    hash_revision_data,
    is_controlled_by,
    new_revision,
    next_revision,
    revision_name,
    revisions_to_prune,
    sort_revisions,
    template_patch,
)
from kubelite.controllers.setutil import (
    InformerSource,
    add_indexes,
    claim_children,
    present,
    wait_for,
    watch_children,
)
from kubelite.controllers.statefulset_sync import Revisions, StatefulSetSync
from kubelite.machinery.controller_utils import with_kind
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.statefulset")
Obj = dict[str, Any]

STATEFULSETS = Resource("apps", "v1", "statefulsets")
PODS = Resource("", "v1", "pods")
REVISIONS = Resource("apps", "v1", "controllerrevisions")
PVCS = Resource("", "v1", "persistentvolumeclaims")
STATUS_FIELDS = (
    "observedGeneration",
    "replicas",
    "readyReplicas",
    "currentReplicas",
    "updatedReplicas",
    "availableReplicas",
    "currentRevision",
    "updateRevision",
    "collisionCount",
)
STATUS_ZERO = {"currentRevision": "", "updateRevision": ""}


class StatefulSetController:
    def __init__(self, client: Client, informers: InformerSource, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder
        self.sets = informers.get(STATEFULSETS)
        self.pods = informers.get(PODS)
        self.revisions = informers.get(REVISIONS)
        self.claims = informers.get(PVCS)
        add_indexes(self.sets, self.pods, self.revisions)
        self.ctrl = Controller("statefulset", self.reconcile, workers=5)
        self.sets.add_handler(lambda key, old, new: self.ctrl.queue.add(key))
        on_child = watch_children(self.sets, "StatefulSet", self.ctrl.queue.add)
        self.pods.add_handler(on_child)
        self.revisions.add_handler(on_child)

    async def start(self) -> None:
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.recorder.flush()

    # ---------------------------------------------------------------- reconcile

    async def reconcile(self, key: str) -> float | None:
        sts = self.sets.get(key)
        if sts is None:
            return None
        sts = with_kind(sts, "apps/v1", "StatefulSet")
        pods = await claim_children(
            self.client, STATEFULSETS, sts, "StatefulSet", self.pods, PODS, lambda p: sp.is_member(sts, p)
        )
        revisions = sort_revisions(
            await claim_children(self.client, STATEFULSETS, sts, "StatefulSet", self.revisions, REVISIONS)
        )
        revs = await self._revisions(sts, revisions)
        result = await StatefulSetSync(sts, revs, pods, _PodControl(self, sts), sp.now()).run()
        await self._write_status(sts, result.status)
        await self._truncate_history(sts, pods, revisions, revs)
        return result.requeue_after

    # ---------------------------------------------------------------- revisions

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> Revisions:
        """``getStatefulSetRevisions``: reuse, renumber (rollback) or create the update revision."""
        status = sts.get("status") or {}
        collision = int(status.get("collisionCount") or 0)
        data = template_patch(sts)
        number = next_revision(revisions)
        equal = [r for r in revisions if equal_data(r, {"data": data})]
        if equal and equal[-1] is revisions[-1]:
            update = revisions[-1]
        elif equal:
            update = await self._renumber(equal[-1], number)
        else:
            update, collision = await self._create_revision(sts, data, number, collision)
        current = next(
            (r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), update
        )
        return Revisions(current, update, collision)

    async def _renumber(self, rev: Obj, number: int) -> Obj:
        meta = rev["metadata"]
        out: Obj = await self.client.patch(REVISIONS, meta["namespace"], meta["name"], {"revision": number})
        return out

    async def _create_revision(self, sts: Obj, data: Obj, number: int, collision: int) -> tuple[Obj, int]:
        """``CreateControllerRevision``: on a name taken by another revision, bump the count."""
        meta = sts["metadata"]
        while True:
            hash_ = hash_revision_data(data, collision)
            name = revision_name(meta["name"], hash_)
            rev = new_revision(sts, "StatefulSet", data, number, name, STATEFULSET_HASH_LABEL, hash_)
            try:
                created: Obj = await self.client.create(REVISIONS, meta["namespace"], rev)
                await wait_for(present(self.revisions, f"{meta['namespace']}/{name}"))
                return created, collision
            except errors.AlreadyExists:
                existing = await self.client.get(REVISIONS, meta["namespace"], name)
                if is_controlled_by(existing, sts) and equal_data(existing, rev):
                    return existing, collision
                collision += 1

    async def _truncate_history(
        self, sts: Obj, pods: list[Obj], revisions: list[Obj], revs: Revisions
    ) -> None:
        live = {revs.current_name, revs.update_name} | {sp.pod_revision(p) for p in pods}
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
        for rev in revisions_to_prune(revisions, live, None if limit is None else int(limit)):
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(REVISIONS, rev["metadata"]["namespace"], rev["metadata"]["name"])

    # ---------------------------------------------------------------- status

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        current = sts.get("status") or {}
        if all(current.get(k, STATUS_ZERO.get(k, 0)) == status.get(k) for k in STATUS_FIELDS):
            return
        meta = sts["metadata"]
        body = {"status": {k: status.get(k) for k in STATUS_FIELDS}}
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(STATEFULSETS, meta["namespace"], meta["name"], body, subresource="status")


class _PodControl:
    """``StatefulPodControl``: pod and claim writes with their events."""

    def __init__(self, owner: StatefulSetController, sts: Obj) -> None:
        self.c = owner
        self.sts = sts

    def _event(self, ok: bool, verb: str, what: str, err: Exception | None = None) -> None:
        name = self.sts["metadata"]["name"]
        if ok:
            suffix = "success" if what.startswith("Claim") else "successful"
            msg = f"{verb} {what} in StatefulSet {name} {suffix}"
            self.c.recorder.event(self.sts, "Normal", f"Successful{verb.title()}", msg)
        else:
            what = what.replace(" Pod ", " for Pod ")
            msg = f"{verb} {what} in StatefulSet {name} failed error: {err}"
            self.c.recorder.event(self.sts, "Warning", f"Failed{verb.title()}", msg)

    async def _guard(self, verb: str, what: str, call: Awaitable[Any]) -> bool:
        try:
            await call
        except errors.AlreadyExists:
            return False
        except errors.NotFound:
            if verb == "create":
                raise
            return False
        except errors.APIError as e:
            self._event(False, verb, what, e)
            raise
        self._event(True, verb, what)
        return True

    async def create_missing_claims(self, sts: Obj, pod: Obj) -> None:
        ns, pod_name = sts["metadata"]["namespace"], pod["metadata"]["name"]
        for claim in sp.claims_for(sts, sp.ordinal(pod)).values():
            cname = claim["metadata"]["name"]
            if self.c.claims.get(f"{ns}/{cname}") is not None:
                continue
            refs = sp.claim_owner_refs(sts, pod, claim)
            if refs:
                claim["metadata"]["ownerReferences"] = refs
            await self._guard(
                "create",
                f"Claim {cname} Pod {pod_name}",
                self.c.client.create(PVCS, ns, claim),
            )

    async def create_pod(self, sts: Obj, pod: Obj) -> None:
        await self.create_missing_claims(sts, pod)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if await self._guard("create", f"Pod {name}", self.c.client.create(PODS, ns, pod)):
            await wait_for(present(self.c.pods, f"{ns}/{name}"))

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        uid = pod["metadata"].get("uid")
        pre = {"uid": uid} if uid else None
        if await self._guard(
            "delete", f"Pod {name}", self.c.client.delete(PODS, ns, name, preconditions=pre)
        ):

            def gone() -> bool:
                cur = self.c.pods.get(f"{ns}/{name}")
                return cur is None or is_terminating(cur) or cur["metadata"].get("uid") != uid

            await wait_for(gone)

    async def fix_identity(self, sts: Obj, pod: Obj) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        patch = {"metadata": {"labels": sp.identity_labels(pod)}}
        await self._guard("update", f"Pod {name}", self.c.client.patch(PODS, ns, name, patch))

    def _pod_claims(self, sts: Obj, pod: Obj) -> list[Obj]:
        ns = sts["metadata"]["namespace"]
        out = []
        for claim in sp.claims_for(sts, sp.ordinal(pod)).values():
            cur = self.c.claims.get(f"{ns}/{claim['metadata']['name']}")
            if cur is not None:
                out.append(cur)
        return out

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        return all(sp.claim_owners_match(sts, pod, c) for c in self._pod_claims(sts, pod))

    async def update_claims_policy(self, sts: Obj, pod: Obj) -> None:
        for claim in self._pod_claims(sts, pod):
            if sp.claim_owners_match(sts, pod, claim):
                continue
            meta = claim["metadata"]
            patch = {"metadata": {"ownerReferences": sp.claim_owner_refs(sts, pod, claim)}}
            with contextlib.suppress(errors.NotFound):
                await self.c.client.patch(PVCS, meta["namespace"], meta["name"], patch)


def new(ctx: Any) -> StatefulSetController:
    return StatefulSetController(ctx.client, ctx.informers, ctx.recorder("statefulset-controller"))
