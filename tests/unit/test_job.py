"""Job controller: parallelism, completions, back-off, indexes, policies, suspend, tracking."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.client.base import Resource
from kubelite.controllers import job_indexed as ix
from kubelite.controllers.job import JobController
from kubelite.controllers.job_policy import (
    BackoffRecord,
    backoff_delay,
    match_pod_failure_policy,
    match_success_policy,
    remaining_backoff,
)
from kubelite.controllers.job_state import TRACKING_FINALIZER
from tests.unit.batch_fakes import FakeAPI, FakeRecorder, ManualClock

Obj = dict[str, Any]
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
KEY = "default/work"


class Env:
    def __init__(self, backoff_base: float = 0.0) -> None:
        self.clock = ManualClock()
        self.api = FakeAPI(self.clock)
        self.rec = FakeRecorder()
        self.ctrl = JobController(
            self.api,  # type: ignore[arg-type]
            self.api.informer(JOBS),
            self.api.informer(PODS),
            self.rec,  # type: ignore[arg-type]
            backoff_base=backoff_base,
            clock=self.clock,
        )

    def add_job(self, name: str = "work", **spec: Any) -> Obj:
        uid = secrets.token_hex(8)
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name}
        body: Obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {
                "parallelism": 1,
                "completions": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": False,
                "podReplacementPolicy": "TerminatingOrFailed",
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
                },
                **spec,
            },
        }
        return self.api.seed(JOBS, body)

    def job(self, name: str = "work") -> Obj:
        return self.api.store["jobs"][f"default/{name}"]

    def pods(self) -> list[Obj]:
        return sorted(self.api.objects("pods"), key=lambda p: p["metadata"]["creationTimestamp"])

    def active(self) -> list[Obj]:
        return [
            p
            for p in self.pods()
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]

    async def sync(self, rounds: int = 4, key: str = KEY) -> float | None:
        out = None
        for _ in range(rounds):
            out = await self.ctrl.sync(key)
        return out

    def conditions(self, name: str = "work") -> dict[str, Obj]:
        return {c["type"]: c for c in self.job(name).get("status", {}).get("conditions") or []}

    def finish_active(self, phase: str = "Succeeded", exit_code: int = 0, limit: int | None = None) -> int:
        pods = self.active()[:limit] if limit else self.active()
        for p in pods:
            self.api.set_pod_phase(f"default/{p['metadata']['name']}", phase, exit_code)
        return len(pods)


async def test_pods_are_created_from_the_template_with_finalizer_and_owner() -> None:
    env = Env()
    env.add_job(parallelism=2, completions=4)
    await env.sync()
    pods = env.pods()
    assert len(pods) == 2
    pod = pods[0]
    meta = pod["metadata"]
    assert meta["name"].startswith("work-") and len(meta["name"]) == len("work-") + 5
    assert TRACKING_FINALIZER in meta["finalizers"]
    ref = meta["ownerReferences"][0]
    assert ref["kind"] == "Job" and ref["controller"] is True and ref["blockOwnerDeletion"] is True
    assert ref["uid"] == env.job()["metadata"]["uid"]
    assert meta["labels"]["batch.kubernetes.io/job-name"] == "work"
    status = env.job()["status"]
    assert status["active"] == 2 and status["ready"] == 0 and status["terminating"] == 0
    assert status["startTime"] and status["uncountedTerminatedPods"] == {}
    assert env.rec.reasons().count("SuccessfulCreate") == 2
    assert any(m.startswith("Created pod: work-") for *_, m in env.rec.events)


async def test_completions_with_parallelism_never_exceed_parallelism_and_complete_exactly() -> None:
    env = Env()
    env.add_job(parallelism=3, completions=7)
    peak = 0
    for _ in range(12):
        await env.sync()
        peak = max(peak, len(env.active()))
        env.finish_active(limit=2)
    await env.sync()
    status = env.job()["status"]
    assert peak == 3
    assert status["succeeded"] == 7
    assert len(env.pods()) == 7, "no extra pod is ever created"
    conds = env.conditions()
    assert conds["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["status"] == "True"
    assert conds["Complete"]["message"] == "Reached expected number of succeeded pods"
    assert status["completionTime"] == conds["Complete"]["lastTransitionTime"]
    assert "active" not in status
    assert all(TRACKING_FINALIZER not in p["metadata"].get("finalizers", []) for p in env.pods())
    assert env.rec.reasons().count("Completed") == 1


async def test_uncounted_pods_are_recorded_before_the_finalizer_is_removed() -> None:
    env = Env()
    env.add_job()
    await env.sync(1)
    env.finish_active()
    seen: list[Obj] = []
    real_update = env.api.update

    async def spy(res: Resource, ns: str, obj: Obj, **kw: Any) -> Obj:
        seen.append(obj["status"].get("uncountedTerminatedPods", {}))
        return await real_update(res, ns, obj, **kw)

    env.api.update = spy  # type: ignore[method-assign]
    await env.sync(1)
    assert seen[0].get("succeeded"), "the first status write lists the pod as uncounted"
    assert env.job()["status"]["succeeded"] == 1


async def test_backoff_limit_fails_the_job() -> None:
    env = Env()
    env.add_job(backoffLimit=2)
    for _ in range(5):
        await env.sync()
        env.finish_active("Failed", exit_code=1)
    await env.sync()
    status = env.job()["status"]
    assert status["failed"] == 3
    assert len(env.pods()) == 3
    conds = env.conditions()
    assert conds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
    assert (
        "work",
        "Warning",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    ) in env.rec.events
    assert "completionTime" not in status


async def test_replacement_waits_for_exponential_backoff() -> None:
    env = Env(backoff_base=10.0)
    env.add_job(backoffLimit=6)
    await env.sync(1)
    env.finish_active("Failed", exit_code=1)
    again = await env.sync(2)
    assert len(env.pods()) == 1 and again is not None and 9.0 <= again <= 10.0
    env.clock.advance(10)
    await env.sync(1)
    assert len(env.active()) == 1
    env.finish_active("Failed", exit_code=1)
    again = await env.sync(2)
    assert again is not None and 19.0 <= again <= 20.0, "second failure doubles the delay"


def test_backoff_delay_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 10, 360) for n in range(1, 8)] == [10, 20, 40, 80, 160, 320, 360]
    assert backoff_delay(0, 10, 360) == 0
    clock = ManualClock()
    rec = BackoffRecord(2, clock())
    clock.advance(5)
    assert remaining_backoff(rec, clock(), 10, 360) == 15


async def test_indexed_job_pods_carry_index_hostname_and_env() -> None:
    env = Env()
    env.add_job(completionMode="Indexed", completions=3, parallelism=3)
    await env.sync()
    pods = env.pods()
    assert len(pods) == 3
    by_index = {p["metadata"]["annotations"][ix.INDEX_KEY]: p for p in pods}
    assert set(by_index) == {"0", "1", "2"}
    p1 = by_index["1"]
    assert p1["metadata"]["labels"][ix.INDEX_KEY] == "1"
    assert p1["metadata"]["name"].startswith("work-1-")
    assert p1["spec"]["hostname"] == "work-1"
    env_vars = p1["spec"]["containers"][0]["env"]
    assert {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {
            "fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{ix.INDEX_KEY}']"}
        },
    } in env_vars
    env.api.set_pod_phase(f"default/{p1['metadata']['name']}", "Succeeded")
    await env.sync()
    assert env.job()["status"]["completedIndexes"] == "1"
    env.finish_active()
    await env.sync()
    status = env.job()["status"]
    assert status["completedIndexes"] == "0-2" and status["succeeded"] == 3
    assert env.conditions()["Complete"]["status"] == "True"


async def test_indexed_job_replaces_a_failed_index_only() -> None:
    env = Env()
    env.add_job(completionMode="Indexed", completions=2, parallelism=2)
    await env.sync()
    first = {p["metadata"]["annotations"][ix.INDEX_KEY]: p for p in env.pods()}
    env.api.set_pod_phase(f"default/{first['0']['metadata']['name']}", "Failed", 1)
    await env.sync()
    active_indexes = sorted(p["metadata"]["annotations"][ix.INDEX_KEY] for p in env.active())
    assert active_indexes == ["0", "1"]
    assert env.job()["status"]["failed"] == 1


async def test_pod_failure_policy_fail_job_and_ignore() -> None:
    env = Env()
    policy = {
        "rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        ]
    }
    env.add_job(backoffLimit=0, podFailurePolicy=policy, podReplacementPolicy="Failed")
    await env.sync(1)
    env.finish_active("Failed", exit_code=3)
    await env.sync()
    assert "Failed" not in env.conditions(), "ignored failures do not count towards backoffLimit"
    assert env.job()["status"].get("failed", 0) == 0
    assert len(env.active()) == 1
    pod = env.active()[0]["metadata"]["name"]
    env.finish_active("Failed", exit_code=42)
    await env.sync()
    conds = env.conditions()
    msg = f"Container main for pod default/{pod} failed with exit code 42 matching FailJob rule at index 1"
    assert conds["FailureTarget"]["reason"] == "PodFailurePolicy"
    assert conds["Failed"]["message"] == msg


def test_pod_failure_policy_matching_rules() -> None:
    pod: Obj = {
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {
            "phase": "Failed",
            "conditions": [{"type": "DisruptionTarget", "status": "True"}],
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 5}}}],
        },
    }
    not_in = {"rules": [{"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}]}
    assert match_pod_failure_policy(not_in, pod).action == "Count"
    on_cond = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    m = match_pod_failure_policy(on_cond, pod)
    assert m.action == "Ignore" and m.count_failed is False
    fail = {
        "rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    }
    assert (
        match_pod_failure_policy(fail, pod).fail_job_message
        == "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0"
    )
    other = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "x", "operator": "In", "values": [5]}}
        ]
    }
    assert match_pod_failure_policy(other, pod).action is None


def test_success_policy_rules() -> None:
    policy = {"rules": [{"succeededIndexes": "0-2", "succeededCount": 2}, {"succeededCount": 4}]}
    assert match_success_policy(policy, 10, {0}) is None
    assert match_success_policy(policy, 10, {0, 2}) == "Matched rules at index 0"
    assert match_success_policy(policy, 10, {5, 6, 7, 8}) == "Matched rules at index 1"
    assert match_success_policy({"rules": [{"succeededIndexes": "1,3"}]}, 5, {1}) is None
    assert match_success_policy({"rules": [{"succeededIndexes": "1,3"}]}, 5, {1, 3}) is not None


async def test_success_policy_completes_and_deletes_remaining_pods() -> None:
    env = Env()
    policy = {"rules": [{"succeededIndexes": "0"}]}
    env.add_job(completionMode="Indexed", completions=3, parallelism=3, successPolicy=policy)
    await env.sync()
    zero = next(p for p in env.pods() if p["metadata"]["annotations"][ix.INDEX_KEY] == "0")
    for p in env.pods():
        env.api.set_pod_phase(f"default/{p['metadata']['name']}", "Running")
    env.api.set_pod_phase(f"default/{zero['metadata']['name']}", "Succeeded")
    await env.sync()
    conds = env.conditions()
    assert conds["SuccessCriteriaMet"]["reason"] == "SuccessPolicy"
    assert conds["SuccessCriteriaMet"]["message"] == "Matched rules at index 0"
    assert "Complete" not in conds, "Complete waits until no pod is terminating"
    assert env.job()["status"]["terminating"] == 2
    env.api.finish_graceful()
    await env.sync()
    assert env.conditions()["Complete"]["reason"] == "SuccessPolicy"
    assert env.job()["status"]["succeeded"] == 1


async def test_active_deadline_fails_the_job_and_deletes_pods() -> None:
    env = Env()
    env.add_job(parallelism=2, completions=2, activeDeadlineSeconds=30)
    again = await env.sync()
    assert again is not None and again <= 30
    assert len(env.active()) == 2
    env.clock.advance(31)
    await env.sync()
    env.api.finish_graceful()
    await env.sync()
    conds = env.conditions()
    assert conds["Failed"]["reason"] == "DeadlineExceeded"
    assert conds["Failed"]["message"] == "Job was active longer than specified deadline"
    assert env.active() == []
    assert env.job()["status"]["failed"] == 2


async def test_suspend_deletes_pods_and_resume_resets_start_time() -> None:
    env = Env()
    env.add_job(parallelism=2, completions=4)
    await env.sync()
    assert len(env.active()) == 2
    job = dict(env.job())
    job["spec"] = {**job["spec"], "suspend": True}
    env.api.seed(JOBS, job)
    await env.sync()
    conds = env.conditions()
    assert conds["Suspended"]["status"] == "True" and conds["Suspended"]["reason"] == "JobSuspended"
    assert env.pods() == [], "suspended pods lose their finalizer and go"
    assert "Suspended" in env.rec.reasons()
    started = env.job()["status"]["startTime"]
    env.clock.advance(60)
    job = dict(env.job())
    job["spec"] = {**job["spec"], "suspend": False}
    env.api.seed(JOBS, job)
    await env.sync()
    conds = env.conditions()
    assert conds["Suspended"]["status"] == "False" and conds["Suspended"]["reason"] == "JobResumed"
    assert env.job()["status"]["startTime"] != started
    assert len(env.active()) == 2
    assert "Resumed" in env.rec.reasons()


async def test_created_suspended_has_no_start_time() -> None:
    env = Env()
    env.add_job(suspend=True)
    await env.sync()
    assert "startTime" not in env.job()["status"]
    assert env.pods() == []
    assert env.conditions()["Suspended"]["status"] == "True"


async def test_backoff_limit_per_index_fails_only_that_index() -> None:
    env = Env()
    env.add_job(
        completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=1, backoffLimit=100
    )
    await env.sync()
    for _ in range(3):
        zero = [p for p in env.active() if p["metadata"]["annotations"][ix.INDEX_KEY] == "0"]
        for p in zero:
            env.api.set_pod_phase(f"default/{p['metadata']['name']}", "Failed", 1)
        await env.sync()
    counts = sorted(
        p["metadata"]["annotations"].get(ix.FAILURE_COUNT, "")
        for p in env.pods()
        if p["metadata"]["annotations"][ix.INDEX_KEY] == "0"
    )
    assert counts == ["0", "1"], "the replacement carries the index failure count"
    assert env.job()["status"]["failedIndexes"] == "0"
    one = next(p for p in env.active() if p["metadata"]["annotations"][ix.INDEX_KEY] == "1")
    env.api.set_pod_phase(f"default/{one['metadata']['name']}", "Succeeded")
    await env.sync()
    conds = env.conditions()
    assert conds["Failed"]["reason"] == "FailedIndexes"
    assert env.job()["status"]["completedIndexes"] == "1"


async def test_completions_unset_completes_on_first_success_once_others_finish() -> None:
    env = Env()
    env.add_job(parallelism=2, completions=None)
    await env.sync()
    assert len(env.active()) == 2
    env.finish_active(limit=1)
    await env.sync()
    assert "Complete" not in env.conditions() and len(env.active()) == 1
    env.finish_active()
    await env.sync()
    assert env.conditions()["Complete"]["status"] == "True"


async def test_orphaned_pods_lose_the_tracking_finalizer() -> None:
    env = Env()
    env.add_job(parallelism=2, completions=2)
    await env.sync()
    env.api._put(JOBS, None, KEY)
    for p in env.pods():
        await env.ctrl.sync_orphan_pod(f"default/{p['metadata']['name']}")
    assert all(TRACKING_FINALIZER not in p["metadata"].get("finalizers", []) for p in env.pods())


async def test_stale_cache_after_status_write_defers_sync() -> None:
    env = Env()
    env.add_job()
    await env.sync(1)
    env.ctrl.written_rv[KEY] = 10**9
    assert await env.ctrl.sync(KEY) == 0.1


async def test_failed_creation_records_event_and_retries() -> None:
    env = Env()
    env.add_job()
    env.api.fail_create.add("pods")
    await env.sync(1)
    assert "FailedCreate" in env.rec.reasons()
    env.api.fail_create.clear()
    await env.sync(1)
    assert len(env.pods()) == 1


@pytest.mark.parametrize(
    ("indexes", "text"),
    [({1, 2}, "1,2"), ({1, 2, 3, 5}, "1-3,5"), (set(), ""), ({0, 2, 4, 5, 6}, "0,2,4-6")],
)
def test_interval_format(indexes: set[int], text: str) -> None:
    assert ix.format_intervals(indexes) == text


@given(st.sets(st.integers(min_value=0, max_value=200)))
def test_interval_round_trip(indexes: set[int]) -> None:
    assert ix.parse_intervals(ix.format_intervals(indexes), 201) == indexes


def test_indexed_generate_name_fits() -> None:
    assert ix.generate_name("work", 12) == "work-12-"
    long = ix.generate_name("x" * 70, 3)
    assert len(long) == 58 and long.endswith("-3-")


# ---------------------------------------------------------------------- TTL after finished

NODES = Resource("", "v1", "nodes", namespaced=False)


async def test_ttl_after_finished_deletes_expired_jobs_in_the_foreground() -> None:
    from kubelite.controllers.ttlafterfinished import TTLAfterFinishedController

    env = Env()
    ttl = TTLAfterFinishedController(env.api, env.api.informer(JOBS), clock=env.clock)  # type: ignore[arg-type]
    env.add_job(ttlSecondsAfterFinished=30)
    assert await ttl.sync(KEY) is None, "not finished: nothing to do"
    await env.sync()
    env.finish_active()
    await env.sync()
    assert env.conditions()["Complete"]["status"] == "True"
    left = await ttl.sync(KEY)
    assert left is not None and 29 <= left <= 30
    env.clock.advance(30)
    assert await ttl.sync(KEY) is None
    plural, key, options = env.api.deletes[-1]
    assert (plural, key, options["propagationPolicy"]) == ("jobs", KEY, "Foreground")


# ---------------------------------------------------------------------- pod GC


def _pod(name: str, phase: str, age: int, node: str = "n1", **meta: Any) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": f"2024-05-01T10:{age:02d}:00Z",
            **meta,
        },
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": phase},
    }


def _gc(env: Env, threshold: int = 2, now: list[float] | None = None) -> Any:
    from kubelite.controllers.podgc import PodGC

    clock = now or [0.0]
    return PodGC(
        env.api,  # type: ignore[arg-type]
        env.api.informer(PODS),
        env.api.informer(NODES),
        threshold=threshold,
        quarantine=40,
        monotonic=lambda: clock[0],
    )


async def test_podgc_deletes_oldest_terminated_pods_beyond_threshold() -> None:
    env = Env()
    gc = _gc(env, threshold=2)
    env.api.seed(NODES, {"metadata": {"name": "n1"}})
    for i, phase in enumerate(["Succeeded", "Failed", "Succeeded", "Running", "Succeeded"]):
        env.api.seed(PODS, _pod(f"p{i}", phase, age=i))
    evicted = _pod("evicted", "Failed", age=50)
    evicted["status"]["reason"] = "Evicted"
    env.api.seed(PODS, evicted)
    await gc.gc()
    names = sorted(p["metadata"]["name"] for p in env.pods())
    assert names == ["p2", "p3", "p4"], "evicted first, then the oldest; running pods stay"
    assert all(d[2]["grace"] == 0 for d in env.api.deletes)


async def test_podgc_orphans_after_quarantine_and_unscheduled_terminating() -> None:
    env = Env()
    clock = [0.0]
    gc = _gc(env, threshold=0, now=clock)
    env.api.seed(PODS, _pod("orphan", "Running", age=1, node="gone"))
    env.api.seed(PODS, _pod("stuck", "Pending", age=2, node="", deletionTimestamp="2024-05-01T10:00:00Z"))
    await gc.gc()
    assert [p["metadata"]["name"] for p in env.pods()] == ["orphan"], "quarantined, unscheduled one gone"
    clock[0] = 41
    await gc.gc()
    assert env.pods() == []
    failed = [d for d in env.api.deletes if d[1] == "default/orphan"]
    assert failed and failed[0][2]["grace"] == 0
