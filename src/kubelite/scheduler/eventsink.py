"""The scheduler's event queue: one writer, bounded, dropping when full.

client-go's event broadcaster (which kube-scheduler uses) queues at most 1000 events and
writes them from one goroutine, dropping new ones while the queue is full, so a burst of
scheduling never lets event writes crowd out bindings.  This does the same over
:class:`~kubelite.machinery.events.EventRecorder` (which aggregates repeats into counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kubelite.machinery.events import EventRecorder

log = logging.getLogger("kubelite.scheduler")
MAX_QUEUED_EVENTS = 1000
Obj = dict[str, Any]


class EventSink:
    def __init__(self, recorder: EventRecorder, max_queued: int = MAX_QUEUED_EVENTS) -> None:
        self.recorder = recorder
        self._queue: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            log.debug("event dropped reason=%s", reason)
            return
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="scheduler-events")

    async def _run(self) -> None:
        while True:
            obj, type_, reason, message = await self._queue.get()
            await self.recorder.record(obj, type_, reason, message)

    async def flush(self, timeout: float = 2.0) -> None:
        """Write what is queued (best effort, bounded by ``timeout``), then stop the writer."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._queue.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
