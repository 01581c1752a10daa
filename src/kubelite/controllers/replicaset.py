"""ReplicaSet and ReplicationController: keep ``spec.replicas`` pods of a template alive.

Mirrors kube-controller-manager's ``pkg/controller/replicaset`` (which also runs
ReplicationControllers, through a selector/kind adapter):

* pods are created from the template with ``generateName: <rs>-`` and a controller
  ownerReference (``blockOwnerDeletion``), in slow-start batches (1, 2, 4, ...) of at most
  ``burstReplicas`` (500) per sync; surplus pods are deleted in ``ActivePodsWithRanks``
  order (related pods on the same node counted across the owning Deployment's sets);
* matching orphans are adopted and owned pods that stop matching are released; the owned,
  active pods and their status counts are kept current from pod events
  (:class:`~kubelite.machinery.ownedpods.OwnedPods`), so a sync of a 10,000-pod set looks
  at the pods that changed since the last one, not at all 10,000;
* expectations keep a sync from acting again before the informer saw its own writes;
* a sync that wrote the status holds the set's next sync back by ``STATUS_SPACING`` (pod
  events meanwhile collapse into that one sync, as the work queue coalesces them in
  kube-controller-manager while a sync runs);
* status: ``replicas``, ``fullyLabeledReplicas``, ``readyReplicas``,
  ``availableReplicas`` (Ready for ``minReadySeconds``), ``observedGeneration`` and the
  ``ReplicaFailure`` condition (FailedCreate / FailedDelete);
* events ``SuccessfulCreate`` ("Created pod: x"), ``SuccessfulDelete`` ("Deleted pod: x"),
  ``FailedCreate`` ("Error creating: ...") and ``FailedDelete`` ("Error deleting: ...").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubelite.api import errors
from kubelite.api.selectors import LabelSelector, from_label_selector_dict, selector_from_set
from kubelite.client.base import Client, Resource
from kubelite.machinery import controller_utils as cu
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.ownedpods import Claim, Owned, OwnedPods
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.replicaset")
Obj = dict[str, Any]

PODS = Resource("", "v1", "pods")
REPLICASETS = Resource("apps", "v1", "replicasets")
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
STATUS_UPDATE_RETRIES = 1
CONFLICT_RETRY = 0.02
# Sync spacing for hot keys: after a sync whose pod pass blocked the event loop for T
# seconds (T >= SPACING_MIN_COST), the same set is not synced again for SPACING_FACTOR*T
# (at most SPACING_MAX); pod events arriving meanwhile collapse into that one later sync.
SPACING_FACTOR = 3.0
SPACING_MIN_COST = 0.002
SPACING_MAX = 1.0
# After a sync that wrote the set's status, its next sync waits this long: a set whose pods
# start by the thousand writes its status (and wakes the Deployment controller) at most
# ~10 times a second instead of once per pod event.
STATUS_SPACING = 0.1


@dataclass(frozen=True)
class Kind:
    """What differs between ReplicaSet and ReplicationController."""

    resource: Resource
    api_version: str
    kind: str
    component: str

    def selector(self, obj: Obj) -> LabelSelector:
        spec = obj.get("spec") or {}
        if self.kind == "ReplicationController":
            sel: Mapping[str, str] = spec.get("selector") or {}
            return selector_from_set(sel) if sel else LabelSelector.match_nothing()
        try:
            return from_label_selector_dict(spec.get("selector"))
        except errors.APIError:
            return LabelSelector.match_nothing()


REPLICASET = Kind(REPLICASETS, "apps/v1", "ReplicaSet", "replicaset-controller")
REPLICATIONCONTROLLER = Kind(REPLICATIONCONTROLLERS, "v1", "ReplicationController", "replication-controller")


def calculate_status(rs: Obj, pods: list[Obj], manage_error: Exception | None, diff: int, now: float) -> Obj:
    """``calculateStatus``: counts over the claimed active pods plus ReplicaFailure."""
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    counts = count_pods(pods, _template_labels(rs), min_ready, now)
    return status_from_counts(rs, len(pods), counts, manage_error, diff, now)


def _template_labels(rs: Obj) -> Mapping[str, str]:
    spec = rs.get("spec") or {}
    labels: Mapping[str, str] = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return labels


def status_from_counts(
    rs: Obj,
    replicas: int,
    counts: tuple[int, int, int],
    manage_error: Exception | None,
    diff: int,
    now: float,
) -> Obj:
    """``calculateStatus`` from (fully labeled, ready, available) counts of ``replicas`` pods."""
    labeled, ready, available = counts
    old = rs.get("status") or {}
    conditions = [dict(c) for c in old.get("conditions") or []]
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": _rfc3339(now),
                "reason": reason,
                "message": str(manage_error),
            }
        )
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    status: Obj = {
        "replicas": replicas,
        "fullyLabeledReplicas": labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": int(cu.meta(rs).get("generation") or 0),
    }
    if conditions:
        status["conditions"] = conditions
    return _prune_zero(status)


def count_pods(
    pods: list[Obj], template_labels: Mapping[str, str], min_ready: int, now: float
) -> tuple[int, int, int]:
    """One pass over ``pods``: (fully labeled, ready, available) counts.

    Fully labeled: every template label present with its value; ready: the Ready
    condition is True; available: ready for at least ``minReadySeconds``.
    """
    wanted = dict(template_labels).items()
    labeled = ready = available = 0
    for pod in pods:
        if wanted <= ((pod.get("metadata") or {}).get("labels") or {}).items():
            labeled += 1
        for c in (pod.get("status") or {}).get("conditions") or ():
            if c.get("type") == "Ready":
                if c.get("status") == "True":
                    ready += 1
                    if min_ready <= 0 or cu.is_pod_available(pod, min_ready, now):
                        available += 1
                break
    return labeled, ready, available


def _prune_zero(status: Obj) -> Obj:
    """omitempty: Kubernetes leaves zero counts out of ReplicaSet status (``replicas`` stays)."""
    return {k: v for k, v in status.items() if k == "replicas" or v not in (0, None, [])}


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Claimed:
    """A sync's claimed pods: the owned ones (:class:`Owned`) plus the orphans it adopted."""

    owned: Owned
    adopted: list[Obj]

    def count(self) -> int:
        return len(self.owned.pods) + len(self.adopted)

    def pods(self) -> list[Obj]:
        """The claimed pods, owned ones in key order (a deterministic order for scale-down ties)."""
        owned = self.owned.pods
        return [*(owned[k] for k in sorted(owned)), *self.adopted]

    def counts(self, template_labels: Mapping[str, str], min_ready: int, now: float) -> tuple[int, int, int]:
        """(fully labeled, ready, available), as :func:`count_pods` over :meth:`pods`."""
        labeled, ready, available = count_pods(self.adopted, template_labels, min_ready, now)
        labeled += len(self.owned.labeled)
        ready += len(self.owned.ready)
        if min_ready <= 0:
            return labeled, ready, available + len(self.owned.ready)
        owned = self.owned.pods
        available += sum(cu.is_pod_available(owned[k], min_ready, now) for k in self.owned.ready)
        return labeled, ready, available


def _requeue_for_availability(claimed: Claimed, min_ready: int, now: float) -> float | None:
    """Come back when a ready pod turns available after ``minReadySeconds``."""
    if min_ready <= 0:
        return None
    waits = [cu.seconds_until_available(p, min_ready, now) for p in claimed.pods()]
    pending = [w for w in waits if w is not None and w > 0]
    return min(pending) + 0.05 if pending else None


class ReplicaSetController:
    """One controller loop for ReplicaSets or ReplicationControllers (``kind``)."""

    def __init__(
        self,
        client: Client,
        kind: Kind,
        sets: Informer,
        pods: Informer,
        recorder: EventRecorder,
        workers: int = 5,
        burst: int = BURST_REPLICAS,
    ) -> None:
        self.client = client
        self.kind = kind
        self.sets = sets
        self.pods = pods
        self.recorder = cu.SpamFilteredRecorder(recorder)
        self.burst = burst
        self.expectations = cu.Expectations()
        self.owned = OwnedPods(pods)
        self.ctrl = Controller(kind.component, self._reconcile, workers=workers)
        cu.add_workload_indexes(self.sets)
        cu.add_workload_indexes(self.pods)
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)

    async def start(self) -> None:
        self.ctrl.start()
        for obj in self.sets.list():
            self.ctrl.queue.add(cu.key_of(obj))

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.recorder.flush()

    # ------------------------------------------------------------------ handlers

    def _on_set(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self.expectations.forget(key)
            if old is not None:
                self.owned.forget(str(cu.meta(old).get("uid", "")))
        self.ctrl.queue.add(key)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = cu.controller_ref_view(pod)
        if ref is None or ref.get("kind") != self.kind.kind:
            return None
        owners = self.sets.by_index(cu.UID_INDEX, str(ref.get("uid", "")))
        return cu.key_of(owners[0]) if owners else None

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.owned.observe(key, old, new)
        old_owner = self._owner_key(old) if old is not None else None
        new_owner = self._owner_key(new) if new is not None else None
        if new is None:
            if old_owner is not None:
                self.expectations.deletion_observed(old_owner, key)
        elif new_owner is not None:
            if cu.is_being_deleted(new):
                if old is None or not cu.is_being_deleted(old):
                    self.expectations.deletion_observed(new_owner, key)
            elif old is None:
                self.expectations.creation_observed(new_owner)
        keys = {k for k in (old_owner, new_owner) if k is not None}
        for pod in (old, new):
            if pod is not None and cu.controller_ref_view(pod) is None:
                keys.update(self._matching_sets(pod))
        for k in keys:
            self.ctrl.queue.add(k)

    def _matching_sets(self, pod: Obj) -> list[str]:
        ns = str(cu.meta(pod).get("namespace", ""))
        labels = cu.meta(pod).get("labels") or {}
        return [
            cu.key_of(s) for s in self.sets.by_index(cu.NS_INDEX, ns) if self.kind.selector(s).matches(labels)
        ]

    # ------------------------------------------------------------------ reconcile

    async def _reconcile(self, key: str) -> float | None:
        cached = self.sets.get(key)
        if cached is None:
            self.expectations.forget(key)
            return None
        rs = cu.with_kind(cached, self.kind.api_version, self.kind.kind)
        started = time.perf_counter()
        claimed = await self._claim_pods(rs)
        cost = time.perf_counter() - started
        needs_sync = self.expectations.satisfied(key)
        manage_error: Exception | None = None
        diff = claimed.count() - int((rs.get("spec") or {}).get("replicas", 1) or 0)
        if needs_sync and not cu.is_being_deleted(rs):
            manage_error = await self._manage_replicas(key, rs, claimed)
        now = time.time()
        started = time.perf_counter()
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        counts = claimed.counts(_template_labels(rs), min_ready, now)
        status = status_from_counts(rs, claimed.count(), counts, manage_error, diff, now)
        self._space_syncs(key, cost + time.perf_counter() - started)
        try:
            wrote = await self._update_status(rs, status)
        except errors.Conflict:
            log.debug("replicaset status conflict key=%s; retrying", key)
            return CONFLICT_RETRY
        if wrote:
            self.ctrl.queue.not_before(key, STATUS_SPACING)
        if manage_error is not None:
            raise manage_error
        return _requeue_for_availability(claimed, min_ready, now)

    def _space_syncs(self, key: str, cost: float) -> None:
        """Hold the next sync of ``key`` back in proportion to what this one cost.

        kube-controller-manager gets the same coalescing from its expectations and rate
        limiter; here it keeps a sync whose pod pass was expensive (a full pass over a
        large set) from running back to back.  Cheap syncs are never held back.
        """
        if cost >= SPACING_MIN_COST:
            self.ctrl.queue.not_before(key, min(SPACING_MAX, SPACING_FACTOR * cost))

    async def _claim_pods(self, rs: Obj) -> Claimed:
        """``FilterActivePods`` + ``ClaimPods``: owned pods from :class:`OwnedPods` (only the
        pods that changed since the last sync are looked at), orphans adopted and owned pods
        that stopped matching released through :class:`~cu.Claimer`."""
        ns = str(cu.meta(rs).get("namespace", ""))
        uid = str(cu.meta(rs).get("uid", ""))
        selector = self.kind.selector(rs)
        labels = tuple(sorted(_template_labels(rs).items()))
        claim = Claim(selector, labels, cu.is_being_deleted(rs))
        owned = self.owned.sync(uid, claim, cu.compile_selector(selector))
        orphans = self.pods.by_index(cu.ORPHAN_INDEX, ns)
        if not orphans and not owned.stray:
            return Claimed(owned, [])
        ref = cu.new_controller_ref(rs, self.kind.api_version, self.kind.kind)

        async def can_adopt() -> bool:
            try:
                fresh = await self.client.get(self.kind.resource, ns, str(cu.meta(rs)["name"]))
            except errors.NotFound:
                return False
            return cu.meta(fresh).get("uid") == cu.meta(rs).get("uid") and not cu.is_being_deleted(fresh)

        claimer = cu.Claimer(self.client, PODS, rs, ref, selector, can_adopt)
        adopted = await claimer.claim([*orphans, *owned.stray.values()], only_active=True)
        return Claimed(owned, adopted)

    async def _manage_replicas(self, key: str, rs: Obj, claimed: Claimed) -> Exception | None:
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        diff = claimed.count() - want
        if diff < 0:
            return await self._create_pods(key, rs, min(-diff, self.burst))
        if diff > 0:
            return await self._delete_pods(key, rs, claimed.pods(), min(diff, self.burst))
        return None

    async def _create_pods(self, key: str, rs: Obj, count: int) -> Exception | None:
        self.expectations.expect_creations(key, count)
        ref = cu.new_controller_ref(rs, self.kind.api_version, self.kind.kind)
        template = (rs.get("spec") or {}).get("template") or {}
        ns = str(cu.meta(rs).get("namespace", ""))
        # one body for the whole batch: every pod of it is the same request (generateName),
        # and the client only serialises it, so no per-pod deep copy of the template
        body = cu.pod_from_template(template, rs, ref)

        async def create_one() -> None:
            try:
                pod = await self.client.create(PODS, ns, body)
            except Exception as e:
                self.expectations.creation_observed(key)
                if not _namespace_terminating(e):
                    self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e}")
                raise
            self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {cu.meta(pod)['name']}")

        done, err = await cu.slow_start_batch(count, SLOW_START_INITIAL_BATCH, create_one)
        skipped = count - done - (1 if err is not None else 0)
        for _ in range(max(0, skipped)):
            self.expectations.creation_observed(key)
        return err

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every set sharing this set's controller (a Deployment's sets together)."""
        owner = cu.controller_ref(rs)
        ns = str(cu.meta(rs).get("namespace", ""))
        if owner is None:
            return self.pods.by_index(cu.OWNER_INDEX, str(cu.meta(rs).get("uid", "")))
        out: list[Obj] = []
        for s in self.sets.by_index(cu.NS_INDEX, ns):
            ref = cu.controller_ref(s)
            if ref is not None and ref.get("uid") == owner.get("uid"):
                out.extend(self.pods.by_index(cu.OWNER_INDEX, str(cu.meta(s).get("uid", ""))))
        return out

    async def _delete_pods(self, key: str, rs: Obj, pods: list[Obj], count: int) -> Exception | None:
        if count < len(pods):
            ranks = cu.ranks_by_colocation(pods, self._related_pods(rs))
            victims = cu.sort_pods_for_deletion(pods, ranks, limit=count)
        else:
            victims = list(pods)
        self.expectations.expect_deletions(key, [cu.key_of(p) for p in victims])
        results = await asyncio.gather(*(self._delete_one(key, rs, p) for p in victims))
        return next((e for e in results if e is not None), None)

    async def _delete_one(self, key: str, rs: Obj, pod: Obj) -> Exception | None:
        name = str(cu.meta(pod)["name"])
        ns = str(cu.meta(pod).get("namespace", ""))
        try:
            await self.client.delete(PODS, ns, name, preconditions={"uid": cu.meta(pod).get("uid")})
        except errors.NotFound:
            self.expectations.deletion_observed(key, cu.key_of(pod))
            return None
        except Exception as e:
            self.expectations.deletion_observed(key, cu.key_of(pod))
            self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {e}")
            return e
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    async def _update_status(self, rs: Obj, status: Obj) -> bool:
        """``updateReplicaSetStatus``: write only when something changed, retry once on
        conflict.  True when a write was sent."""
        current = rs
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            if _status_equal(current.get("status") or {}, status) and int(
                (current.get("status") or {}).get("observedGeneration") or 0
            ) == int(cu.meta(current).get("generation") or 0):
                return attempt > 0
            body = {**current, "status": {**status, "observedGeneration": cu.meta(current).get("generation")}}
            body = cu.with_kind(body, self.kind.api_version, self.kind.kind)
            try:
                await self.client.update(
                    self.kind.resource, str(cu.meta(rs).get("namespace", "")), body, subresource="status"
                )
                return True
            except errors.NotFound:
                return True
            except errors.Conflict:
                if attempt == STATUS_UPDATE_RETRIES:
                    raise
                current = await self.client.get(
                    self.kind.resource, str(cu.meta(rs).get("namespace", "")), str(cu.meta(rs)["name"])
                )
        return True


def _status_equal(a: Obj, b: Obj) -> bool:
    return _prune_zero(dict(a)) == _prune_zero(dict(b))


def _namespace_terminating(e: Exception) -> bool:
    return isinstance(e, errors.Forbidden) and "being terminated" in str(e)


def _build(ctx: Any, kind: Kind) -> ReplicaSetController:
    return ReplicaSetController(
        ctx.client,
        kind,
        ctx.informers.get(kind.resource),
        ctx.informers.get(PODS),
        ctx.recorder(kind.component),
        workers=int(ctx.option("replicaset_workers", 5)),
    )


def new(ctx: Any) -> ReplicaSetController:
    """The ReplicaSet controller (``replicaset`` in the controller table)."""
    return _build(ctx, REPLICASET)


def new_rc(ctx: Any) -> ReplicaSetController:
    """The ReplicationController controller (``replicationcontroller``)."""
    return _build(ctx, REPLICATIONCONTROLLER)
