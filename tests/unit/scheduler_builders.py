"""Builders of Node and Pod objects (and their parsed forms) for the scheduler unit tests."""

from __future__ import annotations

from typing import Any

from kubelite.scheduler.cache import Cache
from kubelite.scheduler.podinfo import PodInfo, parse_pod

Obj = dict[str, Any]


def node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> Obj:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi", **(extra or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"capacity": alloc, "allocatable": alloc},
    }


def pod(
    name: str,
    cpu: str | None = "100m",
    memory: str | None = "128Mi",
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    node_name: str = "",
    priority: int | None = None,
    **spec: Any,
) -> Obj:
    requests: Obj = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    body: Obj = {"containers": [{"name": "c", "image": "x", "resources": {"requests": requests}}], **spec}
    if node_name:
        body["nodeName"] = node_name
    if priority is not None:
        body["priority"] = priority
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": labels or {},
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": body,
        "status": {"phase": "Pending"},
    }


def pinfo(obj: Obj) -> PodInfo:
    return parse_pod(obj)


def cache_with(nodes: list[Obj], pods: list[Obj] = ()) -> Cache:  # type: ignore[assignment]
    c = Cache()
    for n in nodes:
        c.set_node(n)
    for p in pods:
        c.set_pod(parse_pod(p))
    return c
