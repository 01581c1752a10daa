"""Informer event handlers: keep the cache and the queue in step with the API.

Like kube-scheduler's ``eventhandlers.go``: assigned pods go to the cache (confirming
assumed ones), pending pods of this scheduler go to the queue, terminal pods free their
node, and every change that can make a parked pod fit (a node added or changed, an
assigned pod deleted or relabelled, a volume or claim changed) is turned into a cluster
event for the queue.  Node heartbeats, which change nothing the scheduler reads, are
ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.scheduler import framework as fw
from kubelite.scheduler.podinfo import DEFAULT_SCHEDULER, PodInfo, is_terminal, parse_pod

if TYPE_CHECKING:
    from kubelite.scheduler.scheduler import Scheduler

log = logging.getLogger("kubelite.scheduler")
Obj = dict[str, Any]


def _same_pod_spec(old: Obj | None, new: Obj) -> bool:
    """True when nothing the scheduler reads changed (status-only or annotation updates)."""
    if old is None:
        return False
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old.get("spec") == new.get("spec")
        and om.get("labels") == nm.get("labels")
        and om.get("deletionTimestamp") == nm.get("deletionTimestamp")
        and (old.get("status") or {}).get("nominatedNodeName")
        == (new.get("status") or {}).get("nominatedNodeName")
    )


def _is_binding_of(assumed: PodInfo, new: Obj) -> bool:
    """True when ``new`` is the assumed pod as its binding left it: bound to the assumed
    node, and nothing else the scheduler reads changed (so the parsed pod still holds)."""
    old = assumed.obj
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if new_spec.get("nodeName") != assumed.node_name or len(new_spec) != len(old_spec) + (
        "nodeName" not in old_spec
    ):
        return False
    if not all(k == "nodeName" or old_spec.get(k) == v for k, v in new_spec.items()):
        return False
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        om.get("labels") == nm.get("labels")
        and om.get("deletionTimestamp") == nm.get("deletionTimestamp")
        and (old.get("status") or {}).get("nominatedNodeName")
        == (new.get("status") or {}).get("nominatedNodeName")
    )


class Handlers:
    def __init__(self, sched: Scheduler) -> None:
        self.s = sched

    def _parse(self, obj: Obj) -> PodInfo | None:
        try:
            return parse_pod(obj, self.s.priorities.resolve(obj))
        except errors.APIError as e:
            log.warning("pod not schedulable key=%s error=%s", (obj.get("metadata") or {}).get("name"), e)
            return None

    # ------------------------------------------------------------------ pods

    def on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None or is_terminal(new):
            self._pod_gone(key)
            return
        if (new.get("spec") or {}).get("nodeName"):
            self._assigned(key, old, new)
        else:
            self._pending(key, old, new)

    def _pod_gone(self, key: str) -> None:
        s = self.s
        s.queue.delete(key)
        s.cache.snapshot.clear_nomination(key)
        if s.cache.remove_pod(key) is not None:
            s.event(fw.ASSIGNED_POD_DELETE)

    def _assigned(self, key: str, old: Obj | None, new: Obj) -> None:
        s = self.s
        s.queue.delete(key)
        s.cache.snapshot.clear_nomination(key)
        cached = s.cache.pods.get(key)
        if cached is not None and not s.cache.is_assumed(key) and _same_pod_spec(old, new):
            cached.obj = new
            return
        if cached is not None and s.cache.is_assumed(key) and _is_binding_of(cached, new):
            s.cache.confirm(key, new)  # the binding landed: no need to parse the pod again
            s.event(fw.ASSIGNED_POD_UPDATE)
            return
        pod = self._parse(new)
        if pod is None:
            return
        was_known = cached is not None
        s.cache.set_pod(pod)
        s.event(fw.ASSIGNED_POD_UPDATE if was_known else fw.ASSIGNED_POD_ADD)

    def _pending(self, key: str, old: Obj | None, new: Obj) -> None:
        s = self.s
        if s.cache.pods.get(key) is not None:  # was assigned/assumed; a pod never gets unbound
            if s.cache.is_assumed(key):
                return
            s.cache.remove_pod(key)
        spec = new.get("spec") or {}
        meta = new.get("metadata") or {}
        if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != s.name or meta.get("deletionTimestamp"):
            s.queue.delete(key)
            s.cache.snapshot.clear_nomination(key)
            return
        queued = s.queue.pods.get(key)
        if queued is not None and _same_pod_spec(old, new):
            queued.pod.obj = new
            return
        pod = self._parse(new)
        if pod is None:
            return
        if pod.nominated_node:
            s.cache.snapshot.nominate(pod, pod.nominated_node)
        else:
            s.cache.snapshot.clear_nomination(key)
        s.queue.add(pod)

    # ------------------------------------------------------------------ nodes and the rest

    def on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        s = self.s
        if new is None:
            s.cache.remove_node(key)
            s.event(fw.NODE_DELETE)
        elif s.cache.set_node(new):
            s.event(fw.NODE_ADD if old is None else fw.NODE_UPDATE)

    def on_change(self, event: str) -> Callable[[str, Obj | None, Obj | None], None]:
        def handler(key: str, old: Obj | None, new: Obj | None) -> None:
            self.s.event(event)

        return handler
