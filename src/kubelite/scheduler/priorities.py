"""Pod priority from PriorityClasses, for API servers that leave ``spec.priority`` unset.

The Priority admission plugin of kube-apiserver writes ``spec.priority`` from
``spec.priorityClassName`` (or the ``globalDefault`` class, else 0).  When a pod arrives
without it, the scheduler resolves it the same way from its PriorityClass informer.
"""

from __future__ import annotations

from typing import Any

from kubelite.machinery.informer import Informer

Obj = dict[str, Any]
SYSTEM_CLASSES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}


class Priorities:
    def __init__(self, informer: Informer | None) -> None:
        self.informer = informer

    def resolve(self, pod: Obj) -> int | None:
        spec = pod.get("spec") or {}
        if isinstance(spec.get("priority"), int):
            return None  # the API server already resolved it
        name = spec.get("priorityClassName")
        if name:
            return self._value(str(name))
        return self._global_default()

    def _value(self, name: str) -> int:
        if name in SYSTEM_CLASSES:
            return SYSTEM_CLASSES[name]
        pc = self.informer.get(name) if self.informer is not None else None
        return int(pc.get("value") or 0) if pc else 0

    def _global_default(self) -> int:
        if self.informer is None:
            return 0
        best: int | None = None
        for pc in self.informer.list():
            if pc.get("globalDefault"):
                v = int(pc.get("value") or 0)
                best = v if best is None else min(best, v)
        return best or 0
