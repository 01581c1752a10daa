"""Node failure end to end: a stopped simulated node goes Unknown, is tainted, its pods are
evicted after their (default) tolerationSeconds and recreated on the other nodes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.e2e.lifecycle_helpers import deployment, node_of, ready_pods, wait_for

pytestmark = pytest.mark.e2e
STOPPED = "kubelite.io/simulate-stopped"
UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(
        tmp_path_factory.mktemp("nodelifecycle"),
        "--simulated-nodes",
        "3",
        "--simulated-heartbeat",
        "1",
        "--node-monitor-grace-period",
        "3",
        "--default-toleration-seconds",
        "2",
    )
    yield c
    stop_cluster(c)


def _ready_condition(node: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def test_stopped_node_pods_are_recreated_elsewhere(sim: Cluster) -> None:
    sim.kubectl("create", "namespace", "heal")
    sim.kubectl("apply", "-n", "heal", "-f", "-", input=deployment("web", 6))
    pods = wait_for("6 ready pods", lambda: (p := ready_pods(sim, "heal", "app=web")) and len(p) == 6 and p)
    tolerations = pods[0]["spec"]["tolerations"]
    assert {
        "key": UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 2,
    } in tolerations
    victim_node = node_of(pods[0])
    victims = {p["metadata"]["name"] for p in pods if node_of(p) == victim_node}

    sim.kubectl("annotate", "node", victim_node, f"{STOPPED}=true")

    def unknown() -> Any:
        node = sim.json("get", "node", victim_node)
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        ready = _ready_condition(node)
        return ready["status"] == "Unknown" and (UNREACHABLE, "NoExecute") in taints and node

    node = wait_for("node Unknown and tainted", unknown, timeout=20)
    ready = _ready_condition(node)
    assert ready["reason"] == "NodeStatusUnknown"
    assert ready["message"] == "Kubelet stopped posting node status."
    assert "NotReady" in sim.kubectl("get", "node", victim_node, "--no-headers").stdout

    def healed() -> Any:
        now = ready_pods(sim, "heal", "app=web")
        return len(now) == 6 and all(node_of(p) != victim_node for p in now) and now

    healed_pods = wait_for("6 ready pods on the other nodes", healed, timeout=30)
    assert not victims & {p["metadata"]["name"] for p in healed_pods}
    events = sim.kubectl("get", "events", "-n", "heal", "--no-headers").stdout
    assert "TaintManagerEviction" in events
    assert "Marking for deletion Pod heal/" in events
    node_events = sim.kubectl(
        "get", "events", "-n", "default", "--field-selector", f"involvedObject.name={victim_node}"
    ).stdout
    assert "NodeNotReady" in node_events

    # the kubelet comes back: Ready again, taints removed
    sim.kubectl("annotate", "node", victim_node, f"{STOPPED}-")

    def recovered() -> bool:
        n = sim.json("get", "node", victim_node)
        return _ready_condition(n)["status"] == "True" and not n["spec"].get("taints")

    wait_for("node Ready and untainted", recovered, timeout=20)
