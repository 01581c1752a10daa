"""Pure Deployment arithmetic: the rules of ``pkg/controller/deployment/util``.

Everything here works on plain dicts and never mutates its inputs unless it says so:
maxSurge/maxUnavailable resolution (int or percent, surge rounded up, unavailable
rounded down, never both zero), the replica-count helpers, revision and replica
annotations, finding the new/old ReplicaSets, proportional scaling shares, the
Progressing/Available conditions and the status calculation.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from typing import Any

from kubelite.api import errors
from kubelite.api.humanize import parse_time
from kubelite.machinery import controller_utils as cu

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# annotations a Deployment does not copy to its ReplicaSets
SKIPPED_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
MAX_REV_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

# condition reasons (deployment_util.go)
REPLICASET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_PERCENT = re.compile(r"^(-?\d+)%$")


# ---------------------------------------------------------------------------- accessors


def spec(obj: Obj) -> Obj:
    s: Obj = obj.get("spec") or {}
    return s


def status(obj: Obj) -> Obj:
    s: Obj = obj.get("status") or {}
    return s


def replicas(obj: Obj) -> int:
    """``*spec.replicas`` (defaulted to 1 by the API server)."""
    value = spec(obj).get("replicas")
    return 1 if value is None else int(value)


def annotations_of(obj: Obj) -> dict[str, str]:
    a: dict[str, str] = cu.meta(obj).get("annotations") or {}
    return a


def is_rolling(d: Obj) -> bool:
    kind = (spec(d).get("strategy") or {}).get("type") or "RollingUpdate"
    return bool(kind == "RollingUpdate")


# ---------------------------------------------------------------------------- intstr


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int as is, ``N%`` of ``total`` rounded."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    m = _PERCENT.match(value)
    if m is None:
        if value.lstrip("-").isdigit():
            return int(value)
        raise errors.BadRequest(f'invalid value for IntOrString: invalid value "{value}"')
    scaled = int(m.group(1)) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable); both zero becomes unavailable 1."""
    ru = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(ru.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", 0), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    """``MaxUnavailable``: 0 for Recreate or zero replicas, never more than the replicas."""
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


# ---------------------------------------------------------------------------- counting


def _rs_list(sets: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in sets if rs is not None]


def spec_replicas_sum(sets: Iterable[Obj | None]) -> int:
    """``GetReplicaCountForReplicaSets``."""
    return sum(replicas(rs) for rs in _rs_list(sets))


def actual_replicas_sum(sets: Iterable[Obj | None]) -> int:
    """``GetActualReplicaCountForReplicaSets`` (status.replicas)."""
    return sum(int(status(rs).get("replicas") or 0) for rs in _rs_list(sets))


def ready_replicas_sum(sets: Iterable[Obj | None]) -> int:
    return sum(int(status(rs).get("readyReplicas") or 0) for rs in _rs_list(sets))


def available_replicas_sum(sets: Iterable[Obj | None]) -> int:
    return sum(int(status(rs).get("availableReplicas") or 0) for rs in _rs_list(sets))


def active(sets: Iterable[Obj | None]) -> list[Obj]:
    """``FilterActiveReplicaSets``: sets with a non-zero ``spec.replicas``."""
    return [rs for rs in _rs_list(sets) if replicas(rs) > 0]


# ---------------------------------------------------------------------------- sorting


def by_creation(sets: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsByCreationTimestamp``: oldest first, ties by name."""
    return sorted(sets, key=cu.creation_key)


def revision_of(obj: Obj) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation, 0 when absent or malformed."""
    try:
        return int(annotations_of(obj).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def by_revision(sets: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsByRevision``: lowest revision first, then oldest."""
    return sorted(sets, key=lambda rs: (revision_of(rs), *cu.creation_key(rs)))


def by_size_newer(sets: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsBySizeNewer``: larger first; same size: newer first."""
    newest_first = sorted(sets, key=cu.creation_key, reverse=True)
    return sorted(newest_first, key=lambda rs: -replicas(rs))


def by_size_older(sets: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsBySizeOlder``: larger first; same size: older first."""
    return sorted(by_creation(sets), key=lambda rs: -replicas(rs))


def max_revision(sets: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in sets), default=0)


# ---------------------------------------------------------------------------- templates


def template_without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(cu.POD_TEMPLATE_HASH_LABEL, None)
    return cu.semantic(t)  # type: ignore[no-any-return]


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """``EqualIgnoreHash``: templates equal once the pod-template-hash label is dropped."""
    return template_without_hash(a) == template_without_hash(b)


def find_new(d: Obj, sets: list[Obj]) -> Obj | None:
    """``FindNewReplicaSet``: the oldest set whose template equals the Deployment's."""
    template = spec(d).get("template") or {}
    for rs in by_creation(sets):
        if equal_ignore_hash(spec(rs).get("template") or {}, template):
            return rs
    return None


def find_old(d: Obj, sets: list[Obj]) -> list[Obj]:
    """``FindOldReplicaSets`` (all old sets, scaled down or not)."""
    new = find_new(d, sets)
    new_uid = cu.meta(new).get("uid") if new is not None else None
    return [rs for rs in sets if new_uid is None or cu.meta(rs).get("uid") != new_uid]


def find_active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the only active set, else the newest when none is active."""
    if new is None and not old:
        return None
    newest_old_first = sorted(old, key=cu.creation_key, reverse=True)
    live = active([*newest_old_first, new])
    if not live:
        return new if new is not None else newest_old_first[0]
    return live[0] if len(live) == 1 else None


# ---------------------------------------------------------------------------- annotations


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    a = annotations_of(rs)
    return a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    """Write desired-replicas and max-replicas on ``rs`` (mutates); True when changed."""
    if not replicas_annotations_need_update(rs, desired, max_replicas):
        return False
    a = rs.setdefault("metadata", {}).setdefault("annotations", {})
    a[DESIRED_REPLICAS] = str(desired)
    a[MAX_REPLICAS] = str(max_replicas)
    return True


def _copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    changed = False
    target = rs.setdefault("metadata", {}).setdefault("annotations", {})
    for k, v in annotations_of(d).items():
        if k in SKIPPED_ANNOTATIONS or target.get(k) == v:
            continue
        target[k] = v
        changed = True
    return changed


def _append_history(a: dict[str, str], old_revision: str) -> None:
    history = a.get(REVISION_HISTORY, "")
    if not history:
        a[REVISION_HISTORY] = old_revision
        return
    parts = history.split(",")
    total = len(history) + len(old_revision) + 1
    start = 0
    while total > MAX_REV_HISTORY_CHARS and start < len(parts):
        total -= len(parts[start]) + 1
        start += 1
    if total <= MAX_REV_HISTORY_CHARS:
        a[REVISION_HISTORY] = ",".join([*parts[start:], old_revision])


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations`` (mutates ``rs``): copy the Deployment's annotations,
    raise the revision (keeping replaced revisions in ``revision-history`` when a set is
    re-used by a rollback) and, for a set about to be created, the replica annotations."""
    changed = _copy_deployment_annotations(d, rs)
    a = rs["metadata"]["annotations"]
    old_revision = a.get(REVISION)
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    if old_int < int(new_revision):
        a[REVISION] = new_revision
        changed = True
        if old_revision:
            _append_history(a, old_revision)
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def desired_replicas_annotation(rs: Obj) -> int | None:
    try:
        return int(annotations_of(rs)[DESIRED_REPLICAS])
    except (KeyError, ValueError):
        return None


def max_replicas_annotation(rs: Obj) -> int | None:
    try:
        return int(annotations_of(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """``IsSaturated``: the new set has all the replicas, by spec, annotation and availability."""
    if rs is None:
        return False
    want = replicas(d)
    return (
        replicas(rs) == want
        and desired_replicas_annotation(rs) == want
        and int(status(rs).get("availableReplicas") or 0) == want
    )


# ---------------------------------------------------------------------------- scaling


def new_rs_new_replicas(d: Obj, all_sets: list[Obj | None], new: Obj) -> int:
    """``NewRSNewReplicas``: how far the new set may grow now (surge-bounded when rolling)."""
    if not is_rolling(d):
        return replicas(d)
    ru = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(ru.get("maxSurge", 0), replicas(d), True)
    current = spec_replicas_sum(all_sets)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new)
    grow = min(max_total - current, replicas(d) - replicas(new))
    return replicas(new) + grow


def _fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    max_now = replicas(d) + max_surge(d)
    before = max_replicas_annotation(rs)
    if not before:
        before = int(status(d).get("replicas") or 0)
        if before == 0:
            return 0
    size = replicas(rs) * max_now / before
    return _round_half_away(size) - replicas(rs)


def _round_half_away(x: float) -> int:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """``GetProportion``: this set's share of ``to_add`` replicas, bounded by what is left."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    share = _fraction(rs, d)
    allowed = to_add - added
    return min(share, allowed) if to_add > 0 else max(share, allowed)


def proportional_sizes(d: Obj, sets: list[Obj]) -> tuple[list[Obj], dict[str, int], str]:
    """The proportional-scaling plan of ``scale``: sets in scaling order, their new sizes,
    and the direction ("up", "down" or "")."""
    total = spec_replicas_sum(sets)
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total
    direction = ""
    if to_add > 0:
        sets, direction = by_size_newer(sets), "up"
    elif to_add < 0:
        sets, direction = by_size_older(sets), "down"
    sizes: dict[str, int] = {}
    added = 0
    for rs in sets:
        share = proportion(rs, d, to_add, added) if to_add else 0
        sizes[cu.meta(rs)["name"]] = replicas(rs) + share
        added += share
    if sets and to_add:
        first = cu.meta(sets[0])["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sets, sizes, direction


# ---------------------------------------------------------------------------- conditions


def get_condition(st: Obj, type_: str) -> Obj | None:
    for c in st.get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def new_condition(type_: str, status_: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status_,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(st: Obj, cond: Obj) -> None:
    """``SetDeploymentCondition`` (mutates ``st``): no-op for the same status and reason;
    keeps lastTransitionTime when only the reason changes; the condition moves last."""
    current = get_condition(st, cond["type"])
    if (
        current is not None
        and current.get("status") == cond["status"]
        and current.get("reason") == cond["reason"]
    ):
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
    others = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]]
    st["conditions"] = [*others, cond]


def remove_condition(st: Obj, type_: str) -> None:
    conds = [c for c in st.get("conditions") or [] if c.get("type") != type_]
    if conds:
        st["conditions"] = conds
    else:
        st.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    pds = spec(d).get("progressDeadlineSeconds")
    return pds is not None and int(pds) != MAX_INT32


def complete(d: Obj, st: Obj) -> bool:
    """``DeploymentComplete``: every replica updated and available, generation observed."""
    want = replicas(d)
    return (
        int(st.get("updatedReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
        and int(st.get("observedGeneration") or 0) >= int(cu.meta(d).get("generation") or 0)
    )


def progressing(d: Obj, new_st: Obj) -> bool:
    """``DeploymentProgressing``: more updated, fewer old, more ready or more available."""
    old = status(d)

    def n(st: Obj, k: str) -> int:
        return int(st.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(new_st, "replicas") - n(new_st, "updatedReplicas")
    return (
        n(new_st, "updatedReplicas") > n(old, "updatedReplicas")
        or new_old < old_old
        or n(new_st, "readyReplicas") > n(old, "readyReplicas")
        or n(new_st, "availableReplicas") > n(old, "availableReplicas")
    )


def seconds_left(d: Obj, st: Obj, now: float) -> float | None:
    """Seconds until the Progressing condition's deadline (negative once passed)."""
    cond = get_condition(st, "Progressing")
    if cond is None or not has_progress_deadline(d):
        return None
    t = parse_time(cond.get("lastUpdateTime"))
    if t is None:
        return None
    return t.timestamp() + int(spec(d)["progressDeadlineSeconds"]) - now


def timed_out(d: Obj, st: Obj, now: float) -> bool:
    """``DeploymentTimedOut``: no progress for ``progressDeadlineSeconds``."""
    cond = get_condition(st, "Progressing")
    if not has_progress_deadline(d) or cond is None:
        return False
    if cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    left = seconds_left(d, st, now)
    return left is not None and left < 0


def calculate_status(all_sets: list[Obj | None], new: Obj | None, d: Obj, now: str) -> Obj:
    """``calculateStatus``: counts from the ReplicaSets and the Available condition."""
    available = available_replicas_sum(all_sets)
    total = spec_replicas_sum(all_sets)
    st: Obj = {
        "observedGeneration": int(cu.meta(d).get("generation") or 0),
        "replicas": actual_replicas_sum(all_sets),
        "updatedReplicas": actual_replicas_sum([new]),
        "readyReplicas": ready_replicas_sum(all_sets),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
    }
    if status(d).get("collisionCount") is not None:
        st["collisionCount"] = status(d)["collisionCount"]
    st["conditions"] = [dict(c) for c in status(d).get("conditions") or []]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        msg = "Deployment does not have minimum availability."
        cond = new_condition("Available", "False", MIN_UNAVAILABLE, msg, now)
    set_condition(st, cond)
    return st


def prune_status(st: Obj) -> Obj:
    """omitempty: zero counts and empty conditions are left out, as Kubernetes serialises them."""
    return {k: v for k, v in st.items() if v not in (0, None, [])}


def rs_failure_conditions(all_sets: list[Obj | None], new: Obj | None) -> list[Obj]:
    """``getReplicaFailures``: ReplicaFailure conditions, the new set's first."""

    def of(rs: Obj) -> list[Obj]:
        out = []
        for c in status(rs).get("conditions") or []:
            if c.get("type") == "ReplicaFailure":
                out.append(
                    {
                        "type": "ReplicaFailure",
                        "status": c.get("status"),
                        "lastUpdateTime": c.get("lastTransitionTime"),
                        "lastTransitionTime": c.get("lastTransitionTime"),
                        "reason": c.get("reason", ""),
                        "message": c.get("message", ""),
                    }
                )
        return out

    if new is not None and (found := of(new)):
        return found
    return [c for rs in _rs_list(all_sets) for c in of(rs)]
