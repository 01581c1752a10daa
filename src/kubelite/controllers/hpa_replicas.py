"""The HPA's replica calculator for resource metrics (cpu, memory), pure.

Mirrors ``pkg/controller/podautoscaler/replica_calculator.go``:

* pods are grouped: being deleted or Failed -> ignored; Pending -> unready; without a
  metric -> missing; for cpu, a pod is also unready while it is in its first 5 minutes
  (``cpuInitializationPeriod``) and not Ready or its metric predates readiness plus the
  metric window, or when it never became Ready within 30 s of starting;
* usage ratio = sum(usage) / sum(requests) of the pods with metrics over the target
  utilization (or average usage over the target average value);
* within the 10 % tolerance nothing changes; otherwise ``ceil(ratio * ready pods)``;
* when pods are missing metrics or unready, the ratio is recomputed treating missing
  pods as using 100 % of their request on a scale-down and 0 % on a scale-up, unready
  pods as 0 % on a scale-up, and the scale is abandoned if that flips its direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubelite.api.podhealth import condition, is_terminating, meta, timestamp
from kubelite.api.quantity import parse_quantity

Obj = dict[str, Any]
TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
INITIAL_READINESS_DELAY = 30.0


class MetricsError(Exception):
    """No replica count can be computed from the metrics (reason, message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Sample:
    value: int  # milli-units (millicores, milli-bytes)
    timestamp: float
    window: float


@dataclass
class Result:
    replicas: int
    utilization: int | None  # percent of request (Utilization targets)
    average: int  # average milli-value per pod


def _milli(q: Any) -> int:
    try:
        return int(parse_quantity(str(q)) * Decimal(1000))
    except Exception:
        return 0


def _window_seconds(text: Any) -> float:
    s = str(text or "0s")
    try:
        if s.endswith("ms"):
            return float(s[:-2]) / 1000
        if s.endswith("m"):
            return float(s[:-1]) * 60
        return float(s.rstrip("s") or 0)
    except ValueError:
        return 0.0


def pod_samples(pod_metrics: list[Obj], resource: str, container: str = "") -> dict[str, Sample]:
    """pod name -> summed container usage of ``resource`` (one container when named)."""
    out: dict[str, Sample] = {}
    for pm in pod_metrics:
        total = 0
        for c in pm.get("containers") or []:
            if container and c.get("name") != container:
                continue
            total += _milli((c.get("usage") or {}).get(resource, "0"))
        out[str(meta(pm).get("name"))] = Sample(
            total, timestamp(pm.get("timestamp")) or 0.0, _window_seconds(pm.get("window"))
        )
    return out


def pod_requests(pod: Obj, resource: str, container: str = "") -> int:
    """Summed requests of ``resource`` over the pod's containers; raises if one lacks it."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        if container and c.get("name") != container:
            continue
        req = ((c.get("resources") or {}).get("requests") or {}).get(resource)
        if req is None:
            raise MetricsError(
                "FailedGetResourceMetric",
                f"missing request for {resource} in container {c.get('name')} of Pod {meta(pod).get('name')}",
            )
        total += _milli(req)
    return total


def _cpu_unready(pod: Obj, sample: Sample, now: float) -> bool:
    ready = condition(pod, "Ready")
    if ready is None:
        return True
    is_ready = ready.get("status") == "True"
    started = timestamp((pod.get("status") or {}).get("startTime")) or 0.0
    transition = timestamp(ready.get("lastTransitionTime")) or 0.0
    if started + CPU_INITIALIZATION_PERIOD > now:
        return not is_ready or sample.timestamp < transition + sample.window
    return not is_ready and started + INITIAL_READINESS_DELAY > transition


@dataclass
class Groups:
    ready: int
    unready: set[str]
    missing: set[str]
    ignored: set[str]


def group_pods(pods: list[Obj], samples: dict[str, Sample], resource: str, now: float) -> Groups:
    g = Groups(0, set(), set(), set())
    for pod in pods:
        name = str(meta(pod).get("name"))
        phase = (pod.get("status") or {}).get("phase")
        if is_terminating(pod) or phase == "Failed":
            g.ignored.add(name)
        elif phase == "Pending":
            g.unready.add(name)
        elif name not in samples:
            g.missing.add(name)
        elif resource == "cpu" and _cpu_unready(pod, samples[name], now):
            g.unready.add(name)
        else:
            g.ready += 1
    return g


def _ratio(
    values: dict[str, int], requests: dict[str, int], target: int, utilization: bool
) -> tuple[float, int, int]:
    """(usage ratio, utilization percent, average milli-value)."""
    used = sum(values[p] for p in values if p in requests)
    requested = sum(requests[p] for p in values if p in requests)
    count = len(values)
    average = used // count if count else 0
    if utilization:
        if requested == 0:
            raise MetricsError("FailedGetResourceMetric", "no metrics returned matched known pods")
        percent = int(used * 100 / requested)
        return percent / target, percent, average
    return (average / target if target else 0.0), 0, average


def replicas_for_resource(
    current: int,
    target: int,
    utilization: bool,
    resource: str,
    pods: list[Obj],
    pod_metrics: list[Obj],
    now: float,
    container: str = "",
) -> Result:
    """``GetResourceReplicas`` (utilization %) or ``GetRawResourceReplicas`` (average milli)."""
    if not pods:
        raise MetricsError(
            "FailedGetResourceMetric", "no pods returned by selector while calculating replica count"
        )
    samples = pod_samples(pod_metrics, resource, container)
    names = {str(meta(p).get("name")) for p in pods}
    samples = {k: v for k, v in samples.items() if k in names}
    groups = group_pods(pods, samples, resource, now)
    for name in groups.ignored | groups.unready:
        samples.pop(name, None)
    if not samples:
        raise MetricsError(
            "FailedGetResourceMetric", "did not receive metrics for targeted pods (pods might be unready)"
        )
    requests = {str(meta(p).get("name")): pod_requests(p, resource, container) for p in pods}
    values = {k: s.value for k, s in samples.items()}
    ratio, percent, average = _ratio(values, requests, target, utilization)
    result_util = percent if utilization else None
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return Result(current, result_util, average)
        return Result(math.ceil(ratio * groups.ready), result_util, average)
    for name in groups.missing:
        if ratio < 1.0:
            values[name] = requests.get(name, 0) if utilization else target
        elif ratio > 1.0:
            values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0
    new_ratio, _, _ = _ratio(values, requests, target, utilization)
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return Result(current, result_util, average)
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return Result(current, result_util, average)
    return Result(replicas, result_util, average)
