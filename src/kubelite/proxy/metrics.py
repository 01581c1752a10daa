"""Sync metrics of the proxy, in the spirit of kube-proxy's sync_proxy_rules_* metrics.

``last_applied[service]`` is the monotonic time at which the latest change of that
Service's rules was in the kernel; ``syncs`` keeps recent transactions (kind, size, nft
apply time); listeners are told after every applied transaction (the benchmark uses
them to measure "EndpointSlice write -> rule in place").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Listener = Callable[[set[str], float], None]


@dataclass(frozen=True)
class SyncRecord:
    kind: str  # "full" | "partial"
    ok: bool
    services: int  # services whose kernel objects changed
    lines: int  # commands in the transaction
    render_seconds: float
    nft_seconds: float
    finished: float  # time.monotonic()
    max_pending_seconds: float = 0.0  # oldest informer event of this sync -> applied


@dataclass
class ProxyMetrics:
    last_applied: dict[str, float] = field(default_factory=dict)
    syncs: deque[SyncRecord] = field(default_factory=lambda: deque(maxlen=2000))
    listeners: list[Listener] = field(default_factory=list)
    failures: int = 0

    def record(self, rec: SyncRecord, services: set[str]) -> None:
        self.syncs.append(rec)
        if not rec.ok:
            self.failures += 1
            return
        for key in services:
            self.last_applied[key] = rec.finished
        for listener in list(self.listeners):
            listener(services, rec.finished)

    def nft_seconds(self, kind: str) -> list[float]:
        return [r.nft_seconds for r in self.syncs if r.kind == kind and r.ok and r.lines]


def now() -> float:
    return time.monotonic()
