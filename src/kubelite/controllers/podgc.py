"""Pod garbage collector: terminated pods beyond a threshold, orphans, stuck terminating pods.

Mirrors kube-controller-manager's ``podgc`` controller (every 20 s):

* when more than ``--terminated-pod-gc-threshold`` pods (default 12500) are terminated
  (neither Pending, Running nor Unknown), the excess is deleted — evicted pods first, then
  the oldest;
* terminating pods on a NotReady node tainted ``node.kubernetes.io/out-of-service`` are
  force-deleted;
* pods bound to a node that no longer exists (still absent after a 40 s quarantine and a
  fresh read) are marked Failed with a ``DisruptionTarget`` condition (reason
  ``DeletionByPodGC``) and force-deleted;
* terminating pods that were never scheduled are force-deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from kubelite.api import errors
from kubelite.api.humanize import parse_time
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer

log = logging.getLogger("kubelite.podgc")
Obj = dict[str, Any]

PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
GC_PERIOD = 20.0
QUARANTINE = 40.0
STRATEGIC = "application/strategic-merge-patch+json"


def _meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Pending", "Running", "Unknown", None, "")


def _node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def eviction_then_age(pod: Obj) -> tuple[int, float, str]:
    """``byEvictionAndCreationTimestamp``: evicted pods first, then the oldest, then by name."""
    status = pod.get("status") or {}
    evicted = status.get("phase") == "Failed" and status.get("reason") == "Evicted"
    created = parse_time(_meta(pod).get("creationTimestamp"))
    return (0 if evicted else 1, created.timestamp() if created else 0.0, str(_meta(pod).get("name", "")))


class PodGC:
    def __init__(
        self,
        client: Client,
        pods: Informer,
        nodes: Informer,
        *,
        threshold: int = 12500,
        period: float = GC_PERIOD,
        quarantine: float = QUARANTINE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.pods = pods
        self.nodes = nodes
        self.threshold = threshold
        self.period = period
        self.quarantine = quarantine
        self.monotonic = monotonic
        self.missing_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="pod-garbage-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.gc()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod garbage collection failed")
            await asyncio.sleep(self.period)

    async def gc(self) -> None:
        pods = self.pods.list()
        if self.threshold > 0:
            await self.gc_terminated(pods)
        await self.gc_out_of_service(pods)
        await self.gc_orphaned(pods)
        await self.gc_unscheduled_terminating(pods)

    async def gc_terminated(self, pods: list[Obj]) -> None:
        terminated = [p for p in pods if is_terminated(p) and not _meta(p).get("deletionTimestamp")]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        terminated.sort(key=eviction_then_age)
        log.info("garbage collecting terminated pods count=%d threshold=%d", excess, self.threshold)
        await asyncio.gather(*(self.fail_and_delete(p) for p in terminated[:excess]))

    async def gc_out_of_service(self, pods: list[Obj]) -> None:
        victims = []
        for pod in pods:
            if not _meta(pod).get("deletionTimestamp"):
                continue
            node = self.nodes.get(str((pod.get("spec") or {}).get("nodeName") or ""))
            if node is None or _node_ready(node):
                continue
            if any(t.get("key") == OUT_OF_SERVICE for t in (node.get("spec") or {}).get("taints") or []):
                victims.append(pod)
        victims.sort(key=eviction_then_age)
        for pod in victims:
            await self.fail_and_delete(pod)

    async def gc_orphaned(self, pods: list[Obj]) -> None:
        existing = {str(_meta(n).get("name")) for n in self.nodes.list()}
        now = self.monotonic()
        for name in list(self.missing_since):
            if name in existing:
                self.missing_since.pop(name)
        for pod in pods:
            node = str((pod.get("spec") or {}).get("nodeName") or "")
            if node and node not in existing:
                self.missing_since.setdefault(node, now)
        deleted = set()
        for name, since in list(self.missing_since.items()):
            if now - since < self.quarantine:
                continue
            try:
                await self.client.get(NODES, "", name)
            except errors.NotFound:
                deleted.add(name)
                self.missing_since.pop(name, None)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in deleted:
                cond = {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists",
                }
                await self.fail_and_delete(pod, cond)

    async def gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            if _meta(pod).get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName"):
                await self.fail_and_delete(pod)

    async def fail_and_delete(self, pod: Obj, condition: Obj | None = None) -> None:
        """``markFailedAndDeletePodWithCondition``: non-terminal pods become Failed, then force-delete."""
        ns, name = _meta(pod).get("namespace", ""), _meta(pod).get("name", "")
        try:
            if not is_terminated(pod):
                status: Obj = {"phase": "Failed"}
                if condition is not None:
                    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    status["conditions"] = [{**condition, "lastTransitionTime": now}]
                await self.client.patch(
                    PODS, ns, name, {"status": status}, patch_type=STRATEGIC, subresource="status"
                )
            await self.client.delete(PODS, ns, name, grace_period_seconds=0)
        except errors.NotFound:
            return
        except errors.APIError as e:
            log.warning("pod gc delete failed pod=%s/%s error=%s", ns, name, e)


def new(ctx: Any) -> PodGC:
    return PodGC(
        ctx.client,
        ctx.informers.get(PODS),
        ctx.informers.get(NODES),
        threshold=int(ctx.option("terminated_pod_gc_threshold", 12500)),
        period=float(ctx.option("podgc_period", GC_PERIOD)),
        quarantine=float(ctx.option("podgc_quarantine", QUARANTINE)),
    )
