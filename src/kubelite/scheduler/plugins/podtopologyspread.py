"""PodTopologySpread: ``topologySpreadConstraints`` hard (DoNotSchedule) and soft (ScheduleAnyway).

Filter: placing the pod in a node's domain must keep ``count(domain) + 1 - min(count)``
within ``maxSkew`` (``min`` is 0 while fewer than ``minDomains`` domains exist); nodes
without the topology key are rejected as
``node(s) didn't match pod topology spread constraints (missing required label)``,
others as ``node(s) didn't match pod topology spread constraints``.  Only nodes passing
the pod's node affinity (``nodeAffinityPolicy: Honor``) and, when asked, its taint
tolerations (``nodeTaintsPolicy: Honor``) count as domains.

Score: fewer matching pods in a node's domains is better, each constraint weighted by
log(number of domains + 2), reversed and scaled to 0..100 as kube-scheduler does.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import MAX_NODE_SCORE, CycleState, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.plugins.nodeaffinity import matches_node
from kubelite.scheduler.plugins.tainttoleration import untolerated
from kubelite.scheduler.podinfo import PodInfo, SpreadConstraint
from kubelite.scheduler.snapshot import Snapshot

NAME = "PodTopologySpread"
REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


@dataclass
class _Counts:
    constraints: tuple[SpreadConstraint, ...]
    counts: list[Counter[str]]  # per constraint: domain value -> matching pods


def _eligible(pod: PodInfo, c: SpreadConstraint, node: NodeInfo) -> bool:
    if c.honor_node_affinity and not matches_node(pod, node):
        return False
    return not (c.honor_taints and untolerated(node.taints, pod.tolerations) is not None)


def _matching_pods(pod: PodInfo, c: SpreadConstraint, node: NodeInfo) -> int:
    return sum(
        1
        for other in node.pods.values()
        if other.namespace == pod.namespace and not other.terminating and c.selector.matches(other.labels)
    )


def _count(pod: PodInfo, constraints: tuple[SpreadConstraint, ...], nodes: list[NodeInfo]) -> _Counts:
    keys = [c.topology_key for c in constraints]
    counts: list[Counter[str]] = [Counter() for _ in constraints]
    for node in nodes:
        if any(k not in node.labels for k in keys):
            continue
        for i, c in enumerate(constraints):
            if _eligible(pod, c, node):
                counts[i][node.labels[c.topology_key]] += _matching_pods(pod, c, node)
    return _Counts(constraints, counts)


class PodTopologySpread(BasePlugin):
    name = NAME
    weight = 2
    event_names = (
        fw.ASSIGNED_POD_ADD,
        fw.ASSIGNED_POD_UPDATE,
        fw.ASSIGNED_POD_DELETE,
        fw.NODE_ADD,
        fw.NODE_UPDATE,
        fw.NODE_DELETE,
    )

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        hard = tuple(c for c in pod.spread if c.hard)
        if not hard:
            state.skip_filter.add(NAME)
            return None, None
        state.data[NAME] = _count(pod, hard, snap.nodes)
        return None, None

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, sign: int) -> None:
        st = state.data.get(NAME)
        if not isinstance(st, _Counts) or other.namespace != pod.namespace:
            return
        for i, c in enumerate(st.constraints):
            value = node.labels.get(c.topology_key)
            if value is not None and value in st.counts[i] and c.selector.matches(other.labels):
                st.counts[i][value] += sign

    def add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, other, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, other, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st = state.data.get(NAME)
        if not isinstance(st, _Counts):
            return None
        for i, c in enumerate(st.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                return fw.unresolvable(NAME, MISSING_LABEL)
            counts = st.counts[i]
            lowest = min(counts.values()) if counts else 0
            if len(counts) < c.min_domains:
                lowest = 0
            own = 1 if c.selector.matches(pod.labels) else 0
            if counts.get(value, 0) + own - lowest > c.max_skew:
                return fw.unschedulable(NAME, REASON)
        return None

    # ------------------------------------------------------------------ score

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        soft = tuple(c for c in pod.spread if not c.hard)
        if not soft:
            return False
        state.data[NAME + "/score"] = _count(pod, soft, snap.nodes)
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        st = state.data.get(NAME + "/score")
        if not isinstance(st, _Counts):
            return 0
        total = 0.0
        for i, c in enumerate(st.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                return -1  # ignored node: scored 0 after normalising
            weight = math.log(len(st.counts[i]) + 2)
            total += st.counts[i].get(value, 0) * weight + (c.max_skew - 1)
        return round(total)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        valid = [s for s in scores if s >= 0]
        if not valid:
            return
        lo, hi = min(valid), max(valid)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - s) // hi
