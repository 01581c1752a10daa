"""cgroup v1 paths, statistics and OOM detection for runc containers.

runc's cgroupfs driver nests a *relative* ``cgroupsPath`` under the cgroup of the runc process in
every hierarchy (the memory hierarchy here is ``/process_api/<id>/...``), so the directories are
resolved from the container's ``/proc/<pid>/cgroup`` (or the agent's own for the pod parent).
What the kubelet reads is mirrored: ``cpuacct.usage`` for CPU, ``memory.usage_in_bytes`` minus
``total_inactive_file`` for the working set, ``cpu.stat`` for throttling and ``memory.oom_control``
``oom_kill`` for OOMKilled (``memory.failcnt`` stays 0 on these kernels, so it is not used).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kubelite.agent.runtime.base import ContainerStats

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _mount_dir(controllers: str) -> Path | None:
    """The v1 mount of a hierarchy: ``cpu`` -> /sys/fs/cgroup/cpu, ``name=systemd`` -> .../systemd."""
    if not controllers:
        # the v2 line of a hybrid system: runc mirrors its cgroups under /sys/fs/cgroup/unified,
        # so they are listed too (and removed with the pod)
        unified = CGROUP_ROOT / "unified"
        return unified if unified.is_dir() else None
    name = controllers.removeprefix("name=")
    path = CGROUP_ROOT / name
    return path if path.is_dir() else None


def proc_cgroups(pid: int | str = "self") -> dict[str, Path]:
    """Controller name -> cgroup directory of a process, for every mounted v1 hierarchy."""
    result: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            mount = _mount_dir(controllers)
            if mount is None:
                continue
            for ctl in controllers.split(","):
                result[ctl.removeprefix("name=")] = mount / rel.lstrip("/")
    return result


def pod_dirs(cgroup_parent: str) -> list[Path]:
    """The pod-level directories a relative ``cgroup_parent`` gives in each hierarchy (runc nests them
    under the agent's own cgroup, since runc runs as the agent's descendant)."""
    seen: dict[Path, None] = {}
    for base in proc_cgroups().values():
        seen[base / cgroup_parent.strip("/")] = None
    return list(seen)


def remove_tree(top: Path) -> None:
    """rmdir ``top`` and everything below it, deepest first (cgroup dirs cannot be removed recursively)."""
    if not top.is_dir():
        return
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


def remove_pod_cgroups(cgroup_parent: str) -> None:
    """Remove the pod's cgroups in every hierarchy, then its now-empty ancestors up to the agent's
    cgroup (``kubelite/pod<uid>`` -> ``kubelite`` if no other pod uses it)."""
    parts = [p for p in cgroup_parent.strip("/").split("/") if p]
    if not parts:
        return
    for base in set(proc_cgroups().values()):
        remove_tree(base.joinpath(*parts))
        for depth in range(len(parts) - 1, 0, -1):
            with contextlib.suppress(OSError):
                os.rmdir(base.joinpath(*parts[:depth]))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, val = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(val)
    return out


def _int(path: Path) -> int:
    try:
        return int(_read(path).strip() or 0)
    except ValueError:
        return 0


def oom_killed(dirs: dict[str, Path]) -> bool:
    """True when the kernel OOM-killed a process of this cgroup (``oom_kill`` in memory.oom_control)."""
    mem = dirs.get("memory")
    return mem is not None and _keyed(_read(mem / "memory.oom_control")).get("oom_kill", 0) > 0


def read_stats(dirs: dict[str, Path]) -> ContainerStats | None:
    """Usage of a running container's cgroups; None when they are gone."""
    cpuacct, mem, cpu = dirs.get("cpuacct"), dirs.get("memory"), dirs.get("cpu")
    if cpuacct is None or not (cpuacct / "cpuacct.usage").exists():
        return None
    working_set = 0
    if mem is not None:
        usage = _int(mem / "memory.usage_in_bytes")
        inactive = _keyed(_read(mem / "memory.stat")).get("total_inactive_file", 0)
        working_set = max(0, usage - inactive)
    throttle = _keyed(_read(cpu / "cpu.stat")) if cpu is not None else {}
    return ContainerStats(
        cpu_usage_ns=_int(cpuacct / "cpuacct.usage"),
        memory_working_set_bytes=working_set,
        cpu_throttled_periods=throttle.get("nr_throttled", 0),
        cpu_periods=throttle.get("nr_periods", 0),
    )
