"""Jobs and CronJobs end to end: a real ``kubelite up`` with simulated nodes and real kubectl.

The CronJob controller runs with a clock 30 times faster than real time (a hidden test
flag), so "every minute" happens every two seconds; everything else is real time.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KUBECTL, Cluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def jc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(
        Path(tmp_path_factory.mktemp("jobs")),
        "--simulated-nodes",
        "3",
        "--simulated-job-duration",
        "0.5",
        "--simulated-pod-start-delay",
        "0.1",
        "--job-backoff-base",
        "0.2",
        "--cronjob-clock-scale",
        "30",
    )
    yield c
    stop_cluster(c)


@pytest.fixture
def jns(jc: Cluster, request: pytest.FixtureRequest) -> str:
    name = (
        "j-" + request.node.name.lower().replace("_", "-")[5:30].strip("-") + f"-{int(time.time()) % 10000}"
    )
    jc.kubectl("create", "namespace", name)
    return name


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def job(name: str, **spec: Any) -> Obj:
    template_meta = spec.pop("template_meta", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "template": {
                "metadata": template_meta,
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    }


def condition(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return dict(c)
    return None


def get(c: Cluster, ns: str, *what: str) -> Obj:
    out: Obj = c.json("-n", ns, "get", *what)
    return out


def finished(c: Cluster, ns: str, name: str, kind: str) -> Obj | None:
    j = get(c, ns, "job", name)
    return j if condition(j, kind) else None


class PodWatch:
    """Counts a namespace's active pods from ``kubectl get pods -w`` and remembers the peak."""

    def __init__(self, c: Cluster, ns: str) -> None:
        self.pods: dict[str, Obj] = {}
        self.peak = 0
        cmd = [KUBECTL, "--cache-dir", str(c.cache_dir), "-n", ns, "get", "pods", "-w", "-o", "json"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=c.env()
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        decoder = json.JSONDecoder()
        buf = ""
        for line in self.proc.stdout:
            buf += line
            while buf.strip():
                try:
                    pod, end = decoder.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break
                buf = buf.lstrip()[end:]
                self._seen(pod)

    def _seen(self, pod: Obj) -> None:
        self.pods[pod["metadata"]["name"]] = pod
        self.peak = max(self.peak, self.active())

    def active(self) -> int:
        return sum(
            1
            for p in list(self.pods.values())
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        )

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(5)


def test_completions_20_parallelism_5_never_more_than_5_active(jc: Cluster, jns: str) -> None:
    watch = PodWatch(jc, jns)
    try:
        jc.apply(job("many", completions=20, parallelism=5), "-n", jns)
        done = wait_for("job many to complete", lambda: finished(jc, jns, "many", "Complete"), 60)
    finally:
        watch.close()
    assert 3 <= watch.peak <= 5, f"peak active pods {watch.peak}"
    status = done["status"]
    assert status["succeeded"] == 20 and status.get("failed", 0) == 0
    assert status["uncountedTerminatedPods"] == {} and status["ready"] == 0
    assert condition(done, "SuccessCriteriaMet") is not None
    pods = get(jc, jns, "pods", "-l", "batch.kubernetes.io/job-name=many")["items"]
    assert len(pods) == 20
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all("batch.kubernetes.io/job-tracking" not in p["metadata"].get("finalizers", []) for p in pods)
    out = jc.kubectl("-n", jns, "get", "job", "many").stdout
    assert "20/20" in out and "Complete" in out
    events = jc.kubectl("-n", jns, "get", "events", "--field-selector", "involvedObject.name=many").stdout
    assert "SuccessfulCreate" in events and "Completed" in events


def test_indexed_job(jc: Cluster, jns: str) -> None:
    jc.apply(job("idx", completions=3, parallelism=3, completionMode="Indexed"), "-n", jns)
    done = wait_for("indexed job", lambda: finished(jc, jns, "idx", "Complete"), 40)
    assert done["status"]["completedIndexes"] == "0-2"
    pods = get(jc, jns, "pods", "-l", "batch.kubernetes.io/job-name=idx")["items"]
    seen = set()
    for p in pods:
        index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert p["metadata"]["name"].startswith(f"idx-{index}-")
        assert p["spec"]["hostname"] == f"idx-{index}"
        env = {e["name"]: e for e in p["spec"]["containers"][0]["env"]}
        assert "batch.kubernetes.io/job-completion-index" in str(env["JOB_COMPLETION_INDEX"]["valueFrom"])
        seen.add(index)
    assert seen == {"0", "1", "2"}


def test_failing_job_stops_at_backoff_limit(jc: Cluster, jns: str) -> None:
    failing = job(
        "bad", backoffLimit=2, template_meta={"annotations": {"kubelite.io/simulate-exit-code": "1"}}
    )
    jc.apply(failing, "-n", jns)
    done = wait_for("job to fail", lambda: finished(jc, jns, "bad", "Failed"), 40)
    failed = condition(done, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert done["status"]["failed"] == 3
    time.sleep(1.0)
    pods = get(jc, jns, "pods", "-l", "batch.kubernetes.io/job-name=bad")["items"]
    assert len(pods) == 3, "no pod after the limit"
    events = jc.kubectl("-n", jns, "get", "events", "--field-selector", "involvedObject.name=bad").stdout
    assert "BackoffLimitExceeded" in events


def test_ttl_after_finished_deletes_the_job_and_its_pods(jc: Cluster, jns: str) -> None:
    jc.apply(job("short", ttlSecondsAfterFinished=3), "-n", jns)
    done = wait_for("job to complete", lambda: finished(jc, jns, "short", "Complete"), 30)
    completed_at = time.monotonic()

    def deleted() -> bool:
        res = jc.kubectl("-n", jns, "get", "job", "short", check=False)
        return res.returncode != 0 and "NotFound" in res.stderr

    assert done["spec"]["ttlSecondsAfterFinished"] == 3
    wait_for("ttl deletion", deleted, 20)
    assert time.monotonic() - completed_at > 1.0, "not deleted before its TTL"
    wait_for("pods to go", lambda: get(jc, jns, "pods")["items"] == [], 20)


def test_suspend_and_resume(jc: Cluster, jns: str) -> None:
    jc.apply(job("paused", completions=2, parallelism=2, suspend=True), "-n", jns)
    wait_for("Suspended condition", lambda: condition(get(jc, jns, "job", "paused"), "Suspended"), 20)
    assert get(jc, jns, "pods")["items"] == []
    jc.kubectl("-n", jns, "patch", "job", "paused", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    done = wait_for("resumed job completes", lambda: finished(jc, jns, "paused", "Complete"), 30)
    suspended = [c for c in done["status"]["conditions"] if c["type"] == "Suspended"]
    assert suspended and suspended[0]["status"] == "False" and suspended[0]["reason"] == "JobResumed"


def _cronjob(name: str, policy: str, duration: str) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": policy,
            "successfulJobsHistoryLimit": 10,
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"annotations": {"kubelite.io/simulate-duration": duration}},
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
                    }
                }
            },
        },
    }


def test_cronjob_every_minute_forbid(jc: Cluster, jns: str) -> None:
    # one virtual minute = 2 s; each run lasts ~5 s (2.5 virtual minutes): Forbid must skip
    jc.apply(_cronjob("tick", "Forbid", "5s"), "-n", jns)
    max_active = 0
    deadline = time.monotonic() + 14
    while time.monotonic() < deadline:
        cj = get(jc, jns, "cronjob", "tick")
        max_active = max(max_active, len(cj.get("status", {}).get("active") or []))
        jobs = get(jc, jns, "jobs")["items"]
        running = [j for j in jobs if not condition(j, "Complete") and not condition(j, "Failed")]
        assert len(running) <= 1, f"Forbid ran {len(running)} jobs at once"
        time.sleep(0.3)
    jobs = get(jc, jns, "jobs")["items"]
    assert len(jobs) >= 2, "runs continue once the previous one finished"
    assert max_active == 1
    for j in jobs:
        assert j["metadata"]["name"].startswith("tick-")
        assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in j["metadata"]["annotations"]
        assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    events = jc.kubectl("-n", jns, "get", "events", "--field-selector", "involvedObject.name=tick").stdout
    assert "JobAlreadyActive" in events and "SuccessfulCreate" in events and "SawCompletedJob" in events
    cj = get(jc, jns, "cronjob", "tick")
    assert cj["status"].get("lastScheduleTime") and cj["status"].get("lastSuccessfulTime")
    out = jc.kubectl("-n", jns, "get", "cronjob", "tick").stdout
    assert "* * * * *" in out and "False" in out


def test_create_job_from_cronjob(jc: Cluster, jns: str) -> None:
    cj = _cronjob("nightly", "Allow", "0.2s")
    cj["spec"]["schedule"] = "0 3 1 1 *"
    jc.apply(cj, "-n", jns)
    jc.kubectl("-n", jns, "create", "job", "by-hand", "--from=cronjob/nightly")
    done = wait_for("manual job", lambda: finished(jc, jns, "by-hand", "Complete"), 30)
    assert done["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert done["metadata"]["ownerReferences"][0]["name"] == "nightly"
    events = jc.kubectl("-n", jns, "get", "events", "--field-selector", "involvedObject.name=nightly").stdout
    assert "UnexpectedJob" in events


def test_deleting_a_running_job_releases_its_pods(jc: Cluster, jns: str) -> None:
    long = job(
        "long",
        completions=2,
        parallelism=2,
        template_meta={"annotations": {"kubelite.io/simulate-duration": "60s"}},
    )
    jc.apply(long, "-n", jns)

    def running() -> bool:
        pods = get(jc, jns, "pods")["items"]
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    wait_for("two running pods", running, 30)
    jc.kubectl("-n", jns, "delete", "job", "long", "--wait=false")
    wait_for("pods to be released and deleted", lambda: get(jc, jns, "pods")["items"] == [], 30)
