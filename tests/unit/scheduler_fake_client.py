"""An in-memory stand-in for :class:`kubelite.client.base.Client` (scheduler unit tests only).

Implements list, watch, create (including ``pods/binding``), patch (merge, with the
``conditions`` list merged by ``type`` like a strategic merge patch) and delete.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Resource, WatchEvent

Obj = dict[str, Any]


def _merge(dst: Obj, patch: Obj) -> None:
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        elif k == "conditions" and isinstance(v, list):
            conds = {c["type"]: c for c in dst.get(k) or []}
            for c in v:
                conds[c["type"]] = {**conds.get(c["type"], {}), **c}
            dst[k] = list(conds.values())
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.watchers: dict[str, list[asyncio.Queue[WatchEvent]]] = {}
        self.rv = itertools.count(1)
        self.bindings: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.fail_bindings = 0

    # ------------------------------------------------------------------ helpers for tests

    def put(self, plural: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        key = (plural, meta.get("namespace", ""), meta["name"])
        kind = "MODIFIED" if key in self.objects else "ADDED"
        meta["resourceVersion"] = str(next(self.rv))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[key] = obj
        self._notify(plural, kind, obj)
        return obj

    def remove(self, plural: str, namespace: str, name: str) -> None:
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is not None:
            self._notify(plural, "DELETED", obj)

    def get_obj(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((plural, namespace, name))

    def _notify(self, plural: str, kind: str, obj: Obj) -> None:
        for q in self.watchers.get(plural, []):
            q.put_nowait(WatchEvent(kind, copy.deepcopy(obj)))

    # ------------------------------------------------------------------ Client surface

    async def list(self, res: Resource, namespace: str = "", **_: Any) -> Obj:
        items = [copy.deepcopy(o) for (p, ns, _n), o in self.objects.items() if p == res.plural]
        return {"items": items, "metadata": {"resourceVersion": "0"}}

    async def watch(self, res: Resource, namespace: str = "", **_: Any) -> AsyncIterator[WatchEvent]:
        q: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self.watchers.setdefault(res.plural, []).append(q)
        try:
            while True:
                yield await q.get()
        finally:
            self.watchers[res.plural].remove(q)

    async def create(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", name: str = "", **_: Any
    ) -> Obj:
        if subresource == "binding":
            if self.fail_bindings:
                self.fail_bindings -= 1
                raise errors.InternalError("binding failed on purpose")
            pod = self.objects.get(("pods", namespace, name))
            if pod is None:
                raise errors.NotFound(f'pods "{name}" not found')
            pod = copy.deepcopy(pod)
            pod["spec"]["nodeName"] = obj["target"]["name"]
            self.bindings.append((name, obj["target"]["name"]))
            self.put("pods", pod)
            return {"kind": "Status", "status": "Success"}
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["namespace"] = namespace
        return self.put(res.plural, obj)

    async def patch(self, res: Resource, namespace: str, name: str, patch: Any, **_: Any) -> Obj:
        cur = self.objects.get((res.plural, namespace, name))
        if cur is None:
            raise errors.NotFound(f'{res.plural} "{name}" not found')
        new = copy.deepcopy(cur)
        _merge(new, patch)
        return self.put(res.plural, new)

    async def delete(self, res: Resource, namespace: str, name: str, **_: Any) -> Obj | None:
        if (res.plural, namespace, name) not in self.objects:
            raise errors.NotFound(f'{res.plural} "{name}" not found')
        self.deleted.append(name)
        self.remove(res.plural, namespace, name)
        return None

    async def close(self) -> None:
        return None
