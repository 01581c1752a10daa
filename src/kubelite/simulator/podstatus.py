"""Pod status as kubelet 1.32 reports it, for pods whose containers are simulated.

A started pod gets what ``kubelet/status`` generates for a running pod: phase Running,
the PodReadyToStartContainers/Initialized/Ready/ContainersReady/PodScheduled conditions,
one running, ready, started status per container (``containerID`` ``simulated://...``,
image names fully qualified and ``imageID`` a repo digest, as containerd reports them),
init containers terminated with
reason Completed, a pod IP from the node's pod CIDR, hostIP(s) and startTime.  A
finished pod has every container terminated (exit 0 reason Completed, or the chosen
exit code with reason Error), phase Succeeded or Failed and Ready False with reason
PodCompleted.  With restartPolicy OnFailure a failing container restarts in place
instead: restartCount goes up and lastState keeps the terminated run.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

Obj = dict[str, Any]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def container_id(pod_uid: str, name: str) -> str:
    return f"simulated://{_digest(f'{pod_uid}/{name}')[:64]}"


@functools.lru_cache(maxsize=1024)
def normalize_image(image: str) -> str:
    """``nginx:1.27`` -> ``docker.io/library/nginx:1.27`` (the name a CRI reports)."""
    if not image:
        return image
    first, sep, _rest = image.partition("/")
    if not sep:
        image = f"docker.io/library/{image}"
    elif "." not in first and ":" not in first and first != "localhost":
        image = f"docker.io/{image}"
    name = image.split("@", 1)[0]
    if "@" not in image and ":" not in name.rsplit("/", 1)[-1]:
        image += ":latest"
    return image


@functools.lru_cache(maxsize=1024)
def image_id(image: str) -> str:
    """A repo digest for ``image``: ``docker.io/library/nginx@sha256:<fake>``."""
    full = normalize_image(image)
    repo = full.split("@", 1)[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[: repo.rindex(":")]
    return f"{repo}@sha256:{_digest(full)}"


def _cond(type_: str, status: str, at: str, reason: str = "") -> Obj:
    c: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": at}
    if reason:
        c["reason"] = reason
    return c


def _keep_transition(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """Conditions whose status did not change keep their lastTransitionTime (and extras)."""
    prev = {c.get("type"): c for c in old}
    out = []
    for c in new:
        p = prev.get(c["type"])
        if p is not None and p.get("status") == c["status"] and p.get("lastTransitionTime"):
            c["lastTransitionTime"] = p["lastTransitionTime"]
        out.append(c)
    known = {c["type"] for c in out}
    out.extend(c for t, c in prev.items() if t not in known)  # e.g. DisruptionTarget
    return out


def _terminated(pod_uid: str, c: Obj, started: str, finished: str, code: int) -> Obj:
    return {
        "name": c["name"],
        "state": {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": finished,
                "containerID": container_id(pod_uid, c["name"]),
            }
        },
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": normalize_image(str(c.get("image", ""))),
        "imageID": image_id(str(c.get("image", ""))),
        "containerID": container_id(pod_uid, c["name"]),
        "started": False,
    }


def _mounts(c: Obj) -> list[Obj]:
    """``volumeMounts`` of a container status (RecursiveReadOnlyMounts, on in 1.32)."""
    out = []
    for m in c.get("volumeMounts") or []:
        entry: Obj = {"name": m.get("name"), "mountPath": m.get("mountPath")}
        if m.get("readOnly"):
            entry["readOnly"] = True
            entry["recursiveReadOnly"] = "Disabled"
        out.append(entry)
    return out


def _running(pod_uid: str, c: Obj, started: str) -> Obj:
    status = _running_fields(pod_uid, c, started)
    mounts = _mounts(c)
    if mounts:
        status["volumeMounts"] = mounts
    return status


def _running_fields(pod_uid: str, c: Obj, started: str) -> Obj:
    return {
        "name": c["name"],
        "state": {"running": {"startedAt": started}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": normalize_image(str(c.get("image", ""))),
        "imageID": image_id(str(c.get("image", ""))),
        "containerID": container_id(pod_uid, c["name"]),
        "started": True,
    }


def _base(pod: Obj, host_ip: str, pod_ip: str, start_time: str) -> Obj:
    status = dict(pod.get("status") or {})
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = status.get("startTime") or start_time
    return status


def _scheduled_at(pod: Obj, now: str) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "True":
            return str(c.get("lastTransitionTime") or now)
    return now


def _init_statuses(pod: Obj, uid: str, now: str) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [_terminated(uid, c, now, now, 0) for c in spec.get("initContainers") or []]


def ready_condition(pod: Obj, conditions: list[Obj], now: str) -> Obj:
    """Ready True once containers are ready, unless a readiness gate is not True
    (kubelet's ReadinessGatesNotReady, with its messages)."""
    by_type = {c.get("type"): c for c in conditions}
    unready = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        t = gate.get("conditionType")
        c = by_type.get(t)
        if c is None:
            unready.append(f'corresponding condition of pod readiness gate "{t}" does not exist.')
        elif c.get("status") != "True":
            unready.append(f'the status of pod readiness gate "{t}" is not "True", but {c.get("status")}')
    if not unready:
        return _cond("Ready", "True", now)
    cond = _cond("Ready", "False", now, "ReadinessGatesNotReady")
    cond["message"] = ", ".join(unready)
    return cond


def refresh_ready(pod: Obj, now: str) -> Obj | None:
    """A running pod's status with Ready re-evaluated, or None when Ready is unchanged."""
    status = pod.get("status") or {}
    conditions = list(status.get("conditions") or [])
    new = ready_condition(pod, conditions, now)
    old = next((c for c in conditions if c.get("type") == "Ready"), None)
    if old is not None and old.get("status") == new["status"] and old.get("message") == new.get("message"):
        return None
    if old is not None and old.get("status") == new["status"]:
        new["lastTransitionTime"] = old.get("lastTransitionTime") or now
    out = dict(status)
    out["conditions"] = [new if c.get("type") == "Ready" else c for c in conditions]
    if old is None:
        out["conditions"].append(new)
    return out


def running_status(pod: Obj, host_ip: str, pod_ip: str, now: str) -> Obj:
    """The status of ``pod`` once its (simulated) containers run and are ready."""
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    spec = pod.get("spec") or {}
    status = _base(pod, host_ip, pod_ip, now)
    status["phase"] = "Running"
    sched = _scheduled_at(pod, now)
    old = list(status.get("conditions") or [])
    conditions = [
        _cond("PodReadyToStartContainers", "True", now),
        _cond("Initialized", "True", now),
        ready_condition(pod, old, now),
        _cond("ContainersReady", "True", now),
        _cond("PodScheduled", "True", sched),
    ]
    status["conditions"] = _keep_transition(old, conditions)
    status["containerStatuses"] = [_running(uid, c, now) for c in spec.get("containers") or []]
    inits = _init_statuses(pod, uid, now)
    if inits:
        status["initContainerStatuses"] = inits
    return status


def finished_status(pod: Obj, host_ip: str, pod_ip: str, now: str, exit_code: int) -> Obj:
    """The status of ``pod`` once all its containers exited with ``exit_code``."""
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    spec = pod.get("spec") or {}
    status = _base(pod, host_ip, pod_ip, now)
    started = str(status.get("startTime") or now)
    for cs in status.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or started
        break
    status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    sched = _scheduled_at(pod, now)
    conditions = [
        _cond("PodReadyToStartContainers", "False", now),
        _cond("Initialized", "True", now, "PodCompleted"),
        _cond("Ready", "False", now, "PodCompleted"),
        _cond("ContainersReady", "False", now, "PodCompleted"),
        _cond("PodScheduled", "True", sched),
    ]
    status["conditions"] = _keep_transition(list(status.get("conditions") or []), conditions)
    status["containerStatuses"] = [
        _terminated(uid, c, started, now, exit_code) for c in spec.get("containers") or []
    ]
    inits = _init_statuses(pod, uid, started)
    if inits:
        status["initContainerStatuses"] = inits
    return status


def restarted_status(pod: Obj, now: str, exit_code: int) -> Obj:
    """Every container exited with ``exit_code`` and was restarted (restartPolicy OnFailure)."""
    status = dict(pod.get("status") or {})
    out = []
    for cs in status.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or now
        new = dict(cs)
        new["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Error",
                "startedAt": started,
                "finishedAt": now,
                "containerID": cs.get("containerID", ""),
            }
        }
        new["state"] = {"running": {"startedAt": now}}
        new["restartCount"] = int(cs.get("restartCount") or 0) + 1
        out.append(new)
    status["containerStatuses"] = out
    return status
