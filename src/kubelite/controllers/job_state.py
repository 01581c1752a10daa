"""Pure Job/pod state helpers: conditions, pod classification, deletion order, expectations.

Mirrors kubernetes ``pkg/controller/job`` and ``pkg/controller/controller_utils.go``:
a pod is *active* when neither terminal nor deleting; *terminating* when deleting but not
terminal; *failed* when Failed, or (unless only failed pods are replaced) deleting and not
Succeeded.  A Job is finished once it has a True ``Complete`` or ``Failed`` condition.
Expectations hold a sync back until the informer has seen the pods it created or deleted.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from kubelite.api.humanize import parse_time

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
EXPECTATIONS_TTL = 300.0  # client-go's ExpectationsTimeout


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def spec(obj: Obj) -> Obj:
    s: Obj = obj.get("spec") or {}
    return s


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def controller_of(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def is_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def is_active(pod: Obj) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and not meta(pod).get("deletionTimestamp")


def is_terminating(pod: Obj) -> bool:
    return bool(meta(pod).get("deletionTimestamp")) and phase(pod) not in ("Succeeded", "Failed")


def only_replace_failed(job: Obj) -> bool:
    s = spec(job)
    return s.get("podReplacementPolicy") == "Failed" or s.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return bool(meta(pod).get("deletionTimestamp")) and phase(pod) != "Succeeded"


def is_suspended(job: Obj) -> bool:
    return spec(job).get("suspend") is True


# ---------------------------------------------------------------------- conditions


def new_condition(type_: str, reason: str, message: str, now: dt.datetime, status: str = "True") -> Obj:
    cond: Obj = {
        "type": type_,
        "status": status,
        "lastProbeTime": rfc3339(now),
        "lastTransitionTime": rfc3339(now),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def find_condition(job: Obj, type_: str) -> Obj | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def true_condition(job: Obj, type_: str) -> Obj | None:
    c = find_condition(job, type_)
    return c if c is not None and c.get("status") == "True" else None


def ensure_condition(status: Obj, cond: Obj) -> bool:
    """Set a condition of this type (False ones are never added); True when the list changed."""
    conds: list[Obj] = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            same = all(c.get(k, "") == cond.get(k, "") for k in ("status", "reason", "message"))
            if same:
                return False
            conds[i] = cond
            return True
    if cond["status"] == "False":
        if not conds:
            status.pop("conditions", None)
        return False
    conds.append(cond)
    return True


def finished_condition(job: Obj) -> Obj | None:
    """The True ``Complete`` or ``Failed`` condition of a finished Job."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return dict(c)
    return None


def is_finished(job: Obj) -> bool:
    return finished_condition(job) is not None


# ---------------------------------------------------------------------- deletion order


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Obj) -> tuple[int, int, int, int, float]:
    """``controller.ActivePods`` order: pods sorting first are deleted first (unscheduled,
    pending, not ready, more restarts, newer)."""
    restarts = sum(
        int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )
    created = parse_time(meta(pod).get("creationTimestamp"))
    return (
        1 if spec(pod).get("nodeName") else 0,
        _PHASE_RANK.get(phase(pod), 0),
        1 if is_ready(pod) else 0,
        -restarts,
        -(created.timestamp() if created else 0.0),
    )


# ---------------------------------------------------------------------- expectations


@dataclass
class _Expect:
    adds: int = 0
    dels: int = 0
    stamp: float = 0.0


class Expectations:
    """client-go ``ControllerExpectations``: pending creations/deletions per controller key."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._items: dict[str, _Expect] = {}

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        self._items[key] = _Expect(adds, dels, time.monotonic())

    def creation_observed(self, key: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e.adds -= 1

    def deletion_observed(self, key: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e.dels -= 1

    def satisfied(self, key: str) -> bool:
        e = self._items.get(key)
        if e is None:
            return True
        return (e.adds <= 0 and e.dels <= 0) or time.monotonic() - e.stamp > self.ttl

    def forget(self, key: str) -> None:
        self._items.pop(key, None)
