"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods tolerating
the ``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import PodInfo, Taint

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


class NodeUnschedulable(BasePlugin):
    name = NAME
    event_names = (fw.NODE_ADD, fw.NODE_UPDATE)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable:
            return None
        if any(t.tolerates(_TAINT) for t in pod.tolerations):
            return None
        return fw.unresolvable(NAME, REASON)
