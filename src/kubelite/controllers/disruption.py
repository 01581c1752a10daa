"""Disruption controller: PodDisruptionBudget status.

Mirrors ``pkg/controller/disruption``:

* ``expectedPods``: with ``maxUnavailable`` or a percentage ``minAvailable``, the summed
  scale of the pods' controllers (ReplicationController, Deployment through its
  ReplicaSet, ReplicaSet, StatefulSet, or any controller with a ``/scale``); with an
  integer ``minAvailable``, the number of selected pods;
* ``desiredHealthy``: ``minAvailable`` (percentages rounded up), or expected minus
  ``maxUnavailable`` (percentages rounded up), never below 0;
* ``currentHealthy``: selected pods that are Ready, not terminating and not recorded
  in ``disruptedPods`` by the eviction API during the last two minutes;
* ``disruptionsAllowed`` = currentHealthy - desiredHealthy (0 when no pods are expected),
  and the ``DisruptionAllowed`` condition (``SufficientPods`` / ``InsufficientPods``, or
  ``SyncFailed`` when the expected count cannot be computed).

Events: ``NoPods`` (no matching pods), ``CalculateExpectedPodCountFailed``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import (
    controller_ref,
    is_pod_ready,
    is_terminating,
    matches,
    meta,
    namespace_index,
    now_rfc3339,
    selector_of,
    set_condition,
    timestamp,
)
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer, object_key
from kubelite.machinery.workqueue import Controller

Obj = dict[str, Any]
PDBS = Resource("policy", "v1", "poddisruptionbudgets")
PODS = Resource("", "v1", "pods")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
REPLICASETS = Resource("apps", "v1", "replicasets")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
RCS = Resource("", "v1", "replicationcontrollers")
DELETION_TIMEOUT = 120.0  # an eviction not followed by a deletion within 2 min is forgotten


class ExpectedCountError(Exception):
    """The expected number of pods cannot be computed (reported as SyncFailed)."""


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if isinstance(value, bool):
        raise ExpectedCountError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        raise ExpectedCountError(
            f'invalid value for IntOrString: invalid type: string is not a percentage "{text}"'
        )
    scaled = int(text[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


@dataclass
class Health:
    expected: int
    desired: int
    current: int
    disrupted: dict[str, str]
    recheck: float | None  # seconds until a disruptedPods entry expires

    @property
    def allowed(self) -> int:
        if self.expected <= 0 or self.current - self.desired <= 0:
            return 0
        return self.current - self.desired


def live_disruptions(pdb: Obj, pods: list[Obj], now: float) -> tuple[dict[str, str], float | None]:
    """``disruptedPods`` entries whose pod still exists, is not terminating and is recent."""
    by_name = {meta(p).get("name"): p for p in pods}
    out: dict[str, str] = {}
    recheck: float | None = None
    for name, when in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
        pod = by_name.get(name)
        if pod is None or is_terminating(pod):
            continue
        t = timestamp(when)
        if t is None:
            continue
        expires = t + DELETION_TIMEOUT
        if expires < now:
            continue
        out[name] = when
        recheck = expires - now if recheck is None else min(recheck, expires - now)
    return out, recheck


def count_healthy(pods: list[Obj], disrupted: dict[str, str]) -> int:
    return sum(
        1 for p in pods if not is_terminating(p) and meta(p).get("name") not in disrupted and is_pod_ready(p)
    )


class DisruptionController:
    def __init__(self, client: Client, recorder: EventRecorder, informers: dict[Resource, Informer]) -> None:
        self.client = client
        self.recorder = recorder
        self.pdbs = informers[PDBS]
        self.pods = informers[PODS]
        self.workloads = {r: informers[r] for r in (DEPLOYMENTS, REPLICASETS, STATEFULSETS, RCS)}
        self.ctrl = Controller("disruption", self.reconcile, workers=2)
        self.pdbs.add_indexer("namespace", namespace_index)
        self.pods.add_indexer("namespace", namespace_index)
        self.pdbs.add_handler(lambda key, old, new: self.ctrl.queue.add(key))
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for pod in (old, new):
            if pod is None:
                continue
            for pdb in self.pdbs.by_index("namespace", str(meta(pod).get("namespace", ""))):
                if matches(selector_of((pdb.get("spec") or {}).get("selector")), pod):
                    self.ctrl.queue.add(object_key(pdb))

    async def start(self) -> None:
        for key in list(self.pdbs.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    # ------------------------------------------------------------------ expected scale

    def _owner(self, res: Resource, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") is None:
            return None
        obj = self.workloads[res].get(f"{namespace}/{ref.get('name', '')}")
        if obj is None or meta(obj).get("uid") != ref.get("uid"):
            return None
        return obj

    def _controller_scale(self, pod: Obj, ref: Obj) -> tuple[str, int] | None:
        """(uid, replicas) of the workload controlling ``pod`` (the finders, in Kubernetes' order)."""
        ns = str(meta(pod).get("namespace", ""))
        kind, group = ref.get("kind"), str(ref.get("apiVersion", "")).split("/")[0]
        if kind == "ReplicationController" and ref.get("apiVersion") == "v1":
            rc = self._owner(RCS, ns, ref)
            if rc is not None:
                return str(meta(rc)["uid"]), int((rc.get("spec") or {}).get("replicas", 1))
        if kind == "ReplicaSet" and group == "apps":
            rs = self._owner(REPLICASETS, ns, ref)
            if rs is None:
                return None
            rs_ref = controller_ref(rs)
            if rs_ref is not None and rs_ref.get("kind") == "Deployment":
                dep = self._owner(DEPLOYMENTS, ns, rs_ref)
                if dep is not None:
                    return str(meta(dep)["uid"]), int((dep.get("spec") or {}).get("replicas", 1))
            return str(meta(rs)["uid"]), int((rs.get("spec") or {}).get("replicas", 1))
        if kind == "StatefulSet" and group == "apps":
            sts = self._owner(STATEFULSETS, ns, ref)
            if sts is not None:
                return str(meta(sts)["uid"]), int((sts.get("spec") or {}).get("replicas", 1))
        return None

    async def _scale_subresource(self, pod: Obj, ref: Obj) -> tuple[str, int] | None:
        """The generic finder: any controller serving ``/scale`` (custom resources)."""
        group_version = str(ref.get("apiVersion", ""))
        group, _, version = group_version.rpartition("/")
        plural = str(ref.get("kind", "")).lower() + "s"
        try:
            scale = await self.client.get(
                Resource(group, version, plural), str(meta(pod).get("namespace", "")), ref["name"], "scale"
            )
        except errors.APIError:
            return None
        if meta(scale).get("uid") != ref.get("uid"):
            return None
        return str(ref.get("uid")), int((scale.get("spec") or {}).get("replicas") or 0)

    async def expected_scale(self, pods: list[Obj]) -> int:
        scales: dict[str, int] = {}
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None or ref.get("uid") in scales:
                continue  # unmanaged pods do not count towards the scale
            found = self._controller_scale(pod, ref) or await self._scale_subresource(pod, ref)
            if found is None:
                raise ExpectedCountError(f'found no controllers for pod "{meta(pod).get("name")}"')
            scales[found[0]] = found[1]
        return sum(scales.values())

    async def expected_and_desired(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected = await self.expected_scale(pods)
            unavailable = scaled_value(spec["maxUnavailable"], expected, True)
            return expected, max(0, expected - unavailable)
        min_available = spec.get("minAvailable")
        if min_available is None:
            return len(pods), 0
        if isinstance(min_available, int) and not isinstance(min_available, bool):
            return len(pods), min_available
        expected = await self.expected_scale(pods)
        return expected, scaled_value(min_available, expected, True)

    # ------------------------------------------------------------------ reconcile

    def _pods_of(self, pdb: Obj) -> list[Obj]:
        sel = selector_of((pdb.get("spec") or {}).get("selector"))
        ns = str(meta(pdb).get("namespace", ""))
        return [p for p in self.pods.by_index("namespace", ns) if matches(sel, p)]

    async def reconcile(self, key: str) -> float | None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return None
        pods = self._pods_of(pdb)
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired = await self.expected_and_desired(pdb, pods)
        except ExpectedCountError as e:
            self.recorder.event(
                pdb,
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {e}",
            )
            await self._fail_safe(pdb, str(e))
            return None
        disrupted, recheck = live_disruptions(pdb, pods, time.time())
        health = Health(expected, desired, count_healthy(pods, disrupted), disrupted, recheck)
        await self._write_status(pdb, health)
        return recheck

    async def _write_status(self, pdb: Obj, h: Health) -> None:
        now = now_rfc3339()
        old = pdb.get("status") or {}
        generation = int(meta(pdb).get("generation") or 0)
        allowed = h.allowed
        cond = {
            "type": "DisruptionAllowed",
            "status": "True" if allowed > 0 else "False",
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "",
            "observedGeneration": generation,
        }
        status: Obj = {
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": h.current,
            "desiredHealthy": h.desired,
            "expectedPods": h.expected,
            "conditions": set_condition(list(old.get("conditions") or []), cond, now),
        }
        if h.disrupted:
            status["disruptedPods"] = h.disrupted
        await self._put_status(pdb, status)

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        old = pdb.get("status") or {}
        generation = int(meta(pdb).get("generation") or 0)
        cond = {
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "SyncFailed",
            "message": message,
            "observedGeneration": generation,
        }
        status = dict(old)
        status.update(
            disruptionsAllowed=0,
            observedGeneration=generation,
            conditions=set_condition(list(old.get("conditions") or []), cond, now_rfc3339()),
        )
        status.setdefault("currentHealthy", 0)
        status.setdefault("desiredHealthy", 0)
        status.setdefault("expectedPods", 0)
        await self._put_status(pdb, status)

    async def _put_status(self, pdb: Obj, status: Obj) -> None:
        if (pdb.get("status") or {}) == status:
            return
        body = dict(pdb)
        body["status"] = status
        await self.client.update(PDBS, str(meta(pdb).get("namespace", "")), body, subresource="status")


def new(ctx: Any) -> DisruptionController:
    informers = {r: ctx.informers.get(r) for r in (PDBS, PODS, DEPLOYMENTS, REPLICASETS, STATEFULSETS, RCS)}
    return DisruptionController(ctx.client, ctx.recorder("controllermanager"), informers)
