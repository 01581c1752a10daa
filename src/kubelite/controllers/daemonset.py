"""DaemonSet controller: one pod per eligible node, rolled out revision by revision.

Mirrors kube-controller-manager's ``pkg/controller/daemon``: claims the set's pods and
ControllerRevisions, finds or snapshots the revision of the current template (its hash
is the pods' ``controller-revision-hash``), then ``manage`` (create pods on nodes that
should run one, pinned with the ``metadata.name`` node affinity so the scheduler binds
them; delete pods where they should not run), then ``rollingUpdate`` when nothing else
was to do, prunes history beyond ``revisionHistoryLimit``, and writes the status.
Events: ``SuccessfulCreate`` (``Created pod: <name>``), ``SuccessfulDelete``
(``Deleted pod: <name>``), ``FailedCreate``, ``FailedDaemonPod``, ``SelectingAll``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import is_terminating, selector_of
from kubelite.client.base import Client, Resource
from kubelite.controllers import daemonset_plan as dp
from kubelite.controllers.daemonset_nodes import (
    EligibilityCache,
    add_default_tolerations,
    pin_to_node,
    target_node,
)
from kubelite.controllers.history import (
    REVISION_HASH_LABEL,
    controller_ref_to,
    new_revision,
    revision_number,
    sort_revisions,
    template_patch,
)
from kubelite.controllers.setutil import (
    OWNER_INDEX,
    InformerSource,
    add_indexes,
    claim_children,
    present,
    wait_for,
    watch_children,
)
from kubelite.machinery.controller_utils import compute_hash, with_kind
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import object_key
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.daemonset")
Obj = dict[str, Any]

DAEMONSETS = Resource("apps", "v1", "daemonsets")
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
REVISIONS = Resource("apps", "v1", "controllerrevisions")
BURST = 250
EXPECTATIONS_TIMEOUT = 60.0
EXPECTATIONS_RECHECK = 5.0
# A sync whose CPU passes (nodes and pods, not the API calls) took T >= SPACING_MIN_COST
# seconds is followed by the next sync of the same set no sooner than SPACING_FACTOR * T
# (at most SPACING_MAX) seconds later, as the ReplicaSet controller does.
SPACING_FACTOR = 3.0
SPACING_MIN_COST = 0.002
SPACING_MAX = 1.0
STATUS_FIELDS = (
    "observedGeneration",
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberMisscheduled",
    "numberReady",
    "numberAvailable",
    "numberUnavailable",
    "updatedNumberScheduled",
)


def _scheduling_view(node: Obj | None) -> Any:
    """What eligibility depends on: existence, labels and taints."""
    if node is None:
        return None
    return ((node.get("metadata") or {}).get("labels"), (node.get("spec") or {}).get("taints"))


def new_daemon_pod(ds: Obj, node_name: str, hash_: str) -> Obj:
    """``CreatePodTemplate`` + ``GetPodFromTemplate``: labels with the revision hash (and the
    template generation when known), default tolerations, pinned to ``node_name``."""
    template = (ds.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_HASH_LABEL] = hash_
    generation = dp.template_generation(ds)
    if generation is not None:
        labels[dp.TEMPLATE_GENERATION_LABEL] = generation
    meta = ds["metadata"]
    pod_meta: Obj = {
        "generateName": f"{meta['name']}-",
        "namespace": meta["namespace"],
        "labels": labels,
        "ownerReferences": [controller_ref_to(ds, "DaemonSet")],
    }
    for key in ("annotations", "finalizers"):
        if tmeta.get(key):
            pod_meta[key] = tmeta[key]
    spec = copy.deepcopy(template.get("spec") or {})
    add_default_tolerations(spec)
    pin_to_node(spec, node_name)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


class DaemonSetController:
    def __init__(self, client: Client, informers: InformerSource, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder
        self.sets = informers.get(DAEMONSETS)
        self.pods = informers.get(PODS)
        self.nodes = informers.get(NODES)
        self.revisions = informers.get(REVISIONS)
        add_indexes(self.sets, self.pods, self.revisions)
        self.ctrl = Controller("daemonset", self.reconcile, workers=2)
        self.sets.add_handler(lambda key, old, new: self.ctrl.queue.add(key))
        on_child = watch_children(self.sets, "DaemonSet", self.ctrl.queue.add)
        self.pods.add_handler(on_child)
        self.pods.add_handler(self._observe)
        self.revisions.add_handler(on_child)
        self.nodes.add_handler(self._on_node)
        # ControllerExpectations, per DaemonSet: pod key -> ("add" | "delete", since); and
        # pod key -> DaemonSet key, so a pod event finds its entry in O(1)
        self._expected: dict[str, dict[str, tuple[str, float]]] = {}
        self._expected_by_pod: dict[str, str] = {}
        self._eligibility: dict[str, EligibilityCache] = {}

    async def start(self) -> None:
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.recorder.flush()

    # ---------------------------------------------------------------- event handlers

    def _observe(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """A pod we created appeared, or one we deleted is going: lower the expectations
        (``CreationObserved``/``DeletionObserved``); the last one requeues the DaemonSet."""
        ds_key = self._expected_by_pod.get(key)
        if ds_key is None:
            return
        pending = self._expected.get(ds_key, {})
        op = pending[key][0] if key in pending else ""
        if (op == "add" and new is not None) or (op == "delete" and (new is None or is_terminating(new))):
            self._unexpect(key)
            if ds_key not in self._expected:
                self.ctrl.queue.add(ds_key)

    def _expect(self, ds_key: str, op: str, pod_keys: list[str]) -> None:
        now = time.monotonic()
        pending = self._expected.setdefault(ds_key, {})
        for k in pod_keys:
            pending[k] = (op, now)
            self._expected_by_pod[k] = ds_key

    def _unexpect(self, pod_key: str) -> None:
        ds_key = self._expected_by_pod.pop(pod_key, None)
        pending = self._expected.get(ds_key) if ds_key is not None else None
        if ds_key is None or pending is None:
            return
        pending.pop(pod_key, None)
        if not pending:
            del self._expected[ds_key]

    def _satisfied(self, ds_key: str) -> bool:
        """``SatisfiedExpectations``: nothing pending, or what is pending is too old."""
        pending = self._expected.get(ds_key)
        if not pending:
            return True
        now = time.monotonic()
        if all(now - since > EXPECTATIONS_TIMEOUT for _, since in pending.values()):
            for k in list(pending):
                self._unexpect(k)
            return True
        return False

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if _scheduling_view(old) == _scheduling_view(new):
            return
        for ds in self.sets.list():
            self.ctrl.queue.add(object_key(ds))

    # ---------------------------------------------------------------- reconcile

    def _space_syncs(self, key: str, cost: float) -> None:
        """Hold the next sync of ``key`` back by SPACING_FACTOR times this one's CPU cost.

        Every event of a DaemonSet's pods enqueues it, and a sync is a pass over all nodes
        and pods: while thousands of pods are bound one by one, back-to-back passes that
        find nothing to create or delete would starve the rest of the process.  Events
        arriving meanwhile collapse into the one later sync (kube-controller-manager
        coalesces them in its work queue the same way, only with much cheaper passes).
        Cheap syncs are never held back.
        """
        if cost >= SPACING_MIN_COST:
            self.ctrl.queue.not_before(key, min(SPACING_MAX, SPACING_FACTOR * cost))

    async def reconcile(self, key: str) -> float | None:
        ds = self.sets.get(key)
        if ds is None:
            self._eligibility.pop(key, None)
            return None
        ds = with_kind(ds, "apps/v1", "DaemonSet")
        selector = (ds.get("spec") or {}).get("selector")
        if not selector or selector_of(selector).empty:
            msg = "This daemon set is selecting all pods. A non-empty selector is required."
            self.recorder.event(ds, "Warning", "SelectingAll", msg)
            return None
        if ds["metadata"].get("deletionTimestamp"):
            return None
        if not self._satisfied(key):
            return EXPECTATIONS_RECHECK  # observed pods requeue it sooner
        revisions = sort_revisions(
            await claim_children(self.client, DAEMONSETS, ds, "DaemonSet", self.revisions, REVISIONS)
        )
        cur, old = await self._history(ds, revisions)
        hash_ = str(cur["metadata"]["labels"][REVISION_HASH_LABEL])
        started = time.perf_counter()
        nodes = self.nodes.list()
        elig = self._eligibility.setdefault(key, EligibilityCache()).compute(ds, nodes)
        pods = await claim_children(self.client, DAEMONSETS, ds, "DaemonSet", self.pods, PODS)
        node_pods = self._by_node(pods)
        now = time.time()
        plan = dp.manage_plan(ds, nodes, node_pods, hash_, now, elig)
        if plan.empty() and dp.strategy(ds) == "RollingUpdate":
            plan = dp.rolling_update_plan(ds, nodes, node_pods, hash_, now, elig)
        cost = time.perf_counter() - started
        more = await self._execute(key, ds, plan, hash_)
        await self._cleanup_history(ds, old)
        started = time.perf_counter()
        node_pods = self._by_node(self.pods.by_index(OWNER_INDEX, ds["metadata"]["uid"]))
        status = dp.compute_status(ds, nodes, node_pods, hash_, time.time(), elig)
        if plan.empty():  # a sync that creates or deletes is paced by its expectations instead
            self._space_syncs(key, cost + time.perf_counter() - started)
        await self._write_status(ds, status)
        if more:
            return 0.0
        if dp.min_ready(ds) > 0 and status["numberReady"] != status["numberAvailable"]:
            return float(dp.min_ready(ds))
        return None

    def _by_node(self, pods: list[Obj]) -> dict[str, list[Obj]]:
        """``getNodesToDaemonPods``: pods by target node, without deleted terminal pods."""
        out: dict[str, list[Obj]] = {}
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            if is_terminating(pod) and phase in ("Succeeded", "Failed"):
                continue
            node = target_node(pod)
            if node is not None:
                out.setdefault(node, []).append(pod)
        return out

    # ---------------------------------------------------------------- history

    async def _history(self, ds: Obj, revisions: list[Obj]) -> tuple[Obj, list[Obj]]:
        """``constructHistory``: the revision of the current template (created, or the
        matching one renumbered to be the newest) and the old ones."""
        data = template_patch(ds)
        current = [r for r in revisions if (r.get("data") or {}) == data]
        old = [r for r in revisions if (r.get("data") or {}) != data]
        number = max((revision_number(r) for r in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, data, number), old
        cur = current[-1]
        for dup in current[:-1]:
            await self._delete_revision(dup)
        if revision_number(cur) < number:
            meta = cur["metadata"]
            cur = await self.client.patch(REVISIONS, meta["namespace"], meta["name"], {"revision": number})
        if REVISION_HASH_LABEL not in (cur["metadata"].get("labels") or {}):
            meta = cur["metadata"]
            patch = {"metadata": {"labels": {REVISION_HASH_LABEL: meta["name"]}}}
            cur = await self.client.patch(REVISIONS, meta["namespace"], meta["name"], patch)
        return cur, old

    async def _snapshot(self, ds: Obj, data: Obj, number: int) -> Obj:
        meta = ds["metadata"]
        collision = (ds.get("status") or {}).get("collisionCount")
        template = (ds.get("spec") or {}).get("template") or {}
        hash_ = compute_hash(template, None if collision is None else int(collision))
        name = f"{meta['name']}-{hash_}"
        rev = new_revision(ds, "DaemonSet", data, number, name, REVISION_HASH_LABEL, hash_)
        try:
            created: Obj = await self.client.create(REVISIONS, meta["namespace"], rev)
            await wait_for(present(self.revisions, f"{meta['namespace']}/{name}"))
            return created
        except errors.AlreadyExists:
            existing = await self.client.get(REVISIONS, meta["namespace"], name)
            if (existing.get("data") or {}) == data:
                return existing
            body = {"status": {"collisionCount": int(collision or 0) + 1}}
            await self.client.patch(DAEMONSETS, meta["namespace"], meta["name"], body, subresource="status")
            raise errors.Conflict(f"hash collision on ControllerRevision {name}; retrying") from None

    async def _delete_revision(self, rev: Obj) -> None:
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(REVISIONS, rev["metadata"]["namespace"], rev["metadata"]["name"])

    async def _cleanup_history(self, ds: Obj, old: list[Obj]) -> None:
        """``cleanupHistory``: delete old revisions no live pod uses, oldest first."""
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        to_kill = len(old) - (10 if limit is None else int(limit))
        if to_kill <= 0:
            return
        live = {
            (p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)
            for p in self.pods.by_index(OWNER_INDEX, ds["metadata"]["uid"])
        }
        for rev in sort_revisions(old):
            if to_kill <= 0:
                break
            if (rev["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) in live:
                continue
            await self._delete_revision(rev)
            to_kill -= 1

    # ---------------------------------------------------------------- writes

    async def _execute(self, key: str, ds: Obj, plan: dp.Plan, hash_: str) -> bool:
        """``syncNodes``: create (slow start, at most BURST per sync) and delete, expecting
        to see each in the cache before the next sync acts.  True when work was left."""
        for pod, node in plan.failed:
            pm = pod["metadata"]
            msg = (
                f"Found failed daemon pod {pm['namespace']}/{pm['name']} on node {node}, will try to kill it"
            )
            self.recorder.event(ds, "Warning", "FailedDaemonPod", msg)
        doomed = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in plan.delete[:BURST]]
        self._expect(key, "delete", doomed)
        try:
            await self._create_pods(key, ds, plan.create_on[:BURST], hash_)
        finally:
            deleted = await asyncio.gather(*(self._delete_pod(ds, p) for p in plan.delete[:BURST]))
            for k, ok in zip(doomed, deleted, strict=True):
                if not ok:
                    self._unexpect(k)
        return len(plan.create_on) > BURST or len(plan.delete) > BURST

    async def _create_pods(self, key: str, ds: Obj, node_names: list[str], hash_: str) -> list[str]:
        keys: list[str] = []
        failures: list[Exception] = []
        batch, i = 1, 0
        while i < len(node_names) and not failures:
            chunk = node_names[i : i + batch]
            results = await asyncio.gather(
                *(self._create_pod(ds, n, hash_) for n in chunk), return_exceptions=True
            )
            for r in results:
                if isinstance(r, BaseException):
                    failures.append(r if isinstance(r, Exception) else Exception(str(r)))
                else:
                    keys.append(r)
                    if self.pods.get(r) is None:
                        self._expect(key, "add", [r])
            i += len(chunk)
            batch *= 2
        if failures:
            raise failures[0]
        return keys

    async def _create_pod(self, ds: Obj, node_name: str, hash_: str) -> str:
        pod = new_daemon_pod(ds, node_name, hash_)
        ns = ds["metadata"]["namespace"]
        try:
            out = await self.client.create(PODS, ns, pod)
        except errors.APIError as e:
            self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        name = out["metadata"]["name"]
        self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return f"{ns}/{name}"

    async def _delete_pod(self, ds: Obj, pod: Obj) -> str | None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["namespace"], meta["name"])
        except errors.NotFound:
            return None
        except errors.APIError as e:
            self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {e}")
            raise
        self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")
        return f"{meta['namespace']}/{meta['name']}"

    async def _write_status(self, ds: Obj, counts: Obj) -> None:
        status = {**counts, "observedGeneration": int(ds["metadata"].get("generation") or 0)}
        current = ds.get("status") or {}
        if all(current.get(k, 0) == status.get(k) for k in STATUS_FIELDS):
            return
        meta = ds["metadata"]
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(
                DAEMONSETS, meta["namespace"], meta["name"], {"status": status}, subresource="status"
            )


def new(ctx: Any) -> DaemonSetController:
    return DaemonSetController(ctx.client, ctx.informers, ctx.recorder("daemonset-controller"))
