"""`kubelite up --demo`: the offline volunteer-computing workload runs for real, and a clean stop
leaves no container, mount, network namespace, bridge, route or nftables table behind.

The node is a network namespace the test creates (the demo turns on pod networking, which must
not touch this machine's own network), with kubelite run exactly as ``scripts/up`` runs it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import stop_cluster
from tests.e2e.netns_helpers import (
    HostNetns,
    create_host,
    force_cleanup,
    leftovers,
    sandbox_netns,
    start_cluster_in,
)

pytestmark = pytest.mark.e2e


def _runc_ids(agent_dir: Path) -> list[str]:
    out = subprocess.run(
        ["runc", "--root", str(agent_dir / "runc"), "list", "-q"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(path) in line]


def test_demo_workload_runs_and_stops_cleanly(tmp_path: Path) -> None:
    host = create_host()
    agent_dir = tmp_path / "demo" / "agent"
    try:
        _run_demo(host, tmp_path, agent_dir)
    finally:
        force_cleanup(agent_dir)
        host.delete()


def _run_demo(host: HostNetns, tmp_path: Path, agent_dir: Path) -> None:
    cluster = start_cluster_in(host, tmp_path / "demo", "--demo")
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
        assert _runc_ids(agent_dir), "the DaemonSet's container runs under runc"
        pods = cluster.json("get", "pods", "-n", "science")["items"]
        uids = {p["metadata"]["uid"] for p in pods}
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        assert running and all(p["status"].get("podIP", "").startswith("10.244.") for p in running)
        seen = sandbox_netns(agent_dir)
        assert seen
    finally:
        assert stop_cluster(cluster) == 0
    assert _runc_ids(agent_dir) == []
    assert not _mounts_under(tmp_path / "demo")
    assert leftovers(host, agent_dir, seen) == []
    pod_cgroups = {f"pod{uid}" for uid in uids}
    left = [p for p in Path("/sys/fs/cgroup").glob("*/**/kubelite/*") if p.name in pod_cgroups]
    assert left == [], left  # every hierarchy, the hybrid v2 "unified" one included
