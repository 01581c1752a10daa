"""Pod lifecycles on simulated nodes, from ONE watch on all pods (like kwok).

A field selector cannot name thousands of nodes, so the simulator watches every *bound*
pod (``spec.nodeName!=``, as kwok does: pods waiting for the scheduler never reach it)
and keeps those whose ``spec.nodeName`` is one of its running nodes.  A small pool of
workers (a level-triggered work queue keyed by pod) then plays kubelet's part:

* a bound pod becomes Running and Ready ``pod_start_delay`` seconds after the simulator
  first saw it bound (:mod:`kubelite.simulator.podstatus` builds the status);
* a pod that finishes -- a Job's pod (ownerReference kind Job or label
  ``batch.kubernetes.io/job-name``), or any pod annotated ``kubelite.io/simulate-duration``
  -- runs for ``job_duration`` (or the annotation) and then Succeeds, or Fails when
  annotated ``kubelite.io/simulate-exit-code`` non-zero (with restartPolicy OnFailure the
  containers restart instead, counting restartCount up); pods with restartPolicy Always
  never finish;
* a pod being deleted gracefully (``deletionTimestamp`` set) is deleted for good with
  grace period 0 and a uid precondition, as kubelet does once its containers stopped.

Pods on a stopped node are left alone, as with a dead kubelet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller
from kubelite.simulator.config import DURATION_ANNOTATION, EXIT_CODE_ANNOTATION, SimConfig, parse_duration
from kubelite.simulator.ipam import PodIPs
from kubelite.simulator.nodeobj import Obj, node_ip, now_rfc3339
from kubelite.simulator.nodes import NodeManager
from kubelite.simulator.podstatus import finished_status, refresh_ready, restarted_status, running_status

log = logging.getLogger("kubelite.simulator.pods")

PODS = Resource("", "v1", "pods")
BOUND = "spec.nodeName!="  # field selector: only pods the scheduler placed
MERGE_PATCH = "application/merge-patch+json"
NODE_INDEX = "simulator/node"  # pods by spec.nodeName (a name no other indexer uses)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"


def node_name_index(pod: Obj) -> list[str]:
    name = (pod.get("spec") or {}).get("nodeName")
    return [name] if name else []


def is_job_pod(pod: Obj) -> bool:
    meta = pod.get("metadata") or {}
    if any(r.get("kind") == "Job" for r in meta.get("ownerReferences") or []):
        return True
    labels = meta.get("labels") or {}
    return JOB_NAME_LABEL in labels or LEGACY_JOB_NAME_LABEL in labels


def run_duration(pod: Obj, default: float) -> float | None:
    """Seconds the pod's containers run before exiting; None: until deleted."""
    spec = pod.get("spec") or {}
    if spec.get("restartPolicy", "Always") == "Always":
        return None
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    text = ann.get(DURATION_ANNOTATION)
    if text is not None:
        try:
            return parse_duration(str(text))
        except ValueError:
            log.warning("bad %s annotation value=%r; using the default", DURATION_ANNOTATION, text)
            return default
    return default if is_job_pod(pod) else None


def exit_code(pod: Obj) -> int:
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return int(ann.get(EXIT_CODE_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 1


def is_started(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    statuses = status.get("containerStatuses") or []
    return bool(statuses) and all(cs.get("started") for cs in statuses)


def _started_at(pod: Obj) -> float | None:
    """Wall-clock seconds since the pod's first container started (after a restart)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        ts = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
        if ts:
            t = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
            return (dt.datetime.now(dt.UTC) - t).total_seconds()
    return None


class PodLifecycle:
    """Plays kubelet's pod lifecycle for every pod bound to a running simulated node.

    ``informer``: a pods informer shared with other components of the process (inside
    ``kubelite up``: the controller manager's), started and stopped by its owner; without
    one the simulator runs its own watch of bound pods.  Every in-process watch costs the
    API server a delivery per pod event, so sharing saves CPU on every pod write.
    """

    def __init__(
        self, client: Client, cfg: SimConfig, nodes: NodeManager, informer: Informer | None = None
    ) -> None:
        self.client = client
        self.cfg = cfg
        self.nodes = nodes
        self._own_informer = informer is None
        self.informer = informer or Informer(client, PODS, field_selector=BOUND)
        if NODE_INDEX not in self.informer.indexers:
            self.informer.add_indexer(NODE_INDEX, node_name_index)
        self.ctrl = Controller("simulator-pods", self.reconcile, workers=cfg.workers)
        self.ips = PodIPs()
        self._seen: dict[str, float] = {}  # key -> monotonic time first seen bound to us
        self._started: dict[str, float] = {}  # key -> monotonic time we started it
        self._uids: dict[str, str] = {}  # key -> uid the state above belongs to
        self._deleting: set[str] = set()  # "key/uid" already deleted with grace 0
        self.status_writes = 0  # pods/status patches sent, and how many of them conflicted
        self.conflicts = 0
        nodes.add_listener(self._on_node)
        # last: a shared informer replays its cache to the handler at once
        self.informer.add_handler(self._on_pod)

    async def start(self) -> None:
        self.ctrl.start()
        if self._own_informer:
            self.informer.start()
        await self.informer.wait_synced(60)

    async def stop(self) -> None:
        if self._own_informer:
            await self.informer.stop()
        await self.ctrl.stop()

    def pods_on(self, node: str) -> list[Obj]:
        return self.informer.by_index(NODE_INDEX, node)

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self._deleting.discard(f"{key}/{(old.get('metadata') or {}).get('uid')}")
            if key in self._seen or key in self._started:
                self.ctrl.queue.add(key)
            return
        node = (new.get("spec") or {}).get("nodeName")
        if node and self.nodes.is_ours(node):
            self.ctrl.queue.add(key)

    def _on_node(self, node: str) -> None:
        for pod in self.pods_on(node):
            meta = pod["metadata"]
            self.ctrl.queue.add(f"{meta.get('namespace')}/{meta.get('name')}")

    def _forget(self, key: str) -> None:
        self._uids.pop(key, None)
        self._seen.pop(key, None)
        self._started.pop(key, None)
        self.ips.release(key)

    async def reconcile(self, key: str) -> float | None:
        pod = self.informer.get(key)
        node = ((pod or {}).get("spec") or {}).get("nodeName") or ""
        if pod is None or not self.nodes.is_ours(node):
            self._forget(key)
            return None
        if not self.nodes.is_running(node):
            return None
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if self._uids.get(key) != uid:  # a new pod under a reused name (StatefulSets)
            self._forget(key)
            self._uids[key] = uid
        if meta.get("deletionTimestamp"):
            await self._delete(key, pod)
            return None
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            self._forget(key)
            return None
        if not is_started(pod):
            return await self._start(key, pod, node)
        return await self._maybe_finish(key, pod, node)

    async def _start(self, key: str, pod: Obj, node: str) -> float | None:
        loop = asyncio.get_running_loop()
        seen = self._seen.setdefault(key, loop.time())
        wait = self.cfg.pod_start_delay - (loop.time() - seen)
        if wait > 0:
            return wait
        status = running_status(pod, node_ip(self.nodes.index[node]), self._ip(key, pod, node), now_rfc3339())
        if not await self._write(pod, status):
            return None
        self._started[key] = loop.time()
        return run_duration(pod, self.cfg.job_duration)

    async def _maybe_finish(self, key: str, pod: Obj, node: str) -> float | None:
        duration = run_duration(pod, self.cfg.job_duration)
        ip = str((pod.get("status") or {}).get("podIP") or "")
        if ip:
            self.ips.adopt(key, self.nodes.index[node], ip)
        # Re-evaluate Ready on every pass, as kubelet's status manager does: readiness gates, and
        # a Ready=False written by the node-lifecycle controller while this node's heartbeats were
        # late (MarkPodsNotReady) is set back once the node runs again.
        status = refresh_ready(pod, now_rfc3339())
        if status is not None:
            await self._write(pod, status)
            return None  # the watch brings the update back
        if duration is None:
            return None
        loop = asyncio.get_running_loop()
        started = self._started.get(key)
        elapsed = loop.time() - started if started is not None else (_started_at(pod) or 0.0)
        if elapsed < duration:
            return duration - elapsed
        code = exit_code(pod)
        if code != 0 and (pod.get("spec") or {}).get("restartPolicy") == "OnFailure":
            if await self._write(pod, restarted_status(pod, now_rfc3339(), code)):
                self._started[key] = loop.time()
                return duration
            return None
        status = finished_status(pod, node_ip(self.nodes.index[node]), ip, now_rfc3339(), code)
        if await self._write(pod, status):
            self._forget(key)
        return None

    def _ip(self, key: str, pod: Obj, node: str) -> str:
        spec = pod.get("spec") or {}
        if spec.get("hostNetwork"):
            return node_ip(self.nodes.index[node])
        return self.ips.allocate(key, self.nodes.index[node])

    async def _write(self, pod: Obj, status: Obj) -> bool:
        """Write pods/status (a merge patch of the whole status, guarded by the cached
        resourceVersion: cheaper for the server than a PUT of the pod); False on a
        conflict/NotFound (the watch brings the newer pod and the key is reconciled again).
        The answer is not decoded: the watch brings the written pod back."""
        meta = pod["metadata"]
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status}
        path = PODS.path(meta.get("namespace", ""), meta["name"], "status")
        self.status_writes += 1
        try:
            await self.client.send("PATCH", path, body, MERGE_PATCH)
        except errors.Conflict:
            self.conflicts += 1
            return False
        except errors.NotFound:
            return False
        return True

    async def _delete(self, key: str, pod: Obj) -> None:
        meta = pod["metadata"]
        mark = f"{key}/{meta.get('uid')}"
        if mark in self._deleting and meta.get("deletionGracePeriodSeconds") == 0:
            return  # already asked; waiting on finalizers
        self._deleting.add(mark)
        try:
            await self.client.delete(
                PODS,
                meta.get("namespace", ""),
                meta["name"],
                grace_period_seconds=0,
                preconditions={"uid": meta.get("uid")},
            )
        except (errors.NotFound, errors.Conflict):
            pass
        finally:
            self._forget(key)
