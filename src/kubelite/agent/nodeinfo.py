"""The real node's facts, read from the host, in the shape kubelet 1.32 registers them.

Capacity: ``cpu`` (online CPUs), ``memory`` (MemTotal), ``ephemeral-storage`` (size of the
filesystem holding the data dir), ``pods`` 110; allocatable subtracts the kubelet's default
hard eviction thresholds (memory 100Mi, nodefs 10%).  Addresses: InternalIP of the interface
holding the default route (or 127.0.0.1) and Hostname.  Conditions carry real readings:
MemoryPressure (MemAvailable < 100Mi), DiskPressure (< 10% free on the data dir's filesystem),
PIDPressure (more than 90% of pid_max in use).
"""

# ruff: noqa: E501  (tables of literals kept one entry per line)

from __future__ import annotations

import contextlib
import os
import platform
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0"
RUNTIME_VERSION = "runc://1.1.5"
MEMORY_EVICTION = 100 * 1024 * 1024  # memory.available<100Mi
DISK_EVICTION = 0.10  # nodefs.available<10%
PID_PRESSURE = 0.90
MAX_PODS = 110
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


@dataclass(frozen=True)
class Readings:
    mem_total: int
    mem_available: int
    disk_total: int
    disk_free: int
    pids: int
    pid_max: int

    @property
    def memory_pressure(self) -> bool:
        return self.mem_available < MEMORY_EVICTION

    @property
    def disk_pressure(self) -> bool:
        return self.disk_total > 0 and self.disk_free / self.disk_total < DISK_EVICTION

    @property
    def pid_pressure(self) -> bool:
        return self.pid_max > 0 and self.pids / self.pid_max > PID_PRESSURE


def meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def _pid_count() -> int:
    with contextlib.suppress(OSError):
        return sum(1 for d in os.listdir("/proc") if d.isdigit())
    return 0


def _pid_max() -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    return 0


def read(data_dir: Path) -> Readings:
    mem = meminfo()
    st = os.statvfs(data_dir)
    return Readings(
        mem_total=mem.get("MemTotal", 0),
        mem_available=mem.get("MemAvailable", mem.get("MemFree", 0)),
        disk_total=st.f_blocks * st.f_frsize,
        disk_free=st.f_bavail * st.f_frsize,
        pids=_pid_count(),
        pid_max=_pid_max(),
    )


def cpu_count() -> int:
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def primary_ip() -> str:
    """The IPv4 address of the interface holding the default route, else 127.0.0.1."""
    with contextlib.suppress(OSError), open("/proc/net/route") as f:
        next(f, None)
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000":
                return _iface_ip(fields[0]) or "127.0.0.1"
    return "127.0.0.1"


def _iface_ip(iface: str) -> str:
    import fcntl

    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface[:15].encode()))  # SIOCGIFADDR
        return socket.inet_ntoa(packed[20:24])
    return ""


def os_image() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def _machine_id() -> str:
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            value = Path(p).read_text().strip()
            if value:
                return value
    return ""


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def arch() -> str:
    m = platform.machine()
    return _ARCH.get(m, m)


def capacity(r: Readings) -> dict[str, str]:
    return {
        "cpu": str(cpu_count()),
        "memory": f"{r.mem_total // 1024}Ki",
        "ephemeral-storage": f"{r.disk_total // 1024}Ki",
        "pods": str(MAX_PODS),
    }


def allocatable(r: Readings) -> dict[str, str]:
    return {
        "cpu": str(cpu_count()),
        "memory": f"{max(0, r.mem_total - MEMORY_EVICTION) // 1024}Ki",
        "ephemeral-storage": str(int(r.disk_total * (1 - DISK_EVICTION))),
        "pods": str(MAX_PODS),
    }


def conditions(r: Readings, now: str, ready: bool = True, ready_message: str = "") -> list[Obj]:
    def cond(type_: str, bad: bool, ok_reason: str, ok_msg: str, bad_reason: str, bad_msg: str) -> Obj:
        return {
            "type": type_,
            "status": "True" if bad else "False",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": bad_reason if bad else ok_reason,
            "message": bad_msg if bad else ok_msg,
        }

    return [
        cond("MemoryPressure", r.memory_pressure, "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
             "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
        cond("DiskPressure", r.disk_pressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
             "KubeletHasDiskPressure", "kubelet has disk pressure"),
        cond("PIDPressure", r.pid_pressure, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
             "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
        {"type": "Ready", "status": "True" if ready else "False", "lastHeartbeatTime": now, "lastTransitionTime": now,
         "reason": "KubeletReady" if ready else "KubeletNotReady",
         "message": ready_message or ("kubelet is posting ready status" if ready else "container runtime is down")},
    ]  # fmt: skip


def labels(name: str) -> dict[str, str]:
    a = arch()
    return {
        "beta.kubernetes.io/arch": a,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": a,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "kubelite",
    }


def node_info() -> Obj:
    mid = _machine_id() or "0" * 32
    return {
        "machineID": mid,
        "systemUUID": f"{mid[:8]}-{mid[8:12]}-{mid[12:16]}-{mid[16:20]}-{mid[20:32]}",
        "bootID": _boot_id(),
        "kernelVersion": platform.release(),
        "osImage": os_image(),
        "containerRuntimeVersion": RUNTIME_VERSION,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": arch(),
    }


def node_status(name: str, ip: str, r: Readings, now: str, port: int = 10250) -> Obj:
    return {
        "capacity": capacity(r),
        "allocatable": allocatable(r),
        "conditions": conditions(r, now),
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": node_info(),
    }


def node_object(name: str, ip: str, r: Readings, now: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels(name),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
        "status": node_status(name, ip, r, now),
    }
