"""Simulated resource usage, shaped like the ``metrics.k8s.io/v1beta1`` API.

metrics-server serves PodMetrics (per container ``usage.cpu``/``usage.memory``) and
NodeMetrics; the HPA reads pod CPU from there.  Simulated pods use what their
``kubelite.io/simulate-cpu`` / ``kubelite.io/simulate-memory`` annotations say (split
over the containers in proportion to their requests), or by default a fraction of each
container's requests (10 %).  Annotations are read live, so
``kubectl annotate pod web-1 kubelite.io/simulate-cpu=900m --overwrite`` changes the
reported usage at once.  A node's usage is the sum over its running pods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kubelite.api.quantity import format_quantity, parse_quantity
from kubelite.simulator.config import CPU_ANNOTATION, MEMORY_ANNOTATION

Obj = dict[str, Any]
API_VERSION = "metrics.k8s.io/v1beta1"
WINDOW = "10s"

PodSource = Callable[[], Iterable[Obj]]  # every running pod on a running simulated node
NodeSource = Callable[[], Iterable[Obj]]  # every running simulated Node


def _q(value: Any) -> Decimal:
    try:
        return parse_quantity(str(value))
    except Exception:
        return Decimal(0)


def _requests(c: Obj, name: str) -> Decimal:
    return _q(((c.get("resources") or {}).get("requests") or {}).get(name, "0"))


def _split(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` shared in proportion to ``weights`` (evenly when all are zero)."""
    if not weights:
        return []
    s = sum(weights, Decimal(0))
    if s == 0:
        return [total / len(weights)] * len(weights)
    return [total * w / s for w in weights]


def container_usage(pod: Obj, fraction: float) -> list[tuple[str, Decimal, Decimal]]:
    """(container name, cpu cores, memory bytes) of each container of ``pod``."""
    containers = (pod.get("spec") or {}).get("containers") or []
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    out: list[list[Decimal]] = []
    for name, key in (("cpu", CPU_ANNOTATION), ("memory", MEMORY_ANNOTATION)):
        weights = [_requests(c, name) for c in containers]
        if key in ann:
            out.append(_split(_q(ann[key]), weights))
        else:
            out.append([w * Decimal(str(fraction)) for w in weights])
    names = [str(c.get("name", "")) for c in containers]
    return list(zip(names, out[0], out[1], strict=True))


def _cpu(cores: Decimal) -> str:
    return format_quantity(Fraction(cores).limit_denominator(10**9), "DecimalSI")


def _mem(b: Decimal) -> str:
    return format_quantity(int(b), "BinarySI")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricsRegistry:
    """PodMetrics/NodeMetrics of the simulated pods and nodes, computed on demand."""

    def __init__(self, pods: PodSource, nodes: NodeSource, fraction: float = 0.1) -> None:
        self._pods = pods
        self._nodes = nodes
        self.fraction = fraction

    def pod_metrics(self, namespace: str = "") -> list[Obj]:
        """PodMetrics objects of running simulated pods (all namespaces when empty)."""
        ts = _now()
        out = []
        for pod in self._pods():
            meta = pod.get("metadata") or {}
            if namespace and meta.get("namespace") != namespace:
                continue
            out.append(
                {
                    "kind": "PodMetrics",
                    "apiVersion": API_VERSION,
                    "metadata": {
                        "name": meta.get("name"),
                        "namespace": meta.get("namespace"),
                        "labels": dict(meta.get("labels") or {}),
                        "creationTimestamp": ts,
                    },
                    "timestamp": ts,
                    "window": WINDOW,
                    "containers": [
                        {"name": n, "usage": {"cpu": _cpu(c), "memory": _mem(m)}}
                        for n, c, m in container_usage(pod, self.fraction)
                    ],
                }
            )
        return out

    def node_metrics(self) -> list[Obj]:
        """NodeMetrics of every running simulated node: the sum of its pods' usage."""
        ts = _now()
        labels: dict[str, dict[str, str]] = {}
        for node in self._nodes():
            meta = node.get("metadata") or {}
            labels[str(meta.get("name", ""))] = dict(meta.get("labels") or {})
        totals: dict[str, list[Decimal]] = {n: [Decimal(0), Decimal(0)] for n in labels}
        for pod in self._pods():
            where = str((pod.get("spec") or {}).get("nodeName") or "")
            if where not in totals:
                continue
            for _, c, m in container_usage(pod, self.fraction):
                totals[where][0] += c
                totals[where][1] += m
        return [
            {
                "kind": "NodeMetrics",
                "apiVersion": API_VERSION,
                "metadata": {"name": n, "labels": labels[n], "creationTimestamp": ts},
                "timestamp": ts,
                "window": WINDOW,
                "usage": {"cpu": _cpu(c), "memory": _mem(m)},
            }
            for n, (c, m) in sorted(totals.items())
        ]


_active: MetricsRegistry | None = None


def set_active(reg: MetricsRegistry | None) -> None:
    """Make ``reg`` the process's simulated metrics source (the simulator does this)."""
    global _active
    _active = reg


def active() -> MetricsRegistry | None:
    """The running simulator's metrics registry in this process, if any."""
    return _active
