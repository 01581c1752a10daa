"""``kubelite scheduler``: schedule only while holding the ``kube-system/kube-scheduler`` Lease.

Like kube-scheduler's ``--leader-elect`` (on by default): several schedulers may run
against one API server, one of them schedules.  A fresh scheduler (caches re-listed) is
started on every gain of leadership and stopped when the lease is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid

from kubelite.client.base import Client
from kubelite.machinery.leaderelection import LeaderElector
from kubelite.scheduler.scheduler import Scheduler

LEASE_NAME = "kube-scheduler"


class LeaderElectedScheduler:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.scheduler: Scheduler | None = None
        self.elector = LeaderElector(client, LEASE_NAME, f"{socket.gethostname()}_{uuid.uuid4()}")
        self._task: asyncio.Task[None] | None = None

    async def _started(self) -> None:
        self.scheduler = Scheduler(self.client)
        await self.scheduler.start()

    async def _stopped(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self.elector.run(self._started, self._stopped), name="scheduler-lease"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stopped()
