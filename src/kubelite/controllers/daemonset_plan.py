"""DaemonSet decisions: which nodes need a pod, which pods go, and the status.  Pure.

Mirrors ``pkg/controller/daemon`` (``podsShouldBeOnNode``/``manage``, ``rollingUpdate``,
``updateDaemonSetStatus``):

* a node that should run the daemon and has no pod gets one; a node that should not
  continue running it loses its pods; failed pods are deleted (and replaced next sync);
  without surge only the oldest of several pods on a node is kept; pods on nodes that
  no longer exist are deleted;
* ``RollingUpdate`` without surge deletes old pods (unavailable ones first) while fewer
  than ``maxUnavailable`` daemon pods are unavailable; with ``maxSurge`` it starts new
  pods next to available old ones (at most ``maxSurge`` at a time) and deletes an old pod
  once its replacement is available;
* status: desired/current/misscheduled/ready/available/unavailable/updated counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.podhealth import is_pod_ready, is_terminating, timestamp
from kubelite.controllers.daemonset_nodes import Eligibility, daemon_pod_spec, should_run
from kubelite.controllers.history import REVISION_HASH_LABEL

Obj = dict[str, Any]
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


@dataclass
class Plan:
    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    failed: list[tuple[Obj, str]] = field(default_factory=list)  # (pod, node) for FailedDaemonPod

    def empty(self) -> bool:
        return not self.create_on and not self.delete


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _labels(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def scaled(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def rolling_params(ds: Obj) -> Obj:
    return (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}


def max_surge_unavailable(ds: Obj, desired: int) -> tuple[int, int]:
    """``updatedDesiredNodeCounts``: (maxSurge, maxUnavailable); never both zero."""
    ru = rolling_params(ds)
    surge = scaled(ru.get("maxSurge"), desired, True)
    unavailable = scaled(ru.get("maxUnavailable", 1), desired, True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def allows_surge(ds: Obj) -> bool:
    return scaled(rolling_params(ds).get("maxSurge"), 1, True) > 0 and strategy(ds) == "RollingUpdate"


def strategy(ds: Obj) -> str:
    return str(((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def min_ready(ds: Obj) -> int:
    return int((ds.get("spec") or {}).get("minReadySeconds") or 0)


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            since = timestamp(c.get("lastTransitionTime")) or 0.0
            return since + min_ready_seconds <= now
    return False


def template_generation(ds: Obj) -> str | None:
    value = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    return str(value) if value else None


def is_updated(pod: Obj, hash_: str, generation: str | None) -> bool:
    """``util.IsPodUpdated``: the revision hash (or the template generation) matches."""
    labels = _labels(pod)
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation:
        return True
    return bool(hash_) and labels.get(REVISION_HASH_LABEL) == hash_


def by_age(pods: list[Obj]) -> list[Obj]:
    """``podByCreationTimestampAndPhase``: scheduled, then running, then oldest first."""
    return sorted(
        pods,
        key=lambda p: (
            not (p.get("spec") or {}).get("nodeName"),
            _phase(p) != "Running",
            str((p.get("metadata") or {}).get("creationTimestamp") or ""),
            _name(p),
        ),
    )


# ------------------------------------------------------------------ manage


def _surge_excess(running: list[Obj], ds: Obj, hash_: str, now: float) -> list[Obj]:
    """Keep one new and one old pod only while the old one still covers for the new one."""
    out: list[Obj] = []
    newest: Obj | None = None
    oldest: Obj | None = None
    for pod in by_age(running):
        if _labels(pod).get(REVISION_HASH_LABEL) == hash_:
            if newest is None:
                newest = pod
                continue
        elif oldest is None:
            oldest = pod
            continue
        out.append(pod)
    if (
        newest is not None
        and oldest is not None
        and (not is_pod_ready(oldest) or is_available(newest, min_ready(ds), now))
    ):
        out.append(oldest)
    return out


def _node_plan(ds: Obj, run: bool, keep: bool, pods: list[Obj], hash_: str, now: float, plan: Plan) -> None:
    node = ""
    if run and not pods:
        return
    if keep:
        running = []
        for pod in pods:
            if is_terminating(pod):
                continue
            if _phase(pod) == "Failed":
                node = str((pod.get("spec") or {}).get("nodeName") or "")
                plan.failed.append((pod, node))
                plan.delete.append(pod)
                continue
            running.append(pod)
        if len(running) <= 1:
            return
        if not allows_surge(ds):
            plan.delete.extend(by_age(running)[1:])
        else:
            plan.delete.extend(_surge_excess(running, ds, hash_, now))
        return
    plan.delete.extend(p for p in pods if not is_terminating(p))


def eligibility(ds: Obj, nodes: list[Obj]) -> Eligibility:
    """:func:`should_run` of every node (the controller keeps an :class:`EligibilityCache`)."""
    spec = daemon_pod_spec(ds)
    return {_name(n): should_run(n, ds, spec) for n in nodes}


def manage_plan(
    ds: Obj,
    nodes: list[Obj],
    node_pods: dict[str, list[Obj]],
    hash_: str,
    now: float,
    elig: Eligibility | None = None,
) -> Plan:
    """``manage``: per node (``podsShouldBeOnNode``), then pods on vanished nodes."""
    plan = Plan()
    elig = eligibility(ds, nodes) if elig is None else elig
    names = set()
    for node in nodes:
        name = _name(node)
        names.add(name)
        run, keep = elig[name]
        pods = node_pods.get(name, [])
        if run and not pods:
            plan.create_on.append(name)
            continue
        _node_plan(ds, run, keep, pods, hash_, now, plan)
    for name, pods in node_pods.items():
        if name not in names:
            plan.delete.extend(p for p in pods if not is_terminating(p))
    return plan


# ------------------------------------------------------------------ rolling update


def _split_on_node(
    pods: list[Obj], hash_: str, generation: str | None
) -> tuple[Obj | None, Obj | None, bool]:
    """``findUpdatedPodsOnNode``: (new pod, old pod, ok); not ok with duplicates."""
    new: Obj | None = None
    old: Obj | None = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _wanted_nodes(
    nodes: list[Obj], node_pods: dict[str, list[Obj]], elig: Eligibility
) -> tuple[dict[str, list[Obj]], int]:
    out = dict(node_pods)
    desired = 0
    for node in nodes:
        name = _name(node)
        if elig[name][0]:
            desired += 1
            out.setdefault(name, [])
    return out, desired


def rolling_update_plan(
    ds: Obj,
    nodes: list[Obj],
    node_pods: dict[str, list[Obj]],
    hash_: str,
    now: float,
    elig: Eligibility | None = None,
) -> Plan:
    """``rollingUpdate``: delete-then-create within maxUnavailable, or surge."""
    elig = eligibility(ds, nodes) if elig is None else elig
    node_pods, desired = _wanted_nodes(nodes, node_pods, elig)
    surge, unavailable_limit = max_surge_unavailable(ds, desired)
    if surge == 0:
        return _update_without_surge(ds, node_pods, hash_, now, unavailable_limit)
    return _update_with_surge(ds, node_pods, elig, hash_, now, surge)


def _update_without_surge(
    ds: Obj, node_pods: dict[str, list[Obj]], hash_: str, now: float, limit: int
) -> Plan:
    generation = template_generation(ds)
    mrs = min_ready(ds)
    unavailable = 0
    replace: list[Obj] = []
    candidates: list[Obj] = []
    for name in sorted(node_pods):
        new, old, ok = _split_on_node(node_pods[name], hash_, generation)
        if not ok or (new is None) == (old is None):
            unavailable += 1
        elif new is not None:
            unavailable += not is_available(new, mrs, now)
        elif old is not None:
            if not is_available(old, mrs, now):
                replace.append(old)
            elif unavailable < limit:
                candidates.append(old)
    room = max(0, min(limit - unavailable, len(candidates)))
    return Plan(delete=replace + candidates[:room])


def _update_with_surge(
    ds: Obj,
    node_pods: dict[str, list[Obj]],
    elig: Eligibility,
    hash_: str,
    now: float,
    surge_limit: int,
) -> Plan:
    generation = template_generation(ds)
    mrs = min_ready(ds)
    plan = Plan()
    candidates: list[str] = []
    allowed: list[str] = []
    surging = 0
    for name in sorted(node_pods):
        new, old, ok = _split_on_node(node_pods[name], hash_, generation)
        if not ok:
            surging += 1
            continue
        if old is None:
            continue
        if new is None:
            if not is_available(old, mrs, now):
                verdict = elig.get(name)
                if verdict is None or not verdict[0]:
                    plan.delete.append(old)
                else:
                    allowed.append(name)
            elif surging < surge_limit:
                candidates.append(name)
            continue
        if not is_available(new, mrs, now):
            surging += 1
        else:
            plan.delete.append(old)
    room = max(0, min(surge_limit - surging, len(candidates)))
    plan.create_on = allowed + candidates[:room]
    return plan


# ------------------------------------------------------------------ status


def compute_status(
    ds: Obj,
    nodes: list[Obj],
    node_pods: dict[str, list[Obj]],
    hash_: str,
    now: float,
    elig: Eligibility | None = None,
) -> Obj:
    """``updateDaemonSetStatus`` counts (observedGeneration and collisionCount added by the caller)."""
    elig = eligibility(ds, nodes) if elig is None else elig
    generation = template_generation(ds)
    mrs = min_ready(ds)
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        run = elig[_name(node)][0]
        pods = node_pods.get(_name(node), [])
        if not run:
            misscheduled += bool(pods)
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = by_age(pods)[0]
        if is_pod_ready(pod):
            ready += 1
            available += is_available(pod, mrs, now)
        updated += is_updated(pod, hash_, generation)
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "updatedNumberScheduled": updated,
    }
