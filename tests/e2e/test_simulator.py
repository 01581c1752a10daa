"""Simulated nodes end to end: a real ``kubelite up --simulated-nodes 3`` and the real kubectl."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(
        Path(tmp_path_factory.mktemp("sim")),
        "--simulated-nodes",
        "3",
        "--simulated-heartbeat",
        "1",
        "--simulated-job-duration",
        "0.5",
        "--no-scheduler",
        "--no-agent",
        "--simulated-node-taint",
        "dedicated=gpu:NoSchedule",
        "--simulated-tainted-nodes",
        "1",
    )
    yield c
    stop_cluster(c)


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def pod(name: str, node: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    meta.update(extra.pop("meta", {}))
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"name": "app", "image": "nginx:1.27"}],
    }
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def test_three_ready_nodes_with_kubelet_columns(sim: Cluster) -> None:
    out = sim.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
    rows = sorted(line.split() for line in out)
    assert [r[0] for r in rows] == ["sim-node-0", "sim-node-1", "sim-node-2"]
    for r in rows:
        assert r[1] == "Ready"
        assert r[2] == "<none>"
        assert r[4] == "v1.32.0"
    node = sim.json("get", "node", "sim-node-2")
    labels = node["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "zone-2"
    assert labels["kubernetes.io/hostname"] == "sim-node-2"
    assert labels["kubelite.io/simulated"] == "true"
    assert node["status"]["allocatable"]["pods"] == "110"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "simulated://1.0"
    assert "taints" not in node["spec"]
    taints = sim.json("get", "node", "sim-node-0")["spec"]["taints"]
    assert taints == [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]


def test_bound_pod_runs_ready_with_an_ip(sim: Cluster) -> None:
    sim.apply(pod("sim-web", "sim-node-0"))

    def running() -> Any:
        p = sim.json("get", "pod", "sim-web")
        return p if p["status"].get("phase") == "Running" else None

    p = wait_for("pod Running", running, 10)
    assert p["status"]["podIP"].startswith("10.244.0.")
    assert p["status"]["hostIP"] == "10.240.0.1"
    ready = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert ready["Ready"] == "True" and ready["ContainersReady"] == "True"
    row = sim.kubectl("get", "pod", "sim-web", "--no-headers").stdout.split()
    assert row[1:3] == ["1/1", "Running"]
    full = sim.json("get", "pod", "sim-web", "--show-managed-fields")
    managers = {(m["manager"], m.get("subresource", "")) for m in full["metadata"]["managedFields"]}
    assert ("kubelet", "status") in managers


def test_job_pod_succeeds_and_annotated_exit_code_fails(sim: Cluster) -> None:
    sim.apply(
        pod(
            "sim-job",
            "sim-node-1",
            restartPolicy="Never",
            meta={"labels": {"batch.kubernetes.io/job-name": "j"}},
        )
    )
    sim.apply(
        pod(
            "sim-fail",
            "sim-node-2",
            restartPolicy="Never",
            meta={
                "annotations": {
                    "kubelite.io/simulate-duration": "300ms",
                    "kubelite.io/simulate-exit-code": "2",
                }
            },
        )
    )

    def phase(name: str) -> str:
        return str(sim.json("get", "pod", name)["status"].get("phase", ""))

    wait_for("job pod Succeeded", lambda: phase("sim-job") == "Succeeded", 10)
    wait_for("annotated pod Failed", lambda: phase("sim-fail") == "Failed", 10)
    term = sim.json("get", "pod", "sim-fail")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 2 and term["reason"] == "Error"


def test_graceful_delete_completes(sim: Cluster) -> None:
    sim.apply(pod("sim-del", "sim-node-2"))
    wait_for("pod Running", lambda: sim.json("get", "pod", "sim-del")["status"].get("phase") == "Running")
    t0 = time.monotonic()
    sim.kubectl("delete", "pod", "sim-del", "--grace-period=30", "--wait=true", timeout=20)
    assert time.monotonic() - t0 < 10
    res = sim.kubectl("get", "pod", "sim-del", check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr


def test_stopped_node_stops_renewing_its_lease(sim: Cluster) -> None:
    def renew(node: str) -> str:
        lease = sim.json("get", "lease", "-n", "kube-node-lease", node)
        return str(lease["spec"]["renewTime"])

    first = renew("sim-node-1")
    wait_for("lease renewal", lambda: renew("sim-node-1") != first, 5)
    sim.kubectl("annotate", "node", "sim-node-1", "kubelite.io/simulate-stopped=true")

    def unchanged_for_two_beats() -> str:
        before = renew("sim-node-1")
        time.sleep(2.0)  # heartbeat is 1 s
        return before if renew("sim-node-1") == before else ""

    frozen = wait_for("renewals to stop", unchanged_for_two_beats, 15)
    other = renew("sim-node-0")
    wait_for("other node renews", lambda: renew("sim-node-0") != other, 5)
    assert renew("sim-node-1") == frozen
    # a pod bound to the stopped node stays Pending
    sim.apply(pod("sim-stuck", "sim-node-1"))
    time.sleep(0.8)
    assert sim.json("get", "pod", "sim-stuck")["status"].get("phase") == "Pending"
    # restarting the node resumes heartbeats and pod updates
    sim.kubectl("annotate", "node", "sim-node-1", "kubelite.io/simulate-stopped-")
    wait_for("lease renewal after restart", lambda: renew("sim-node-1") != frozen, 5)
    wait_for(
        "pod Running after restart",
        lambda: sim.json("get", "pod", "sim-stuck")["status"].get("phase") == "Running",
    )


def test_kubectl_top_reads_simulated_usage(sim: Cluster) -> None:
    body = pod("sim-top", "sim-node-0", meta={"annotations": {"kubelite.io/simulate-cpu": "250m"}})
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m", "memory": "64Mi"}}
    sim.apply(body)
    wait_for("pod Running", lambda: sim.json("get", "pod", "sim-top")["status"].get("phase") == "Running")
    row = sim.kubectl("top", "pod", "sim-top", "--no-headers").stdout.split()
    assert row[:2] == ["sim-top", "250m"]
    nodes = sim.kubectl("top", "node", "--no-headers").stdout
    assert "sim-node-0" in nodes
