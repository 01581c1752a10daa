"""One StatefulSet sync: bring the pods of a set to its spec, one decision at a time.

Mirrors ``updateStatefulSet`` of ``pkg/controller/statefulset/stateful_set_control.go``:

* pods are split into *replicas* (ordinal in ``[start, start+replicas)``) and *condemned*;
  missing replicas are built at the current revision below the partition and at the
  update revision otherwise;
* ``OrderedReady`` (monotonic): replicas are processed in ordinal order and the sync stops
  at the first one that is being created, terminating, or not Running+Ready+Available;
  condemned pods are deleted from the highest ordinal, one at a time, each only once all
  replicas are healthy; ``Parallel``: everything at once;
* failed or succeeded replicas are deleted so they are recreated;
* ``RollingUpdate``: pods at ordinals >= ``partition`` that are not at the update revision
  are deleted from the highest ordinal while fewer than ``maxUnavailable`` are
  unavailable (the missing pods are then recreated at the update revision) -- this is
  Kubernetes' behaviour with the ``MaxUnavailableStatefulSet`` feature gate on (alpha in
  1.32, off by default there, where the limit is always 1);
  ``OnDelete``: nothing is deleted for updates;
* the status counts replicas/ready/available/current/updated pods.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubelite.api.podhealth import is_terminating
from kubelite.controllers import statefulset_pods as sp
from kubelite.controllers.history import apply_revision

Obj = dict[str, Any]
MAX_BATCH = 500


class PodControl(Protocol):
    """The side effects of a sync (the controller implements them against the API)."""

    async def create_pod(self, sts: Obj, pod: Obj) -> None: ...

    async def delete_pod(self, sts: Obj, pod: Obj) -> None: ...

    async def fix_identity(self, sts: Obj, pod: Obj) -> None: ...

    async def create_missing_claims(self, sts: Obj, pod: Obj) -> None: ...

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool: ...

    async def update_claims_policy(self, sts: Obj, pod: Obj) -> None: ...


@dataclass
class Revisions:
    current: Obj
    update: Obj
    collision_count: int = 0

    @property
    def current_name(self) -> str:
        return str(self.current["metadata"]["name"])

    @property
    def update_name(self) -> str:
        return str(self.update["metadata"]["name"])


@dataclass
class SyncResult:
    status: Obj
    requeue_after: float | None = None
    notes: list[str] = field(default_factory=list)


def max_unavailable(sts: Obj, replica_count: int) -> int:
    """``getStatefulSetMaxUnavailable``: int or percent (rounded down), at least 1."""
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = ru.get("maxUnavailable")
    if value is None:
        return 1
    if isinstance(value, str) and value.endswith("%"):
        n = math.floor(int(value[:-1]) * replica_count / 100)
    else:
        n = int(value)
    return max(1, n)


def partition(sts: Obj) -> int:
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(ru.get("partition") or 0)


def strategy_type(sts: Obj) -> str:
    return str(((sts.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def monotonic(sts: Obj) -> bool:
    return (sts.get("spec") or {}).get("podManagementPolicy") != "Parallel"


def min_ready(sts: Obj) -> int:
    return int((sts.get("spec") or {}).get("minReadySeconds") or 0)


def compute_status(sts: Obj, revs: Revisions, pods: list[Obj], now: float, base: Obj | None = None) -> Obj:
    """``updateStatus``: counts over ``pods`` (only pods the API server has)."""
    status: Obj = dict(base or {})
    counts = dict.fromkeys(
        ("replicas", "readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"), 0
    )
    mrs = min_ready(sts)
    for pod in pods:
        created = sp.is_created(pod)
        counts["replicas"] += created
        if sp.is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            counts["availableReplicas"] += sp.is_running_and_available(pod, mrs, now)
        if created and not is_terminating(pod):
            rev = sp.pod_revision(pod)
            counts["currentReplicas"] += rev == revs.current_name
            counts["updatedReplicas"] += rev == revs.update_name
    status.update(counts)
    return status


async def _run_all(items: list[Obj], fn: Callable[[int], Awaitable[bool]], is_monotonic: bool) -> bool:
    """``runForAll``: in order, stopping at the first blocker (monotonic), or in slow-start
    batches of 1, 2, 4, ... (burst).  True when the sync must stop here."""
    if is_monotonic:
        for i in range(len(items)):
            if await fn(i):
                return True
        return False
    i, batch = 0, 1
    while i < len(items):
        chunk = range(i, min(len(items), i + batch))
        await asyncio.gather(*(fn(k) for k in chunk))
        i += len(chunk)
        batch = min(batch * 2, MAX_BATCH)
    return False


class StatefulSetSync:
    """The decisions of one sync over a consistent snapshot of the set's pods."""

    def __init__(self, sts: Obj, revs: Revisions, pods: list[Obj], control: PodControl, now: float) -> None:
        self.sts = sts
        self.revs = revs
        self.control = control
        self.now = now
        self.current_set = apply_revision(sts, revs.current)
        self.update_set = apply_revision(sts, revs.update)
        self.mrs = min_ready(sts)
        self.monotonic = monotonic(sts)
        self.replicas, self.condemned = self._partition(pods)
        self.first_unhealthy = self._first_unhealthy()
        meta = sts.get("metadata") or {}
        self.status: Obj = {
            "observedGeneration": int(meta.get("generation") or 0),
            "currentRevision": revs.current_name,
            "updateRevision": revs.update_name,
            "collisionCount": revs.collision_count,
        }
        self.status = compute_status(sts, revs, pods, now, self.status)

    # ---------------------------------------------------------------- partitioning

    def _partition(self, pods: list[Obj]) -> tuple[list[Obj], list[Obj]]:
        start, count = sp.start_ordinal(self.sts), sp.replicas(self.sts)
        slots: list[Obj | None] = [None] * count
        condemned: list[Obj] = []
        for pod in pods:
            o = sp.ordinal(pod)
            if start <= o < start + count:
                slots[o - start] = pod
            elif o >= 0:
                condemned.append(pod)
        replicas = [p if p is not None else self._new_versioned_pod(start + i) for i, p in enumerate(slots)]
        condemned.sort(key=sp.ordinal, reverse=True)
        return replicas, condemned

    def _new_versioned_pod(self, ord_: int) -> Obj:
        """``newVersionedStatefulSetPod``: below the partition at the current revision."""
        if strategy_type(self.sts) == "RollingUpdate" and ord_ < sp.start_ordinal(self.sts) + partition(
            self.sts
        ):
            return sp.new_pod(self.current_set, ord_, self.revs.current_name)
        return sp.new_pod(self.update_set, ord_, self.revs.update_name)

    def _first_unhealthy(self) -> Obj | None:
        for pod in [*self.replicas, *reversed(self.condemned)]:
            if sp.is_unavailable(pod, self.mrs, self.now):
                return pod
        return None

    # ---------------------------------------------------------------- the algorithm

    async def run(self) -> SyncResult:
        if not (self.sts.get("metadata") or {}).get("deletionTimestamp"):
            await self._converge()
        return SyncResult(self._final_status(), self._requeue_after())

    async def _converge(self) -> None:
        """Scale and repair first; update only once nothing blocks."""
        stopped = (
            await _run_all(self.replicas, self._process_replica, self.monotonic)
            or await _run_all(self.condemned, self._fix_condemned_claims, self.monotonic)
            or await _run_all(self.condemned, self._process_condemned, self.monotonic)
        )
        self._recount()
        if stopped or strategy_type(self.sts) == "OnDelete":
            return
        await self._rolling_update()

    def _recount(self) -> None:
        pods = [*self.replicas, *self.condemned]
        self.status = compute_status(self.sts, self.revs, pods, self.now, self.status)

    async def _process_replica(self, i: int) -> bool:
        pod = self.replicas[i]
        if sp.phase(pod) in ("Failed", "Succeeded"):
            if not is_terminating(pod):
                await self.control.delete_pod(self.sts, pod)
            return True
        if not sp.is_created(pod):
            await self.control.create_pod(self.sts, pod)
            if self.monotonic:
                return True
        if sp.phase(pod) == "Pending" and sp.is_created(pod):
            await self.control.create_missing_claims(self.sts, pod)
        if is_terminating(pod) and self.monotonic:
            return True
        if not sp.is_running_and_ready(pod) and self.monotonic:
            return True
        if not sp.is_running_and_available(pod, self.mrs, self.now) and self.monotonic:
            return True
        if not sp.is_created(pod):
            return False
        if not sp.identity_matches(self.sts, pod):
            await self.control.fix_identity(self.sts, pod)
        if not self.control.claims_match_policy(self.update_set, pod):
            await self.control.update_claims_policy(self.update_set, pod)
        return False

    async def _fix_condemned_claims(self, i: int) -> bool:
        pod = self.condemned[i]
        if not self.control.claims_match_policy(self.update_set, pod):
            await self.control.update_claims_policy(self.update_set, pod)
        return False

    async def _process_condemned(self, i: int) -> bool:
        pod = self.condemned[i]
        if is_terminating(pod):
            return self.monotonic
        healthy = sp.is_running_and_ready(pod) and sp.is_running_and_available(pod, self.mrs, self.now)
        if self.monotonic and not healthy and pod is not self.first_unhealthy:
            return True
        await self.control.delete_pod(self.sts, pod)
        return True

    async def _rolling_update(self) -> None:
        """``updateStatefulSetAfterInvariantEstablished`` (maxUnavailable honoured)."""
        limit = max_unavailable(self.sts, len(self.replicas))
        unavailable = sum(sp.is_unavailable(p, self.mrs, self.now) for p in self.replicas)
        if unavailable > limit:
            return
        budget = limit - unavailable
        update_min = partition(self.sts)
        for target in range(len(self.replicas) - 1, update_min - 1, -1):
            if budget <= 0:
                break
            pod = self.replicas[target]
            if sp.pod_revision(pod) != self.revs.update_name and not is_terminating(pod):
                await self.control.delete_pod(self.sts, pod)
                budget -= 1
                self.status["currentReplicas"] = max(0, int(self.status.get("currentReplicas", 0)) - 1)

    # ---------------------------------------------------------------- status

    def _final_status(self) -> Obj:
        """``completeRollingUpdate``: a finished RollingUpdate makes the update revision current."""
        status = dict(self.status)
        if (
            strategy_type(self.sts) == "RollingUpdate"
            and status.get("updatedReplicas") == status.get("replicas")
            and status.get("readyReplicas") == status.get("replicas")
        ):
            status["currentReplicas"] = status.get("updatedReplicas", 0)
            status["currentRevision"] = status["updateRevision"]
        return status

    def _requeue_after(self) -> float | None:
        """Pods ready but not yet available are re-checked when their minReadySeconds pass."""
        if self.mrs <= 0:
            return None
        waits = []
        for pod in [*self.replicas, *self.condemned]:
            since = sp.ready_since(pod)
            if since is not None and sp.phase(pod) == "Running" and since + self.mrs > self.now:
                waits.append(since + self.mrs - self.now)
        return min(waits) + 0.05 if waits else None
