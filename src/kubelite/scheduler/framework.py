"""The scheduling framework: plugin interfaces, statuses and per-cycle state.

Mirrors kube-scheduler's framework (``pkg/scheduler/framework/interface.go``): a pod goes
through PreFilter (once per pod), Filter (per node), PreScore/Score/NormalizeScore (per
feasible node) and, when no node fits, PostFilter (preemption).  Every plugin that
rejects a pod returns a :class:`Status` carrying the human reason that ends up in the
FailedScheduling event (``Insufficient cpu``, ``node(s) had untolerated taint {k: v}``).
Filters return ``None`` for success, as the Go framework returns a nil status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kubelite.scheduler.nodeinfo import NodeInfo
    from kubelite.scheduler.podinfo import PodInfo
    from kubelite.scheduler.snapshot import Snapshot

MAX_NODE_SCORE = 100


class Code(IntEnum):
    """``framework.Code``."""

    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(slots=True)
class Status:
    """A plugin's verdict: a code, the reasons shown to users and the plugin's name."""

    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


def unschedulable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons, plugin)


def unresolvable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


SKIP = Status(Code.SKIP)

# Cluster events that can make a rejected pod schedulable (``framework.ClusterEvent``).
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
NODE_DELETE = "NodeDelete"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
PV_CHANGE = "PersistentVolumeChange"
PVC_CHANGE = "PersistentVolumeClaimChange"
STORAGE_CLASS_CHANGE = "StorageClassChange"
NAMESPACE_CHANGE = "NamespaceChange"
UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"
FORCE_ACTIVATE = "ForceActivate"


@dataclass
class CycleState:
    """Per-pod scratch space shared by the plugins within one scheduling cycle."""

    data: dict[str, Any] = field(default_factory=dict)
    skip_filter: set[str] = field(default_factory=set)
    skip_score: set[str] = field(default_factory=set)

    def clone(self) -> CycleState:
        return CycleState(dict(self.data), set(self.skip_filter), set(self.skip_score))


@dataclass(slots=True)
class PreFilterResult:
    """Nodes a PreFilter plugin narrowed the search to (None = all nodes)."""

    node_names: frozenset[str] | None = None


class Plugin(Protocol):
    name: str

    def events(self) -> Iterable[str]:
        """Cluster events after which pods this plugin rejected are worth retrying."""
        ...


class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]: ...

    def add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        """PreFilterExtensions.AddPod: ``other`` now counts on ``node`` (preemption, nominated pods)."""
        ...

    def remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        """PreFilterExtensions.RemovePod."""
        ...


class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...


class ScorePlugin(Plugin, Protocol):
    weight: int

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        """Prepare scoring; False means skip this plugin for the pod (``Skip`` status)."""
        ...

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Rescale ``scores`` in place to 0..100 (no-op for plugins that already do)."""
        ...


def default_normalize(scores: list[int], reverse: bool) -> None:
    """``helper.DefaultNormalizeScore``: scale to 0..100 by the maximum, optionally reversed."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


class Listers(Protocol):
    """Read access to the informer caches plugins need beyond nodes and pods."""

    def namespace_labels(self, namespace: str) -> dict[str, str] | None: ...

    def pvc(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def pv(self, name: str) -> dict[str, Any] | None: ...

    def storage_class(self, name: str) -> dict[str, Any] | None: ...
