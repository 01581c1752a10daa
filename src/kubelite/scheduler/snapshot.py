"""The compact view of the cluster a scheduling cycle reads.

kube-scheduler copies its cache into a snapshot at the start of every cycle.  Here a
cycle runs without yielding the event loop, so the cache cannot change underneath it and
the snapshot is maintained incrementally instead: the cache calls :meth:`Snapshot.refresh`
whenever a node's numbers change.  Alongside the NodeInfo list it keeps parallel arrays
(free cpu/memory/ephemeral/pod slots, allocatable, non-zero requests and a "plain" flag
for nodes without taints, cordon or nominated pods), so the common case - a pod that only
asks for resources - is filtered and scored with plain list indexing.

For such pods it also remembers, per request shape (cpu, memory, ephemeral storage and
the non-zero cpu/memory the scorers use), each node's NodeResourcesFit + LeastAllocated +
BalancedAllocation verdict: a pod placed on a node changes that one node's numbers, so
the next pod of the same shape - a Deployment's, a Job's - finds every other node's score
ready (an entry is dropped whenever :meth:`refresh` runs for its node).
"""

from __future__ import annotations

from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.podinfo import PodInfo

UNKNOWN = -2  # score cache: not computed since the node last changed
MISFIT = -1  # score cache: the pod's requests do not fit the node
MAX_SHAPES = 16  # request shapes whose scores are kept (least recently used dropped)
Shape = tuple[int, int, int, int, int]


class Snapshot:
    def __init__(self) -> None:
        self.nodes: list[NodeInfo] = []
        self.by_name: dict[str, NodeInfo] = {}
        self.free_cpu: list[int] = []
        self.free_mem: list[int] = []
        self.free_eph: list[int] = []
        self.free_pods: list[int] = []
        self.alloc_cpu: list[int] = []
        self.alloc_mem: list[int] = []
        self.req_cpu: list[int] = []
        self.req_mem: list[int] = []
        self.nz_cpu: list[int] = []
        self.nz_mem: list[int] = []
        self.plain: list[bool] = []
        self.prefer_taint_nodes = 0
        self.affinity_pods = 0  # assigned pods with any pod (anti-)affinity term
        self.anti_affinity: dict[str, tuple[PodInfo, NodeInfo]] = {}
        self.nominated: dict[str, dict[str, PodInfo]] = {}  # node -> pods nominated to it
        self.nominated_node: dict[str, str] = {}  # pod key -> node it is nominated to
        self._scores: dict[Shape, list[int]] = {}  # request shape -> score per node index

    def __len__(self) -> int:
        return len(self.nodes)

    def add(self, ni: NodeInfo) -> None:
        ni.index = len(self.nodes)
        self.nodes.append(ni)
        self.by_name[ni.name] = ni
        for arr in self._arrays():
            arr.append(0)
        self.plain.append(False)
        for scores in self._scores.values():
            scores.append(UNKNOWN)
        self.prefer_taint_nodes += ni.prefer_taints
        self.refresh(ni)

    def remove(self, ni: NodeInfo) -> None:
        i = ni.index
        if i < 0:
            return
        last = self.nodes[-1]
        self.nodes[i] = last
        last.index = i
        self.nodes.pop()
        for arr in self._arrays():
            arr[i] = arr[-1]
            arr.pop()
        self.plain[i] = self.plain[-1]
        self.plain.pop()
        for scores in self._scores.values():
            scores[i] = scores[-1]
            scores.pop()
        self.by_name.pop(ni.name, None)
        self.prefer_taint_nodes -= ni.prefer_taints
        ni.index = -1

    def node_changed(self, ni: NodeInfo, had_prefer: bool) -> None:
        self.prefer_taint_nodes += int(ni.prefer_taints) - int(had_prefer)
        self.refresh(ni)

    def refresh(self, ni: NodeInfo) -> None:
        i = ni.index
        if i < 0:
            return
        a, r = ni.alloc, ni.requested
        self.free_cpu[i] = a.cpu - r.cpu
        self.free_mem[i] = a.memory - r.memory
        self.free_eph[i] = a.ephemeral - r.ephemeral
        self.free_pods[i] = a.pods - r.pods
        self.alloc_cpu[i] = a.cpu
        self.alloc_mem[i] = a.memory
        self.req_cpu[i] = r.cpu
        self.req_mem[i] = r.memory
        self.nz_cpu[i] = ni.nz_cpu
        self.nz_mem[i] = ni.nz_mem
        self.plain[i] = not (ni.unschedulable or ni.blocking_taints or ni.name in self.nominated)
        for scores in self._scores.values():
            scores[i] = UNKNOWN

    def scores_for(self, shape: Shape) -> list[int]:
        """The per-node score cache of one request shape (UNKNOWN entries are filled by
        the caller); the least recently used shape is dropped beyond MAX_SHAPES."""
        scores = self._scores.pop(shape, None)
        if scores is None:
            scores = [UNKNOWN] * len(self.nodes)
            if len(self._scores) >= MAX_SHAPES:
                del self._scores[next(iter(self._scores))]
        self._scores[shape] = scores
        return scores

    def _arrays(self) -> tuple[list[int], ...]:
        return (
            self.free_cpu,
            self.free_mem,
            self.free_eph,
            self.free_pods,
            self.alloc_cpu,
            self.alloc_mem,
            self.req_cpu,
            self.req_mem,
            self.nz_cpu,
            self.nz_mem,
        )

    # ---------------------------------------------------------------- pod-level indexes

    def pod_added(self, pod: PodInfo, ni: NodeInfo) -> None:
        if pod.has_affinity:
            self.affinity_pods += 1
        if pod.required_anti_affinity:
            self.anti_affinity[pod.key] = (pod, ni)

    def pod_removed(self, pod: PodInfo) -> None:
        if pod.has_affinity:
            self.affinity_pods -= 1
        self.anti_affinity.pop(pod.key, None)

    def nominate(self, pod: PodInfo, node: str) -> None:
        """Remember that ``pod`` waits for room on ``node`` (after preemption)."""
        self.clear_nomination(pod.key)
        if node:
            self.nominated.setdefault(node, {})[pod.key] = pod
            self.nominated_node[pod.key] = node
            ni = self.by_name.get(node)
            if ni is not None:
                self.refresh(ni)

    def clear_nomination(self, key: str) -> None:
        node = self.nominated_node.pop(key, None)
        if node is None:
            return
        pods = self.nominated.get(node, {})
        pods.pop(key, None)
        if not pods:
            self.nominated.pop(node, None)
        ni = self.by_name.get(node)
        if ni is not None:
            self.refresh(ni)

    def nominated_to(self, node: str) -> list[PodInfo]:
        return list(self.nominated.get(node, {}).values())
