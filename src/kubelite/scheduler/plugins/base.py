"""Do-nothing defaults for the optional plugin hooks."""

from __future__ import annotations

from collections.abc import Iterable

from kubelite.scheduler.framework import CycleState, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.snapshot import Snapshot


class BasePlugin:
    name = ""
    weight = 1
    event_names: tuple[str, ...] = ()

    def events(self) -> Iterable[str]:
        return self.event_names

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        return None, None

    def add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        return True

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        return None
