"""Event recorder: Kubernetes core/v1 Events about objects, as controllers emit them.

Like client-go's recorder: repeated events (same object, reason and message) within the
aggregation window bump ``count`` and ``lastTimestamp`` of one Event instead of creating
new ones; a new Event is named ``<object>.<hex of the Unix time in nanoseconds>`` as
client-go's ``makeEvent`` names it.  Recording never fails the caller: errors are logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource

log = logging.getLogger("kubelite.events")
Obj = dict[str, Any]
EVENTS = Resource("", "v1", "events")
MAX_TRACKED = 4096


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_reference(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return ref


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, int]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_ns = 0

    def _event_name(self, involved: str) -> str:
        """``fmt.Sprintf("%v.%x", ref.Name, t.UnixNano())``; strictly increasing here, so two
        events of one object within a clock tick still get distinct names."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return f"{involved}.{self._last_ns:x}"

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record asynchronously (fire and forget, like client-go's broadcaster)."""
        task = asyncio.ensure_future(self.record(obj, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        ref = object_reference(obj)
        namespace = ref.get("namespace") or "default"
        key = (ref["uid"], reason, message, type_)
        try:
            seen = self._seen.get(key)
            if seen is not None:
                name, count = seen
                patch = {"count": count + 1, "lastTimestamp": _now()}
                try:
                    await self.client.patch(EVENTS, namespace, name, patch)
                    self._seen[key] = (name, count + 1)
                    self._seen.move_to_end(key)
                    return
                except errors.NotFound:
                    self._seen.pop(key, None)
            name = self._event_name(ref["name"])
            now = _now()
            ev = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref,
                "reason": reason,
                "message": message,
                "type": type_,
                "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "eventTime": None,
                "count": 1,
                "reportingComponent": self.component,
                "reportingInstance": self.host or self.component,
            }
            await self.client.create(EVENTS, namespace, ev)
            self._seen[key] = (name, 1)
            if len(self._seen) > MAX_TRACKED:
                self._seen.popitem(last=False)
        except Exception as e:  # an event is best effort
            log.warning("event not recorded reason=%s object=%s error=%s", reason, ref.get("name"), e)

    async def flush(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
