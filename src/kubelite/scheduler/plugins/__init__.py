"""The default plugin set of kube-scheduler 1.32, each in its own module.

:func:`default_plugins` returns them in kube-scheduler's order with the default
profile's score weights (TaintToleration 3, NodeAffinity 2, InterPodAffinity 2,
PodTopologySpread 2, NodeResourcesFit 1, NodeResourcesBalancedAllocation 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelite.scheduler.framework import FilterPlugin, Listers, PreFilterPlugin, ScorePlugin
from kubelite.scheduler.plugins.interpodaffinity import InterPodAffinity
from kubelite.scheduler.plugins.nodeaffinity import NodeAffinity
from kubelite.scheduler.plugins.nodename import NodeName
from kubelite.scheduler.plugins.nodeports import NodePorts
from kubelite.scheduler.plugins.noderesources import BalancedAllocation, NodeResourcesFit
from kubelite.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.podtopologyspread import PodTopologySpread
from kubelite.scheduler.plugins.tainttoleration import TaintToleration
from kubelite.scheduler.plugins.volumebinding import VolumeBinding


@dataclass
class PluginSet:
    pre_filter: list[PreFilterPlugin] = field(default_factory=list)
    filter: list[FilterPlugin] = field(default_factory=list)
    score: list[ScorePlugin] = field(default_factory=list)


def default_plugins(listers: Listers) -> PluginSet:
    fit = NodeResourcesFit()
    name = NodeName()
    unsched = NodeUnschedulable()
    affinity = NodeAffinity()
    taints = TaintToleration()
    ports = NodePorts()
    volumes = VolumeBinding(listers)
    spread = PodTopologySpread()
    podaff = InterPodAffinity(listers)
    return PluginSet(
        pre_filter=[fit, name, affinity, ports, volumes, spread, podaff],
        filter=[unsched, name, taints, affinity, ports, fit, volumes, spread, podaff],
        score=[taints, affinity, fit, BalancedAllocation(), spread, podaff],
    )
