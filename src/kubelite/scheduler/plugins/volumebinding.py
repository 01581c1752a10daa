"""VolumeBinding (basics): a pod's PersistentVolumeClaims must exist; bound claims pin
the pod to the nodes their PersistentVolume's ``nodeAffinity`` allows (local volumes).

PreFilter rejects the pod everywhere for a missing claim (``persistentvolumeclaim "x"
not found``) or an unbound claim of an ``Immediate`` StorageClass (``pod has unbound
immediate PersistentVolumeClaims``); Filter rejects nodes outside a bound volume's node
affinity (``node(s) had volume node affinity conflict``).  Unbound
``WaitForFirstConsumer`` claims are left to the provisioner: the binder annotates them
with ``volume.kubernetes.io/selected-node`` before binding the pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import CycleState, Listers, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import NodeSelector, PodInfo, parse_node_selector
from kubelite.scheduler.snapshot import Snapshot

NAME = "VolumeBinding"
CONFLICT = "node(s) had volume node affinity conflict"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


@dataclass
class _State:
    pinned: list[NodeSelector] = field(default_factory=list)
    delayed: list[str] = field(default_factory=list)  # claims to annotate with the chosen node


def delayed_claims(state: CycleState) -> list[str]:
    st = state.data.get(NAME)
    return list(st.delayed) if isinstance(st, _State) else []


class VolumeBinding(BasePlugin):
    name = NAME
    event_names = (fw.PV_CHANGE, fw.PVC_CHANGE, fw.STORAGE_CLASS_CHANGE, fw.NODE_ADD, fw.NODE_UPDATE)

    def __init__(self, listers: Listers) -> None:
        self.listers = listers

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        if not pod.claims:
            state.skip_filter.add(NAME)
            return None, None
        st = _State()
        for claim in pod.claims:
            status = self._claim(st, pod.namespace, claim)
            if status is not None:
                return None, status
        state.data[NAME] = st
        return None, None

    def _claim(self, st: _State, namespace: str, claim: str) -> Status | None:
        pvc = self.listers.pvc(namespace, claim)
        if pvc is None:
            return fw.unresolvable(NAME, f'persistentvolumeclaim "{claim}" not found')
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            return fw.unresolvable(NAME, f'persistentvolumeclaim "{claim}" is being deleted')
        spec = pvc.get("spec") or {}
        volume = spec.get("volumeName")
        if volume:
            pv = self.listers.pv(str(volume))
            if pv is None:
                return fw.unresolvable(NAME, f'persistentvolume "{volume}" not found')
            required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
            if required:
                st.pinned.append(parse_node_selector(required))
            return None
        sc = self.listers.storage_class(str(spec.get("storageClassName") or ""))
        if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            st.delayed.append(claim)
            return None
        return fw.unresolvable(NAME, UNBOUND_IMMEDIATE)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st = state.data.get(NAME)
        if not isinstance(st, _State):
            return None
        for sel in st.pinned:
            if not sel.matches(node.name, node.labels):
                return fw.unresolvable(NAME, CONFLICT)
        return None
