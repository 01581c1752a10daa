"""CronJob controller with an injected clock: schedules, concurrency, deadlines, history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.client.base import Resource
from kubelite.controllers import cronjob_schedule as cs
from kubelite.controllers.cronjob import SCHEDULED_ANNOTATION, CronJobController, job_name
from tests.unit.batch_fakes import FakeAPI, FakeRecorder, ManualClock, rfc

Obj = dict[str, Any]
CRONJOBS = Resource("batch", "v1", "cronjobs")
JOBS = Resource("batch", "v1", "jobs")
KEY = "default/tick"
T0 = dt.datetime(2024, 5, 1, 12, 0, 30, tzinfo=dt.UTC)


class Env:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.clock = ManualClock(start)
        self.api = FakeAPI(self.clock)
        self.rec = FakeRecorder()
        self.ctrl = CronJobController(
            self.api,  # type: ignore[arg-type]
            self.api.informer(CRONJOBS),
            self.api.informer(JOBS),
            self.rec,  # type: ignore[arg-type]
            clock=self.clock,
            default_zone=lambda: dt.UTC,
        )

    def add(self, schedule: str = "* * * * *", created: dt.datetime | None = None, **spec: Any) -> Obj:
        body: Obj = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "name": "tick",
                "namespace": "default",
                "uid": "cj-uid",
                "creationTimestamp": rfc(created or self.clock()),
            },
            "spec": {
                "schedule": schedule,
                "concurrencyPolicy": "Allow",
                "suspend": False,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {
                    "metadata": {"labels": {"app": "tick"}},
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "c", "image": "busybox"}],
                            }
                        }
                    },
                },
                **spec,
            },
        }
        return self.api.seed(CRONJOBS, body)

    def cronjob(self) -> Obj:
        return self.api.store["cronjobs"][KEY]

    def jobs(self) -> list[Obj]:
        return sorted(self.api.objects("jobs"), key=lambda j: j["metadata"]["name"])

    async def sync(self) -> float | None:
        return await self.ctrl.sync(KEY)

    def finish(self, job: Obj, kind: str = "Complete") -> None:
        key = f"default/{job['metadata']['name']}"
        cur = dict(self.api.store["jobs"][key])
        status = {
            "startTime": rfc(self.clock()),
            "conditions": [{"type": kind, "status": "True"}],
        }
        if kind == "Complete":
            status["completionTime"] = rfc(self.clock())
        cur["status"] = status
        self.api._put(JOBS, cur, key)


async def test_every_minute_creates_named_job_with_annotation_and_owner() -> None:
    env = Env()
    env.add()
    again = await env.sync()
    assert env.jobs() == []
    assert again is not None and 30 < again <= 30.2
    env.clock.advance(30)
    await env.sync()
    (job,) = env.jobs()
    scheduled = dt.datetime(2024, 5, 1, 12, 1, tzinfo=dt.UTC)
    assert job["metadata"]["name"] == f"tick-{int(scheduled.timestamp()) // 60}"
    assert job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == "2024-05-01T12:01:00Z"
    assert job["metadata"]["labels"] == {"app": "tick"}
    ref = job["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "CronJob" and ref["uid"] == "cj-uid" and ref["controller"] is True
    status = env.cronjob()["status"]
    assert status["lastScheduleTime"] == "2024-05-01T12:01:00Z"
    assert [a["name"] for a in status["active"]] == [job["metadata"]["name"]]
    assert status["active"][0]["kind"] == "Job" and status["active"][0]["apiVersion"] == "batch/v1"
    assert ("tick", "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}") in env.rec.events


async def test_same_schedule_time_is_not_run_twice() -> None:
    env = Env()
    env.add()
    env.clock.advance(30)
    await env.sync()
    await env.sync()
    env.clock.advance(10)
    await env.sync()
    assert len(env.jobs()) == 1


async def test_forbid_skips_while_active_then_runs_after_completion() -> None:
    env = Env()
    env.add(concurrencyPolicy="Forbid")
    env.clock.advance(30)
    await env.sync()
    env.clock.advance(60)
    await env.sync()
    assert len(env.jobs()) == 1
    assert "JobAlreadyActive" in env.rec.reasons()
    first = env.jobs()[0]["metadata"]["name"]
    env.finish(env.jobs()[0])
    await env.sync()
    assert (
        "tick",
        "Normal",
        "SawCompletedJob",
        f"Saw completed job: {first}, status: Complete",
    ) in env.rec.events
    jobs = env.jobs()
    assert len(jobs) == 2, "the skipped 12:02 run starts once the previous one finished"
    assert [a["name"] for a in env.cronjob()["status"]["active"]] == [
        j["metadata"]["name"] for j in jobs if j["metadata"]["name"] != first
    ]
    await env.sync()
    assert env.cronjob()["status"]["lastSuccessfulTime"] == rfc(env.clock())


async def test_allow_runs_concurrently() -> None:
    env = Env()
    env.add()
    for _ in range(3):
        env.clock.advance(60)
        await env.sync()
    assert len(env.jobs()) == 3
    assert len(env.cronjob()["status"]["active"]) == 3


async def test_replace_deletes_the_running_job() -> None:
    env = Env()
    env.add(concurrencyPolicy="Replace")
    env.clock.advance(30)
    await env.sync()
    first = env.jobs()[0]["metadata"]["name"]
    env.clock.advance(60)
    await env.sync()
    names = [j["metadata"]["name"] for j in env.jobs()]
    assert first not in names and len(names) == 1
    assert ("tick", "Normal", "SuccessfulDelete", f"Deleted job {first}") in env.rec.events
    assert [a["name"] for a in env.cronjob()["status"]["active"]] == names
    assert env.api.deletes[-1][2]["propagationPolicy"] == "Background"


async def test_suspend_stops_new_runs() -> None:
    env = Env()
    env.add(suspend=True)
    env.clock.advance(120)
    assert await env.sync() is None
    assert env.jobs() == []


async def test_starting_deadline_bounds_missed_runs() -> None:
    created = T0 - dt.timedelta(hours=3)
    env = Env(T0 + dt.timedelta(minutes=2))
    env.add("0 * * * *", created=created, startingDeadlineSeconds=60)
    await env.sync()
    assert env.jobs() == [], "12:00 is older than the 60 s deadline"
    env2 = Env(T0)
    env2.add("0 * * * *", created=created, startingDeadlineSeconds=60)
    await env2.sync()
    assert [j["metadata"]["annotations"][SCHEDULED_ANNOTATION] for j in env2.jobs()] == [
        "2024-05-01T12:00:00Z"
    ]


async def test_too_many_missed_start_times_warns_and_runs_the_latest() -> None:
    env = Env()
    env.add(created=T0 - dt.timedelta(hours=3))
    await env.sync()
    warnings = [m for _, t, r, m in env.rec.events if r == "TooManyMissedTimes"]
    assert warnings and warnings[0].startswith("too many missed start times: 18")
    assert "Set or decrease .spec.startingDeadlineSeconds or check clock skew" in warnings[0]
    assert [j["metadata"]["annotations"][SCHEDULED_ANNOTATION] for j in env.jobs()] == [
        "2024-05-01T12:00:00Z"
    ]


async def test_time_zone_schedules_and_annotates_in_that_zone() -> None:
    env = Env(dt.datetime(2024, 5, 2, 6, 0, tzinfo=dt.UTC))
    env.add("0 9 * * *", created=dt.datetime(2024, 5, 2, 5, 0, tzinfo=dt.UTC), timeZone="Europe/Paris")
    again = await env.sync()
    assert env.jobs() == [] and again is not None and abs(again - 3600) < 1
    env.clock.advance(3600)
    await env.sync()
    (job,) = env.jobs()
    assert job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == "2024-05-02T09:00:00+02:00"
    assert env.cronjob()["status"]["lastScheduleTime"] == "2024-05-02T07:00:00Z"


async def test_unknown_time_zone_and_bad_schedule_are_warnings() -> None:
    env = Env()
    env.add(timeZone="Mars/Olympus")
    assert await env.sync() is None
    assert "UnknownTimeZone" in env.rec.reasons()
    env2 = Env()
    env2.add("61 * * * *")
    assert await env2.sync() is None
    (msg,) = [m for _, _, r, m in env2.rec.events if r == "UnparseableSchedule"]
    assert msg.startswith('unparseable schedule: "61 * * * *" : ')


async def test_tz_prefix_in_legacy_schedule_warns_but_is_honoured() -> None:
    env = Env(dt.datetime(2024, 5, 2, 6, 30, tzinfo=dt.UTC))
    env.add("TZ=Europe/Paris 0 9 * * *", created=dt.datetime(2024, 5, 2, 6, 0, tzinfo=dt.UTC))
    env.clock.advance(1800)
    await env.sync()
    assert "UnsupportedSchedule" in env.rec.reasons()
    assert len(env.jobs()) == 1


async def test_history_limits_delete_oldest_finished_jobs() -> None:
    env = Env()
    env.add(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    for _ in range(3):
        env.clock.advance(60)
        await env.sync()
        env.finish(env.jobs()[-1])
    env.clock.advance(60)
    await env.sync()
    env.finish(env.jobs()[-1], "Failed")
    await env.sync()
    remaining = env.jobs()
    statuses = [j["status"]["conditions"][0]["type"] for j in remaining if j.get("status")]
    assert statuses == ["Complete"], "one succeeded job kept, no failed one"
    assert env.rec.reasons().count("SuccessfulDelete") == 3


async def test_missing_and_unexpected_jobs() -> None:
    env = Env()
    env.add()
    env.clock.advance(30)
    await env.sync()
    (job,) = env.jobs()
    env.api._put(JOBS, None, f"default/{job['metadata']['name']}")
    await env.sync()
    assert (
        "tick",
        "Normal",
        "MissingJob",
        f"Active job went missing: {job['metadata']['name']}",
    ) in env.rec.events
    manual = {
        "metadata": {
            "name": "tick-manual",
            "namespace": "default",
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "tick",
                    "uid": "cj-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {},
    }
    env.api.seed(JOBS, manual)
    await env.sync()
    assert "UnexpectedJob" in env.rec.reasons()


def test_job_name_uses_minutes_since_epoch() -> None:
    t = dt.datetime(2024, 5, 1, 12, 1, tzinfo=dt.UTC)
    assert job_name({"metadata": {"name": "x"}}, t) == f"x-{int(t.timestamp()) // 60}"


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("@hourly", "2024-05-01T12:00:30", "2024-05-01T13:00:00"),
        ("@daily", "2024-05-01T12:00:30", "2024-05-02T00:00:00"),
        ("@weekly", "2024-05-01T12:00:30", "2024-05-05T00:00:00"),
        ("@monthly", "2024-05-01T12:00:30", "2024-06-01T00:00:00"),
        ("@yearly", "2024-05-01T12:00:30", "2025-01-01T00:00:00"),
        ("*/15 * * * *", "2024-05-01T12:00:00", "2024-05-01T12:15:00"),
        ("0 9 * * MON-FRI", "2024-05-03T10:00:00", "2024-05-06T09:00:00"),
        ("@every 1h30m", "2024-05-01T12:00:30", "2024-05-01T13:30:30"),
        ("0 0 ? * *", "2024-05-01T12:00:00", "2024-05-02T00:00:00"),
    ],
)
def test_schedule_next(spec: str, after: str, expected: str) -> None:
    sched = cs.parse(spec, None, dt.UTC)
    t = dt.datetime.fromisoformat(after).replace(tzinfo=dt.UTC)
    assert sched.next(t) == dt.datetime.fromisoformat(expected).replace(tzinfo=dt.UTC)


def test_schedule_parse_errors_use_robfig_messages() -> None:
    with pytest.raises(cs.ScheduleError, match="expected exactly 5 fields"):
        cs.parse("* * *", None, dt.UTC)
    with pytest.raises(cs.ScheduleError, match="unknown time zone"):
        cs.parse("* * * * *", "No/Where", dt.UTC)


@settings(deadline=None, max_examples=60)
@given(
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=1_500),
    st.sampled_from(["* * * * *", "*/7 * * * *", "0 * * * *", "5 4 * * *", "0 0 1,15 * *", "@every 90s"]),
)
def test_most_recent_matches_enumeration(offset: int, span: int, spec: str) -> None:
    sched = cs.parse(spec, None, dt.UTC)
    earliest = T0 + dt.timedelta(minutes=offset)
    now = earliest + dt.timedelta(minutes=span)
    expected = None
    t = sched.next(earliest)
    while t <= now:
        expected = t
        t = sched.next(t)
    found, missed = cs.most_recent(earliest, now, sched)
    assert found == expected
    assert (missed == 0) == (expected is None)
