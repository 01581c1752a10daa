"""Per-resource write strategy: what the server owns in an object, like kube-apiserver's
``PrepareForCreate`` / ``PrepareForUpdate``.

* system metadata (uid, creationTimestamp, generation, resourceVersion) is the server's;
* for resources with a ``status`` subresource, writes to the main resource keep the
  stored status and writes to ``/status`` keep the stored spec;
* ``metadata.generation`` is bumped when anything but metadata and status changes.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from kubelite.api.uid import new_uid
from kubelite.registry.resources import ResourceInfo

Obj = dict[str, Any]

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's SimpleNameGenerator alphabet
_MAX_GENERATE_PREFIX = 58

# kinds whose status the server resets on create (everything with a status subresource
# except the ones listed here, which keep a client-provided status, as Kubernetes does)
_KEEP_STATUS_ON_CREATE = frozenset({"Node", "PersistentVolume", "PersistentVolumeClaim", "Namespace"})

# metadata fields that only the server sets
_SYSTEM_META = (
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)

assert set(_GENERATE_ALPHABET) <= set(string.ascii_lowercase + string.digits)


def generate_name(prefix: str) -> str:
    prefix = prefix[:_MAX_GENERATE_PREFIX]
    return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


def prepare_create(info: ResourceInfo, obj: Obj, now: str) -> None:
    meta = obj.setdefault("metadata", {})
    for k in _SYSTEM_META:
        meta.pop(k, None)
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(str(meta["generateName"]))
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now
    meta["generation"] = 1
    if info.has_status and info.kind not in _KEEP_STATUS_ON_CREATE:
        obj.pop("status", None)
    _init_status(info, obj)


def _init_status(info: ResourceInfo, obj: Obj) -> None:
    if info.group == "" and info.kind == "Pod":
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status["qosClass"] = qos_class(obj.get("spec") or {})
    elif info.group == "" and info.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif (
        info.group in ("apps", "")
        and info.kind in ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")
    ) or info.has_status:
        obj.setdefault("status", {})


_NOT_SPEC = frozenset({"metadata", "status", "apiVersion", "kind"})


def spec_changed(new: Obj, old: Obj) -> bool:
    """Whether anything but metadata, status and type meta differs (no copies made)."""
    for k, v in new.items():
        if k not in _NOT_SPEC and (k not in old or old[k] != v):
            return True
    return any(k not in _NOT_SPEC and k not in new for k in old)


def prepare_update(info: ResourceInfo, new: Obj, old: Obj) -> None:
    """A write to the main resource: keep system metadata and (with a status subresource) status."""
    meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata", {})
    for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    meta.pop("selfLink", None)
    if info.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if spec_changed(new, old):
        meta["generation"] = int(old_meta.get("generation") or 0) + 1
    if info.group == "" and info.kind == "Namespace":
        new["status"] = old.get("status", {"phase": "Active"})


def prepare_status_update(info: ResourceInfo, new: Obj, old: Obj) -> None:
    """A write to ``/status``: only status (and, like Kubernetes, labels/annotations are kept from old)."""
    status = new.get("status")
    kept = {k: v for k, v in old.items() if k != "status"}
    new.clear()
    new.update(kept)
    if status is not None:
        new["status"] = status
    else:
        new.pop("status", None)


def qos_class(spec: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from container requests and limits (core/v1 helper)."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests_any = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def strip_for_storage(obj: Obj) -> Obj:
    """The stored form: resourceVersion lives in the store's revision, not in the bytes."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("resourceVersion", None)
    return obj
