"""NodePorts: a pod's ``hostPort``s must be free on the node (0.0.0.0 clashes with any IP)."""

from __future__ import annotations

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.snapshot import Snapshot

NAME = "NodePorts"
REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(pod: PodInfo, node: NodeInfo) -> bool:
    used = node.used_ports
    for ip, proto, port in pod.host_ports:
        for uip, uproto, uport in used:
            if uport == port and uproto == proto and (ip == uip or ANY_IP in (ip, uip)):
                return True
    return False


class NodePorts(BasePlugin):
    name = NAME
    event_names = (fw.NODE_ADD, fw.ASSIGNED_POD_DELETE)

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        if not pod.host_ports:
            state.skip_filter.add(NAME)
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return fw.unschedulable(NAME, REASON) if conflicts(pod, node) else None
