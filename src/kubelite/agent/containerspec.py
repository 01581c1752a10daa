"""Pod spec -> runtime settings: resources (cgroups) and securityContext, as the kubelet maps them.

* CPU shares from ``requests.cpu`` (milli * 1024 / 1000, at least 2), CFS quota from
  ``limits.cpu`` (milli * period / 1000, at least 1 ms), memory limit from ``limits.memory``;
  ``oomScoreAdj`` by QoS class (Guaranteed -997, BestEffort 1000, Burstable scaled by the memory
  request), clamped to >= 0 by the runtime on these machines.
* ``securityContext``: container fields override the pod's; ``fsGroup`` and
  ``supplementalGroups`` become additional groups; ``allowPrivilegeEscalation: false`` sets
  no_new_privileges; ``runAsNonRoot`` refuses uid 0 (``CreateContainerConfigError``).
"""

from __future__ import annotations

from typing import Any

from kubelite.agent.env import ConfigError
from kubelite.agent.runtime.base import PulledImage, Resources, SecurityConfig
from kubelite.api.quantity import milli_value, value

Obj = dict[str, Any]
PERIOD_US = 100_000


def qos_class(pod: Obj) -> str:
    existing = (pod.get("status") or {}).get("qosClass")
    if existing:
        return str(existing)
    spec = pod.get("spec") or {}
    ctrs = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    req_any = lim_all = False
    guaranteed = True
    for c in ctrs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            req_any = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
        lim_all = lim_all or bool(lim)
    if not req_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def resources(pod: Obj, container: Obj, memory_capacity: int) -> Resources:
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_req = milli_value(req["cpu"]) if "cpu" in req else (milli_value(lim["cpu"]) if "cpu" in lim else 0)
    shares = max(2, cpu_req * 1024 // 1000) if cpu_req else 2
    quota = max(1000, milli_value(lim["cpu"]) * PERIOD_US // 1000) if "cpu" in lim else 0
    mem = value(lim["memory"]) if "memory" in lim else 0
    qos = qos_class(pod)
    if qos == "Guaranteed":
        adj = -997
    elif qos == "BestEffort":
        adj = 1000
    else:
        mem_req = value(req["memory"]) if "memory" in req else 0
        adj = 1000 - (1000 * mem_req) // max(1, memory_capacity)
        adj = min(999, max(2, adj))
    return Resources(
        cpu_shares=shares,
        cpu_quota_us=quota,
        cpu_period_us=PERIOD_US,
        memory_limit_bytes=mem,
        oom_score_adj=max(0, adj),
    )


def _image_user(image: PulledImage | None) -> tuple[int | None, int | None]:
    if image is None or not image.user:
        return None, None
    user, _, group = image.user.partition(":")
    uid = int(user) if user.isdigit() else (0 if user == "root" else None)
    gid = int(group) if group.isdigit() else None
    return uid, gid


def security(pod: Obj, container: Obj, image: PulledImage | None) -> SecurityConfig:
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    img_uid, img_gid = _image_user(image)
    uid = pick("runAsUser")
    uid = int(uid) if uid is not None else img_uid
    gid = pick("runAsGroup")
    gid = int(gid) if gid is not None else img_gid
    if pick("runAsNonRoot") and (uid is None or uid == 0):
        if uid is None and image is not None and image.user and img_uid is None:
            raise ConfigError(
                "container has runAsNonRoot and image has non-numeric user, cannot verify user is non-root"
            )
        raise ConfigError("container has runAsNonRoot and image will run as root")
    groups = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups.append(int(psc["fsGroup"]))
    caps = csc.get("capabilities") or {}
    privileged = bool(csc.get("privileged"))
    ape = csc.get("allowPrivilegeEscalation")
    return SecurityConfig(
        run_as_user=uid,
        run_as_group=gid,
        supplemental_groups=tuple(dict.fromkeys(groups)),
        read_only_root=bool(csc.get("readOnlyRootFilesystem")),
        privileged=privileged,
        capabilities_add=tuple(str(c) for c in caps.get("add") or []),
        capabilities_drop=tuple(str(c) for c in caps.get("drop") or []),
        no_new_privileges=ape is False,
    )
