"""TaintToleration: NoSchedule/NoExecute taints a pod does not tolerate rule a node out;
untolerated PreferNoSchedule taints lower its score.

Filter reason ``node(s) had untolerated taint {key: value}`` (the first such taint).
"""

from __future__ import annotations

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, Status
from kubelite.scheduler.nodeinfo import NO_SCHEDULE_EFFECTS, NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import PodInfo, Taint, Toleration
from kubelite.scheduler.snapshot import Snapshot

NAME = "TaintToleration"


def untolerated(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...]) -> Taint | None:
    """The first NoSchedule/NoExecute taint no toleration matches (``FindMatchingUntoleratedTaint``)."""
    for taint in taints:
        if taint.effect in NO_SCHEDULE_EFFECTS and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


class TaintToleration(BasePlugin):
    name = NAME
    weight = 3
    event_names = (fw.NODE_ADD, fw.NODE_UPDATE)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.blocking_taints:
            return None
        taint = untolerated(node.taints, pod.tolerations)
        if taint is None:
            return None
        return fw.unresolvable(NAME, f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}")

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        return snap.prefer_taint_nodes > 0

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        prefer = [t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")]
        return sum(
            1
            for taint in node.taints
            if taint.effect == "PreferNoSchedule" and not any(t.tolerates(taint) for t in prefer)
        )

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        fw.default_normalize(scores, reverse=True)
