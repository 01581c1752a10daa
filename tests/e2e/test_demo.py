"""`kubelite up --demo`: the offline volunteer-computing workload runs for real, and a clean stop
leaves no container, mount or network namespace behind."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import start_cluster, stop_cluster

pytestmark = pytest.mark.e2e


def _runc_ids(agent_dir: Path) -> list[str]:
    out = subprocess.run(
        ["runc", "--root", str(agent_dir / "runc"), "list", "-q"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(path) in line]


def test_demo_workload_runs_and_stops_cleanly(tmp_path: Path) -> None:
    cluster = start_cluster(
        tmp_path / "demo", "--demo", "--crash-loop-backoff", "1", agent=True, network=True
    )
    try:
        assert "runtime=runc" in cluster.ready_line
        deadline = time.time() + 120
        job: dict = {}
        while time.time() < deadline:
            job = cluster.json("get", "job", "work-units", "-n", "science")
            if (job.get("status") or {}).get("succeeded") == 12:
                break
            time.sleep(1)
        assert job["status"]["succeeded"] == 12, job.get("status")
        ds = cluster.json("get", "ds", "science-client", "-n", "science")
        assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] == 1
        logs = cluster.kubectl("logs", "-n", "science", "job/work-units").stdout
        assert "work unit" in logs and "done: 30000" in logs
        limits = ds["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["cpu"] == "200m"
        assert _runc_ids(tmp_path / "demo" / "agent"), "the DaemonSet's container runs under runc"
        sandboxes = {p.name for p in (tmp_path / "demo" / "agent" / "sandboxes").iterdir()}
        uids = {p["metadata"]["uid"] for p in cluster.json("get", "pods", "-n", "science")["items"]}
        assert sandboxes and {f"kubelite-{sid}" for sid in sandboxes} <= _netns()
    finally:
        assert stop_cluster(cluster) == 0
    assert _runc_ids(tmp_path / "demo" / "agent") == []
    assert not _mounts_under(tmp_path / "demo")
    assert {f"kubelite-{sid}" for sid in sandboxes} & _netns() == set()
    pod_cgroups = {f"pod{uid}" for uid in uids}
    left = [p for p in Path("/sys/fs/cgroup").glob("*/**/kubelite/*") if p.name in pod_cgroups]
    assert left == [], left  # every hierarchy, the hybrid v2 "unified" one included
