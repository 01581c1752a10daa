"""The scheduler: informers in, bindings out.

One loop pops the highest-priority pending pod, runs a synchronous scheduling cycle
against the cache (no other coroutine runs meanwhile, so the cache is a consistent
snapshot), assumes the pod onto the chosen node and hands the binding to a background
task; the loop then yields once so watch events and bindings make progress.  A pod no
node fits gets kube-scheduler's FailedScheduling event and ``PodScheduled=False``
condition (reason ``Unschedulable``), possibly after preempting lower-priority pods, and
is parked in the queue until a cluster event may help it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.factory import SharedInformers
from kubelite.machinery.informer import Informer
from kubelite.scheduler import framework as fw
from kubelite.scheduler.binder import PODS, Binder
from kubelite.scheduler.cache import Cache
from kubelite.scheduler.eventsink import EventSink
from kubelite.scheduler.handlers import Handlers
from kubelite.scheduler.plugins import PluginSet, default_plugins
from kubelite.scheduler.plugins.volumebinding import delayed_claims
from kubelite.scheduler.podinfo import DEFAULT_SCHEDULER, PodInfo
from kubelite.scheduler.preemption import Candidate, Preemptor
from kubelite.scheduler.priorities import Priorities
from kubelite.scheduler.queue import QueuedPod, SchedulingQueue
from kubelite.scheduler.schedule_one import Algorithm, FitError, NoNodesAvailable

log = logging.getLogger("kubelite.scheduler")
Obj = dict[str, Any]

NODES = Resource("", "v1", "nodes", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims")
STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
PRIORITY_CLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", namespaced=False)
UNSCHEDULABLE_FLUSH = 30.0


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InformerListers:
    """:class:`framework.Listers` over informer caches."""

    def __init__(self, informers: SharedInformers) -> None:
        self.namespaces = informers.get(NAMESPACES)
        self.pvs = informers.get(PVS)
        self.pvcs = informers.get(PVCS)
        self.classes = informers.get(STORAGE_CLASSES)

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        ns = self.namespaces.get(namespace)
        return dict((ns.get("metadata") or {}).get("labels") or {}) if ns else None

    def pvc(self, namespace: str, name: str) -> Obj | None:
        return self.pvcs.get(f"{namespace}/{name}")

    def pv(self, name: str) -> Obj | None:
        return self.pvs.get(name)

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name) if name else None


class Scheduler:
    def __init__(
        self,
        client: Client,
        name: str = DEFAULT_SCHEDULER,
        percentage_of_nodes_to_score: int = 0,
        bind_in_flight: int = 128,
        seed: int | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.informers = SharedInformers.of(client)
        self.listers = InformerListers(self.informers)
        self.pods: Informer = self.informers.get(PODS)
        self.nodes: Informer = self.informers.get(NODES)
        self.priorities = Priorities(self.informers.get(PRIORITY_CLASSES))
        self.cache = Cache()
        self.queue = SchedulingQueue()
        self.plugins: PluginSet = default_plugins(self.listers)
        rng = random.Random(seed)
        self.algorithm = Algorithm(self.cache.snapshot, self.plugins, percentage_of_nodes_to_score, rng)
        self.preemptor = Preemptor(self.algorithm, rng)
        self.binder = Binder(client, bind_in_flight)
        self.events = EventSink(EventRecorder(client, name))
        self._interest = self._event_map()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self.scheduled = 0
        h = Handlers(self)
        self.nodes.add_handler(h.on_node)
        self.pods.add_handler(h.on_pod)
        self.listers.pvs.add_handler(h.on_change(fw.PV_CHANGE))
        self.listers.pvcs.add_handler(h.on_change(fw.PVC_CHANGE))
        self.listers.classes.add_handler(h.on_change(fw.STORAGE_CLASS_CHANGE))
        self.listers.namespaces.add_handler(h.on_change(fw.NAMESPACE_CHANGE))

    def _event_map(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        seen = {id(p): p for p in [*self.plugins.pre_filter, *self.plugins.filter]}
        for pl in seen.values():
            for ev in pl.events():
                out.setdefault(ev, set()).add(pl.name)
        return out

    def interested(self, event: str) -> set[str]:
        return self._interest.get(event, set())

    def event(self, event: str) -> None:
        """A cluster event: retry the parked pods it may help."""
        self.queue.on_event(event, self.interested)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.informers.start()
        self._loop_task = asyncio.create_task(self._run(), name="scheduler-loop")
        self._flush_task = asyncio.create_task(self._flush(), name="scheduler-flush")

    async def stop(self) -> None:
        self.queue.close()
        for t in (self._loop_task, self._flush_task, *self._tasks):
            if t is not None:
                t.cancel()
        for t in (self._loop_task, self._flush_task, *list(self._tasks)):
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        await self.events.flush()
        await self.informers.stop()

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(UNSCHEDULABLE_FLUSH)
            self.queue.flush_unschedulable()

    async def _run(self) -> None:
        while True:
            qp = await self.queue.pop()
            if qp is None:
                return
            try:
                self.schedule_one(qp)
            except Exception:
                log.exception("scheduling cycle failed pod=%s", qp.key)
                self.queue.requeue_failed(qp, (), error=True)
            await asyncio.sleep(0)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ one cycle

    def schedule_one(self, qp: QueuedPod) -> None:
        pod = qp.pod
        if pod.terminating or self.pods.get(pod.key) is None:
            self.queue.delete(pod.key)
            return
        try:
            result = self.algorithm.schedule(pod)
        except FitError as err:
            self._unschedulable(qp, err)
            return
        except NoNodesAvailable as err:
            self._fail(qp, str(err), set(), "")
            return
        assumed = self.cache.assume(pod, result.node)
        self.queue.done(pod.key)
        self.cache.snapshot.clear_nomination(pod.key)
        self._spawn(self._bind(qp, assumed, delayed_claims(result.state)))

    def _unschedulable(self, qp: QueuedPod, err: FitError) -> None:
        pod = qp.pod
        outcome = self.preemptor.preempt(pod, err.state, err)
        nominated = ""
        if outcome.candidate is not None:
            nominated = outcome.candidate.node
            self.cache.snapshot.nominate(pod, nominated)
            self._spawn(self._evict(pod, outcome.candidate))
        else:
            err.diagnosis.post_filter_msg = outcome.message
        self._fail(qp, err.message(), err.diagnosis.rejected_by, nominated)

    def _fail(self, qp: QueuedPod, message: str, rejected_by: set[str], nominated: str) -> None:
        self.queue.requeue_failed(qp, rejected_by)
        self._record(qp.pod.obj, "Warning", "FailedScheduling", message)
        self._spawn(self._update_status(qp.pod, message, nominated))

    # ------------------------------------------------------------------ API side effects

    def _record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.event(obj, type_, reason, message)

    async def _bind(self, qp: QueuedPod, assumed: PodInfo, claims: list[str]) -> None:
        node = assumed.node_name
        try:
            await self.binder.bind(assumed, node, claims)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._binding_failed(qp, node, e)
            return
        self.scheduled += 1
        self._record(assumed.obj, "Normal", "Scheduled", f"Successfully assigned {assumed.key} to {node}")

    def _binding_failed(self, qp: QueuedPod, node: str, e: Exception) -> None:
        key = qp.key
        log.info("binding failed pod=%s node=%s error=%s", key, node, e)
        if self.cache.is_assumed(key):
            self.cache.forget(key)
            self.event(fw.ASSIGNED_POD_DELETE)
        current = self.pods.get(key)
        if current is None or (current.get("spec") or {}).get("nodeName"):
            return  # deleted, or bound after all
        self.queue.pods[key] = qp
        self.queue.requeue_failed(qp, (), error=True)
        self._record(qp.pod.obj, "Warning", "FailedScheduling", f"Binding rejected: {e}")

    async def _update_status(self, pod: PodInfo, message: str, nominated: str) -> None:
        """Set ``PodScheduled=False/Unschedulable`` (and ``nominatedNodeName``) unless already so."""
        current = self.pods.get(pod.key) or pod.obj
        status = current.get("status") or {}
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        same = (
            cond is not None
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
            and cond.get("message") == message
        )
        if same and (not nominated or status.get("nominatedNodeName") == nominated):
            return
        since = cond.get("lastTransitionTime") if cond and cond.get("status") == "False" else _now()
        patch: Obj = {
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": since,
                    }
                ]
            }
        }
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        await self._patch_status(pod, patch)

    async def _patch_status(self, pod: PodInfo, patch: Obj) -> None:
        try:
            await self.client.patch(
                PODS,
                pod.namespace,
                pod.name,
                patch,
                patch_type="application/strategic-merge-patch+json",
                subresource="status",
            )
        except errors.NotFound:
            return
        except errors.APIError as e:
            log.warning("pod status not updated pod=%s error=%s", pod.key, e)

    async def _evict(self, preemptor: PodInfo, candidate: Candidate) -> None:
        """``prepareCandidate``: delete the victims, clear lower nominations on the node."""
        node = candidate.node
        for victim in candidate.victims:
            if victim.terminating:
                continue
            cond = {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": f"{self.name}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": _now(),
            }
            await self._patch_status(victim, {"status": {"conditions": [cond]}})
            try:
                await self.client.delete(PODS, victim.namespace, victim.name)
            except errors.NotFound:
                continue
            except errors.APIError as e:
                log.warning("victim not deleted pod=%s error=%s", victim.key, e)
                continue
            self._record(
                victim.obj, "Normal", "Preempted", f"Preempted by pod {preemptor.uid} on node {node}"
            )
        for other in self.cache.snapshot.nominated_to(node):
            if other.priority < preemptor.priority and other.key != preemptor.key:
                self.cache.snapshot.clear_nomination(other.key)
                await self._patch_status(other, {"status": {"nominatedNodeName": None}})
