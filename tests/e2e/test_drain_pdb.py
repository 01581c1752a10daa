"""``kubectl drain`` respects a PodDisruptionBudget: minAvailable 2 out of 3.

All three replicas start on one node (the others are cordoned meanwhile); draining it
evicts one pod at once, then the eviction API answers 429 until the evicted pod's
replacement is Ready on another node, and kubectl retries until the node is drained.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.e2e.lifecycle_helpers import deployment, node_of, ready_pods, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("drain"), "--simulated-nodes", "3")
    yield c
    stop_cluster(c)


PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "web"},
    "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
}


def test_drain_waits_for_the_budget(sim: Cluster) -> None:
    nodes = sorted(sim.kubectl("get", "nodes", "-o", "name").stdout.split())
    target, others = nodes[0].split("/")[1], [n.split("/")[1] for n in nodes[1:]]
    for n in others:
        sim.kubectl("cordon", n)
    sim.kubectl("create", "namespace", "drain")
    sim.kubectl("apply", "-n", "drain", "-f", "-", input=deployment("web", 3))
    sim.kubectl("apply", "-n", "drain", "-f", "-", input=yaml.safe_dump(PDB))
    pods = wait_for("3 ready pods", lambda: (p := ready_pods(sim, "drain", "app=web")) and len(p) == 3 and p)
    assert {node_of(p) for p in pods} == {target}
    for n in others:
        sim.kubectl("uncordon", n)

    def budget() -> dict[str, int] | None:
        st = sim.json("get", "pdb", "web", "-n", "drain").get("status") or {}
        return st if st.get("disruptionsAllowed") == 1 and st.get("currentHealthy") == 3 else None

    st = wait_for("PDB status", budget)
    assert (st["desiredHealthy"], st["expectedPods"]) == (2, 3)
    pdb_row = sim.kubectl("get", "pdb", "web", "-n", "drain", "--no-headers").stdout.split()
    assert pdb_row[:4] == ["web", "2", "N/A", "1"]

    out = sim.kubectl(
        "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s", timeout=120
    )
    text = out.stdout + out.stderr
    assert "Cannot evict pod as it would violate the pod's disruption budget." in text
    assert f"node/{target} drained" in text

    final = wait_for(
        "3 ready pods elsewhere", lambda: (p := ready_pods(sim, "drain", "app=web")) and len(p) == 3 and p
    )
    assert target not in {node_of(p) for p in final}
    node = sim.json("get", "node", target)
    assert node["spec"]["unschedulable"] is True
    taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in taints
