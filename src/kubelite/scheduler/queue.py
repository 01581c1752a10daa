"""The scheduling queue: active, backoff and unschedulable pods.

Mirrors kube-scheduler's ``PriorityQueue`` (``internal/queue/scheduling_queue.go``):

* **activeQ** - a heap ordered by priority (higher first), then by the time the pod was
  first queued (PrioritySort);
* **backoffQ** - pods waiting out an exponential back-off after a failed attempt:
  1 s, 2 s, 4 s ... capped at 10 s (``podInitialBackoffSeconds``/``podMaxBackoffSeconds``);
* **unschedulable pods** - pods no node fits, parked until a cluster event that could make
  them fit arrives (a node added or changed, an assigned pod deleted, a volume bound ...).
  Only events registered by the plugins that rejected the pod move it (queueing hints);
  then it goes to backoffQ, or straight to activeQ if its back-off has already expired.
  Pods parked longer than 5 minutes are retried anyway.

A pod that fails while an event arrived during its own scheduling cycle goes to backoffQ
rather than the unschedulable pool, so the event is not lost (``moveRequestCycle``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubelite.scheduler.podinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0
Clock = Callable[[], float]


@dataclass(slots=True)
class QueuedPod:
    """A pod waiting to be scheduled, with its attempt history (``QueuedPodInfo``)."""

    pod: PodInfo
    timestamp: float  # when it was (re-)queued; orders equal priorities
    initial: float  # first time it was queued
    attempts: int = 0
    cycle: int = 0  # scheduling cycle of its latest attempt
    rejected_by: set[str] = field(default_factory=set)  # plugins that rejected it (empty: any)
    where: str = ""  # "active" | "backoff" | "unschedulable" | "flight"
    updated: bool = False  # changed while in flight
    seq: int = 0

    @property
    def key(self) -> str:
        return self.pod.key


class SchedulingQueue:
    def __init__(
        self,
        clock: Clock = time.monotonic,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.pods: dict[str, QueuedPod] = {}
        self.unschedulable: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self.cycle = 0
        self.move_request_cycle = -1
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    # ------------------------------------------------------------------ sizes

    def counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "flight": 0}
        for qp in self.pods.values():
            out[qp.where] = out.get(qp.where, 0) + 1
        return out

    def __len__(self) -> int:
        return len(self.pods)

    # ------------------------------------------------------------------ pushes

    def add(self, pod: PodInfo) -> None:
        """A new pending pod (or one whose spec changed): straight to activeQ."""
        qp = self.pods.get(pod.key)
        if qp is None:
            now = self.clock()
            qp = self.pods[pod.key] = QueuedPod(pod, now, now)
            self._push_active(qp)
            return
        self.update(pod)

    def update(self, pod: PodInfo) -> None:
        qp = self.pods.get(pod.key)
        if qp is None:
            self.add(pod)
            return
        qp.pod = pod
        if qp.where == "flight":
            qp.updated = True
        elif qp.where == "unschedulable":
            self._move(qp)
        elif qp.where == "active":
            self._push_active(qp)  # re-order (its priority may have changed)

    def delete(self, key: str) -> None:
        self.pods.pop(key, None)  # heap entries are dropped lazily
        self.unschedulable.pop(key, None)

    def _push_active(self, qp: QueuedPod) -> None:
        self.unschedulable.pop(qp.key, None)
        qp.where = "active"
        qp.seq = next(self._seq)
        heapq.heappush(self._active, (-qp.pod.priority, qp.timestamp, qp.seq, qp.key))
        self._wake.set()

    def _push_backoff(self, qp: QueuedPod) -> None:
        self.unschedulable.pop(qp.key, None)
        qp.where = "backoff"
        qp.seq = next(self._seq)
        expiry = self.backoff_expiry(qp)
        heapq.heappush(self._backoff, (expiry, qp.seq, qp.key))
        self._arm(expiry)

    def backoff_expiry(self, qp: QueuedPod) -> float:
        delay: float = self.initial_backoff * float(2 ** max(qp.attempts - 1, 0))
        return qp.timestamp + min(delay, self.max_backoff)

    # ------------------------------------------------------------------ pop / done

    async def pop(self) -> QueuedPod | None:
        """The next pod to schedule (waits while activeQ is empty); None once closed."""
        while not self.closed:
            self.flush_backoff()
            qp = self._pop_active()
            if qp is not None:
                return qp
            self._wake.clear()
            await self._wake.wait()
        return None

    def _pop_active(self) -> QueuedPod | None:
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            qp = self.pods.get(key)
            if qp is None or qp.where != "active" or qp.seq != seq:
                continue
            self.cycle += 1
            qp.where = "flight"
            qp.attempts += 1
            qp.cycle = self.cycle
            qp.updated = False
            return qp
        return None

    def done(self, key: str) -> None:
        """The pod was assumed onto a node: it leaves the queue."""
        qp = self.pods.get(key)
        if qp is not None and qp.where == "flight":
            del self.pods[key]

    def requeue_failed(self, qp: QueuedPod, rejected_by: Iterable[str], error: bool = False) -> None:
        """``AddUnschedulableIfNotPresent``: park a pod after a failed attempt."""
        if self.pods.get(qp.key) is not qp:
            return  # deleted (or re-added) meanwhile
        qp.timestamp = self.clock()
        qp.rejected_by = set(rejected_by)
        if qp.updated:
            qp.updated = False
            self._push_active(qp)
        elif error or self.move_request_cycle >= qp.cycle:
            self._push_backoff(qp)
        else:
            qp.where = "unschedulable"
            self.unschedulable[qp.key] = qp

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake.set()

    # ------------------------------------------------------------------ moves

    def on_event(self, event: str, interested: Callable[[str], set[str]]) -> int:
        """A cluster event: move the unschedulable pods it may help; returns how many moved."""
        self.move_request_cycle = self.cycle
        if not self.unschedulable:
            return 0
        moved = 0
        plugins = interested(event)
        for qp in list(self.unschedulable.values()):
            if qp.rejected_by and not (qp.rejected_by & plugins):
                continue
            self._move(qp)
            moved += 1
        return moved

    def activate(self, keys: Iterable[str]) -> None:
        for key in keys:
            qp = self.pods.get(key)
            if qp is not None and qp.where in ("unschedulable", "backoff"):
                self._push_active(qp)

    def _move(self, qp: QueuedPod) -> None:
        if self.backoff_expiry(qp) > self.clock():
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    def flush_backoff(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and qp.where == "backoff" and qp.seq == seq:
                self._push_active(qp)
        if self._backoff:
            self._arm(self._backoff[0][0])

    def flush_unschedulable(self) -> None:
        """Retry pods parked for longer than 5 minutes (``flushUnschedulablePodsLeftover``)."""
        now = self.clock()
        for qp in list(self.unschedulable.values()):
            if now - qp.timestamp > MAX_IN_UNSCHEDULABLE:
                self._move(qp)

    def _arm(self, when: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = max(0.0, when - self.clock())
        if self._timer is not None and not self._timer.cancelled():
            if self._timer.when() <= loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush_backoff()
