"""The HorizontalPodAutoscaler table: ``REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE``.

Mirrors ``printHorizontalPodAutoscaler`` and ``formatHPAMetrics``: each metric prints as
``current/target`` (``cpu: 42%/80%``, ``<unknown>`` before the first measurement,
``(avg)`` for object and external average values), at most two then ``+ N more...``.
``autoscaling/v1`` objects (``targetCPUUtilizationPercentage``) are read as the
equivalent CPU utilization metric, as the v1 -> internal conversion does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._base import (
    NONE,
    UNSET,
    Obj,
    Printer,
    age,
    age_col,
    col,
    dicts,
    dig,
    doc,
    mp,
    name_col,
    name_of,
    num,
    opt_int,
    quantity,
    txt,
)

UNKNOWN = "<unknown>"
MAX_METRICS = 2

# metric type -> the spec/status member holding its source
_MEMBER = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


def _v1_metrics(hpa: Obj) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """autoscaling/v1: the CPU target and current utilization as v2-shaped metrics."""
    target = opt_int(hpa, "spec", "targetCPUUtilizationPercentage")
    if target is None:
        return [], []
    spec = {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": target}}}
    current = opt_int(hpa, "status", "currentCPUUtilizationPercentage")
    if current is None:
        return [spec], []
    status = {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}
    return [spec], [status]


def _status_source(statuses: list[Mapping[str, Any]], index: int, member: str) -> Mapping[str, Any] | None:
    if index >= len(statuses):
        return None
    source = statuses[index].get(member)
    return source if isinstance(source, Mapping) else None


def _value_metric(spec: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    """Object/External metrics: ``cur/target (avg)`` or ``cur/target``."""
    target = mp(spec, "target")
    if target.get("averageValue") is not None:
        cur = UNKNOWN
        if current is not None and dig(current, "current", "averageValue") is not None:
            cur = quantity(dig(current, "current", "averageValue"))
        return f"{cur}/{quantity(target.get('averageValue'))} (avg)"
    cur = quantity(dig(current, "current", "value")) if current is not None else UNKNOWN
    return f"{cur}/{quantity(target.get('value'))}"


def _resource_metric(spec: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    """Resource/ContainerResource metrics: ``name: cur/target`` (``%`` for utilization)."""
    name = txt(spec, "name")
    target = mp(spec, "target")
    if target.get("averageValue") is not None:
        cur = quantity(dig(current, "current", "averageValue")) if current is not None else UNKNOWN
        return f"{name}: {cur}/{quantity(target.get('averageValue'))}"
    cur = UNKNOWN
    utilization = opt_int(current, "current", "averageUtilization") if current is not None else None
    if utilization is not None:
        cur = f"{utilization}%"
    wanted = opt_int(target, "averageUtilization")
    return f"{name}: {cur}/{f'{wanted}%' if wanted is not None else '<auto>'}"


def _one_metric(spec: Mapping[str, Any], statuses: list[Mapping[str, Any]], index: int) -> str:
    metric_type = txt(spec, "type")
    member = _MEMBER.get(metric_type)
    if member is None:
        return "<unknown type>"
    source = mp(spec, member)
    current = _status_source(statuses, index, member)
    if metric_type == "Pods":
        cur = quantity(dig(current, "current", "averageValue")) if current is not None else UNKNOWN
        return f"{cur}/{quantity(dig(source, 'target', 'averageValue'))}"
    if metric_type in ("Object", "External"):
        return _value_metric(source, current)
    return _resource_metric(source, current)


def format_hpa_metrics(hpa: Obj) -> str:
    specs, statuses = dicts(hpa, "spec", "metrics"), dicts(hpa, "status", "currentMetrics")
    if not specs and "targetCPUUtilizationPercentage" in mp(hpa, "spec"):
        specs, statuses = _v1_metrics(hpa)
    if not specs:
        return NONE
    texts = [_one_metric(spec, statuses, index) for index, spec in enumerate(specs)]
    shown = ", ".join(texts[:MAX_METRICS])
    if len(texts) > MAX_METRICS:
        return f"{shown} + {len(texts) - MAX_METRICS} more..."
    return shown


def _hpa_cells(hpa: Obj, now: datetime) -> list[Any]:
    ref = mp(hpa, "spec", "scaleTargetRef")
    min_replicas = opt_int(hpa, "spec", "minReplicas")
    return [
        name_of(hpa),
        f"{txt(ref, 'kind')}/{txt(ref, 'name')}",
        format_hpa_metrics(hpa),
        str(min_replicas) if min_replicas is not None else UNSET,
        num(hpa, "spec", "maxReplicas"),
        num(hpa, "status", "currentReplicas"),
        age(hpa, now),
    ]


HPA_DOC = "autoscaling.v2.HorizontalPodAutoscalerSpec"

HORIZONTAL_POD_AUTOSCALER = Printer(
    (
        name_col(),
        col("Reference", "string", doc(HPA_DOC, "scaleTargetRef")),
        col("Targets", "string", doc(HPA_DOC, "metrics")),
        col("MinPods", "string", doc(HPA_DOC, "minReplicas")),
        col("MaxPods", "string", doc(HPA_DOC, "maxReplicas")),
        col("Replicas", "string", doc("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
        age_col(),
    ),
    _hpa_cells,
)

PRINTERS = {("autoscaling", "horizontalpodautoscalers"): HORIZONTAL_POD_AUTOSCALER}
