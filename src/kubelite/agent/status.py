"""Pod status as kubelet 1.32 generates it (``kubelet_pods.go`` ``generateAPIPodStatus``).

From the pod spec, what the runtime reports and what the pod worker knows (waiting reasons,
probe results) this builds: container statuses (``state``/``lastState``/``restartCount``/
``ready``/``started``/``image``/``imageID`` ``<repo>@<digest>``/``containerID`` ``runc://<id>``),
the phase (``getPhase``: a crash-looping container counts as stopped, native sidecars do not
decide completion), the conditions PodReadyToStartContainers, Initialized, ContainersReady,
Ready (with readiness gates) and PodScheduled (kept), ``podIP(s)``, ``hostIP(s)``,
``startTime`` and the ``qosClass`` the API server set.  Unchanged conditions keep their
``lastTransitionTime``; :func:`differs` tells whether a write is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubelite.agent.runtime.base import ContainerState, ContainerStatus

Obj = dict[str, Any]
RUNTIME_PREFIX = "runc://"


@dataclass
class ContainerView:
    """What the worker knows about one container of the spec."""

    name: str
    image: str
    image_id: str = ""
    current: ContainerStatus | None = None  # the latest attempt
    previous: ContainerStatus | None = None  # the attempt before it (exited)
    restart_count: int = 0
    waiting: tuple[str, str] | None = None  # (reason, message) while not running
    ready: bool = False
    started: bool = False
    sidecar: bool = False


def _terminated(st: ContainerStatus) -> Obj:
    out: Obj = {
        "exitCode": st.exit_code if st.exit_code is not None else 255,
        "reason": st.reason or ("Completed" if st.exit_code == 0 else "Error"),
        "startedAt": st.started_at or None,
        "finishedAt": st.finished_at or None,
        "containerID": RUNTIME_PREFIX + st.id,
    }
    if st.message:
        out["message"] = st.message
    return out


def container_status(v: ContainerView, default_waiting: str = "ContainerCreating") -> Obj:
    cur = v.current
    last: Obj = {}
    state: Obj
    if v.waiting is not None:
        reason, message = v.waiting
        state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if cur is not None and cur.state == ContainerState.EXITED:
            last = {"terminated": _terminated(cur)}
        elif v.previous is not None:
            last = {"terminated": _terminated(v.previous)}
    elif cur is None or cur.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
        state = {"waiting": {"reason": default_waiting}}
        if v.previous is not None:
            last = {"terminated": _terminated(v.previous)}
    elif cur.state == ContainerState.RUNNING:
        state = {"running": {"startedAt": cur.started_at or None}}
        if v.previous is not None:
            last = {"terminated": _terminated(v.previous)}
    else:
        state = {"terminated": _terminated(cur)}
        if v.previous is not None:
            last = {"terminated": _terminated(v.previous)}
    running = cur is not None and cur.state == ContainerState.RUNNING and v.waiting is None
    out: Obj = {
        "name": v.name,
        "state": state,
        "lastState": last,
        "ready": bool(v.ready and running),
        "restartCount": v.restart_count,
        "image": v.image,
        "imageID": v.image_id,
        "started": bool(v.started and running),
    }
    if cur is not None:
        out["containerID"] = RUNTIME_PREFIX + cur.id
    return out


def _is_running(v: ContainerView) -> bool:
    return v.current is not None and v.current.state == ContainerState.RUNNING and v.waiting is None


def _exited(v: ContainerView) -> ContainerStatus | None:
    return v.current if v.current is not None and v.current.state == ContainerState.EXITED else None


def init_done(pod: Obj, views: list[ContainerView]) -> bool:
    """Every regular init container succeeded and every sidecar has started."""
    for v in views:
        if v.sidecar:
            if not (_is_running(v) and v.started):
                return False
        else:
            ex = _exited(v)
            if ex is None or ex.exit_code != 0:
                return False
    return True


def init_failed(pod: Obj, views: list[ContainerView]) -> bool:
    """An init container failed and will not be retried (restartPolicy Never)."""
    if (pod.get("spec") or {}).get("restartPolicy") != "Never":
        return False
    return any(not v.sidecar and (ex := _exited(v)) is not None and ex.exit_code != 0 for v in views)


def phase(pod: Obj, init: list[ContainerView], apps: list[ContainerView]) -> str:
    """``getPhase`` for the regular containers (sidecars never keep a pod from completing)."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if init_failed(pod, init):
        return "Failed"
    if not init_done(pod, init):
        return "Pending"
    pending = running = stopped = succeeded = 0
    for v in apps:
        ex = _exited(v)
        if _is_running(v):
            running += 1
        elif ex is not None:
            stopped += 1
            succeeded += ex.exit_code == 0
        elif v.waiting is not None and (v.previous is not None or v.restart_count > 0):
            stopped += 1  # crash looping: it ran before
        else:
            pending += 1
    if pending:
        return "Pending"
    if running:
        return "Running"
    if policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Running" if policy == "OnFailure" else "Failed"


def _cond(type_: str, ok: bool, now: str, reason: str = "", message: str = "") -> Obj:
    c: Obj = {
        "type": type_,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason and not ok:
        c["reason"] = reason
    if message and not ok:
        c["message"] = message
    return c


def _names(views: list[ContainerView]) -> str:
    return "[" + " ".join(v.name for v in views) + "]"


def conditions(
    pod: Obj, init: list[ContainerView], apps: list[ContainerView], sandbox_ready: bool, ph: str, now: str
) -> list[Obj]:
    done = ph in ("Succeeded", "Failed")
    incomplete = [
        v
        for v in init
        if not (v.sidecar and _is_running(v) and v.started)
        and not (not v.sidecar and (ex := _exited(v)) is not None and ex.exit_code == 0)
    ]
    initialized = not incomplete or ph == "Succeeded"
    unready = [v for v in apps + [s for s in init if s.sidecar] if not (v.ready and _is_running(v))]
    gates = [str(g.get("conditionType")) for g in (pod.get("spec") or {}).get("readinessGates") or []]
    existing = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    missing_gates = [g for g in gates if (existing.get(g) or {}).get("status") != "True"]
    ready_reason = "PodCompleted" if done else "ContainersNotReady"
    ready_msg = "" if done else f"containers with unready status: {_names(unready)}"
    containers_ready = not unready and not done
    ready = containers_ready and not missing_gates
    if containers_ready and missing_gates:
        ready_reason, ready_msg = (
            "ReadinessGatesNotReady",
            f"corresponding condition of pod readiness gate {missing_gates[0]!r} does not exist.",
        )
    out = [
        _cond("PodReadyToStartContainers", sandbox_ready and not done, now),
        _cond(
            "Initialized",
            initialized,
            now,
            "PodCompleted" if done and not initialized else "ContainersNotInitialized",
            f"containers with incomplete status: {_names(incomplete)}",
        ),
        _cond("Ready", ready, now, ready_reason, ready_msg),
        _cond("ContainersReady", containers_ready, now, ready_reason, ready_msg),
    ]
    if done:
        out[1] = _cond("Initialized", True, now) if initialized else out[1]
    scheduled = existing.get("PodScheduled") or _cond("PodScheduled", True, now)
    out.append(dict(scheduled))
    return out


def keep_transitions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    prev = {c.get("type"): c for c in old}
    out = []
    for c in new:
        p = prev.get(c["type"])
        if p is not None and p.get("status") == c["status"] and p.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": p["lastTransitionTime"]}
        out.append(c)
    known = {c["type"] for c in out}
    out.extend(c for t, c in prev.items() if t not in known)  # DisruptionTarget, readiness gates ...
    return out


def pod_status(
    pod: Obj,
    init: list[ContainerView],
    apps: list[ContainerView],
    *,
    host_ip: str,
    pod_ip: str,
    sandbox_ready: bool,
    start_time: str,
    now: str,
    forced_phase: tuple[str, str, str] | None = None,  # (phase, reason, message), e.g. Evicted
) -> Obj:
    old = pod.get("status") or {}
    ph = phase(pod, init, apps)
    if forced_phase is not None:
        ph = forced_phase[0]
    initializing = not init_done(pod, init)
    status: Obj = {
        "phase": ph,
        "conditions": keep_transitions(
            old.get("conditions") or [], conditions(pod, init, apps, sandbox_ready, ph, now)
        ),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": old.get("startTime") or start_time,
        "containerStatuses": [
            container_status(v, "PodInitializing" if initializing else "ContainerCreating") for v in apps
        ],
    }
    if init:
        status["initContainerStatuses"] = [container_status(v) for v in init]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    if forced_phase is not None:
        status["reason"], status["message"] = forced_phase[1], forced_phase[2]
    return status


_VOLATILE = ("lastProbeTime",)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _VOLATILE and v not in (None, {}, [])}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def differs(old: Obj, new: Obj) -> bool:
    """True when ``new`` says something ``old`` (the pod's current status) does not."""
    return any(_strip(old.get(key)) != _strip(value) for key, value in new.items())
