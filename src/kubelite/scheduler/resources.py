"""Resource arithmetic of the scheduler: pod requests and node allocatable as integers.

Mirrors ``k8s.io/component-helpers/resource.PodRequests`` as kube-scheduler 1.32 uses it:
a pod requests the larger of (sum of its app containers plus restartable "sidecar" init
containers) and (the largest regular init container plus the sidecars started before it),
plus ``spec.overhead``.  CPU is counted in millicores, everything else in whole units
(bytes, pods, devices).  The *non-zero* request used for scoring gives containers that
request no CPU or memory 100m and 200Mi, as ``schedutil.GetNonzeroRequests`` does, so
best-effort pods do not all pile onto one node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kubelite.api.quantity import milli_value, value

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
_BASIC = frozenset({CPU, MEMORY, EPHEMERAL, PODS})


@lru_cache(maxsize=4096)
def milli(q: str) -> int:
    """MilliValue of a quantity string (memoised: manifests repeat the same few)."""
    try:
        return milli_value(q)
    except (ValueError, ArithmeticError):
        return 0


@lru_cache(maxsize=4096)
def units(q: str) -> int:
    """Value of a quantity string, rounded up (memoised)."""
    try:
        return value(q)
    except (ValueError, ArithmeticError):
        return 0


def amount(name: str, q: Any) -> int:
    """A quantity in the scheduler's unit for resource ``name``."""
    text = str(q)
    return milli(text) if name == CPU else units(text)


@dataclass(slots=True)
class Resources:
    """Requested or allocatable amounts: the basic four plus extended ("scalar") resources."""

    cpu: int = 0
    memory: int = 0
    ephemeral: int = 0
    pods: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    def add_list(self, rl: Obj | None) -> None:
        for name, q in (rl or {}).items():
            self.add(name, amount(name, q))

    def add(self, name: str, n: int) -> None:
        if name == CPU:
            self.cpu += n
        elif name == MEMORY:
            self.memory += n
        elif name == EPHEMERAL:
            self.ephemeral += n
        elif name == PODS:
            self.pods += n
        elif is_extended(name):
            self.scalar[name] = self.scalar.get(name, 0) + n

    def set_max(self, other: Resources) -> None:
        self.cpu = max(self.cpu, other.cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral = max(self.ephemeral, other.ephemeral)
        for k, v in other.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def plus(self, other: Resources, sign: int = 1) -> None:
        self.cpu += sign * other.cpu
        self.memory += sign * other.memory
        self.ephemeral += sign * other.ephemeral
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def copy(self) -> Resources:
        return Resources(self.cpu, self.memory, self.ephemeral, self.pods, dict(self.scalar))


def is_extended(name: str) -> bool:
    """Scalar resources (``nvidia.com/gpu``, ``hugepages-2Mi``) are fitted like cpu."""
    if name in _BASIC or name.startswith("requests."):
        return False
    return "/" in name or name.startswith("hugepages-")


def _container_requests(c: Obj) -> Resources:
    r = Resources()
    res = c.get("resources") or {}
    # requests default to limits when only limits are given (API defaulting does this too)
    reqs = dict(res.get("limits") or {})
    reqs.update(res.get("requests") or {})
    r.add_list(reqs)
    return r


def _nonzero(c: Obj) -> tuple[int, int]:
    res = c.get("resources") or {}
    reqs = dict(res.get("limits") or {})
    reqs.update(res.get("requests") or {})
    cpu = milli(str(reqs[CPU])) if CPU in reqs else DEFAULT_MILLI_CPU
    mem = units(str(reqs[MEMORY])) if MEMORY in reqs else DEFAULT_MEMORY
    return cpu, mem


def pod_requests(spec: Obj) -> tuple[Resources, int, int]:
    """(requests, non-zero milli-CPU, non-zero memory) of a pod spec."""
    total = Resources()
    nz_cpu = nz_mem = 0
    for c in spec.get("containers") or []:
        total.plus(_container_requests(c))
        a, b = _nonzero(c)
        nz_cpu += a
        nz_mem += b
    sidecars = Resources()
    init_max = Resources()
    nz_init_cpu = nz_init_mem = nz_side_cpu = nz_side_mem = 0
    for c in spec.get("initContainers") or []:
        req = _container_requests(c)
        a, b = _nonzero(c)
        if c.get("restartPolicy") == "Always":
            sidecars.plus(req)
            total.plus(req)
            nz_side_cpu += a
            nz_side_mem += b
            nz_cpu += a
            nz_mem += b
        else:
            step = sidecars.copy()
            step.plus(req)
            init_max.set_max(step)
            nz_init_cpu = max(nz_init_cpu, nz_side_cpu + a)
            nz_init_mem = max(nz_init_mem, nz_side_mem + b)
    total.set_max(init_max)
    nz_cpu = max(nz_cpu, nz_init_cpu)
    nz_mem = max(nz_mem, nz_init_mem)
    overhead = spec.get("overhead")
    if overhead:
        extra = Resources()
        extra.add_list(overhead)
        total.plus(extra)
        nz_cpu += extra.cpu
        nz_mem += extra.memory
    return total, nz_cpu, nz_mem


def node_allocatable(node: Obj) -> Resources:
    """``status.allocatable`` (falling back to capacity) of a Node."""
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    r = Resources()
    r.add_list(alloc)
    return r
