"""NodeAffinity: ``nodeSelector`` and required node affinity filter, preferred terms score.

Filter reason ``node(s) didn't match Pod's node affinity/selector`` (unresolvable by
preemption).  PreFilter narrows the search like kube-scheduler 1.32's: when every required
term pins ``metadata.name In [...]`` (a DaemonSet pod pins exactly one node), only the
union of those names is filtered; terms that contradict each other reject the pod with
``pod affinity terms conflict``.  Score: the sum of the weights of the preferred terms a
node matches, scaled so the best node gets 100.
"""

from __future__ import annotations

from kubelite.api.selectors import Operator
from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import NodeSelector, PodInfo
from kubelite.scheduler.snapshot import Snapshot

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"
REASON_CONFLICT = "pod affinity terms conflict"


def pinned_node_names(req: NodeSelector) -> frozenset[str] | None:
    """The node names the required terms allow, or None when some term allows any name.

    ``NodeAffinity.PreFilter``: within a term the ``metadata.name In`` field requirements
    are ANDed (intersection), the terms are ORed (union); a term without one allows all.
    """
    names: set[str] = set()
    for term in req.terms:
        term_names: set[str] | None = None
        for r in term.fields:
            if r.key == "metadata.name" and r.operator is Operator.IN:
                term_names = set(r.values) if term_names is None else term_names & set(r.values)
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


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
        req = pod.required_node_affinity
        if not pod.node_selector and req is None:
            state.skip_filter.add(NAME)
            return None, None
        if req is None or not req.terms:
            return None, None
        names = pinned_node_names(req)
        if names is None:
            return None, None
        if not names:
            return None, fw.unresolvable(NAME, REASON_CONFLICT)
        return PreFilterResult(names), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if matches_node(pod, node) else fw.unresolvable(NAME, REASON)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        return bool(pod.preferred_node_affinity)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return sum(w for w, term in pod.preferred_node_affinity if term.matches(node.name, node.labels))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        fw.default_normalize(scores, reverse=False)
