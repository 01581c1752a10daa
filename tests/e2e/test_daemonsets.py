"""DaemonSets end to end: a real ``kubelite up --simulated-nodes 3`` and the real kubectl.

One pod per eligible node; pods follow nodes joining and leaving; nodeSelector and taints
(with the DaemonSet default tolerations on the pods); RollingUpdate with maxUnavailable or
maxSurge, OnDelete; ``kubectl rollout status|history|undo ds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.workloads import (
    PodWatch,
    dump,
    is_running_ready,
    pods,
    running_by_node,
    wait_for,
    workload_cluster,
)

pytestmark = pytest.mark.e2e
NODES = ["sim-node-0", "sim-node-1", "sim-node-2"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with workload_cluster(Path(tmp_path_factory.mktemp("ds"))) as c:
        yield c


@pytest.fixture
def ns(sim: Cluster, request: pytest.FixtureRequest) -> str:
    name = "ds-" + request.node.name.lower().replace("_", "-")[5:30].strip("-")
    sim.kubectl("create", "namespace", name)
    return name


def daemonset(name: str, image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    template_spec = {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": image}]}
    template_spec.update(spec.pop("pod", {}))
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec},
        },
    }
    body["spec"].update(spec)
    return body


def placed(c: Cluster, ns: str, name: str, want: dict[str, int] | set[str], timeout: float = 25) -> None:
    """Wait until the Running+Ready pods of ``name`` sit exactly on the nodes ``want``."""
    expect = sorted(want)

    def check() -> bool:
        live = [p for p in pods(c, ns, f"app={name}") if not p["metadata"].get("deletionTimestamp")]
        on = sorted(p["spec"].get("nodeName", "") for p in live if is_running_ready(p))
        return on == expect and len(live) == len(expect)

    try:
        wait_for(f"{name} on {expect}", check, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{dump(c, ns)}") from None


def images(c: Cluster, ns: str, name: str) -> list[str]:
    return sorted(
        p["spec"]["containers"][0]["image"]
        for p in pods(c, ns, f"app={name}")
        if not p["metadata"].get("deletionTimestamp")
    )


def test_one_pod_per_node_and_nodes_joining_and_leaving(sim: Cluster, ns: str) -> None:
    sim.apply(daemonset("agent"), "-n", ns)
    placed(sim, ns, "agent", set(NODES))
    pod = pods(sim, ns, "app=agent")[0]
    tolerations = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert tolerations == {
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    }
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = terms["nodeSelectorTerms"]
    assert term["matchFields"] == [
        {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}
    ]
    ds = sim.json("get", "ds", "agent", "-n", ns)
    assert pod["metadata"]["labels"]["controller-revision-hash"] in {
        r["metadata"]["labels"]["controller-revision-hash"]
        for r in sim.json("get", "controllerrevisions", "-n", ns)["items"]
    }
    out = sim.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=20s").stdout
    assert 'daemon set "agent" successfully rolled out' in out
    st = sim.json("get", "ds", "agent", "-n", ns)["status"]
    assert {k: st[k] for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady")} == {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberReady": 3,
    }
    assert st["updatedNumberScheduled"] == 3 and st["numberAvailable"] == 3
    assert st["numberMisscheduled"] == 0 and st["observedGeneration"] == ds["metadata"]["generation"]

    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "joined-node", "labels": {"kubelite.io/simulated": "true"}},
    }
    sim.apply(node)
    try:
        placed(sim, ns, "agent", {*NODES, "joined-node"})
    finally:
        sim.kubectl("delete", "node", "joined-node", "--wait=false")

    def left() -> bool:
        live = [p for p in pods(sim, ns, "app=agent") if not p["metadata"].get("deletionTimestamp")]
        return sorted(p["spec"]["nodeName"] for p in live) == NODES

    wait_for("pod of the removed node deleted", left)
    events = sim.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.kind=DaemonSet"
    ).stdout
    assert "SuccessfulCreate" in events and "Created pod: agent-" in events
    assert "SuccessfulDelete" in events and "Deleted pod: agent-" in events


def test_node_selector_follows_labels(sim: Cluster, ns: str) -> None:
    key = f"kubelite.test/{ns}"
    sim.apply(daemonset("sel", pod={"nodeSelector": {key: "yes"}}), "-n", ns)
    try:
        sim.kubectl("label", "node", "sim-node-0", f"{key}=yes")
        placed(sim, ns, "sel", {"sim-node-0"})
        sim.kubectl("label", "node", "sim-node-1", f"{key}=yes")
        placed(sim, ns, "sel", {"sim-node-0", "sim-node-1"})
        sim.kubectl("label", "node", "sim-node-0", f"{key}-")
        placed(sim, ns, "sel", {"sim-node-1"})
        assert sim.json("get", "ds", "sel", "-n", ns)["status"]["desiredNumberScheduled"] == 1
    finally:
        for n in NODES:
            sim.kubectl("label", "node", n, f"{key}-", check=False)


def test_taints_and_tolerations(sim: Cluster, ns: str) -> None:
    taint = f"kubelite.test/{ns}=gpu:NoSchedule"
    sim.kubectl("taint", "node", "sim-node-2", taint)
    try:
        sim.apply(daemonset("plain"), "-n", ns)
        tolerate = [{"key": f"kubelite.test/{ns}", "operator": "Exists", "effect": "NoSchedule"}]
        sim.apply(daemonset("tolerant", pod={"tolerations": tolerate}), "-n", ns)
        placed(sim, ns, "plain", {"sim-node-0", "sim-node-1"})
        placed(sim, ns, "tolerant", set(NODES))
        tolerations = pods(sim, ns, "app=tolerant")[0]["spec"]["tolerations"]
        assert tolerations[0] == tolerate[0] and len(tolerations) == 7
        assert sim.json("get", "ds", "plain", "-n", ns)["status"]["desiredNumberScheduled"] == 2
    finally:
        sim.kubectl("taint", "node", "sim-node-2", f"kubelite.test/{ns}-", check=False)
    placed(sim, ns, "plain", set(NODES))

    # a NoExecute taint the pods do not tolerate removes them; NoSchedule alone does not
    sim.kubectl("taint", "node", "sim-node-1", f"kubelite.test/{ns}=x:NoSchedule")
    try:
        time.sleep(1.0)
        placed(sim, ns, "plain", set(NODES))
        sim.kubectl("taint", "node", "sim-node-1", f"kubelite.test/{ns}=x:NoExecute")
        placed(sim, ns, "plain", {"sim-node-0", "sim-node-2"})
    finally:
        sim.kubectl("taint", "node", "sim-node-1", f"kubelite.test/{ns}-", check=False)
    placed(sim, ns, "plain", set(NODES))


def test_rolling_update_history_and_undo(sim: Cluster, ns: str) -> None:
    sim.apply(daemonset("roll"), "-n", ns)
    placed(sim, ns, "roll", set(NODES))
    sim.kubectl("set", "image", "ds/roll", "app=nginx:1.28", "-n", ns)
    out = sim.kubectl("rollout", "status", "ds/roll", "-n", ns, "--timeout=30s").stdout
    assert "Waiting for daemon set" in out or "successfully rolled out" in out
    assert 'daemon set "roll" successfully rolled out' in out
    placed(sim, ns, "roll", set(NODES))
    assert images(sim, ns, "roll") == ["nginx:1.28"] * 3

    history = sim.kubectl("rollout", "history", "ds/roll", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    sim.kubectl("rollout", "undo", "ds/roll", "-n", ns)
    sim.kubectl("rollout", "status", "ds/roll", "-n", ns, "--timeout=30s")
    wait_for("rolled back", lambda: images(sim, ns, "roll") == ["nginx:1.27"] * 3)
    revs = {r["revision"] for r in sim.json("get", "controllerrevisions", "-n", ns)["items"]}
    assert revs == {2, 3}


def test_surge_keeps_every_node_covered(sim: Cluster, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    sim.apply(daemonset("surge", updateStrategy=strategy), "-n", ns)
    placed(sim, ns, "surge", set(NODES))
    with PodWatch(sim, ns, "app=surge") as watch:
        time.sleep(0.3)
        sim.kubectl("set", "image", "ds/surge", "app=nginx:1.28", "-n", ns)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready_nodes = set(running_by_node(sim, ns, "app=surge").values())
            assert ready_nodes == set(NODES), dump(sim, ns)
            if images(sim, ns, "surge") == ["nginx:1.28"] * 3:
                break
            time.sleep(0.05)
    assert images(sim, ns, "surge") == ["nginx:1.28"] * 3
    # every old pod was deleted only once its replacement was ready: at most surge 1 at a time
    live: set[str] = set()
    most = 0
    for e in watch.events:
        if e.type == "DELETED" or e.deleting:
            live.discard(e.name)
        else:
            live.add(e.name)
        most = max(most, len(live))
    assert most == 4, [vars(e) for e in watch.events]


def test_on_delete_waits_for_manual_deletion(sim: Cluster, ns: str) -> None:
    sim.apply(daemonset("manual", updateStrategy={"type": "OnDelete"}), "-n", ns)
    placed(sim, ns, "manual", set(NODES))
    sim.kubectl("set", "image", "ds/manual", "app=nginx:1.28", "-n", ns)
    time.sleep(1.5)
    assert images(sim, ns, "manual") == ["nginx:1.27"] * 3
    victim = pods(sim, ns, "app=manual")[0]["metadata"]["name"]
    sim.kubectl("delete", "pod", victim, "-n", ns)
    placed(sim, ns, "manual", set(NODES))
    assert images(sim, ns, "manual") == ["nginx:1.27", "nginx:1.27", "nginx:1.28"]
    st = sim.json("get", "ds", "manual", "-n", ns)["status"]
    assert st["updatedNumberScheduled"] == 1
