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
        self._default: int | None = None  # the globalDefault value, until a class changes
        if informer is not None:
            informer.add_handler(self._class_changed)

    def _class_changed(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self._default = None

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
        """The lowest ``globalDefault`` class value (0 without one), kept until a class changes."""
        if self.informer is None:
            return 0
        if self._default is None:
            values = [int(pc.get("value") or 0) for pc in self.informer.list() if pc.get("globalDefault")]
            self._default = min(values, default=0)
        return self._default
