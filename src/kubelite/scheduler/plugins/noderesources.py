"""NodeResourcesFit (filter + LeastAllocated score) and NodeResourcesBalancedAllocation.

Filter: the pod's requests must fit into allocatable minus what the node's pods (assumed
ones included) already request, resource by resource, with one reason per shortfall:
``Insufficient cpu``, ``Insufficient memory``, ``Insufficient nvidia.com/gpu``, and
``Too many pods`` when the pod count is at the node's ``pods`` allocatable.

LeastAllocated scores a node by its free fraction of cpu and memory after placing the pod,
counting non-zero requests; BalancedAllocation prefers nodes whose cpu and memory
fractions stay close to each other (100 * (1 - |cpu% - mem%| / 2)).
"""

from __future__ import annotations

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import MAX_NODE_SCORE, CycleState, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import PodInfo

NAME = "NodeResourcesFit"
BALANCED = "NodeResourcesBalancedAllocation"


def insufficient(pod: PodInfo, node: NodeInfo) -> list[str]:
    """The shortfalls of ``node`` for ``pod`` (``fitsRequest``)."""
    out = []
    alloc, used = node.alloc, node.requested
    if used.pods + 1 > alloc.pods:
        out.append("Too many pods")
    r = pod.requests
    if r.cpu > 0 and r.cpu > alloc.cpu - used.cpu:
        out.append("Insufficient cpu")
    if r.memory > 0 and r.memory > alloc.memory - used.memory:
        out.append("Insufficient memory")
    if r.ephemeral > 0 and r.ephemeral > alloc.ephemeral - used.ephemeral:
        out.append("Insufficient ephemeral-storage")
    for name, want in r.scalar.items():
        if want > 0 and want > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            out.append(f"Insufficient {name}")
    return out


def least_allocated(alloc: int, requested: int) -> int:
    if alloc == 0 or requested > alloc:
        return 0
    return (alloc - requested) * MAX_NODE_SCORE // alloc


def balanced(cpu_used: int, cpu_alloc: int, mem_used: int, mem_alloc: int) -> int:
    if cpu_alloc == 0 or mem_alloc == 0:
        return 0
    f1 = min(cpu_used / cpu_alloc, 1.0)
    f2 = min(mem_used / mem_alloc, 1.0)
    return int((1 - abs(f1 - f2) / 2) * MAX_NODE_SCORE)


class NodeResourcesFit(BasePlugin):
    name = NAME
    weight = 1
    event_names = (fw.NODE_ADD, fw.NODE_UPDATE, fw.ASSIGNED_POD_DELETE, fw.ASSIGNED_POD_UPDATE)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        reasons = insufficient(pod, node)
        return fw.unschedulable(NAME, *reasons) if reasons else None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        cpu = least_allocated(node.alloc.cpu, node.nz_cpu + pod.nz_cpu)
        mem = least_allocated(node.alloc.memory, node.nz_mem + pod.nz_mem)
        return (cpu + mem) // 2


class BalancedAllocation(BasePlugin):
    name = BALANCED
    weight = 1

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return balanced(
            node.requested.cpu + pod.requests.cpu,
            node.alloc.cpu,
            node.requested.memory + pod.requests.memory,
            node.alloc.memory,
        )
