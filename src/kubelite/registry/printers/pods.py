"""The Pod table: ``NAME READY STATUS RESTARTS AGE | IP NODE NOMINATED NODE READINESS GATES``.

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

from ._base import (
    NONE,
    Obj,
    Printer,
    age,
    age_col,
    col,
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


@dataclass(slots=True)
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


@dataclass(slots=True)
class _PodView:
    """The parts of a pod the printer reads, each looked up once (``{}``/``[]`` when missing
    or mistyped, like the accessors)."""

    pod: Obj
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    conditions: list[Mapping[str, Any]]

    @classmethod
    def of(cls, pod: Obj) -> _PodView:
        status = mp(pod, "status")
        return cls(pod, mp(pod, "spec"), status, _dict_items(status.get("conditions")))


def _dict_items(value: Any) -> list[Mapping[str, Any]]:
    """The mapping items of a list value (what :func:`dicts` returns for its path)."""
    if not isinstance(value, list):
        return []
    return [x for x in value if type(x) is dict or isinstance(x, Mapping)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _last_finished(status: Mapping[str, Any]) -> datetime | None:
    last = status.get("lastState")
    if not last:  # missing or empty: nothing finished (parse_time(None) is None)
        return None
    return parse_time(dig(last, "terminated", "finishedAt"))


def _initial_reason(v: _PodView) -> str:
    reason = _text(v.status.get("reason")) or _text(v.status.get("phase"))
    for cond in v.conditions:
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


def _walk_init(v: _PodView, total_init: int, t: _Tally) -> None:
    """Init container statuses: restart counts and the first one still blocking the pod."""
    for index, cs in enumerate(_dict_items(v.status.get("initContainerStatuses"))):
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


def _walk_containers(v: _PodView, t: _Tally) -> None:
    """Regular container statuses, last to first, as the Go printer walks them."""
    t.restarts = t.sidecar_restarts
    t.last_restart = t.sidecar_last_restart
    has_running = False
    for cs in reversed(_dict_items(v.status.get("containerStatuses"))):
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
        t.reason = "Running" if _condition_true(v.conditions, "Ready") else "NotReady"


def _condition_true(conditions: list[Mapping[str, Any]], cond_type: str) -> bool:
    return any(txt(c, "type") == cond_type and txt(c, "status") == "True" for c in conditions)


def _final_reason(v: _PodView, reason: str) -> str:
    if not dig(v.pod, "metadata", "deletionTimestamp"):
        return reason
    if _text(v.status.get("reason")) == NODE_LOST_REASON:
        return "Unknown"
    if _text(v.status.get("phase")) not in TERMINAL_PHASES:
        return "Terminating"
    return reason


def _tally(v: _PodView) -> _Tally:
    init_specs = _dict_items(v.spec.get("initContainers"))
    t = _Tally(reason=_initial_reason(v))
    if init_specs:
        t.sidecars = {txt(c, "name") for c in init_specs if txt(c, "restartPolicy") == "Always"}
        t.sidecar_count = sum(1 for c in init_specs if txt(c, "restartPolicy") == "Always")
    _walk_init(v, len(init_specs), t)
    if not t.initializing or _condition_true(v.conditions, "Initialized"):
        _walk_containers(v, t)
    t.reason = _final_reason(v, t.reason)
    return t


def _restarts_cell(t: _Tally, now: datetime) -> str:
    if t.restarts != 0 and t.last_restart is not None:
        return f"{t.restarts} ({translate_timestamp_since(t.last_restart, now)} ago)"
    return str(t.restarts)


def _pod_ip(v: _PodView) -> str:
    """The first of ``status.podIPs`` (filled from ``status.podIP`` like the v1 conversion)."""
    ips = _dict_items(v.status.get("podIPs"))
    ip = txt(ips[0], "ip") if ips else _text(v.status.get("podIP"))
    return ip or NONE


def _readiness_gates(v: _PodView) -> str:
    gates = _dict_items(v.spec.get("readinessGates"))
    if not gates:
        return NONE
    true_count = 0
    for gate in gates:
        match = next((c for c in v.conditions if txt(c, "type") == txt(gate, "conditionType")), None)
        if match is not None and txt(match, "status") == "True":
            true_count += 1
    return f"{true_count}/{len(gates)}"


def pod_cells(pod: Obj, now: datetime) -> list[Any]:
    v = _PodView.of(pod)
    t = _tally(v)
    total = len(_dict_items(v.spec.get("containers"))) + t.sidecar_count
    return [
        name_of(pod),
        f"{t.ready}/{total}",
        t.reason,
        _restarts_cell(t, now),
        age(pod, now),
        _pod_ip(v),
        _text(v.spec.get("nodeName")) or NONE,
        _text(v.status.get("nominatedNodeName")) or NONE,
        _readiness_gates(v),
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
