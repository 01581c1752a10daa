"""Per-node aggregate the scheduler keeps: allocatable, requested, pods, ports, taints.

``framework.NodeInfo`` of kube-scheduler: requested resources include assumed pods (sent
for binding but not yet confirmed by the API), so consecutive pods in a burst see each
other's reservations.  A NodeInfo may exist without its Node object (a pod arrived
before its node, or the node was deleted while pods remain); such "ghost" nodes are kept
out of the snapshot.
"""

from __future__ import annotations

from typing import Any

from kubelite.scheduler.podinfo import PodInfo, Taint, parse_taints
from kubelite.scheduler.resources import Resources, node_allocatable

Obj = dict[str, Any]
NO_SCHEDULE_EFFECTS = ("NoSchedule", "NoExecute")


class NodeInfo:
    __slots__ = (
        "affinity_pods",
        "alloc",
        "anti_affinity_pods",
        "blocking_taints",
        "index",
        "labels",
        "name",
        "nz_cpu",
        "nz_mem",
        "obj",
        "pods",
        "prefer_taints",
        "requested",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.obj: Obj | None = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.alloc = Resources()
        self.requested = Resources()
        self.nz_cpu = 0
        self.nz_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.affinity_pods = 0  # pods here with any (anti-)affinity term
        self.anti_affinity_pods: dict[str, PodInfo] = {}  # pods here with required anti-affinity
        self.index = -1  # position in the snapshot arrays (-1: not in the snapshot)
        self.blocking_taints = False  # NoSchedule/NoExecute taints present
        self.prefer_taints = False  # PreferNoSchedule taints present

    def set_node(self, node: Obj | None) -> None:
        self.obj = node
        if node is None:
            return
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.labels = dict(meta.get("labels") or {})
        self.taints = parse_taints(spec.get("taints"))
        self.unschedulable = bool(spec.get("unschedulable"))
        self.alloc = node_allocatable(node)
        self.blocking_taints = any(t.effect in NO_SCHEDULE_EFFECTS for t in self.taints)
        self.prefer_taints = any(t.effect == "PreferNoSchedule" for t in self.taints)

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self._account(pod, 1)

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is not None:
            self._account(pod, -1)
        return pod

    def _account(self, pod: PodInfo, sign: int) -> None:
        self.requested.plus(pod.requests, sign)
        self.requested.pods += sign
        self.nz_cpu += sign * pod.nz_cpu
        self.nz_mem += sign * pod.nz_mem
        for port in pod.host_ports:
            n = self.used_ports.get(port, 0) + sign
            if n > 0:
                self.used_ports[port] = n
            else:
                self.used_ports.pop(port, None)
        if pod.has_affinity:
            self.affinity_pods += sign
        if pod.required_anti_affinity:
            if sign > 0:
                self.anti_affinity_pods[pod.key] = pod
            else:
                self.anti_affinity_pods.pop(pod.key, None)

    def clone(self) -> NodeInfo:
        """A copy whose pods and sums can be changed (preemption dry runs)."""
        c = NodeInfo(self.name)
        c.obj = self.obj
        c.labels = self.labels
        c.taints = self.taints
        c.unschedulable = self.unschedulable
        c.alloc = self.alloc
        c.requested = self.requested.copy()
        c.nz_cpu = self.nz_cpu
        c.nz_mem = self.nz_mem
        c.pods = dict(self.pods)
        c.used_ports = dict(self.used_ports)
        c.affinity_pods = self.affinity_pods
        c.anti_affinity_pods = dict(self.anti_affinity_pods)
        c.index = self.index
        c.blocking_taints = self.blocking_taints
        c.prefer_taints = self.prefer_taints
        return c
