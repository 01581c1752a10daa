"""CronJob controller: create a Job for each scheduled time, honouring the concurrency policy.

Mirrors kube-controller-manager's CronJob controller (``cronjob_controllerv2.go``, 1.32):

* the latest missed schedule time (since ``lastScheduleTime`` or creation, bounded by
  ``startingDeadlineSeconds``) gets a Job named ``<cronjob>-<minutes since epoch>`` with the
  ``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation; more than 100 missed
  times add a ``TooManyMissedTimes`` warning; a time older than the deadline is a
  ``MissSchedule`` warning;
* ``Forbid`` skips a run while one is active (``JobAlreadyActive``), ``Replace`` deletes the
  active Jobs first, ``Allow`` just runs;
* ``status.active`` tracks running Jobs (``SawCompletedJob`` when one finishes,
  ``MissingJob`` when one vanished), ``lastScheduleTime``/``lastSuccessfulTime`` are kept, and
  finished Jobs beyond the history limits are deleted (oldest start first);
* ``suspend`` stops new runs; an unknown ``timeZone`` is an ``UnknownTimeZone`` warning.

Time comes from an injected clock (real time by default); a scaled clock lets tests run
the same code faster than real time.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubelite.api import errors
from kubelite.api.humanize import parse_time
from kubelite.client.base import Client, Resource
from kubelite.controllers import cronjob_schedule as cs
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.cronjob")
Obj = dict[str, Any]

CRONJOBS = Resource("batch", "v1", "cronjobs")
JOBS = Resource("batch", "v1", "jobs")
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1
TOO_MANY_MISSED = 100


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def real_seconds(self, seconds: float) -> float: ...


class RealClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def real_seconds(self, seconds: float) -> float:
        return seconds


class ScaledClock:
    """A clock running ``scale`` times faster than real time from its creation."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._origin = dt.datetime.now(dt.UTC)
        self._mono = time.monotonic()

    def now(self) -> dt.datetime:
        return self._origin + dt.timedelta(seconds=(time.monotonic() - self._mono) * self.scale)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.scale


def _meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def _rfc3339(t: dt.datetime) -> str:
    """Go's ``time.RFC3339`` of ``t`` in its own zone (``Z`` for UTC)."""
    text = t.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _utc(t: dt.datetime) -> str:
    return _rfc3339(t.astimezone(dt.UTC))


def _finished_type(job: Obj) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def _cronjob_owner(job: Obj) -> list[str]:
    for ref in _meta(job).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "CronJob":
            return [f"{_meta(job).get('namespace', '')}/{ref.get('name', '')}"]
    return []


def _in_active(cj: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid for r in (cj.get("status") or {}).get("active") or [])


def _drop_active(cj: Obj, uid: str) -> None:
    status = cj.setdefault("status", {})
    left = [r for r in status.get("active") or [] if r.get("uid") != uid]
    if left:
        status["active"] = left
    else:
        status.pop("active", None)


def job_name(cj: Obj, scheduled: dt.datetime) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>``."""
    return f"{_meta(cj).get('name', '')}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Obj, scheduled: dt.datetime) -> Obj:
    """``getJobFromTemplate2``: the Job of one scheduled time."""
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    zone = cs.load_zone((cj.get("spec") or {}).get("timeZone") or "")
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_ANNOTATION] = _rfc3339(scheduled.astimezone(zone))
    meta: Obj = {
        "name": job_name(cj, scheduled),
        "namespace": _meta(cj).get("namespace", ""),
        "annotations": annotations,
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": _meta(cj).get("name", ""),
                "uid": _meta(cj).get("uid", ""),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _job_ref(job: Obj) -> Obj:
    m = _meta(job)
    return {
        "kind": "Job",
        "namespace": m.get("namespace", ""),
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
        "apiVersion": "batch/v1",
        "resourceVersion": m.get("resourceVersion", ""),
    }


def _start_key(job: Obj) -> tuple[int, float, str]:
    """``byJobStartTime``: jobs without a start time sort last, then by name."""
    start = parse_time((job.get("status") or {}).get("startTime"))
    name = str(_meta(job).get("name", ""))
    return (1, 0.0, name) if start is None else (0, start.timestamp(), name)


class CronJobController:
    def __init__(
        self,
        client: Client,
        cronjobs: Informer,
        jobs: Informer,
        recorder: EventRecorder,
        *,
        clock: Clock | None = None,
        default_zone: Callable[[], dt.tzinfo] = cs.local_zone,
    ) -> None:
        self.client = client
        self.cronjobs = cronjobs
        self.jobs = jobs
        self.recorder = recorder
        self.clock: Clock = clock or RealClock()
        self.default_zone = default_zone
        self.ctrl = Controller("cronjob", self.sync, workers=5)
        jobs.add_indexer("cronjob:owner", _cronjob_owner)
        cronjobs.add_handler(self._on_cronjob)
        jobs.add_handler(self._on_job)

    async def start(self) -> None:
        for key in list(self.cronjobs.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.recorder.flush()

    def _on_cronjob(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.ctrl.queue.add(key)

    def _on_job(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            if obj is None:
                continue
            for owner in _cronjob_owner(obj):
                if owner in self.cronjobs.cache:
                    self.ctrl.queue.add(owner)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> float | None:
        cached = self.cronjobs.get(key)
        if cached is None:
            return None
        cj = copy.deepcopy(cached)
        cj.setdefault("apiVersion", "batch/v1")
        cj.setdefault("kind", "CronJob")
        children = [j for j in self.jobs.by_index("cronjob:owner", key)]
        changed = await self._cleanup_finished(cj, children)
        requeue, synced = await self._sync_cronjob(cj, children)
        if changed or synced:
            await self.client.update(CRONJOBS, _meta(cj)["namespace"], cj, subresource="status")
        return self.clock.real_seconds(requeue) if requeue is not None else None

    async def _reconcile_children(self, cj: Obj, children: list[Obj]) -> tuple[Obj, bool]:
        changed = False
        status = cj.setdefault("status", {})
        for job in children:
            uid = str(_meta(job).get("uid", ""))
            finished = _finished_type(job)
            found = _in_active(cj, uid)
            if not found and finished is None:
                fresh = await self.client.get(CRONJOBS, _meta(cj)["namespace"], _meta(cj)["name"])
                if _in_active(fresh, uid):
                    fresh.setdefault("apiVersion", "batch/v1")
                    fresh.setdefault("kind", "CronJob")
                    cj, status = fresh, fresh.setdefault("status", {})
                    continue
                self.recorder.event(
                    cj,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {_meta(job).get('name')}",
                )
            elif found and finished is not None:
                _drop_active(cj, uid)
                self.recorder.event(
                    cj,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {_meta(job).get('name')}, status: {finished}",
                )
                changed = True
            elif finished == "Complete":
                done = (job.get("status") or {}).get("completionTime")
                last = parse_time(status.get("lastSuccessfulTime"))
                when = parse_time(done)
                if when is not None and (last is None or when > last):
                    status["lastSuccessfulTime"] = done
                    changed = True
        return cj, changed

    async def _drop_missing(self, cj: Obj, children: list[Obj]) -> bool:
        changed = False
        uids = {str(_meta(j).get("uid", "")) for j in children}
        for ref in list((cj.get("status") or {}).get("active") or []):
            if ref.get("uid") in uids:
                continue
            try:
                await self.client.get(JOBS, ref.get("namespace", ""), ref.get("name", ""))
            except errors.NotFound:
                self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                _drop_active(cj, str(ref.get("uid", "")))
                changed = True
        return changed

    async def _sync_cronjob(self, cj: Obj, children: list[Obj]) -> tuple[float | None, bool]:
        """``syncCronJob``: returns (virtual seconds until the next sync, status changed)."""
        now = self.clock.now()
        reconciled, changed = await self._reconcile_children(cj, children)
        if reconciled is not cj:
            cj.clear()
            cj.update(reconciled)
        changed = await self._drop_missing(cj, children) or changed
        spec = cj.get("spec") or {}
        if _meta(cj).get("deletionTimestamp"):
            return None, changed
        tz = spec.get("timeZone")
        if tz is not None:
            try:
                cs.load_zone(tz)
            except cs.ScheduleError as e:
                self.recorder.event(cj, "Warning", "UnknownTimeZone", f'invalid timeZone: "{tz}": {e}')
                return None, changed
        if spec.get("suspend") is True:
            return None, changed
        schedule_text = str(spec.get("schedule", ""))
        if "TZ" in schedule_text:
            self.recorder.event(
                cj,
                "Warning",
                "UnsupportedSchedule",
                f'CRON_TZ or TZ used in schedule "{schedule_text}" is not officially supported, see '
                "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
            )
        try:
            sched = cs.parse(schedule_text, tz, self.default_zone())
        except cs.ScheduleError as e:
            self.recorder.event(
                cj, "Warning", "UnparseableSchedule", f'unparseable schedule: "{schedule_text}" : {e}'
            )
            return None, changed
        return await self._run_due(cj, sched, now, changed)

    async def _run_due(
        self, cj: Obj, sched: cs.Schedule, now: dt.datetime, changed: bool
    ) -> tuple[float | None, bool]:
        spec = cj.get("spec") or {}
        try:
            scheduled = self._next_schedule_time(cj, now, sched)
        except cs.ScheduleError as e:
            self.recorder.event(
                cj, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}"
            )
            return None, changed
        later = self._requeue_after(cj, now, sched)
        if scheduled is None:
            return later, changed
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now:
            when = scheduled.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
            self.recorder.event(
                cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {when}"
            )
            return later, changed
        status = cj.setdefault("status", {})
        name = job_name(cj, scheduled)
        last = parse_time(status.get("lastScheduleTime"))
        if any(r.get("name") == name for r in status.get("active") or []) or last == scheduled.replace(
            microsecond=0
        ):
            return later, changed
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(
                cj,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return later, changed
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                job = await self._get_job(cj, ref)
                if not await self._delete_job(cj, job):
                    raise RuntimeError(f"could not replace job {ref.get('namespace')}/{ref.get('name')}")
                changed = True
        created = await self._create_job(cj, scheduled)
        if created is None:
            return None, changed
        status = cj.setdefault("status", {})
        status.setdefault("active", []).append(_job_ref(created))
        status["lastScheduleTime"] = _utc(scheduled)
        return self._requeue_after(cj, now, sched), True

    async def _get_job(self, cj: Obj, ref: Obj) -> Obj:
        try:
            return await self.client.get(JOBS, ref.get("namespace", ""), ref.get("name", ""))
        except errors.APIError as e:
            self.recorder.event(cj, "Warning", "FailedGet", f"Get job: {e}")
            raise

    async def _create_job(self, cj: Obj, scheduled: dt.datetime) -> Obj | None:
        """Create the Job; an existing one we own but forgot is re-added to ``active``."""
        body = job_from_template(cj, scheduled)
        ns = _meta(cj)["namespace"]
        try:
            out = await self.client.create(JOBS, ns, body)
        except errors.AlreadyExists:
            existing = await self.client.get(JOBS, ns, body["metadata"]["name"])
            owners = [r for r in _meta(existing).get("ownerReferences") or [] if r.get("controller")]
            if not owners or owners[0].get("uid") != _meta(cj).get("uid"):
                return None
            if _in_active(cj, str(_meta(existing).get("uid"))):
                return None
            log.info("job already exists cronjob=%s job=%s", _meta(cj).get("name"), body["metadata"]["name"])
            return existing
        except errors.APIError as e:
            self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e}")
            raise
        self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {_meta(out).get('name')}")
        return out

    def _earliest(self, cj: Obj) -> dt.datetime:
        status = cj.get("status") or {}
        return (
            parse_time(status.get("lastScheduleTime"))
            or parse_time(_meta(cj).get("creationTimestamp"))
            or self.clock.now()
        )

    def _next_schedule_time(self, cj: Obj, now: dt.datetime, sched: cs.Schedule) -> dt.datetime | None:
        earliest = self._earliest(cj)
        deadline = (cj.get("spec") or {}).get("startingDeadlineSeconds")
        if deadline is not None:
            floor = now - dt.timedelta(seconds=int(deadline))
            earliest = max(earliest, floor)
        found, missed = cs.most_recent(earliest, now, sched)
        if missed > TOO_MANY_MISSED:
            self.recorder.event(
                cj,
                "Warning",
                "TooManyMissedTimes",
                f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )
        return found

    def _requeue_after(self, cj: Obj, now: dt.datetime, sched: cs.Schedule) -> float:
        earliest = self._earliest(cj)
        try:
            recent, _ = cs.most_recent(earliest, now, sched)
        except cs.ScheduleError:
            recent = now
        base = recent if recent is not None else earliest
        return (sched.next(base) - now).total_seconds() + NEXT_SCHEDULE_DELTA

    # ------------------------------------------------------------------ history

    async def _cleanup_finished(self, cj: Obj, children: list[Obj]) -> bool:
        spec = cj.get("spec") or {}
        ok_limit = spec.get("successfulJobsHistoryLimit")
        failed_limit = spec.get("failedJobsHistoryLimit")
        if ok_limit is None and failed_limit is None:
            return False
        succeeded = [j for j in children if _finished_type(j) == "Complete"]
        failed = [j for j in children if _finished_type(j) == "Failed"]
        changed = False
        for jobs, limit in ((succeeded, ok_limit), (failed, failed_limit)):
            if limit is None or len(jobs) <= int(limit):
                continue
            jobs.sort(key=_start_key)
            for job in jobs[: len(jobs) - int(limit)]:
                if await self._delete_job(cj, job):
                    changed = True
        return changed

    async def _delete_job(self, cj: Obj, job: Obj) -> bool:
        m = _meta(job)
        try:
            await self.client.delete(
                JOBS, m.get("namespace", ""), m.get("name", ""), propagation_policy="Background"
            )
        except errors.NotFound:
            pass
        except errors.APIError as e:
            self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {e}")
            return False
        _drop_active(cj, str(m.get("uid", "")))
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {m.get('name')}")
        return True


def clock_from(ctx: Any) -> Clock:
    injected = ctx.option("clock", None)
    if injected is not None:
        clock: Clock = injected
        return clock
    scale = float(ctx.option("cronjob_clock_scale", 1.0))
    return ScaledClock(scale) if scale != 1.0 else RealClock()


def new(ctx: Any) -> CronJobController:
    return CronJobController(
        ctx.client,
        ctx.informers.get(CRONJOBS),
        ctx.informers.get(JOBS),
        ctx.recorder("cronjob-controller"),
        clock=clock_from(ctx),
    )
