"""Rate-limited work queue keyed by object, and the reconcile loop around it.

client-go's discipline: a key is queued once however often it is added; one worker
handles a key at a time (a key added while it is processed is re-queued after);
failures are retried with per-key exponential back-off.

Opt-in coalescing: :meth:`WorkQueue.not_before` holds back a key's next processing
until a moment has passed (adds in between collapse into one later run), so a
controller whose sync of a hot key is expensive bounds the event-loop share it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("kubelite.workqueue")

Reconcile = Callable[[str], Awaitable[float | None]]  # returns "requeue after" seconds or None


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._not_before: dict[str, float] = {}  # key -> loop time before which it waits

    def add(self, key: str) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        if self._not_before and self._held_back(key):
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    def not_before(self, key: str, delay: float) -> None:
        """Do not hand ``key`` to a worker again before ``delay`` seconds from now."""
        if delay > 0:
            self._not_before[key] = asyncio.get_running_loop().time() + delay

    def _held_back(self, key: str) -> bool:
        """True (and a timer armed for the end of the wait) while ``key`` must wait."""
        until = self._not_before.get(key)
        if until is None:
            return False
        loop = asyncio.get_running_loop()
        if until <= loop.time() + 0.001:
            del self._not_before[key]
            return False
        timer = self._timers.get(key)
        if timer is None or timer.when() > until:
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_at(until, self._fire, key)
        return True

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self.max_delay, self.base_delay * (2**n)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return self._queue.qsize()

    def shutdown(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        self._not_before.clear()


class Controller:
    """Runs ``reconcile(key)`` from a work queue with N workers."""

    def __init__(self, name: str, reconcile: Reconcile, workers: int = 1) -> None:
        self.name = name
        self.reconcile = reconcile
        self.queue = WorkQueue()
        self.workers = workers
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name}-{i}") for i in range(self.workers)
        ]

    async def stop(self) -> None:
        self.queue.shutdown()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                again = await self.reconcile(key)
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("reconcile failed controller=%s key=%s error=%s", self.name, key, e)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
