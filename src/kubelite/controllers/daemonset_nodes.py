"""Which nodes a DaemonSet runs on: pure helpers.

Mirrors ``NodeShouldRunDaemonPod`` of ``pkg/controller/daemon`` and the helpers it uses:

* the pod is the template with the DaemonSet default tolerations added
  (``util.AddOrUpdateDaemonPodTolerations``): ``not-ready``/``unreachable`` NoExecute,
  ``disk-pressure``/``memory-pressure``/``pid-pressure``/``unschedulable`` NoSchedule,
  ``network-unavailable`` NoSchedule for hostNetwork pods;
* it *should run* on a node when ``spec.nodeName`` (if set) names it, the nodeSelector and
  required node affinity match it, and every NoSchedule/NoExecute taint is tolerated;
* it *should continue running* when only NoSchedule taints are untolerated;
* created pods get the required node affinity ``metadata.name In [node]``
  (``ReplaceDaemonSetPodNodeNameNodeAffinity``) so the default scheduler binds them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.podhealth import tolerates

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def default_tolerations(host_network: bool) -> list[Obj]:
    out = [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
        {"key": DISK_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": MEMORY_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": PID_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
    ]
    if host_network:
        out.append({"key": NETWORK_UNAVAILABLE, "operator": "Exists", "effect": "NoSchedule"})
    return out


def _same_toleration(a: Obj, b: Obj) -> bool:
    """``Toleration.MatchToleration``: same key, operator, value and effect."""
    return all((a.get(k) or "") == (b.get(k) or "") for k in ("key", "value", "effect")) and (
        a.get("operator") or "Equal"
    ) == (b.get("operator") or "Equal")


def add_default_tolerations(pod_spec: Obj) -> None:
    """``AddOrUpdateDaemonPodTolerations`` (in place): add each default unless present."""
    tolerations = list(pod_spec.get("tolerations") or [])
    for tol in default_tolerations(bool(pod_spec.get("hostNetwork"))):
        if not any(_same_toleration(t, tol) for t in tolerations):
            tolerations.append(tol)
    pod_spec["tolerations"] = tolerations


def _requirement_matches(req: Obj, value: str | None) -> bool:
    op = req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: Obj, node: Obj) -> bool:
    """A ``NodeSelectorTerm``: all expressions (labels) and fields (``metadata.name``) match;
    an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    meta = node.get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    for req in exprs:
        if not _requirement_matches(req, labels.get(str(req.get("key")))):
            return False
    for req in fields:
        if req.get("key") != "metadata.name" or req.get("operator") not in ("In", "NotIn"):
            return False
        if not _requirement_matches(req, str(meta.get("name", ""))):
            return False
    return True


def required_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    """``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``: nodeSelector AND terms (ORed)."""
    labels: Mapping[str, str] = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def untolerated(taints: list[Obj], tolerations: list[Obj], effects: tuple[str, ...]) -> Obj | None:
    """``FindMatchingUntoleratedTaint`` restricted to ``effects``."""
    for taint in taints:
        if taint.get("effect") not in effects:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def daemon_pod_spec(ds: Obj) -> Obj:
    spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    add_default_tolerations(spec)
    return spec


def should_run(node: Obj, ds: Obj, pod_spec: Obj | None = None) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (should run, should continue running)."""
    spec = pod_spec if pod_spec is not None else daemon_pod_spec(ds)
    name = (node.get("metadata") or {}).get("name")
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not required_affinity_matches(spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = spec.get("tolerations") or []
    if untolerated(taints, tolerations, ("NoSchedule", "NoExecute")) is not None:
        return False, untolerated(taints, tolerations, ("NoExecute",)) is None
    return True, True


Eligibility = dict[str, tuple[bool, bool]]  # node name -> (should run, should continue running)


@dataclass
class EligibilityCache:
    """:func:`should_run` for every node, remembered between syncs of one DaemonSet.

    The controller syncs a DaemonSet on every event of its pods (thousands while it rolls
    out) and each sync needs every node's verdict; only a new pod template (generation)
    or a changed Node object can change one.  Informer objects are replaced, never
    mutated, so a node whose object is the same one as last time keeps its verdict.
    """

    template: tuple[str, int] = ("", -1)  # (DaemonSet uid, generation) of the verdicts
    spec: Obj = field(default_factory=dict)
    verdicts: dict[str, tuple[Obj, bool, bool]] = field(default_factory=dict)

    def compute(self, ds: Obj, nodes: list[Obj]) -> Eligibility:
        meta = ds.get("metadata") or {}
        template = (str(meta.get("uid") or ""), int(meta.get("generation") or 0))
        if template != self.template or not meta.get("generation"):
            self.template, self.spec, self.verdicts = template, daemon_pod_spec(ds), {}
        old, fresh = self.verdicts, {}
        out: Eligibility = {}
        for node in nodes:
            name = str((node.get("metadata") or {}).get("name") or "")
            hit = old.get(name)
            if hit is not None and hit[0] is node:
                run, keep = hit[1], hit[2]
            else:
                run, keep = should_run(node, ds, self.spec)
            fresh[name] = (node, run, keep)
            out[name] = (run, keep)
        self.verdicts = fresh
        return out


def pin_to_node(pod_spec: Obj, node_name: str) -> None:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity`` (in place)."""
    affinity = pod_spec.setdefault("affinity", {}) or {}
    pod_spec["affinity"] = affinity
    node_affinity = affinity.setdefault("nodeAffinity", {}) or {}
    affinity["nodeAffinity"] = node_affinity
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
        ]
    }


def target_node(pod: Obj) -> str | None:
    """``util.GetTargetNodeName``: ``spec.nodeName``, else the pinned ``metadata.name``."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            values = req.get("values") or []
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None
