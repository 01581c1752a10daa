"""HorizontalPodAutoscaler controller (autoscaling/v2): scale targets on resource usage.

Mirrors ``pkg/controller/podautoscaler/horizontal.go``: every sync period (15 s, like
``--horizontal-pod-autoscaler-sync-period``) each HPA reads its target's ``/scale``,
the pods its selector picks and their ``metrics.k8s.io`` PodMetrics; the replica
calculator (:mod:`kubelite.controllers.hpa_replicas`) proposes a count per metric (the
largest wins), the behavior (:mod:`kubelite.controllers.hpa_behavior`) stabilizes and
rate-limits it, and a change is written to ``/scale`` with a ``SuccessfulRescale``
event ("New size: 4; reason: cpu resource utilization (percentage of request) above
target").  Status: currentReplicas, desiredReplicas, currentMetrics, lastScaleTime and
the AbleToScale / ScalingActive / ScalingLimited conditions with Kubernetes' reasons.
Resource and ContainerResource metrics (cpu, memory; Utilization or AverageValue) are
supported; Pods/Object/External metrics report ``InvalidMetricSourceType``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import meta, namespace_index, now_rfc3339, set_condition
from kubelite.api.quantity import format_quantity, parse_quantity
from kubelite.api.selectors import parse_label_selector
from kubelite.client.base import Client, Resource
from kubelite.controllers import hpa_behavior as hb
from kubelite.controllers.hpa_replicas import MetricsError, replicas_for_resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.hpa")
Obj = dict[str, Any]
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
HPAS_V1 = Resource("autoscaling", "v1", "horizontalpodautoscalers")
PODS = Resource("", "v1", "pods")
POD_METRICS = Resource("metrics.k8s.io", "v1beta1", "pods")
TARGETS = {
    ("apps", "Deployment"): Resource("apps", "v1", "deployments"),
    ("apps", "StatefulSet"): Resource("apps", "v1", "statefulsets"),
    ("apps", "ReplicaSet"): Resource("apps", "v1", "replicasets"),
    ("", "ReplicationController"): Resource("", "v1", "replicationcontrollers"),
}
DEFAULT_METRICS = [
    {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
]


@dataclass
class Proposal:
    replicas: int
    name: str  # "cpu resource utilization (percentage of request)"
    statuses: list[Obj] = field(default_factory=list)


def _metric_name(kind: str, resource: str, utilization: bool) -> str:
    base = f"{resource} container resource" if kind == "ContainerResource" else f"{resource} resource"
    return f"{base} utilization (percentage of request)" if utilization else base


def _average_quantity(milli: int, resource: str) -> str:
    if resource == "cpu":
        return format_quantity(Fraction(milli, 1000), "DecimalSI")
    return format_quantity(Fraction(milli // 1000), "BinarySI" if milli >= 1024 * 1000 else "DecimalSI")


def _milli(q: Any) -> int:
    return int(parse_quantity(str(q)) * 1000)


def is_v1(hpa: Obj) -> bool:
    """An object written through autoscaling/v1 (e.g. by ``kubectl autoscale``)."""
    return hpa.get("apiVersion") == "autoscaling/v1"


def metrics_of(hpa: Obj) -> list[Obj]:
    """The v2 metric specs (a v1 object's ``targetCPUUtilizationPercentage``, default 80 %)."""
    spec = hpa.get("spec") or {}
    if is_v1(hpa):
        percent = int(spec.get("targetCPUUtilizationPercentage") or 80)
        target = {"type": "Utilization", "averageUtilization": percent}
        return [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    return list(spec.get("metrics") or DEFAULT_METRICS)


def v1_status(status: Obj) -> Obj:
    """autoscaling/v1 status: replicas, the current CPU utilization, lastScaleTime."""
    out: Obj = {k: status[k] for k in ("observedGeneration", "lastScaleTime") if k in status}
    out["currentReplicas"] = status.get("currentReplicas", 0)
    out["desiredReplicas"] = status.get("desiredReplicas", 0)
    for m in status.get("currentMetrics") or []:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu":
            utilization = (res.get("current") or {}).get("averageUtilization")
            if utilization is not None:
                out["currentCPUUtilizationPercentage"] = utilization
    return out


class HPAController:
    def __init__(
        self,
        client: Client,
        recorder: EventRecorder,
        hpas: Informer,
        pods: Informer,
        sync_period: float = 15.0,
        clock: Any = time.time,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.hpas = hpas
        self.pods = pods
        self.sync_period = sync_period
        self.clock = clock
        self.history: dict[str, hb.History] = {}
        self.ctrl = Controller("horizontal-pod-autoscaler", self.reconcile, workers=2)
        pods.add_indexer("namespace", namespace_index)
        hpas.add_handler(self._on_hpa)

    def _on_hpa(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self.history.pop(key, None)
            return
        if old is None or (old.get("spec") != new.get("spec")):
            self.ctrl.queue.add(key)

    async def start(self) -> None:
        for key in list(self.hpas.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, key: str) -> float | None:
        hpa = self.hpas.get(key)
        if hpa is None:
            return None
        status = _Status(hpa)
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        target = TARGETS.get((group, str(ref.get("kind", ""))))
        ns = meta(hpa)["namespace"]
        try:
            if target is None:
                raise errors.NotFound(f'no matches for kind "{ref.get("kind")}" in group "{group}"')
            scale = await self.client.get(target, ns, str(ref.get("name", "")), "scale")
        except errors.APIError as e:
            message = f"the HPA controller was unable to get the target's current scale: {e.message}"
            status.condition("AbleToScale", "False", "FailedGetScale", message)
            self.recorder.event(hpa, "Warning", "FailedGetScale", e.message)
            await self._write(hpa, status)
            return self.sync_period
        status.condition(
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        desired = await self._desired(hpa, scale, current, status)
        if desired is None:
            await self._write(hpa, status, current)
            return self.sync_period
        if desired != current:
            await self._rescale(hpa, target, scale, current, desired, status)
        await self._write(hpa, status, current, desired)
        return self.sync_period

    async def _desired(self, hpa: Obj, scale: Obj, current: int, status: _Status) -> int | None:
        spec = hpa.get("spec") or {}
        lo, hi = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
        if current == 0 and lo != 0:
            status.condition(
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            status.reason = ""
            return 0
        if current > hi:
            status.reason = "Current number of replicas above Spec.MaxReplicas"
            return hi
        if current < lo:
            status.reason = "Current number of replicas below Spec.MinReplicas"
            return lo
        try:
            proposal = await self._propose(hpa, scale, current)
        except MetricsError as e:
            status.condition(
                "ScalingActive",
                "False",
                e.reason,
                f"the HPA was unable to compute the replica count: {e.message}",
            )
            self.recorder.event(hpa, "Warning", e.reason, e.message)
            return None
        status.metrics = proposal.statuses
        status.condition(
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {proposal.name}",
        )
        desired = self._normalize(hpa, current, proposal.replicas, lo, hi, status)
        status.reason = f"{proposal.name} above target" if desired > current else "All metrics below target"
        return desired

    def _normalize(self, hpa: Obj, current: int, proposed: int, lo: int, hi: int, status: _Status) -> int:
        key = f"{meta(hpa)['namespace']}/{meta(hpa)['name']}"
        history = self.history.setdefault(key, hb.History())
        behavior = (hpa.get("spec") or {}).get("behavior")
        now = self.clock()
        stabilized = hb.stabilize(history, behavior, current, proposed, now)
        if stabilized != proposed:
            if proposed >= current:
                status.condition(
                    "AbleToScale",
                    "True",
                    "ScaleUpStabilized",
                    "recent recommendations were lower than current one, "
                    "applying the lowest recent recommendation",
                )
            else:
                status.condition(
                    "AbleToScale",
                    "True",
                    "ScaleDownStabilized",
                    "recent recommendations were higher than current one, "
                    "applying the highest recent recommendation",
                )
        else:
            status.condition(
                "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"
            )
        decision = hb.limit(history, behavior, current, stabilized, lo, hi, now)
        limited = "True" if decision.replicas != stabilized else "False"
        status.condition("ScalingLimited", limited, decision.reason, decision.message)
        return decision.replicas

    async def _propose(self, hpa: Obj, scale: Obj, current: int) -> Proposal:
        ns = meta(hpa)["namespace"]
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        if not selector_text:
            raise MetricsError("InvalidSelector", "selector is required")
        selector = parse_label_selector(selector_text)
        pods = [
            p for p in self.pods.by_index("namespace", ns) if selector.matches(meta(p).get("labels") or {})
        ]
        try:
            listed = await self.client.list(POD_METRICS, ns, label_selector=selector_text)
        except errors.APIError as e:
            raise MetricsError(
                "FailedGetResourceMetric",
                "unable to get metrics for resource cpu: unable to fetch metrics from resource metrics "
                f"API: {e.message}",
            ) from e
        pod_metrics = list(listed.get("items") or [])
        best: Proposal | None = None
        statuses: list[Obj] = []
        for metric in metrics_of(hpa):
            replicas, name, metric_status = self._one_metric(metric, current, pods, pod_metrics)
            statuses.append(metric_status)
            if best is None or replicas > best.replicas:
                best = Proposal(replicas, name)
        assert best is not None
        best.statuses = statuses
        return best

    def _one_metric(
        self, metric: Obj, current: int, pods: list[Obj], pod_metrics: list[Obj]
    ) -> tuple[int, str, Obj]:
        kind = metric.get("type")
        if kind not in ("Resource", "ContainerResource"):
            raise MetricsError(
                "InvalidMetricSourceType", f'unsupported metric source type "{kind}" in kubelite'
            )
        source = metric.get("resource" if kind == "Resource" else "containerResource") or {}
        resource = str(source.get("name", "cpu"))
        target = source.get("target") or {}
        utilization = target.get("type") == "Utilization"
        goal = (
            int(target.get("averageUtilization") or 0)
            if utilization
            else _milli(target.get("averageValue", "0"))
        )
        if goal <= 0:
            raise MetricsError("FailedGetResourceMetric", f"invalid target for {resource} resource metric")
        container = str(source.get("container", "")) if kind == "ContainerResource" else ""
        res = replicas_for_resource(
            current, goal, utilization, resource, pods, pod_metrics, time.time(), container
        )
        current_value: Obj = {"averageValue": _average_quantity(res.average, resource)}
        if res.utilization is not None:
            current_value["averageUtilization"] = res.utilization
        body: Obj = {"name": resource, "current": current_value}
        if container:
            body["container"] = container
        status = {"type": kind, ("resource" if kind == "Resource" else "containerResource"): body}
        return res.replicas, _metric_name(kind, resource, utilization), status

    async def _rescale(
        self, hpa: Obj, target: Resource, scale: Obj, current: int, desired: int, status: _Status
    ) -> None:
        ns = meta(hpa)["namespace"]
        name = meta(scale)["name"]
        try:
            await self.client.patch(target, ns, name, {"spec": {"replicas": desired}}, subresource="scale")
        except errors.APIError as e:
            status.condition(
                "AbleToScale",
                "False",
                "FailedUpdateScale",
                f"the HPA controller was unable to update the target scale: {e.message}",
            )
            self.recorder.event(
                hpa,
                "Warning",
                "FailedRescale",
                f"New size: {desired}; reason: {status.reason}; error: {e.message}",
            )
            raise
        status.condition(
            "AbleToScale",
            "True",
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
        )
        self.recorder.event(
            hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {status.reason}"
        )
        status.last_scale = now_rfc3339()
        key = f"{ns}/{meta(hpa)['name']}"
        hb.record_scale(
            self.history.setdefault(key, hb.History()),
            (hpa.get("spec") or {}).get("behavior"),
            current,
            desired,
            self.clock(),
        )
        log.info("hpa rescaled hpa=%s from=%d to=%d", key, current, desired)

    async def _write(
        self, hpa: Obj, status: _Status, current: int | None = None, desired: int | None = None
    ) -> None:
        old = hpa.get("status") or {}
        new = dict(old)
        new["conditions"] = status.conditions
        if status.metrics is not None:
            new["currentMetrics"] = status.metrics
        if current is not None:
            new["currentReplicas"] = current
            new["desiredReplicas"] = current if desired is None else desired
        new.setdefault("currentReplicas", 0)
        new.setdefault("desiredReplicas", 0)
        if status.last_scale:
            new["lastScaleTime"] = status.last_scale
        new["observedGeneration"] = int(meta(hpa).get("generation") or 0)
        res = HPAS
        if is_v1(hpa):  # no v1<->v2 conversion in the API server: write the stored version
            new, res = v1_status(new), HPAS_V1
        if new == old:
            return
        body = dict(hpa)
        body["status"] = new
        try:
            await self.client.update(res, meta(hpa)["namespace"], body, subresource="status")
        except errors.Conflict:
            fresh = await self.client.get(res, meta(hpa)["namespace"], meta(hpa)["name"])
            fresh["status"] = new
            await self.client.update(res, meta(hpa)["namespace"], fresh, subresource="status")


class _Status:
    """The conditions/metrics a sync computes, written once at the end."""

    def __init__(self, hpa: Obj) -> None:
        self.conditions: list[Obj] = [dict(c) for c in (hpa.get("status") or {}).get("conditions") or []]
        self.metrics: list[Obj] | None = None
        self.reason = ""
        self.last_scale = ""
        self.now = now_rfc3339()

    def condition(self, type_: str, status: str, reason: str, message: str) -> None:
        cond = {"type": type_, "status": status, "reason": reason, "message": message}
        self.conditions = set_condition(self.conditions, cond, self.now)


def new(ctx: Any) -> HPAController:
    return HPAController(
        ctx.client,
        ctx.recorder("horizontal-pod-autoscaler"),
        ctx.informers.get(HPAS),
        ctx.informers.get(PODS),
        sync_period=float(ctx.option("horizontal_pod_autoscaler_sync_period", 15.0)),
    )
