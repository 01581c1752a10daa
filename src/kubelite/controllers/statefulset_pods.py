"""StatefulSet pod identity, storage and health: pure helpers.

Mirrors ``pkg/controller/statefulset/stateful_set_utils.go``: a member pod is named
``<set>-<ordinal>``, has ``hostname`` = its name and ``subdomain`` = the governing
service, the labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index``
and ``controller-revision-hash`` (the revision *name*), and one PersistentVolumeClaim per
volumeClaimTemplate named ``<claim>-<set>-<ordinal>``.  PVC ownerReferences follow
``persistentVolumeClaimRetentionPolicy`` (whenDeleted/whenScaled: Retain | Delete).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from kubelite.api.podhealth import is_pod_ready, is_terminating, timestamp
from kubelite.controllers.history import REVISION_HASH_LABEL, controller_ref_to

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL_RE = re.compile(r"^(.*)-([0-9]+)$")


def _meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def _spec(obj: Obj) -> Obj:
    s: Obj = obj.get("spec") or {}
    return s


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """``getParentNameAndOrdinal``: ('', -1) when the name has no ordinal suffix."""
    m = _ORDINAL_RE.match(str(_meta(pod).get("name") or ""))
    if not m:
        return "", -1
    n = int(m.group(2))
    return m.group(1), n if n < 2**31 else -1


def ordinal(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def start_ordinal(sts: Obj) -> int:
    return int((_spec(sts).get("ordinals") or {}).get("start") or 0)


def replicas(sts: Obj) -> int:
    r = _spec(sts).get("replicas")
    return 1 if r is None else int(r)


def end_ordinal(sts: Obj) -> int:
    """The highest ordinal in range (``start - 1`` when scaled to zero)."""
    return start_ordinal(sts) + replicas(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    o = ordinal(pod)
    return start_ordinal(sts) <= o <= end_ordinal(sts)


def is_member(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(pod)[0] == _meta(sts).get("name")


def pod_name(sts: Obj, ord_: int) -> str:
    return f"{_meta(sts).get('name')}-{ord_}"


def claim_name(sts: Obj, claim: Obj, ord_: int) -> str:
    return f"{_meta(claim).get('name')}-{_meta(sts).get('name')}-{ord_}"


def pod_revision(pod: Obj) -> str:
    return str((_meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) or "")


# ------------------------------------------------------------------ pod state


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Obj) -> bool:
    """The API server gave it a phase (pods we only built in memory have none)."""
    return phase(pod) != ""


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def ready_since(pod: Obj) -> float | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return timestamp(c.get("lastTransitionTime")) or 0.0
    return None


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """``podutil.IsPodAvailable``: ready for at least ``minReadySeconds``."""
    since = ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or since + min_ready_seconds <= now


def is_running_and_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return phase(pod) == "Running" and is_available(pod, min_ready_seconds, now)


def is_unavailable(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """``isUnavailable``: not created, terminating, or not running-and-available."""
    return (
        not is_created(pod)
        or is_terminating(pod)
        or not is_running_and_available(pod, min_ready_seconds, now)
    )


def now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


# ------------------------------------------------------------------ identity and storage


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """``identityMatches``: name, namespace and the identity labels (hostname and subdomain
    are immutable once the pod exists)."""
    parent, ord_ = parent_and_ordinal(pod)
    meta = _meta(pod)
    labels = meta.get("labels") or {}
    name = meta.get("name")
    return (
        ord_ >= 0
        and parent == _meta(sts).get("name")
        and meta.get("namespace") == _meta(sts).get("namespace")
        and labels.get(POD_NAME_LABEL) == name
        and labels.get(POD_INDEX_LABEL) == str(ord_)
    )


def identity_labels(pod: Obj) -> dict[str, str]:
    """The identity labels ``pod`` must carry."""
    name = str(_meta(pod).get("name") or "")
    return {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal(pod))}


def storage_matches(sts: Obj, pod: Obj) -> bool:
    ord_ = ordinal(pod)
    if ord_ < 0:
        return False
    volumes = {v.get("name"): v for v in _spec(pod).get("volumes") or []}
    for claim in _spec(sts).get("volumeClaimTemplates") or []:
        vol = volumes.get(_meta(claim).get("name"))
        pvc = (vol or {}).get("persistentVolumeClaim") or {}
        if pvc.get("claimName") != claim_name(sts, claim, ord_):
            return False
    return True


def update_identity(sts: Obj, pod: Obj) -> None:
    """Set name, namespace, hostname, subdomain and the identity labels (in place)."""
    ord_ = ordinal(pod)
    meta, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
    meta["name"] = pod_name(sts, ord_)
    meta["namespace"] = _meta(sts).get("namespace")
    spec["hostname"] = meta["name"]
    service = _spec(sts).get("serviceName")
    if service:
        spec["subdomain"] = service
    else:
        spec.pop("subdomain", None)
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(ord_)


def claims_for(sts: Obj, ord_: int) -> dict[str, Obj]:
    """``getPersistentVolumeClaims``: template name -> the pod's PVC object."""
    match_labels = (_spec(sts).get("selector") or {}).get("matchLabels") or {}
    out: dict[str, Obj] = {}
    for template in _spec(sts).get("volumeClaimTemplates") or []:
        claim = copy.deepcopy(template)
        claim.pop("status", None)
        meta = claim.setdefault("metadata", {})
        tname = str(meta.get("name"))
        meta["name"] = claim_name(sts, template, ord_)
        meta["namespace"] = _meta(sts).get("namespace")
        meta["labels"] = {**(meta.get("labels") or {}), **match_labels}
        claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
        out[tname] = claim
    return out


def update_storage(sts: Obj, pod: Obj) -> None:
    """Point the claim volumes at the pod's PVCs, keeping the other volumes (in place)."""
    claims = claims_for(sts, ordinal(pod))
    spec = pod.setdefault("spec", {})
    volumes = [
        {"name": name, "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}}
        for name, c in claims.items()
    ]
    volumes += [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    if volumes:
        spec["volumes"] = volumes


def new_pod(sts: Obj, ord_: int, revision: str) -> Obj:
    """``newStatefulSetPod`` + ``setPodRevision``: the pod of ``ord_`` from ``sts``'s template."""
    template = copy.deepcopy(_spec(sts).get("template") or {})
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "name": pod_name(sts, ord_),
        "namespace": _meta(sts).get("namespace"),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [controller_ref_to(sts, "StatefulSet")],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}
    update_identity(sts, pod)
    update_storage(sts, pod)
    meta["labels"][REVISION_HASH_LABEL] = revision
    return pod


# ------------------------------------------------------------------ PVC retention


def retention(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled), Retain when unset."""
    policy = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain")


def _has_ref(claim: Obj, owner: Obj) -> bool:
    uid = _meta(owner).get("uid")
    return any(r.get("uid") == uid for r in _meta(claim).get("ownerReferences") or [])


def wanted_claim_owners(sts: Obj, pod: Obj) -> tuple[bool, bool]:
    """(reference the set?, reference the pod?) for a claim of ``pod`` under the policy."""
    when_deleted, when_scaled = retention(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    if when_scaled == "Delete" and when_deleted == "Delete":
        return not scaled_down, scaled_down
    if when_scaled == "Delete":
        return False, scaled_down
    return when_deleted == "Delete", False


def claim_owners_match(sts: Obj, pod: Obj, claim: Obj) -> bool:
    want_set, want_pod = wanted_claim_owners(sts, pod)
    return _has_ref(claim, sts) == want_set and (
        not _meta(pod).get("uid") or _has_ref(claim, pod) == want_pod
    )


def claim_owner_refs(sts: Obj, pod: Obj, claim: Obj) -> list[Obj]:
    """The claim's ownerReferences with the set/pod references made to match the policy."""
    set_uid, pod_uid = _meta(sts).get("uid"), _meta(pod).get("uid")
    refs = [r for r in _meta(claim).get("ownerReferences") or [] if r.get("uid") not in (set_uid, pod_uid)]
    if any(r.get("controller") for r in refs):
        return refs  # someone else controls it: leave it alone
    want_set, want_pod = wanted_claim_owners(sts, pod)
    if want_set:
        refs.append(controller_ref_to(sts, "StatefulSet"))
    if want_pod and pod_uid:
        refs.append(controller_ref_to(pod, "Pod", "v1"))
    return refs
