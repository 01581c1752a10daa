"""Reference copy of the pod printer before its speed-up (test oracle for test_pod_printer_fast).

The original docstring follows.

Mirrors ``printPod`` in ``pkg/printers/internalversion``: STATUS starts from the phase
(or ``status.reason``), is overridden by init container progress (``Init:0/2``,
``Init:CrashLoopBackOff``, ``Init:ExitCode:1``), then by the last container's waiting or
terminated reason (``ContainerCreating``, ``CrashLoopBackOff``, ``Completed``,
``ExitCode:137``), and finally by deletion (``Terminating``, or ``Unknown`` for pods on a
lost node). RESTARTS is the total restart count with the age of the most recent
restart: ``"2 (5m ago)"``. Sidecars (init containers with ``restartPolicy: Always``)
count towards READY and RESTARTS like regular containers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.api.humanize import parse_time, translate_timestamp_since
from kubelite.registry.printers._base import (
    NONE,
    Obj,
    Printer,
    age,
    age_col,
    col,
    dicts,
    dig,
    doc,
    mp,
    name_col,
    name_of,
    num,
    txt,
)

NODE_LOST_REASON = "NodeLost"
TERMINAL_PHASES = ("Succeeded", "Failed")

POD_COLUMNS = (
    name_col(),
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    age_col(),
    col("IP", "string", doc("core.v1.PodStatus", "podIP"), 1),
    col("Node", "string", doc("core.v1.PodSpec", "nodeName"), 1),
    col("Nominated Node", "string", doc("core.v1.PodStatus", "nominatedNodeName"), 1),
    col("Readiness Gates", "string", doc("core.v1.PodSpec", "readinessGates"), 1),
)


@dataclass
class _Tally:
    """Running READY/RESTARTS/STATUS state while walking container statuses."""

    reason: str
    restarts: int = 0
    ready: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None
    initializing: bool = False
    sidecars: set[str] = field(default_factory=set)
    sidecar_count: int = 0


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _last_finished(status: Mapping[str, Any]) -> datetime | None:
    return parse_time(dig(status, "lastState", "terminated", "finishedAt"))


def _initial_reason(pod: Obj) -> str:
    reason = txt(pod, "status", "reason") or txt(pod, "status", "phase")
    for cond in dicts(pod, "status", "conditions"):
        if txt(cond, "type") == "PodScheduled" and txt(cond, "reason") == "SchedulingGated":
            reason = "SchedulingGated"
    return reason


def _terminated_reason(term: Mapping[str, Any], prefix: str) -> str:
    """``<prefix><reason>``, else ``<prefix>Signal:N`` / ``<prefix>ExitCode:N``."""
    if txt(term, "reason"):
        return prefix + txt(term, "reason")
    if num(term, "signal"):
        return f"{prefix}Signal:{num(term, 'signal')}"
    return f"{prefix}ExitCode:{num(term, 'exitCode')}"


def _walk_init(pod: Obj, t: _Tally) -> None:
    """Init container statuses: restart counts and the first one still blocking the pod."""
    total_init = len(dicts(pod, "spec", "initContainers"))
    for index, cs in enumerate(dicts(pod, "status", "initContainerStatuses")):
        count = num(cs, "restartCount")
        finished = _last_finished(cs)
        t.restarts += count
        t.last_restart = _later(t.last_restart, finished)
        sidecar = txt(cs, "name") in t.sidecars
        if sidecar:
            t.sidecar_restarts += count
            t.sidecar_last_restart = _later(t.sidecar_last_restart, finished)
        state = mp(cs, "state")
        term = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(term, Mapping) and num(term, "exitCode") == 0:
            continue
        if sidecar and cs.get("started") is True:
            t.ready += 1 if cs.get("ready") is True else 0
            continue
        if isinstance(term, Mapping):
            t.reason = _terminated_reason(term, "Init:")
        elif isinstance(waiting, Mapping) and txt(waiting, "reason") not in ("", "PodInitializing"):
            t.reason = "Init:" + txt(waiting, "reason")
        else:
            t.reason = f"Init:{index}/{total_init}"
        t.initializing = True
        break


def _walk_containers(pod: Obj, t: _Tally) -> None:
    """Regular container statuses, last to first, as the Go printer walks them."""
    t.restarts = t.sidecar_restarts
    t.last_restart = t.sidecar_last_restart
    has_running = False
    for cs in reversed(dicts(pod, "status", "containerStatuses")):
        t.restarts += num(cs, "restartCount")
        t.last_restart = _later(t.last_restart, _last_finished(cs))
        state = mp(cs, "state")
        waiting, term = state.get("waiting"), state.get("terminated")
        if isinstance(waiting, Mapping) and txt(waiting, "reason"):
            t.reason = txt(waiting, "reason")
        elif isinstance(term, Mapping):
            t.reason = _terminated_reason(term, "")
        elif cs.get("ready") is True and isinstance(state.get("running"), Mapping):
            has_running = True
            t.ready += 1
    if t.reason == "Completed" and has_running:
        t.reason = "Running" if _condition_true(pod, "Ready") else "NotReady"


def _condition_true(pod: Obj, cond_type: str) -> bool:
    return any(
        txt(c, "type") == cond_type and txt(c, "status") == "True" for c in dicts(pod, "status", "conditions")
    )


def _final_reason(pod: Obj, reason: str) -> str:
    if not dig(pod, "metadata", "deletionTimestamp"):
        return reason
    if txt(pod, "status", "reason") == NODE_LOST_REASON:
        return "Unknown"
    if txt(pod, "status", "phase") not in TERMINAL_PHASES:
        return "Terminating"
    return reason


def _tally(pod: Obj) -> _Tally:
    init_specs = dicts(pod, "spec", "initContainers")
    sidecars = {txt(c, "name") for c in init_specs if txt(c, "restartPolicy") == "Always"}
    count = sum(1 for c in init_specs if txt(c, "restartPolicy") == "Always")
    t = _Tally(reason=_initial_reason(pod), sidecars=sidecars, sidecar_count=count)
    _walk_init(pod, t)
    if not t.initializing or _condition_true(pod, "Initialized"):
        _walk_containers(pod, t)
    t.reason = _final_reason(pod, t.reason)
    return t


def _restarts_cell(t: _Tally, now: datetime) -> str:
    if t.restarts != 0 and t.last_restart is not None:
        return f"{t.restarts} ({translate_timestamp_since(t.last_restart, now)} ago)"
    return str(t.restarts)


def _pod_ip(pod: Obj) -> str:
    """The first of ``status.podIPs`` (filled from ``status.podIP`` like the v1 conversion)."""
    ips = dicts(pod, "status", "podIPs")
    ip = txt(ips[0], "ip") if ips else txt(pod, "status", "podIP")
    return ip or NONE


def _readiness_gates(pod: Obj) -> str:
    gates = dicts(pod, "spec", "readinessGates")
    if not gates:
        return NONE
    conds = dicts(pod, "status", "conditions")
    true_count = 0
    for gate in gates:
        match = next((c for c in conds if txt(c, "type") == txt(gate, "conditionType")), None)
        if match is not None and txt(match, "status") == "True":
            true_count += 1
    return f"{true_count}/{len(gates)}"


def pod_cells(pod: Obj, now: datetime) -> list[Any]:
    t = _tally(pod)
    total = len(dicts(pod, "spec", "containers")) + t.sidecar_count
    return [
        name_of(pod),
        f"{t.ready}/{total}",
        t.reason,
        _restarts_cell(t, now),
        age(pod, now),
        _pod_ip(pod),
        txt(pod, "spec", "nodeName") or NONE,
        txt(pod, "status", "nominatedNodeName") or NONE,
        _readiness_gates(pod),
    ]


def row_conditions(pod: Obj) -> list[dict[str, str]]:
    """``TableRow.conditions``: ``Completed`` for pods that have run to completion."""
    phase = txt(pod, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


PRINTERS = {("", "pods"): Printer(POD_COLUMNS, pod_cells)}
