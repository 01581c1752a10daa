"""Job controller: run pods until enough succeed, or fail the Job by its limits.

Mirrors kube-controller-manager's job controller (``pkg/controller/job``, 1.32):

* pods are created from ``spec.template`` (``<job>-<random>``, or ``<job>-<index>-<random>``
  with hostname ``<job>-<index>`` for Indexed Jobs) with the ``batch.kubernetes.io/job-tracking``
  finalizer; never more than ``parallelism`` are active, nor more than the completions left;
* finished pods are first recorded in ``status.uncountedTerminatedPods``, then their finalizer
  is removed, then they are moved to ``succeeded``/``failed`` — so counts are exact;
* failures beyond ``backoffLimit`` (or ``backoffLimitPerIndex``), ``activeDeadlineSeconds``
  or a ``FailJob`` pod failure policy rule add ``FailureTarget``; active pods are deleted and,
  once none is terminating, ``Failed`` is added with the same reason; enough successes (or a
  ``successPolicy`` rule) add ``SuccessCriteriaMet`` then ``Complete``;
* replacements for failed pods wait an exponential back-off (base 10 s, doubling, capped);
* ``suspend`` deletes active pods (``Suspended`` condition), resuming resets ``startTime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import errors
from kubelite.api.humanize import parse_time
from kubelite.api.selectors import from_label_selector_dict
from kubelite.client.base import Client, Resource
from kubelite.controllers import job_indexed as ix
from kubelite.controllers.job_policy import (
    FAIL_INDEX,
    BackoffRecord,
    finish_time,
    match_pod_failure_policy,
    match_success_policy,
    next_backoff_record,
    remaining_backoff,
)
from kubelite.controllers.job_state import (
    TRACKING_FINALIZER,
    Expectations,
    controller_of,
    deletion_rank,
    ensure_condition,
    find_condition,
    has_finalizer,
    is_active,
    is_finished,
    is_pod_failed,
    is_ready,
    is_suspended,
    is_terminating,
    meta,
    new_condition,
    only_replace_failed,
    phase,
    rfc3339,
    spec,
    true_condition,
)
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer, object_key
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.job")
Obj = dict[str, Any]
Clock = Callable[[], dt.datetime]

JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
MAX_UNCOUNTED = 500
MAX_CREATE_DELETE_PER_SYNC = 500
SLOW_START_BATCH = 1
DEFAULT_BACKOFF_CAP = 360.0
RM_FINALIZER_PATCH = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
STRATEGIC = "application/strategic-merge-patch+json"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rv(obj: Obj) -> int:
    rv = str(meta(obj).get("resourceVersion") or "0")
    return int(rv) if rv.isdigit() else 0


def _owner_index(pod: Obj) -> list[str]:
    ref = controller_of(pod)
    return [str(ref.get("uid"))] if ref and ref.get("kind") == "Job" else []


def _ns_index(pod: Obj) -> list[str]:
    return [str(meta(pod).get("namespace", ""))]


@dataclass
class SyncCtx:
    """Everything one sync of one Job computes (``syncJobCtx`` in Kubernetes)."""

    key: str
    job: Obj
    pods: list[Obj]
    active: list[Obj]
    now: dt.datetime
    ready: int = 0
    terminating: int = 0
    succeeded: int = 0
    failed: int = 0
    uncounted_succeeded: set[str] = field(default_factory=set)
    uncounted_failed: set[str] = field(default_factory=set)
    expected_rm: set[str] = field(default_factory=set)
    finished: Obj | None = None
    prev_succeeded_indexes: set[int] = field(default_factory=set)
    succeeded_indexes: set[int] = field(default_factory=set)
    failed_indexes: set[int] | None = None
    delayed_per_index: dict[int, Obj] = field(default_factory=dict)
    backoff: BackoffRecord = field(default_factory=BackoffRecord)
    requeue: float | None = None

    @property
    def status(self) -> Obj:
        st: Obj = self.job.setdefault("status", {})
        return st

    def later(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)


class JobController:
    def __init__(
        self,
        client: Client,
        jobs: Informer,
        pods: Informer,
        recorder: EventRecorder,
        *,
        backoff_base: float = 10.0,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        clock: Clock = _utcnow,
        workers: int = 5,
    ) -> None:
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.recorder = recorder
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.expectations = Expectations()
        self.rm_expected: dict[str, set[str]] = {}
        self.backoff: dict[str, BackoffRecord] = {}
        self.written_rv: dict[str, int] = {}
        self.ctrl = Controller("job", self.sync, workers=workers)
        self.orphans = Controller("job-orphan-pod", self.sync_orphan_pod, workers=1)
        pods.add_indexer("job:owner", _owner_index)
        pods.add_indexer("job:ns", _ns_index)
        jobs.add_handler(self._on_job)
        pods.add_handler(self._on_pod)

    async def start(self) -> None:
        for key in list(self.jobs.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()
        self.orphans.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.orphans.stop()
        await self.recorder.flush()

    # ------------------------------------------------------------------ handlers

    def _on_job(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.ctrl.queue.add(key)
        gone = new is None
        if gone or (new is not None and is_finished(new)):
            uid = str(meta(new or old or {}).get("uid", ""))
            for pod in self.pods.by_index("job:owner", uid):
                if has_finalizer(pod):
                    self.orphans.queue.add(object_key(pod))
        if new is not None and old is not None:
            self._deadline_changed(key, old, new)

    def _deadline_changed(self, key: str, old: Obj, new: Obj) -> None:
        ads = spec(new).get("activeDeadlineSeconds")
        start = (new.get("status") or {}).get("startTime")
        if ads is None or not start or spec(old).get("activeDeadlineSeconds") == ads:
            return
        started = parse_time(start)
        if started is not None:
            left = float(ads) - (self.clock() - started).total_seconds()
            self.ctrl.queue.add_after(key, max(left, 0.0))

    def _job_for(self, pod: Obj) -> tuple[str, Obj] | None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        key = f"{meta(pod).get('namespace', '')}/{ref.get('name', '')}"
        job = self.jobs.get(key)
        if job is None or meta(job).get("uid") != ref.get("uid"):
            return None
        return key, job

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        owner = self._job_for(pod)
        if owner is None:
            if has_finalizer(pod) and new is not None:
                self.orphans.queue.add(key)
            if controller_of(pod) is None and new is not None:
                self._wake_selecting_jobs(pod)
            return
        job_key, job = owner
        self._observe(job_key, old, new)
        if is_finished(job) and new is not None and has_finalizer(new):
            self.orphans.queue.add(key)
        self.ctrl.queue.add(job_key)

    def _observe(self, job_key: str, old: Obj | None, new: Obj | None) -> None:
        if old is None and new is not None:
            self.expectations.creation_observed(job_key)
            if meta(new).get("deletionTimestamp"):
                self.expectations.deletion_observed(job_key)
        elif (
            old is not None
            and not meta(old).get("deletionTimestamp")
            and (new is None or meta(new).get("deletionTimestamp"))
        ):
            self.expectations.deletion_observed(job_key)
        uid = str(meta(new or old or {}).get("uid", ""))
        if new is None or not has_finalizer(new):
            self.rm_expected.get(job_key, set()).discard(uid)

    def _wake_selecting_jobs(self, pod: Obj) -> None:
        ns = meta(pod).get("namespace", "")
        labels = meta(pod).get("labels") or {}
        for job in self.jobs.list():
            if meta(job).get("namespace") != ns or is_finished(job):
                continue
            try:
                if from_label_selector_dict(spec(job).get("selector")).matches(labels):
                    self.ctrl.queue.add(object_key(job))
            except errors.APIError:
                continue

    # ------------------------------------------------------------------ orphan pods

    async def sync_orphan_pod(self, key: str) -> float | None:
        """Remove the tracking finalizer from a pod no live, unfinished Job owns."""
        pod = self.pods.get(key)
        if pod is None or not has_finalizer(pod):
            return None
        ref = controller_of(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return None
            owner = self._job_for(pod)
            if owner is not None and not is_finished(owner[1]):
                return None
        await self._remove_finalizer(pod)
        return None

    async def _remove_finalizer(self, pod: Obj) -> None:
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(
                PODS, meta(pod)["namespace"], meta(pod)["name"], RM_FINALIZER_PATCH, patch_type=STRATEGIC
            )

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> float | None:
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.rm_expected.pop(key, None)
            self.backoff.pop(key, None)
            self.written_rv.pop(key, None)
            return None
        if _rv(cached) < self.written_rv.get(key, 0):
            return 0.1  # our last status write is not in the cache yet: counts would be stale
        if is_finished(cached):
            self.backoff.pop(key, None)
            return None
        mode = spec(cached).get("completionMode") or "NonIndexed"
        if mode not in ("NonIndexed", "Indexed"):
            self.recorder.event(
                cached,
                "Warning",
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown",
            )
            return None
        job = copy.deepcopy(cached)
        job.setdefault("apiVersion", "batch/v1")
        job.setdefault("kind", "Job")
        satisfied = self.expectations.satisfied(key)
        pods = await self._claim_pods(job)
        ctx = self._new_ctx(key, job, pods)
        self._evaluate(ctx)
        await self._act(ctx, satisfied)
        await self._track_and_flush(ctx)
        return ctx.requeue

    def _new_ctx(self, key: str, job: Obj, pods: list[Obj]) -> SyncCtx:
        status = job.setdefault("status", {})
        uncounted = status.get("uncountedTerminatedPods") or {}
        status["uncountedTerminatedPods"] = {k: list(v) for k, v in uncounted.items() if v}
        active = [p for p in pods if is_active(p)]
        ctx = SyncCtx(
            key=key,
            job=job,
            pods=pods,
            active=active,
            now=self.clock(),
            ready=sum(1 for p in active if is_ready(p)),
            terminating=sum(1 for p in pods if is_terminating(p)),
            uncounted_succeeded=set(uncounted.get("succeeded") or []),
            uncounted_failed=set(uncounted.get("failed") or []),
            expected_rm=set(self.rm_expected.get(key, set())),
        )
        new_ok, new_failed = self._new_finished_pods(ctx)
        policy = spec(job).get("podFailurePolicy")
        counted_failed = [p for p in new_failed if match_pod_failure_policy(policy, p).count_failed]
        ctx.succeeded = int(status.get("succeeded") or 0) + len(new_ok) + len(ctx.uncounted_succeeded)
        ctx.failed = int(status.get("failed") or 0) + len(counted_failed) + len(ctx.uncounted_failed)
        if not status.get("startTime") and not is_suspended(job):
            status["startTime"] = rfc3339(ctx.now)
        ctx.backoff = next_backoff_record(self.backoff.get(key, BackoffRecord()), new_ok, new_failed)
        return ctx

    def _new_finished_pods(self, ctx: SyncCtx) -> tuple[list[Obj], list[Obj]]:
        """Finished pods still carrying the finalizer and not yet in the uncounted lists."""
        ok: list[Obj] = []
        bad: list[Obj] = []
        total = ix.completions(ctx.job)
        for p in ctx.pods:
            uid = str(meta(p).get("uid", ""))
            if not has_finalizer(p) or uid in ctx.expected_rm:
                continue
            if ix.is_indexed(ctx.job) and ix.valid_index(p, total) is None:
                continue
            if phase(p) == "Succeeded" and uid not in ctx.uncounted_succeeded:
                ok.append(p)
            elif is_pod_failed(p, ctx.job) and uid not in ctx.uncounted_failed:
                bad.append(p)
        return ok, bad

    # ------------------------------------------------------------------ evaluate

    def _evaluate(self, ctx: SyncCtx) -> None:
        """Decide whether the Job has met a success or failure criterion in this sync."""
        job = ctx.job
        ctx.finished = true_condition(job, "SuccessCriteriaMet")
        if ctx.finished is None:
            target = true_condition(job, "FailureTarget")
            if target is not None:
                ctx.finished = new_condition(
                    "Failed", target.get("reason", ""), target.get("message", ""), ctx.now
                )
            else:
                msg = self._fail_job_message(ctx)
                if msg is not None:
                    ctx.finished = new_condition("FailureTarget", "PodFailurePolicy", msg, ctx.now)
        if ctx.finished is None:
            self._evaluate_limits(ctx)
        if ix.is_indexed(job):
            self._evaluate_indexes(ctx)

    def _fail_job_message(self, ctx: SyncCtx) -> str | None:
        policy = spec(ctx.job).get("podFailurePolicy")
        if not policy:
            return None
        for p in ctx.pods:
            if is_pod_failed(p, ctx.job):
                m = match_pod_failure_policy(policy, p).fail_job_message
                if m is not None:
                    return m
        return None

    def _evaluate_limits(self, ctx: SyncCtx) -> None:
        s = spec(ctx.job)
        raw = s.get("backoffLimit")
        limit = int(raw) if raw is not None else 6
        if ctx.failed > limit or self._past_backoff_on_failure(ctx, limit):
            ctx.finished = new_condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                ctx.now,
            )
            return
        ads = s.get("activeDeadlineSeconds")
        started = ctx.status.get("startTime")
        if ads is None or not started or is_suspended(ctx.job):
            return
        start = parse_time(started) or ctx.now
        left = float(ads) - (ctx.now - start).total_seconds()
        if left <= 0:
            ctx.finished = new_condition(
                "FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", ctx.now
            )
        else:
            ctx.later(left)

    @staticmethod
    def _past_backoff_on_failure(ctx: SyncCtx, limit: int) -> bool:
        template_spec = (spec(ctx.job).get("template") or {}).get("spec") or {}
        if template_spec.get("restartPolicy") != "OnFailure":
            return False
        restarts = 0
        for p in ctx.pods:
            if phase(p) in ("Running", "Pending"):
                st = p.get("status") or {}
                for key in ("initContainerStatuses", "containerStatuses"):
                    restarts += sum(int(c.get("restartCount") or 0) for c in st.get(key) or [])
        return restarts > 0 if limit == 0 else restarts >= limit

    def _evaluate_indexes(self, ctx: SyncCtx) -> None:
        job = ctx.job
        total = ix.completions(job)
        ctx.prev_succeeded_indexes = ix.parse_intervals(ctx.status.get("completedIndexes"), total)
        fresh = {
            i
            for p in ctx.pods
            if phase(p) == "Succeeded"
            and has_finalizer(p)
            and str(meta(p).get("uid")) not in ctx.expected_rm
            and (i := ix.valid_index(p, total)) is not None
        }
        ctx.succeeded_indexes = ctx.prev_succeeded_indexes | fresh
        ctx.succeeded = len(ctx.succeeded_indexes)
        if spec(job).get("backoffLimitPerIndex") is not None:
            self._evaluate_failed_indexes(ctx, total)
        if ctx.finished is None:
            msg = match_success_policy(spec(job).get("successPolicy"), total, ctx.succeeded_indexes)
            if msg is not None:
                ctx.finished = new_condition("SuccessCriteriaMet", "SuccessPolicy", msg, ctx.now)

    def _evaluate_failed_indexes(self, ctx: SyncCtx, total: int) -> None:
        s = spec(ctx.job)
        failed = ix.parse_intervals(ctx.status.get("failedIndexes"), total)
        for p in ctx.pods:
            i = ix.valid_index(p, total)
            if i is None or not has_finalizer(p) or str(meta(p).get("uid")) in ctx.expected_rm:
                continue
            if self._index_failed(ctx.job, p):
                failed.add(i)
        failed -= ctx.succeeded_indexes
        ctx.failed_indexes = failed
        if ctx.finished is None:
            most = s.get("maxFailedIndexes")
            if most is not None and len(failed) > int(most):
                ctx.finished = new_condition(
                    "FailureTarget",
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes",
                    ctx.now,
                )
            elif failed and len(failed) + len(ctx.succeeded_indexes) >= total:
                ctx.finished = new_condition(
                    "FailureTarget", "FailedIndexes", "Job has failed indexes", ctx.now
                )
        ctx.delayed_per_index = self._delayed_per_index(ctx, total)

    @staticmethod
    def _index_failed(job: Obj, pod: Obj) -> bool:
        if not is_pod_failed(pod, job):
            return False
        m = match_pod_failure_policy(spec(job).get("podFailurePolicy"), pod)
        if m.action == FAIL_INDEX:
            return True
        limit = int(spec(job).get("backoffLimitPerIndex") or 0)
        return m.count_failed and ix.failure_count(pod) >= limit

    @staticmethod
    def _delayed_per_index(ctx: SyncCtx, total: int) -> dict[int, Obj]:
        """Per index, the latest failed pod whose finalizer stays until its replacement exists."""
        out: dict[int, Obj] = {}
        failed = ctx.failed_indexes or set()
        for p in ctx.pods:
            i = ix.valid_index(p, total)
            if i is None or i in failed or i in ctx.succeeded_indexes or not is_pod_failed(p, ctx.job):
                continue
            cur = out.get(i)
            if cur is None or ix.failure_count(p) >= ix.failure_count(cur):
                out[i] = p
        for p in ctx.pods:
            i = ix.valid_index(p, total)
            if i is not None and i in out and is_active(p):
                out.pop(i)  # a replacement exists: the failed pod can be released
        return {i: p for i, p in out.items() if has_finalizer(p)}

    # ------------------------------------------------------------------ act

    async def _act(self, ctx: SyncCtx, satisfied: bool) -> None:
        job = ctx.job
        active = len(ctx.active)
        if ctx.finished is not None:
            deleted, deleted_ready = await self._delete_pods(job, ctx.active, keep_finalizer=True)
            if deleted != active or not satisfied:
                ctx.finished = None
            active -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
            ctx.status["active"] = active
            return
        called = False
        if satisfied and not meta(job).get("deletionTimestamp"):
            active = await self._manage(ctx)
            called = True
        completions = spec(job).get("completions")
        if completions is None:
            complete = ctx.succeeded > 0 and active == 0
        else:
            complete = ctx.succeeded >= int(completions) and active == 0
        if complete:
            ctx.finished = new_condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                ctx.now,
            )
        elif called:
            self._suspend_condition(ctx)
        ctx.status["active"] = active

    def _suspend_condition(self, ctx: SyncCtx) -> None:
        if is_suspended(ctx.job):
            cond = new_condition("Suspended", "JobSuspended", "Job suspended", ctx.now)
            if ensure_condition(ctx.status, cond):
                self.recorder.event(ctx.job, "Normal", "Suspended", "Job suspended")
            return
        cond = new_condition("Suspended", "JobResumed", "Job resumed", ctx.now, status="False")
        if ensure_condition(ctx.status, cond):
            self.recorder.event(ctx.job, "Normal", "Resumed", "Job resumed")
            ctx.status["startTime"] = rfc3339(ctx.now)

    async def _manage(self, ctx: SyncCtx) -> int:
        """Create or delete pods towards the wanted number of active pods; returns active."""
        job = ctx.job
        active = len(ctx.active)
        if is_suspended(job):
            removed, removed_ready = await self._delete_with_expectations(ctx, ctx.active)
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return active - removed
        want = self._want_active(ctx, active)
        to_delete = self._pods_for_removal(ctx, max(active - want, 0))[:MAX_CREATE_DELETE_PER_SYNC]
        if ctx.failed_indexes:
            to_delete += [
                p
                for p in ctx.active
                if ix.valid_index(p, ix.completions(job)) in ctx.failed_indexes and p not in to_delete
            ]
        if to_delete:
            removed, removed_ready = await self._delete_with_expectations(ctx, to_delete)
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return active - removed
        terminating = ctx.terminating if only_replace_failed(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active
        if spec(job).get("backoffLimitPerIndex") is None:
            wait = remaining_backoff(ctx.backoff, ctx.now, self.backoff_base, self.backoff_cap)
            if wait > 0:
                ctx.later(wait)
                return active
        created = await self._create_pods(ctx, min(diff, MAX_CREATE_DELETE_PER_SYNC))
        return active + created

    @staticmethod
    def _want_active(ctx: SyncCtx, active: int) -> int:
        s = spec(ctx.job)
        raw = s.get("parallelism")
        parallelism = int(raw) if raw is not None else 1
        completions = s.get("completions")
        if completions is None:
            return active if ctx.succeeded > 0 else parallelism
        return max(0, min(int(completions) - ctx.succeeded, parallelism))

    @staticmethod
    def _pods_for_removal(ctx: SyncCtx, at_least: int) -> list[Obj]:
        """Duplicate or out-of-range indexes first (Indexed), then the least advanced pods."""
        rm: list[Obj] = []
        left = list(ctx.active)
        if ix.is_indexed(ctx.job):
            total = ix.completions(ctx.job)
            by_index: dict[int, list[Obj]] = {}
            left = []
            for p in ctx.active:
                i = ix.valid_index(p, total)
                if i is None:
                    rm.append(p)
                else:
                    by_index.setdefault(i, []).append(p)
            for group in by_index.values():
                group.sort(key=deletion_rank)
                rm.extend(group[:-1])
                left.append(group[-1])
        if len(rm) < at_least:
            left.sort(key=deletion_rank)
            rm.extend(left[: at_least - len(rm)])
        return rm

    async def _create_pods(self, ctx: SyncCtx, count: int) -> int:
        job = ctx.job
        indexes: list[int | None] = [None] * count
        if ix.is_indexed(job):
            pending = self._pending_indexes(ctx, count)
            if spec(job).get("backoffLimitPerIndex") is not None:
                pending = self._indexes_out_of_backoff(ctx, pending)
            indexes = list(pending)
        if not indexes:
            return 0
        self.expectations.expect(ctx.key, adds=len(indexes))
        template = self._pod_template(job)
        created = 0
        batch = SLOW_START_BATCH
        pos = 0
        while pos < len(indexes):
            chunk = indexes[pos : pos + batch]
            results = await asyncio.gather(*(self._create_one(ctx, template, i) for i in chunk))
            ok = sum(results)
            created += ok
            pos += len(chunk)
            if ok < len(chunk):
                for _ in range(len(indexes) - pos):
                    self.expectations.creation_observed(ctx.key)
                break
            batch *= 2
        return created

    def _pending_indexes(self, ctx: SyncCtx, count: int) -> list[int]:
        total = ix.completions(ctx.job)
        busy = set(ctx.succeeded_indexes)
        busy |= {i for p in ctx.active if (i := ix.valid_index(p, total)) is not None}
        if only_replace_failed(ctx.job):
            busy |= {i for p in ctx.pods if is_terminating(p) and (i := ix.valid_index(p, total)) is not None}
        busy |= ctx.failed_indexes or set()
        return ix.first_pending(total, count, busy)

    def _indexes_out_of_backoff(self, ctx: SyncCtx, pending: list[int]) -> list[int]:
        ready: list[int] = []
        waits: list[float] = []
        for i in pending:
            prev = ctx.delayed_per_index.get(i)
            if prev is None:
                ready.append(i)
                continue
            failures = ix.failure_count(prev) + 1
            record = BackoffRecord(failures, finish_time(prev))
            wait = remaining_backoff(record, ctx.now, self.backoff_base, self.backoff_cap)
            if wait <= 0:
                ready.append(i)
            else:
                waits.append(wait)
        if not ready and waits:
            ctx.later(min(waits))
        return ready

    @staticmethod
    def _pod_template(job: Obj) -> Obj:
        template = copy.deepcopy(spec(job).get("template") or {})
        if ix.is_indexed(job):
            ix.add_index_env(template)
        fins = template.setdefault("metadata", {}).setdefault("finalizers", [])
        if TRACKING_FINALIZER not in fins:
            fins.append(TRACKING_FINALIZER)
        return template

    def _pod_from(self, ctx: SyncCtx, template: Obj, index: int | None) -> Obj:
        job = ctx.job
        jm = meta(job)
        name = str(jm.get("name", ""))
        if index is not None:
            counts = None
            if spec(job).get("backoffLimitPerIndex") is not None:
                counts = self._index_failure_counts(ctx, index)
            template = ix.for_index(template, name, index, counts)
        tmeta = template.get("metadata") or {}
        pod_meta: Obj = {
            "generateName": ix.generate_name(name, index) if index is not None else f"{name}-",
            "namespace": jm.get("namespace", ""),
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": dict(tmeta.get("annotations") or {}),
            "finalizers": list(tmeta.get("finalizers") or []),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": jm.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        for k in ("labels", "annotations"):
            if not pod_meta[k]:
                pod_meta.pop(k)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_meta,
            "spec": copy.deepcopy(template["spec"]),
        }

    @staticmethod
    def _index_failure_counts(ctx: SyncCtx, index: int) -> tuple[int, int]:
        prev = ctx.delayed_per_index.get(index)
        if prev is None:
            return 0, 0
        failed = ix.failure_count(prev)
        ignored = ix.failure_count(prev, ix.IGNORED_FAILURE_COUNT)
        if match_pod_failure_policy(spec(ctx.job).get("podFailurePolicy"), prev).count_failed:
            failed += 1
        else:
            ignored += 1
        return failed, ignored

    async def _create_one(self, ctx: SyncCtx, template: Obj, index: int | None) -> int:
        pod = self._pod_from(ctx, template, index)
        try:
            out = await self.client.create(PODS, pod["metadata"]["namespace"], pod)
        except errors.APIError as e:
            self.expectations.creation_observed(ctx.key)
            self.recorder.event(ctx.job, "Warning", "FailedCreate", f"Error creating: {e}")
            log.warning("job pod creation failed job=%s error=%s", ctx.key, e)
            return 0
        self.recorder.event(ctx.job, "Normal", "SuccessfulCreate", f"Created pod: {meta(out).get('name')}")
        return 1

    async def _delete_with_expectations(self, ctx: SyncCtx, pods: list[Obj]) -> tuple[int, int]:
        self.expectations.expect(ctx.key, dels=len(pods))
        removed, ready = await self._delete_pods(ctx.job, pods, keep_finalizer=False, key=ctx.key)
        return removed, ready

    async def _delete_pods(
        self, job: Obj, pods: list[Obj], *, keep_finalizer: bool, key: str = ""
    ) -> tuple[int, int]:
        """Delete pods (removing the tracking finalizer first unless kept); returns
        (deleted, deleted that were ready)."""
        results = await asyncio.gather(*(self._delete_one(job, p, keep_finalizer, key) for p in pods))
        deleted = sum(1 for ok in results if ok)
        ready = sum(1 for ok, p in zip(results, pods, strict=True) if ok and is_ready(p))
        return deleted, ready

    async def _delete_one(self, job: Obj, pod: Obj, keep_finalizer: bool, key: str) -> bool:
        ns, name = meta(pod)["namespace"], meta(pod)["name"]
        try:
            if not keep_finalizer and has_finalizer(pod):
                await self.client.patch(PODS, ns, name, RM_FINALIZER_PATCH, patch_type=STRATEGIC)
            await self.client.delete(PODS, ns, name)
        except errors.NotFound:
            if key:
                self.expectations.deletion_observed(key)
            return True
        except errors.APIError as e:
            if key:
                self.expectations.deletion_observed(key)
            self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e}")
            return False
        self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return True

    # ------------------------------------------------------------------ claim

    async def _claim_pods(self, job: Obj) -> list[Obj]:
        """Pods this Job controls, adopting matching orphans (adding the tracking finalizer)."""
        uid = str(meta(job).get("uid", ""))
        ns = str(meta(job).get("namespace", ""))
        owned = [p for p in self.pods.by_index("job:owner", uid) if meta(p).get("namespace") == ns]
        if meta(job).get("deletionTimestamp"):
            return owned
        try:
            selector = from_label_selector_dict(spec(job).get("selector"))
        except errors.APIError:
            return owned
        for pod in self.pods.by_index("job:ns", ns):
            pm = meta(pod)
            if controller_of(pod) is not None or pm.get("deletionTimestamp"):
                continue
            if not selector.matches(pm.get("labels") or {}):
                continue
            adopted = await self._adopt(job, pod)
            if adopted is not None:
                owned.append(adopted)
        return owned

    async def _adopt(self, job: Obj, pod: Obj) -> Obj | None:
        jm = meta(job)
        ref = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": jm.get("name"),
            "uid": jm.get("uid"),
            "controller": True,
            "blockOwnerDeletion": True,
        }
        refs = [*(meta(pod).get("ownerReferences") or []), ref]
        fins = [*(meta(pod).get("finalizers") or [])]
        if TRACKING_FINALIZER not in fins:
            fins.append(TRACKING_FINALIZER)
        patch = {"metadata": {"uid": meta(pod).get("uid"), "ownerReferences": refs, "finalizers": fins}}
        try:
            out = await self.client.patch(PODS, meta(pod)["namespace"], meta(pod)["name"], patch)
        except (errors.NotFound, errors.Conflict, errors.Invalid):
            return None
        return out

    # ------------------------------------------------------------------ track status

    async def _track_and_flush(self, ctx: SyncCtx) -> None:
        """``trackJobStatusAndRemoveFinalizers``: uncounted first, finalizers next, counters last."""
        job = ctx.job
        status = ctx.status
        status["ready"] = max(ctx.ready, 0)
        status["terminating"] = max(ctx.terminating, 0)
        cached = self.jobs.get(ctx.key) or {}
        old = cached.get("status") or {}
        needs = any(
            int(old.get(k) or 0) != int(status.get(k) or 0) for k in ("active", "ready", "terminating")
        ) or (old.get("conditions") != status.get("conditions"))
        needs = needs or old.get("startTime") != status.get("startTime")
        indexed = ix.is_indexed(job)
        total = ix.completions(job)
        pods = sorted(ctx.pods, key=lambda p: ix.pod_index(p) or 0) if indexed else ctx.pods
        with_fin = {
            str(meta(p).get("uid"))
            for p in pods
            if has_finalizer(p) and str(meta(p).get("uid")) not in ctx.expected_rm
        }
        if self._clean_uncounted(status, with_fin):
            needs = True
        to_remove: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        policy = spec(job).get("podFailurePolicy")
        unc = status["uncountedTerminatedPods"]
        for p in pods:
            uid = str(meta(p).get("uid"))
            if not has_finalizer(p) or uid in ctx.expected_rm:
                continue
            failed = is_pod_failed(p, job)
            if not self._can_remove_finalizer(ctx, p, failed):
                continue
            to_remove.append(p)
            if phase(p) == "Succeeded" and uid not in ctx.uncounted_failed:
                if indexed:
                    i = ix.valid_index(p, total)
                    if i is not None and i not in ctx.prev_succeeded_indexes:
                        new_indexes.append(i)
                        needs = True
                elif uid not in ctx.uncounted_succeeded:
                    unc.setdefault("succeeded", []).append(uid)
                    needs = True
            elif failed or (ctx.finished is not None and ctx.finished["type"] != "SuccessCriteriaMet"):
                in_range = not indexed or ix.valid_index(p, total) is not None
                if uid not in ctx.uncounted_failed and in_range:
                    if match_pod_failure_policy(policy, p).count_failed:
                        unc.setdefault("failed", []).append(uid)
                    needs = True
            if len(new_indexes) + len(unc.get("succeeded", [])) + len(unc.get("failed", [])) >= MAX_UNCOUNTED:
                reached_max = True
                break
        if indexed:
            needs = self._record_indexes(ctx, new_indexes) or needs
        needs = self._interim_conditions(ctx) or needs
        needs = await self._flush_and_remove(ctx, to_remove, with_fin, needs)
        finished_now = not reached_max and self._enact_finished(ctx)
        if finished_now or needs:
            await self._update_status(ctx)
            if finished_now and ctx.finished is not None:
                self._record_finished(ctx.job, ctx.finished)

    def _can_remove_finalizer(self, ctx: SyncCtx, pod: Obj, failed: bool) -> bool:
        if meta(ctx.job).get("deletionTimestamp") or ctx.finished is not None or phase(pod) == "Succeeded":
            return True
        if not failed:
            return False
        if spec(ctx.job).get("backoffLimitPerIndex") is not None:
            i = ix.pod_index(pod)
            held = ctx.delayed_per_index.get(i) if i is not None else None
            if held is not None and meta(held).get("uid") == meta(pod).get("uid"):
                return False
        return True

    @staticmethod
    def _record_indexes(ctx: SyncCtx, new_indexes: list[int]) -> bool:
        status = ctx.status
        ctx.succeeded_indexes = ctx.succeeded_indexes | set(new_indexes)
        text = ix.format_intervals(ctx.succeeded_indexes)
        changed = bool(new_indexes) or text != (status.get("completedIndexes") or "")
        status["completedIndexes"] = text
        status["succeeded"] = len(ctx.succeeded_indexes)
        if ctx.failed_indexes is not None:
            failed_text = ix.format_intervals(ctx.failed_indexes)
            if status.get("failedIndexes") != failed_text:
                status["failedIndexes"] = failed_text
                changed = True
        return changed

    @staticmethod
    def _interim_conditions(ctx: SyncCtx) -> bool:
        """Write FailureTarget / SuccessCriteriaMet before finalizers go; prepare Failed / Complete."""
        fin = ctx.finished
        if fin is None:
            return False
        changed = False
        conds = ctx.status.setdefault("conditions", [])
        if fin["type"] == "FailureTarget":
            conds.append(fin)
            changed = True
            ctx.finished = new_condition("Failed", fin.get("reason", ""), fin.get("message", ""), ctx.now)
        elif fin["type"] == "SuccessCriteriaMet":
            if find_condition(ctx.job, "SuccessCriteriaMet") is None:
                conds.append(fin)
                changed = True
            ctx.finished = new_condition("Complete", fin.get("reason", ""), fin.get("message", ""), ctx.now)
        if not conds:
            ctx.status.pop("conditions", None)
        return changed

    async def _flush_and_remove(
        self, ctx: SyncCtx, to_remove: list[Obj], with_fin: set[str], needs: bool
    ) -> bool:
        if needs:
            await self._update_status(ctx)
            self.backoff[ctx.key] = ctx.backoff
            needs = False
        error: Exception | None = None
        if to_remove:
            expected = self.rm_expected.setdefault(ctx.key, set())
            expected.update(str(meta(p).get("uid")) for p in to_remove)
            calls = (self._remove_finalizer(p) for p in to_remove)
            results = await asyncio.gather(*calls, return_exceptions=True)
            for p, r in zip(to_remove, results, strict=True):
                uid = str(meta(p).get("uid"))
                if isinstance(r, BaseException):
                    expected.discard(uid)
                    error = r if isinstance(r, Exception) else error
                else:
                    with_fin.discard(uid)
        if self._clean_uncounted(ctx.status, with_fin):
            needs = True
        if error is not None:
            if needs:
                await self._update_status(ctx)
            raise error
        return needs

    @staticmethod
    def _clean_uncounted(status: Obj, with_fin: set[str]) -> bool:
        """Move uncounted UIDs whose pod lost its finalizer into the counters."""
        unc = status.setdefault("uncountedTerminatedPods", {})
        changed = False
        for kind, counter in (("succeeded", "succeeded"), ("failed", "failed")):
            uids = unc.get(kind) or []
            keep = [u for u in uids if u in with_fin]
            if len(keep) != len(uids):
                changed = True
                status[counter] = int(status.get(counter) or 0) + len(uids) - len(keep)
            if keep:
                unc[kind] = keep
            else:
                unc.pop(kind, None)
        return changed

    def _enact_finished(self, ctx: SyncCtx) -> bool:
        fin = ctx.finished
        if fin is None:
            return False
        unc = ctx.status.get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed") or ctx.terminating > 0:
            return False
        ensure_condition(ctx.status, fin)
        if fin["type"] == "Complete":
            ctx.status["completionTime"] = fin["lastTransitionTime"]
        return True

    def _record_finished(self, job: Obj, fin: Obj) -> None:
        if fin["type"] == "Complete":
            completions = spec(job).get("completions")
            succeeded = int((job.get("status") or {}).get("succeeded") or 0)
            if completions is not None and succeeded > int(completions):
                self.recorder.event(
                    job,
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                )
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", fin.get("reason", ""), fin.get("message", ""))

    async def _update_status(self, ctx: SyncCtx) -> None:
        body = ctx.job
        for counter in ("active", "succeeded", "failed"):
            if not body["status"].get(counter):
                body["status"].pop(counter, None)
        out = await self.client.update(JOBS, meta(body)["namespace"], body, subresource="status")
        out.setdefault("apiVersion", "batch/v1")
        out.setdefault("kind", "Job")
        out.setdefault("status", {}).setdefault("uncountedTerminatedPods", {})
        self.written_rv[ctx.key] = _rv(out)
        ctx.job = out


def new(ctx: Any) -> JobController:
    return JobController(
        ctx.client,
        ctx.informers.get(JOBS),
        ctx.informers.get(PODS),
        ctx.recorder("job-controller"),
        backoff_base=float(ctx.option("job_backoff_base", 10.0)),
        backoff_cap=float(ctx.option("job_backoff_cap", DEFAULT_BACKOFF_CAP)),
    )
