"""The scheduler cache: nodes and the pods assigned or assumed onto them.

Like kube-scheduler's ``internal/cache``: when a pod is picked for a node it is
*assumed* there at once (its requests count against the node) and binding happens in the
background; the informer's update with ``spec.nodeName`` set later *confirms* it, and a
failed binding *forgets* it.  Terminal pods (Succeeded/Failed) free their resources, as
the scheduler's pod informer filters them out.
"""

from __future__ import annotations

from typing import Any

from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.snapshot import Snapshot

Obj = dict[str, Any]


def _node_signature(node: Obj) -> tuple[Any, ...]:
    """The parts of a Node that scheduling depends on (heartbeats are not among them)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return (
        meta.get("labels"),
        spec.get("taints"),
        spec.get("unschedulable"),
        status.get("allocatable") or status.get("capacity"),
    )


class Cache:
    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.infos: dict[str, NodeInfo] = {}
        self.pods: dict[str, PodInfo] = {}
        self.assumed: set[str] = set()

    # ------------------------------------------------------------------ nodes

    def _info(self, name: str) -> NodeInfo:
        ni = self.infos.get(name)
        if ni is None:
            ni = self.infos[name] = NodeInfo(name)
        return ni

    def set_node(self, node: Obj) -> bool:
        """Add or update a Node; True when something scheduling depends on changed."""
        name = str((node.get("metadata") or {}).get("name", ""))
        ni = self._info(name)
        old = ni.obj
        if old is not None and _node_signature(old) == _node_signature(node):
            ni.obj = node
            return False
        had_prefer = ni.prefer_taints
        ni.set_node(node)
        if ni.index < 0:
            self.snapshot.add(ni)
        else:
            self.snapshot.node_changed(ni, had_prefer)
        return True

    def remove_node(self, name: str) -> None:
        ni = self.infos.get(name)
        if ni is None:
            return
        self.snapshot.remove(ni)
        ni.set_node(None)
        if not ni.pods:
            del self.infos[name]

    # ------------------------------------------------------------------ pods

    def assume(self, pod: PodInfo, node: str) -> PodInfo:
        """Count ``pod`` on ``node`` before the binding is confirmed."""
        assumed = pod.with_node(node)
        self._place(assumed)
        self.assumed.add(pod.key)
        return assumed

    def forget(self, key: str) -> None:
        """Undo :meth:`assume` after a failed binding."""
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def confirm(self, key: str, obj: Obj) -> None:
        """The informer saw an assumed pod bound as assumed: it is counted already, only
        its object is now the API's (``cache.AddPod`` of an assumed pod)."""
        self.assumed.discard(key)
        pod = self.pods.get(key)
        if pod is not None:
            pod.obj = obj

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def set_pod(self, pod: PodInfo) -> None:
        """An assigned pod from the informer (confirms an assumed one)."""
        self.assumed.discard(pod.key)
        self._unplace(pod.key)
        self._place(pod)

    def remove_pod(self, key: str) -> PodInfo | None:
        self.assumed.discard(key)
        return self._unplace(key)

    def _place(self, pod: PodInfo) -> None:
        ni = self._info(pod.node_name)
        ni.add_pod(pod)
        self.pods[pod.key] = pod
        self.snapshot.pod_added(pod, ni)
        self.snapshot.refresh(ni)

    def _unplace(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        ni = self.infos.get(pod.node_name)
        if ni is not None:
            ni.remove_pod(key)
            self.snapshot.refresh(ni)
            if ni.obj is None and not ni.pods:
                del self.infos[ni.name]
        self.snapshot.pod_removed(pod)
        return pod

    def pods_on(self, node: str) -> list[PodInfo]:
        ni = self.infos.get(node)
        return list(ni.pods.values()) if ni is not None else []
