"""Scheduling acceptance: a real ``kubelite up`` with simulated nodes, driven by the real kubectl.

The cluster (no node agent) has 4 simulated nodes over two zones (``zone-0``, ``zone-1``)
plus two Node objects created here, labelled ``e2e-group=gpu`` and tainted ``dedicated=gpu:NoSchedule``
(nothing runs on them but the scheduler's decisions), six nodes in all.  Every test works
in its own namespace; the assertions are the pods' ``spec.nodeName``, their conditions
and the scheduler's events.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e
Obj = dict[str, Any]
SIM = [f"sim-node-{i}" for i in range(4)]
GPU = ["gpu-0", "gpu-1"]
TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def gpu_node(name: str) -> Obj:
    res = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "e2e-group": "gpu"}},
        "spec": {"taints": [TAINT]},
        "status": {
            "capacity": res,
            "allocatable": res,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}],
        },
    }


@pytest.fixture(scope="module")
def sched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(
        tmp_path_factory.mktemp("sched"),
        "--simulated-nodes",
        "4",
        "--simulated-zones",
        "2",
        "--node-monitor-grace-period",
        "3600",
        "--no-agent",
    )
    try:
        wait_for(lambda: len(c.json("get", "nodes")["items"]) >= 4, "simulated nodes")
        for name in GPU:
            c.apply(gpu_node(name))
        yield c
    finally:
        stop_cluster(c)


@pytest.fixture
def ns(sched: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "s-" + request.node.name.lower().replace("_", "-")[5:40].strip("-")
    sched.kubectl("create", "namespace", name)
    yield name
    sched.kubectl("delete", "namespace", name, "--wait=false")


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def make_pod(name: str, cpu: str = "100m", labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": cpu}}}
            ],
            **spec,
        },
    }


def apply_all(c: Cluster, ns: str, objs: list[Obj]) -> None:
    c.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objs))


def nodes_of(c: Cluster, ns: str, names: list[str]) -> dict[str, str]:
    pods = c.json("get", "pods", "-n", ns)["items"]
    got = {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in pods}
    return {n: got.get(n, "") for n in names}


def wait_bound(c: Cluster, ns: str, names: list[str]) -> dict[str, str]:
    return dict(wait_for(lambda: (m := nodes_of(c, ns, names)) and all(m.values()) and m, f"{names} bound"))


def failed_scheduling(c: Cluster, ns: str, pod: str) -> list[str]:
    events = c.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={pod}")["items"]
    return [e["message"] for e in events if e["reason"] == "FailedScheduling"]


def node_zone(c: Cluster) -> dict[str, str]:
    return {
        n["metadata"]["name"]: n["metadata"]["labels"].get("topology.kubernetes.io/zone", "")
        for n in c.json("get", "nodes")["items"]
    }


def test_request_that_fits_nowhere_stays_pending_with_reasons(sched: Cluster, ns: str) -> None:
    apply_all(sched, ns, [make_pod("huge", cpu="64")])
    want = (
        "0/6 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, 4 Insufficient cpu. "
        "preemption: 0/6 nodes are available: 2 Preemption is not helpful for scheduling, "
        "4 No preemption victims found for incoming pod."
    )
    wait_for(lambda: want in failed_scheduling(sched, ns, "huge"), "FailedScheduling event")
    pod = sched.json("get", "pod", "huge", "-n", ns)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", want)
    described = sched.kubectl("describe", "pod", "huge", "-n", ns).stdout
    assert "FailedScheduling" in described and "default-scheduler" in described


def test_node_selector_and_scheduled_event(sched: Cluster, ns: str) -> None:
    apply_all(sched, ns, [make_pod("pinned", nodeSelector={"kubernetes.io/hostname": SIM[2]})])
    assert wait_bound(sched, ns, ["pinned"]) == {"pinned": SIM[2]}
    events = sched.json("get", "events", "-n", ns, "--field-selector", "reason=Scheduled")["items"]
    assert [e["message"] for e in events] == [f"Successfully assigned {ns}/pinned to {SIM[2]}"]
    assert events[0]["source"]["component"] == "default-scheduler"


def test_required_and_preferred_node_affinity(sched: Cluster, ns: str) -> None:
    zone = "topology.kubernetes.io/zone"
    required = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": zone, "operator": "In", "values": ["zone-1"]}]}
                ]
            }
        }
    }
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [{"key": zone, "operator": "In", "values": ["zone-0"]}]
                    },
                }
            ]
        }
    }
    names = [f"req-{i}" for i in range(3)] + [f"pref-{i}" for i in range(3)]
    pods = [make_pod(n, affinity=required if n.startswith("req") else preferred) for n in names]
    apply_all(sched, ns, pods)
    placed = wait_bound(sched, ns, names)
    zones = node_zone(sched)
    assert {zones[placed[n]] for n in names if n.startswith("req")} == {"zone-1"}
    assert {zones[placed[n]] for n in names if n.startswith("pref")} == {"zone-0"}


def test_anti_affinity_spreads_one_per_node(sched: Cluster, ns: str) -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    names = [f"spread-{i}" for i in range(5)]
    apply_all(sched, ns, [make_pod(n, labels={"app": "spread"}, affinity=anti) for n in names])
    want = (
        "0/6 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, "
        "4 node(s) didn't match pod anti-affinity rules."
    )
    wait_for(lambda: sum(1 for v in nodes_of(sched, ns, names).values() if v) == 4, "4 pods bound")
    placed = nodes_of(sched, ns, names)
    bound = [v for v in placed.values() if v]
    assert sorted(bound) == SIM
    pending = next(n for n, v in placed.items() if not v)
    wait_for(
        lambda: any(m.startswith(want) for m in failed_scheduling(sched, ns, pending)), "anti-affinity reason"
    )


def test_taints_and_tolerations(sched: Cluster, ns: str) -> None:
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    pods = [
        make_pod("tolerant", tolerations=tol, nodeSelector={"e2e-group": "gpu"}),
        make_pod("intolerant", nodeSelector={"e2e-group": "gpu"}),
    ]
    apply_all(sched, ns, pods)
    assert wait_bound(sched, ns, ["tolerant"])["tolerant"] in GPU
    wait_for(lambda: failed_scheduling(sched, ns, "intolerant"), "intolerant rejected")
    message = failed_scheduling(sched, ns, "intolerant")[0]
    assert message.startswith(
        "0/6 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, "
        "4 node(s) didn't match Pod's node affinity/selector."
    )
    assert nodes_of(sched, ns, ["intolerant"]) == {"intolerant": ""}


def test_topology_spread_across_zones(sched: Cluster, ns: str) -> None:
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "zonal"}},
        }
    ]
    names = [f"zonal-{i}" for i in range(6)]
    apply_all(
        sched, ns, [make_pod(n, labels={"app": "zonal"}, topologySpreadConstraints=spread) for n in names]
    )
    placed = wait_bound(sched, ns, names)
    zones = node_zone(sched)
    per_zone = [zones[placed[n]] for n in names]
    assert per_zone.count("zone-0") == 3 and per_zone.count("zone-1") == 3


def test_preemption_by_priority(sched: Cluster, ns: str) -> None:
    target = SIM[3]
    classes = [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": f"{ns}-low"},
            "value": 10,
        },
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": f"{ns}-high"},
            "value": 1000,
        },
    ]
    sched.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(classes))
    pin = {"kubernetes.io/hostname": target}
    apply_all(sched, ns, [make_pod("victim", cpu="3", priorityClassName=f"{ns}-low", nodeSelector=pin)])
    assert wait_bound(sched, ns, ["victim"]) == {"victim": target}
    victim_uid = sched.json("get", "pod", "victim", "-n", ns)["metadata"]["uid"]
    apply_all(sched, ns, [make_pod("urgent", cpu="3", priorityClassName=f"{ns}-high", nodeSelector=pin)])
    assert wait_bound(sched, ns, ["urgent"]) == {"urgent": target}
    pods = sched.json("get", "pods", "-n", ns)["items"]
    assert victim_uid not in {p["metadata"]["uid"] for p in pods}
    urgent = next(p for p in pods if p["metadata"]["name"] == "urgent")
    assert urgent["status"].get("nominatedNodeName") == target
    events = sched.json("get", "events", "-n", ns, "--field-selector", "reason=Preempted")["items"]
    assert [e["message"] for e in events] == [
        f"Preempted by pod {urgent['metadata']['uid']} on node {target}"
    ]


def test_scheduler_name_respected(sched: Cluster, ns: str) -> None:
    apply_all(sched, ns, [make_pod("elsewhere", schedulerName="my-scheduler"), make_pod("here")])
    wait_bound(sched, ns, ["here"])
    time.sleep(0.5)
    assert nodes_of(sched, ns, ["elsewhere"]) == {"elsewhere": ""}
    assert failed_scheduling(sched, ns, "elsewhere") == []


def test_standalone_scheduler_with_leader_election(tmp_path: Path) -> None:
    """``kubelite up --no-scheduler`` leaves pods Pending; ``kubelite scheduler`` binds them."""
    c = start_cluster(tmp_path / "up", "--no-scheduler", "--no-agent")
    proc: subprocess.Popen[str] | None = None
    try:
        c.apply({**gpu_node("solo"), "spec": {}})
        apply_all(c, "default", [make_pod("waiting")])
        time.sleep(1.0)
        assert nodes_of(c, "default", ["waiting"]) == {"waiting": ""}
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubelite.cli", "scheduler", "--kubeconfig", str(c.kubeconfig)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_bound(c, "default", ["waiting"]) == {"waiting": "solo"}
        lease = c.json("get", "lease", "kube-scheduler", "-n", "kube-system")
        assert lease["spec"]["holderIdentity"]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        stop_cluster(c)
