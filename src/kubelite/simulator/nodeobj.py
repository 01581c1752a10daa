"""The Node object a simulated kubelet registers, and the addresses it hands out.

Mirrors what kubelet 1.32 posts at registration (``pkg/kubelet/kubelet_node_status.go``):
the well-known labels (hostname, os, arch, instance type, zone/region), capacity and
allocatable, the Ready/MemoryPressure/DiskPressure/PIDPressure conditions, nodeInfo,
addresses and daemonEndpoints.  Nodes may be created with their status (Kubernetes'
node strategy keeps status on create), so registration is one request.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import time
from typing import Any

from kubelite.simulator.config import KUBELET_VERSION, SIMULATED_LABEL, SimConfig

Obj = dict[str, Any]

_NODE_IP_BASE = ipaddress.IPv4Address("10.240.0.0")
_POD_NET_BASE = 244 * 256  # 10.244.0.0/24 is the pod range of node 0; one /24 per node


def now_rfc3339() -> str:
    """The current second in RFC 3339 UTC (each second formatted once: every simulated pod
    start and readiness check stamps it, thousands of times a second at scale)."""
    return _second_text(int(time.time())) + "Z"


def now_micro() -> str:
    """RFC 3339 UTC with microseconds (``MicroTime``), e.g. a Lease's ``renewTime``."""
    t = time.time()
    second = int(t)
    return f"{_second_text(second)}.{min(999_999, int((t - second) * 1e6)):06d}Z"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def node_ip(index: int) -> str:
    """The (never contacted) InternalIP of node ``index``: 10.240.0.1, 10.240.0.2, ..."""
    return str(_NODE_IP_BASE + index + 1)


def pod_subnet(index: int) -> tuple[int, int]:
    """Second and third octet of node ``index``'s pod /24: (244, 0), (244, 1), ..."""
    n = (_POD_NET_BASE + index) % 65536
    return n // 256, n % 256


def pod_cidr(index: int) -> str:
    b, c = pod_subnet(index)
    return f"10.{b}.{c}.0/24"


def pod_ip(index: int, host: int) -> str:
    b, c = pod_subnet(index)
    return f"10.{b}.{c}.{host}"


def node_index(name: str, prefix: str) -> int | None:
    """``sim-node-7`` -> 7 for our own naming scheme; None for an adopted foreign name."""
    tail = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def conditions(now: str, ready_since: str | None = None) -> list[Obj]:
    """kubelet's node conditions with everything healthy."""
    since = ready_since or now

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }

    return [
        cond(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
        ),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def _machine_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def node_status(cfg: SimConfig, name: str, index: int, now: str) -> Obj:
    resources = {
        "cpu": cfg.cpu,
        "memory": cfg.memory,
        "pods": str(cfg.pods),
        "ephemeral-storage": cfg.ephemeral_storage,
    }
    mid = _machine_id(name)
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": conditions(now),
        "addresses": [
            {"type": "InternalIP", "address": node_ip(index)},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": mid,
            "systemUUID": f"{mid[:8]}-{mid[8:12]}-{mid[12:16]}-{mid[16:20]}-{mid[20:32]}",
            "bootID": hashlib.sha256(f"boot/{name}".encode()).hexdigest()[:32],
            "kernelVersion": "6.1.0-simulated",
            "osImage": "kubelite simulated node",
            "containerRuntimeVersion": "simulated://1.0",
            "kubeletVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_labels(cfg: SimConfig, name: str, index: int) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "simulated",
        "topology.kubernetes.io/region": "sim",
        "topology.kubernetes.io/zone": f"zone-{index % max(1, cfg.zones)}",
        SIMULATED_LABEL: "true",
    }


def build_node(cfg: SimConfig, index: int, now: str | None = None) -> Obj:
    """The Node simulated node ``index`` registers with (metadata, spec and status)."""
    name = f"{cfg.prefix}{index}"
    spec: Obj = {"podCIDR": pod_cidr(index), "podCIDRs": [pod_cidr(index)]}
    if cfg.taints and (cfg.tainted_nodes <= 0 or index < cfg.tainted_nodes):
        spec["taints"] = [t.to_obj() for t in cfg.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(cfg, name, index),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": node_status(cfg, name, index, now or now_rfc3339()),
    }


def ready_condition(node: Obj) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return dict(c)
    return None


def healthy_conditions(node: Obj, now: str) -> list[Obj]:
    """The node's conditions refreshed to healthy: transition times kept when unchanged."""
    old = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    out = []
    for c in conditions(now):
        prev = old.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
        out.append(c)
    known = {c["type"] for c in out}
    out.extend(dict(c) for t, c in old.items() if t not in known)
    return out
