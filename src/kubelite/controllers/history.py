"""ControllerRevisions: the template history of StatefulSets and DaemonSets.

Mirrors kube-controller-manager's ``pkg/controller/history`` and the revision helpers of
the StatefulSet and DaemonSet controllers, which is what ``kubectl rollout history|undo``
reads and writes:

* a revision's ``data`` is the *template patch* ``{"spec": {"template": {..., "$patch":
  "replace"}}}`` (kubectl undo applies it as a strategic merge patch);
* revisions are owned (controller reference) by their set, carry the template's labels
  plus a hash label, a monotonically increasing ``revision`` number, and the set's
  annotations (so ``kubernetes.io/change-cause`` shows up in ``rollout history``);
* names are ``<parent>-<hash>`` where the hash is an FNV-32 digest encoded with
  ``rand.SafeEncodeString`` (DaemonSets name theirs after ``controller.ComputeHash`` of the
  template, see ``kubelite.machinery.controller_utils``); a name taken by a different
  revision bumps
  ``status.collisionCount``;
* rolling back to an equal revision re-numbers it instead of creating a new one;
* non-live revisions beyond ``revisionHistoryLimit`` are deleted, oldest first.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import orjson

from kubelite.machinery.controller_utils import safe_encode

Obj = dict[str, Any]

# labels
STATEFULSET_HASH_LABEL = "controller.kubernetes.io/hash"  # history.ControllerRevisionHashLabel
REVISION_HASH_LABEL = "controller-revision-hash"  # apps.ControllerRevisionHashLabelKey

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MAX_PREFIX = 223


def fnv32(data: bytes) -> int:
    """FNV-1 32-bit (Go's ``hash/fnv.New32``)."""
    h = _FNV_OFFSET
    for b in data:
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
        h ^= b
    return h


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys, like Go's encoding of ``map[string]interface{}``."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def hash_revision_data(data: Obj, probe: int | None) -> str:
    """``history.HashControllerRevision``: FNV-1 of the raw data (and the probe)."""
    raw = canonical_json(data)
    if probe is not None:
        raw += str(probe).encode()
    return safe_encode(str(fnv32(raw)))


def revision_name(parent: str, hash_: str) -> str:
    """``history.ControllerRevisionName``: ``<parent>-<hash>`` with the prefix capped."""
    return f"{parent[:_MAX_PREFIX]}-{hash_}"


def template_patch(obj: Obj) -> Obj:
    """The revision data of a StatefulSet/DaemonSet: its template, replacing on apply."""
    template = copy.deepcopy((obj.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def apply_revision(obj: Obj, revision: Obj) -> Obj:
    """A copy of ``obj`` whose ``spec.template`` is the one recorded in ``revision``
    (the strategic merge of a ``$patch: replace`` template is a plain replacement)."""
    out = copy.deepcopy(obj)
    data = revision.get("data") or {}
    template = copy.deepcopy(((data.get("spec") or {}).get("template")) or {})
    template.pop("$patch", None)
    out.setdefault("spec", {})["template"] = template
    return out


def controller_ref_to(owner: Obj, kind: str, api_version: str = "apps/v1") -> Obj:
    """``metav1.NewControllerRef``."""
    meta = owner.get("metadata") or {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    uid = (owner.get("metadata") or {}).get("uid")
    return any(
        r.get("controller") and r.get("uid") == uid
        for r in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def new_revision(
    parent: Obj,
    kind: str,
    data: Obj,
    revision: int,
    name: str,
    hash_label: str,
    hash_: str,
) -> Obj:
    """A ControllerRevision object for ``parent`` (labels = template labels + hash label,
    annotations = the parent's, controller reference to the parent)."""
    meta = parent.get("metadata") or {}
    template_labels = (((parent.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    labels = dict(template_labels)
    labels[hash_label] = hash_
    rev_meta: Obj = {
        "name": name,
        "namespace": meta.get("namespace", ""),
        "labels": labels,
        "ownerReferences": [controller_ref_to(parent, kind)],
    }
    if meta.get("annotations"):
        rev_meta["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": rev_meta,
        "data": data,
        "revision": revision,
    }


def revision_number(rev: Obj) -> int:
    return int(rev.get("revision") or 0)


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """``history.SortControllerRevisions``: by revision number, then creation time, then name."""
    return sorted(
        revisions,
        key=lambda r: (
            revision_number(r),
            str((r.get("metadata") or {}).get("creationTimestamp") or ""),
            str((r.get("metadata") or {}).get("name") or ""),
        ),
    )


def next_revision(revisions: list[Obj]) -> int:
    """One more than the highest revision number (1 for an empty history)."""
    return max((revision_number(r) for r in revisions), default=0) + 1


def equal_data(a: Obj, b: Obj) -> bool:
    return bool((a.get("data") or {}) == (b.get("data") or {}))


def revisions_to_prune(
    revisions: list[Obj], live: set[str], limit: int | None, key: str = "name"
) -> list[Obj]:
    """Non-live revisions beyond ``limit``, oldest (lowest revision) first.

    ``live`` holds revision names (``key='name'``) or hash-label values (any other key,
    read from that label) that running pods or the status still reference."""

    def ident(r: Obj) -> str:
        meta = r.get("metadata") or {}
        return str(meta.get("name") if key == "name" else (meta.get("labels") or {}).get(key, ""))

    history = [r for r in sort_revisions(revisions) if ident(r) not in live]
    if limit is None or limit < 0 or len(history) <= limit:
        return []
    return history[: len(history) - limit]
