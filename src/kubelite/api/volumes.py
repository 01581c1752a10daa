"""Pure PersistentVolume / PersistentVolumeClaim helpers (binder, provisioner, admission).

They mirror ``pkg/controller/volume/persistentvolume`` matching rules: a volume fits a
claim when the StorageClass names are equal, the volume modes are equal, the volume
offers every requested access mode, its capacity covers the request and its labels
match the claim's selector; the smallest fitting volume wins.
"""

from __future__ import annotations

from typing import Any

from kubelite.api.podhealth import meta, selector_of
from kubelite.api.quantity import parse_quantity

Obj = dict[str, Any]
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def claim_class(pvc: Obj) -> str:
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def volume_class(pv: Obj) -> str:
    return str((pv.get("spec") or {}).get("storageClassName") or "")


def requested_bytes(pvc: Obj) -> int:
    req = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    try:
        return int(parse_quantity(str(req.get("storage", "0"))))
    except Exception:
        return 0


def capacity_bytes(pv: Obj) -> int:
    cap = (pv.get("spec") or {}).get("capacity") or {}
    try:
        return int(parse_quantity(str(cap.get("storage", "0"))))
    except Exception:
        return 0


def is_default_class(sc: Obj) -> bool:
    ann = meta(sc).get("annotations") or {}
    return "true" in (ann.get(DEFAULT_CLASS_ANNOTATION), ann.get(BETA_DEFAULT_CLASS_ANNOTATION))


def default_class(classes: list[Obj]) -> Obj | None:
    """The default StorageClass; the newest one when several are marked (as Kubernetes 1.26+)."""
    marked = [sc for sc in classes if is_default_class(sc)]
    if not marked:
        return None
    return max(
        marked, key=lambda sc: (str(meta(sc).get("creationTimestamp") or ""), meta(sc).get("name", ""))
    )


def claim_ref_of(pvc: Obj) -> Obj:
    m = meta(pvc)
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": m.get("namespace", ""),
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
        "resourceVersion": m.get("resourceVersion", ""),
    }


def node_affinity_allows(pv: Obj, node: Obj | None, node_name: str) -> bool:
    """Required node affinity of a (local) volume against a node (labels or hostname)."""
    required = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    )
    if not required:
        return True
    labels = dict(meta(node).get("labels") or {}) if node else {}
    labels.setdefault(HOSTNAME_LABEL, node_name)
    return any(_term_matches(term, labels) for term in required)


def _term_matches(term: Obj, labels: dict[str, str]) -> bool:
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
        have = labels.get(key)
        ok = {
            "In": have is not None and have in values,
            "NotIn": have is None or have not in values,
            "Exists": have is not None,
            "DoesNotExist": have is None,
        }.get(str(op), False)
        if not ok:
            return False
    return True


def volume_fits(pv: Obj, pvc: Obj) -> bool:
    spec, cspec = pv.get("spec") or {}, pvc.get("spec") or {}
    if volume_class(pv) != claim_class(pvc):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return False
    if not set(cspec.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if capacity_bytes(pv) < requested_bytes(pvc):
        return False
    selector = cspec.get("selector")
    return selector is None or selector_of(selector).matches(meta(pv).get("labels") or {})


def find_best_volume(
    volumes: list[Obj], pvc: Obj, node: Obj | None = None, node_name: str = ""
) -> Obj | None:
    """``findBestMatchForClaim``: a volume pre-bound to the claim, else the smallest fitting one."""
    uid = meta(pvc).get("uid")
    best: Obj | None = None
    for pv in volumes:
        if meta(pv).get("deletionTimestamp"):
            continue
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is not None:
            same = ref.get("name") == meta(pvc).get("name") and ref.get("namespace") == meta(pvc).get(
                "namespace"
            )
            if not same or (ref.get("uid") and ref.get("uid") != uid):
                continue
            if volume_fits(pv, pvc):
                return pv
            continue
        if (pv.get("status") or {}).get("phase") not in (None, "", "Available"):
            continue
        if not volume_fits(pv, pvc):
            continue
        if node_name and not node_affinity_allows(pv, node, node_name):
            continue
        if best is None or capacity_bytes(pv) < capacity_bytes(best):
            best = pv
    return best
