"""OCI runtime ``config.json`` for one container of a pod, as the CRI runtimes write it.

Mirrors containerd's CRI plugin defaults: the default capability set, masked and read-only
``/proc`` paths, the standard ``/proc /dev /dev/pts /dev/shm /dev/mqueue /sys`` mounts, the pod's
``/etc/hosts``, ``/etc/resolv.conf`` and ``/etc/hostname`` bind-mounted from files the sandbox
writes, the termination-message file bind-mounted at ``terminationMessagePath``, and the pod's
IPC/UTS (and network) namespaces joined by path.  ``privileged`` gives every capability, no masked
paths and all devices.  Two limits of these machines are respected: rlimits are clamped to the
current hard limits and ``oomScoreAdj`` to >= 0 (root has no CAP_SYS_RESOURCE here).
"""

from __future__ import annotations

import os
import resource
import stat
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.runtime.base import ContainerConfig, Mount, Resources, SecurityConfig

DEFAULT_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
ALL_CAPS_LAST = 40  # CAP_CHECKPOINT_RESTORE; names below cover 0..40
CAP_NAMES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RLIMITS = (("RLIMIT_NOFILE", resource.RLIMIT_NOFILE, 1_048_576),)


@dataclass(frozen=True)
class BundleSpec:
    """Everything besides the ContainerConfig that decides a container's config.json."""

    hostname: str
    etc_files: dict[str, str]  # container path (/etc/hosts ...) -> host file
    namespaces: list[dict[str, str]]  # [{"type": "ipc", "path": ...}, {"type": "pid"}, ...]
    cgroups_path: str = ""  # "" = no cgroup limits (rootless)
    termination_log: str = ""  # host file for terminationMessagePath
    rootless: bool = False
    uid_mappings: list[dict[str, int]] = field(default_factory=list)
    gid_mappings: list[dict[str, int]] = field(default_factory=list)


def capability_set(sec: SecurityConfig, available: int | None = None) -> list[str]:
    """The container's capabilities: containerd's default set plus ``add`` minus ``drop`` ("ALL" works
    in both, as in Kubernetes); privileged gets every capability the host has."""
    all_caps = [f"CAP_{n}" for n in CAP_NAMES[: (available if available is not None else _cap_last()) + 1]]
    if sec.privileged:
        return all_caps
    norm = [c.upper().removeprefix("CAP_") for c in sec.capabilities_add]
    drop = {c.upper().removeprefix("CAP_") for c in sec.capabilities_drop}
    caps: list[str] = [] if "ALL" in drop else [c for c in DEFAULT_CAPS if c not in drop]
    if "ALL" in norm:
        return all_caps
    for c in norm:
        if c not in caps:
            caps.append(c)
    known = set(all_caps)
    return [f"CAP_{c}" for c in caps if f"CAP_{c}" in known]


def _cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read()), len(CAP_NAMES) - 1)
    except (OSError, ValueError):
        return ALL_CAPS_LAST


def _bounding_ok(caps: list[str]) -> list[str]:
    """Drop capabilities the agent itself lacks (runc fails otherwise: CAP_SYS_RESOURCE here)."""
    try:
        with open("/proc/self/status") as f:
            bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return caps
    return [
        c
        for c in caps
        if c.removeprefix("CAP_") in CAP_NAMES and bnd >> CAP_NAMES.index(c.removeprefix("CAP_")) & 1
    ]


def rlimits() -> list[dict[str, Any]]:
    """The rlimits containers get (containerd's NOFILE 1048576), clamped to the current hard limit."""
    out = []
    for name, res, want in RLIMITS:
        _soft, hard = resource.getrlimit(res)
        value = want if hard == resource.RLIM_INFINITY else min(want, hard)
        out.append({"type": name, "hard": value, "soft": value})
    return out


def _user(sec: SecurityConfig) -> dict[str, Any]:
    user: dict[str, Any] = {"uid": sec.run_as_user or 0, "gid": sec.run_as_group or 0}
    if sec.supplemental_groups:
        user["additionalGids"] = list(sec.supplemental_groups)
    return user


def process(cfg: ContainerConfig, rootless: bool) -> dict[str, Any]:
    caps = _bounding_ok(capability_set(cfg.security))
    env = [f"{k}={v}" for k, v in cfg.env]
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    proc: dict[str, Any] = {
        "terminal": False,
        "user": _user(cfg.security),
        "args": list(cfg.args),
        "env": env,
        "cwd": cfg.working_dir or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": cfg.security.no_new_privileges and not cfg.security.privileged,
    }
    if not rootless:
        proc["rlimits"] = rlimits()
    if not rootless or cfg.resources.oom_score_adj > 0:
        proc["oomScoreAdj"] = max(0, cfg.resources.oom_score_adj)
    return proc


def standard_mounts(privileged: bool, rootless: bool) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
            + ([] if rootless else ["gid=5"]),
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    if rootless:  # sysfs needs the network namespace's owner; bind the host's read-only instead
        mounts.append(
            {
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
            }
        )
    else:
        mounts.append({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts})
    return mounts


def bind(source: str, dest: str, read_only: bool, propagation: str = "") -> dict[str, Any]:
    opts = ["rbind", "ro" if read_only else "rw"]
    if propagation:
        opts.append(propagation)
    return {"destination": dest, "type": "bind", "source": source, "options": opts}


def user_mounts(cfg: ContainerConfig, spec: BundleSpec) -> list[dict[str, Any]]:
    mounts = [bind(m.host_path, m.container_path, m.read_only, m.propagation) for m in cfg.mounts]
    targets = {m.container_path for m in cfg.mounts}
    for dest, src in spec.etc_files.items():
        if dest not in targets:
            mounts.append(bind(src, dest, cfg.security.read_only_root))
    if cfg.termination_message_path and spec.termination_log:
        mounts.append(bind(spec.termination_log, cfg.termination_message_path, False))
    return mounts


def linux_resources(res: Resources, privileged: bool) -> dict[str, Any]:
    cpu: dict[str, Any] = {"shares": max(2, res.cpu_shares)}
    if res.cpu_quota_us > 0:
        cpu["quota"] = res.cpu_quota_us
        cpu["period"] = res.cpu_period_us or 100_000
    out: dict[str, Any] = {"cpu": cpu, "devices": [{"allow": privileged, "access": "rwm"}]}
    if res.memory_limit_bytes > 0:
        out["memory"] = {"limit": res.memory_limit_bytes, "swap": res.memory_limit_bytes}
    return out


def host_devices(dev: str = "/dev") -> list[dict[str, Any]]:
    """The host's device nodes (top level of /dev), which privileged containers get, as in containerd."""
    out: list[dict[str, Any]] = []
    for name in sorted(os.listdir(dev)):
        path = os.path.join(dev, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
        if kind and name not in ("console", "ptmx", "tty"):  # runc sets these up itself
            out.append({
                "path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0,
            })  # fmt: skip
    return out


def linux(cfg: ContainerConfig, spec: BundleSpec) -> dict[str, Any]:
    privileged = cfg.security.privileged
    lin: dict[str, Any] = {"namespaces": spec.namespaces}
    if privileged and not spec.rootless:
        lin["devices"] = host_devices()
    if spec.cgroups_path:
        lin["cgroupsPath"] = spec.cgroups_path
        lin["resources"] = linux_resources(cfg.resources, privileged)
    if spec.rootless:
        lin["uidMappings"] = spec.uid_mappings
        lin["gidMappings"] = spec.gid_mappings
    if not privileged:
        lin["maskedPaths"] = list(MASKED_PATHS)
        lin["readonlyPaths"] = list(READONLY_PATHS)
    return lin


def config_json(cfg: ContainerConfig, spec: BundleSpec, rootfs: str = "rootfs") -> dict[str, Any]:
    """The whole OCI runtime spec for ``cfg``."""
    mounts = standard_mounts(cfg.security.privileged, spec.rootless) + user_mounts(cfg, spec)
    return {
        "ociVersion": "1.0.2",
        "process": process(cfg, spec.rootless),
        "root": {"path": rootfs, "readonly": cfg.security.read_only_root},
        **({"hostname": spec.hostname} if spec.hostname else {}),  # only with a private/pod UTS ns
        "mounts": mounts,
        "linux": linux(cfg, spec),
    }


def host_mount(m: Mount) -> dict[str, Any]:
    """One Mount as an OCI bind mount (exposed for tests and the rootless runtime)."""
    return bind(m.host_path, m.container_path, m.read_only, m.propagation)
