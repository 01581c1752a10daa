"""TTL-after-finished controller: delete finished Jobs ``ttlSecondsAfterFinished`` later.

Mirrors kube-controller-manager's ``ttlafterfinished`` controller: a Job with
``spec.ttlSecondsAfterFinished`` and a True ``Complete``/``Failed`` condition expires at
that condition's ``lastTransitionTime`` plus the TTL; when due, the Job is re-read from the
API server (the TTL may have been changed or the Job replaced), then deleted with
``Foreground`` propagation and a UID precondition, so its pods go first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from kubelite.api import errors
from kubelite.api.humanize import parse_time
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.ttlafterfinished")
Obj = dict[str, Any]
JOBS = Resource("batch", "v1", "jobs")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def finish_time(job: Obj) -> dt.datetime | None:
    """``lastTransitionTime`` of the Job's True Complete or Failed condition."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def needs_cleanup(job: Obj) -> bool:
    meta = job.get("metadata") or {}
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    return ttl is not None and not meta.get("deletionTimestamp") and finish_time(job) is not None


def time_left(job: Obj, now: dt.datetime) -> float | None:
    """Seconds until the Job expires (<= 0: expired), None when it never does."""
    if not needs_cleanup(job):
        return None
    finished = finish_time(job)
    assert finished is not None
    if finished > now:
        log.warning("job finished in the future (clock skew) job=%s", (job.get("metadata") or {}).get("name"))
    ttl = int((job.get("spec") or {})["ttlSecondsAfterFinished"])
    return (finished + dt.timedelta(seconds=ttl) - now).total_seconds()


class TTLAfterFinishedController:
    def __init__(self, client: Client, jobs: Informer, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.client = client
        self.jobs = jobs
        self.clock = clock
        self.ctrl = Controller("ttl-after-finished", self.sync, workers=2)
        jobs.add_handler(self._on_job)

    def _on_job(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and needs_cleanup(new):
            self.ctrl.queue.add(key)

    async def start(self) -> None:
        for key, job in list(self.jobs.cache.items()):
            if needs_cleanup(job):
                self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def sync(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        left = time_left(job, self.clock())
        if left is None:
            return None
        if left > 0:
            return left
        meta = job.get("metadata") or {}
        try:
            fresh = await self.client.get(JOBS, meta.get("namespace", ""), meta.get("name", ""))
        except errors.NotFound:
            return None
        fresh_left = time_left(fresh, self.clock())
        if fresh_left is None:
            return None
        if fresh_left > 0:
            return fresh_left
        fm = fresh.get("metadata") or {}
        try:
            await self.client.delete(
                JOBS,
                fm.get("namespace", ""),
                fm.get("name", ""),
                propagation_policy="Foreground",
                preconditions={"uid": fm.get("uid")},
            )
        except errors.NotFound:
            return None
        log.info("deleted expired job job=%s/%s", fm.get("namespace"), fm.get("name"))
        return None


def new(ctx: Any) -> TTLAfterFinishedController:
    return TTLAfterFinishedController(ctx.client, ctx.informers.get(JOBS))
