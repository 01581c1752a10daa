"""Taint eviction controller: pods leave nodes with NoExecute taints they do not tolerate.

Mirrors ``pkg/controller/tainteviction`` (the taint manager of the node lifecycle
controller): a pod bound to a node with NoExecute taints is deleted at once when some
taint is not tolerated, after the smallest ``tolerationSeconds`` of the tolerations used
when all are (never, when one of them has no ``tolerationSeconds``).  The clock starts
when the controller first sees the pod on the tainted node; if the taints go away first
the eviction is cancelled.  Events ``TaintManagerEviction`` ("Marking for deletion Pod
ns/name", "Cancelling deletion of Pod ns/name"); the pod gets the ``DisruptionTarget``
condition (reason ``DeletionByTaintManager``) before it is deleted, so its controller
replaces it on another node.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import (
    is_terminal,
    is_terminating,
    meta,
    node_name_index,
    now_rfc3339,
    set_condition,
    tolerates,
)
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer, object_key
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.tainteviction")
Obj = dict[str, Any]
NODES = Resource("", "v1", "nodes", namespaced=False)
PODS = Resource("", "v1", "pods")
FOREVER = -1.0


def no_execute_taints(node: Obj | None) -> list[Obj]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def min_toleration_seconds(pod: Obj, taints: list[Obj]) -> float | None:
    """None: some taint is not tolerated (evict now); FOREVER: tolerated for good; else seconds."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    least = FOREVER
    for taint in taints:
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            return None
        for t in used:
            seconds = t.get("tolerationSeconds")
            if seconds is None:
                continue
            value = max(0.0, float(seconds))
            least = value if least == FOREVER else min(least, value)
    return least


class TaintEvictionController:
    def __init__(self, client: Client, recorder: EventRecorder, nodes: Informer, pods: Informer) -> None:
        self.client = client
        self.recorder = recorder
        self.nodes = nodes
        self.pods = pods
        self.scheduled: dict[str, float] = {}  # pod key -> monotonic time the countdown started
        self.ctrl = Controller("taint-eviction", self.reconcile, workers=2)
        pods.add_indexer("nodeName", node_name_index)
        nodes.add_handler(self._on_node)
        pods.add_handler(self._on_pod)

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if no_execute_taints(old) == no_execute_taints(new):
            return
        for pod in self.pods.by_index("nodeName", key):
            self.ctrl.queue.add(object_key(pod))

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self.scheduled.pop(key, None)
            return
        if key in self.scheduled or no_execute_taints(
            self.nodes.get(str((new.get("spec") or {}).get("nodeName") or ""))
        ):
            self.ctrl.queue.add(key)

    async def start(self) -> None:
        for node in self.nodes.list():
            if no_execute_taints(node):
                for pod in self.pods.by_index("nodeName", meta(node)["name"]):
                    self.ctrl.queue.add(object_key(pod))
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    def _cancel(self, key: str, pod: Obj | None) -> None:
        if self.scheduled.pop(key, None) is not None and pod is not None:
            self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {key}")

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or is_terminating(pod) or is_terminal(pod):
            self.scheduled.pop(key, None)
            return None
        taints = no_execute_taints(self.nodes.get(str((pod.get("spec") or {}).get("nodeName") or "")))
        if not taints:
            self._cancel(key, pod)
            return None
        seconds = min_toleration_seconds(pod, taints)
        if seconds == FOREVER:
            self._cancel(key, pod)
            return None
        now = time.monotonic()
        started = self.scheduled.setdefault(key, now)
        remaining = 0.0 if seconds is None else started + seconds - now
        if remaining > 0:
            return remaining
        await self._evict(key, pod)
        return None

    async def _evict(self, key: str, pod: Obj) -> None:
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        ns, name = meta(pod)["namespace"], meta(pod)["name"]
        cond = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        }
        body = dict(pod)
        status = dict(pod.get("status") or {})
        status["conditions"] = set_condition(list(status.get("conditions") or []), cond, now_rfc3339())
        body["status"] = status
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            await self.client.update(PODS, ns, body, subresource="status")
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(PODS, ns, name, preconditions={"uid": meta(pod).get("uid")})
        self.scheduled.pop(key, None)
        log.info("pod evicted for NoExecute taint pod=%s", key)


def new(ctx: Any) -> TaintEvictionController:
    return TaintEvictionController(
        ctx.client,
        ctx.recorder("taint-eviction-controller"),
        ctx.informers.get(NODES),
        ctx.informers.get(PODS),
    )
