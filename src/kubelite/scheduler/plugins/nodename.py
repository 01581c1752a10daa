"""NodeName: a pod naming a node in ``spec.nodeName`` only fits that node."""

from __future__ import annotations

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.snapshot import Snapshot

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"


def _wanted(pod: PodInfo) -> str:
    return str((pod.obj.get("spec") or {}).get("nodeName") or "")


class NodeName(BasePlugin):
    name = NAME
    event_names = (fw.NODE_ADD, fw.NODE_UPDATE)

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        wanted = _wanted(pod)
        if not wanted:
            state.skip_filter.add(NAME)
            return None, None
        return PreFilterResult(frozenset({wanted})), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        wanted = _wanted(pod)
        if wanted and wanted != node.name:
            return fw.unresolvable(NAME, REASON)
        return None
