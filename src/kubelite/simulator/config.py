"""Settings of the node simulator, read from the ``kubelite up``/``simulate`` flags.

Annotations users put on objects to steer the simulation (documented in the README of
the simulator, ``kubelite.simulator``) are named here so every module agrees on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.api import errors
from kubelite.api.quantity import is_valid_quantity

# Marker label of every simulated node (like kwok's ``type=kwok``); the simulator adopts
# any node that carries it.
SIMULATED_LABEL = "kubelite.io/simulated"
# Node annotation: "true" stops the node (no lease renewals, no pod updates).
STOPPED_ANNOTATION = "kubelite.io/simulate-stopped"
# Pod annotations.
DURATION_ANNOTATION = "kubelite.io/simulate-duration"  # "2s", "500ms", "1m" or seconds
EXIT_CODE_ANNOTATION = "kubelite.io/simulate-exit-code"  # "1" makes the pod Failed
CPU_ANNOTATION = "kubelite.io/simulate-cpu"  # simulated usage of the pod, e.g. "250m"
MEMORY_ANNOTATION = "kubelite.io/simulate-memory"  # e.g. "64Mi"

NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40  # kubelet's default nodeLeaseDurationSeconds
NODE_STATUS_REPORT_SECONDS = 300.0  # kubelet posts an unchanged status every 5 minutes
KUBELET_VERSION = "v1.32.0"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def to_obj(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_taint(text: str) -> Taint:
    """``key=value:Effect`` or ``key:Effect`` (the syntax of ``kubectl taint``)."""
    head, sep, effect = text.rpartition(":")
    if not sep or effect not in _EFFECTS:
        raise errors.BadRequest(
            f"--simulated-node-taint {text!r}: expected key[=value]:Effect with Effect one of "
            + ", ".join(_EFFECTS)
        )
    key, _, value = head.partition("=")
    if not key:
        raise errors.BadRequest(f"--simulated-node-taint {text!r}: the taint key is empty")
    return Taint(key, value, effect)


@dataclass
class SimConfig:
    """What the simulated nodes look like and how fast their pods live."""

    nodes: int = 0
    prefix: str = "sim-node-"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    zones: int = 3
    pod_start_delay: float = 0.2
    job_duration: float = 1.0
    heartbeat: float = 10.0
    status_report: float = NODE_STATUS_REPORT_SECONDS
    taints: list[Taint] = field(default_factory=list)
    tainted_nodes: int = 0  # the taints go on the first N nodes (0: on every node)
    cleanup: bool = False  # delete our nodes and leases on stop
    workers: int = 64  # concurrent pod status writers
    register_concurrency: int = 64
    default_cpu_fraction: float = 0.1  # simulated usage of a pod without annotations

    def validate(self) -> None:
        sizes = (("cpu", self.cpu), ("memory", self.memory), ("ephemeral-storage", self.ephemeral_storage))
        for name, q in sizes:
            if not is_valid_quantity(q):
                raise errors.BadRequest(f"--simulated-node-{name} {q!r} is not a quantity")
        if self.heartbeat <= 0:
            raise errors.BadRequest("--simulated-heartbeat must be > 0 seconds")
        if self.zones < 1:
            raise errors.BadRequest("--simulated-zones must be >= 1")

    @classmethod
    def from_args(cls, args: Any) -> SimConfig:
        """Read the CLI namespace; missing attributes keep their defaults."""
        d = cls()

        def get(name: str, default: Any) -> Any:
            v = getattr(args, name, None)
            return default if v is None else v

        cfg = cls(
            nodes=int(get("simulated_nodes", 0)),
            prefix=str(get("simulated_node_prefix", d.prefix)),
            cpu=str(get("simulated_node_cpu", d.cpu)),
            memory=str(get("simulated_node_memory", d.memory)),
            pods=int(get("simulated_node_pods", d.pods)),
            ephemeral_storage=str(get("simulated_node_ephemeral_storage", d.ephemeral_storage)),
            zones=int(get("simulated_zones", d.zones)),
            pod_start_delay=float(get("simulated_pod_start_delay", d.pod_start_delay)),
            job_duration=float(get("simulated_job_duration", d.job_duration)),
            heartbeat=float(get("simulated_heartbeat", d.heartbeat)),
            taints=[parse_taint(t) for t in get("simulated_node_taint", [])],
            tainted_nodes=int(get("simulated_tainted_nodes", 0)),
            cleanup=bool(get("simulated_cleanup", False)),
        )
        cfg.validate()
        return cfg


def parse_duration(text: str) -> float:
    """``"2s"``, ``"500ms"``, ``"1m"``, ``"1h"`` or plain seconds ``"1.5"``; raises ValueError."""
    t = text.strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if t.endswith(suffix):
            return max(0.0, float(t[: -len(suffix)]) * scale)
    return max(0.0, float(t))
