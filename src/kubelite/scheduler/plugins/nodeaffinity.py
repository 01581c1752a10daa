"""NodeAffinity: ``nodeSelector`` and required node affinity filter, preferred terms score.

Filter reason ``node(s) didn't match Pod's node affinity/selector`` (unresolvable by
preemption).  Score: the sum of the weights of the preferred terms a node matches,
scaled so the best node gets 100.
"""

from __future__ import annotations

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.snapshot import Snapshot

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"


def matches_node(pod: PodInfo, node: NodeInfo) -> bool:
    """``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``."""
    labels = node.labels
    for k, v in pod.node_selector.items():
        if labels.get(k) != v:
            return False
    req = pod.required_node_affinity
    return req is None or req.matches(node.name, labels)


class NodeAffinity(BasePlugin):
    name = NAME
    weight = 2
    event_names = (fw.NODE_ADD, fw.NODE_UPDATE)

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        if not pod.node_selector and pod.required_node_affinity is None:
            state.skip_filter.add(NAME)
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if matches_node(pod, node) else fw.unresolvable(NAME, REASON)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        return bool(pod.preferred_node_affinity)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return sum(w for w, term in pod.preferred_node_affinity if term.matches(node.name, node.labels))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        fw.default_normalize(scores, reverse=False)
