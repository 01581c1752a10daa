"""Endpoints, EndpointSlices and the default ServiceAccount, end to end with kubectl."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.e2e.lifecycle_helpers import deployment, ready_pods, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("endpoints"), "--simulated-nodes", "3")
    yield c
    stop_cluster(c)


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "labels": {"tier": "front"}},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
}


def _addresses(c: Cluster, ns: str) -> list[str]:
    ep = c.json("get", "endpoints", "web", "-n", ns)
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])


def test_endpoints_and_slices_follow_ready_pods(sim: Cluster) -> None:
    sim.kubectl("create", "namespace", "ep")
    sim.kubectl("apply", "-n", "ep", "-f", "-", input=deployment("web", 3))
    sim.kubectl("apply", "-n", "ep", "-f", "-", input=yaml.safe_dump(SERVICE))
    pods = wait_for("3 ready pods", lambda: (p := ready_pods(sim, "ep", "app=web")) and len(p) == 3 and p)
    ips = sorted(p["status"]["podIP"] for p in pods)
    wait_for("endpoints", lambda: _addresses(sim, "ep") == ips)
    ep = sim.json("get", "endpoints", "web", "-n", "ep")
    subset = ep["subsets"][0]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert {a["targetRef"]["name"] for a in subset["addresses"]} == {p["metadata"]["name"] for p in pods}
    assert all(a.get("nodeName") for a in subset["addresses"])
    row = sim.kubectl("get", "endpoints", "web", "-n", "ep", "--no-headers").stdout
    assert ":8080" in row

    slices = sim.json("get", "endpointslices", "-n", "ep", "-l", "kubernetes.io/service-name=web")["items"]
    assert len(slices) == 1
    sl: dict[str, Any] = slices[0]
    assert (
        sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslice-controller.k8s.io"
    )
    assert sl["addressType"] == "IPv4"
    assert sorted(e["addresses"][0] for e in sl["endpoints"]) == ips
    assert all(
        e["conditions"] == {"ready": True, "serving": True, "terminating": False} for e in sl["endpoints"]
    )
    assert all(e["zone"].startswith("zone-") for e in sl["endpoints"])

    sim.kubectl("scale", "deployment", "web", "-n", "ep", "--replicas=1")
    wait_for("endpoints after scale-down", lambda: len(_addresses(sim, "ep")) == 1)

    sim.kubectl("delete", "service", "web", "-n", "ep")

    def gone() -> bool:
        res = sim.kubectl("get", "endpoints", "web", "-n", "ep", check=False)
        items = sim.json("get", "endpointslices", "-n", "ep")["items"]
        return res.returncode != 0 and not items

    wait_for("endpoints and slices deleted", gone)


def test_default_service_account_in_every_namespace(sim: Cluster) -> None:
    sim.kubectl("create", "namespace", "sa")
    wait_for(
        "default sa", lambda: sim.kubectl("get", "sa", "default", "-n", "sa", check=False).returncode == 0
    )
    sim.kubectl("delete", "sa", "default", "-n", "sa")
    wait_for(
        "default sa again",
        lambda: sim.kubectl("get", "sa", "default", "-n", "sa", check=False).returncode == 0,
    )
    assert sim.kubectl("get", "sa", "default", "-n", "kube-system", check=False).returncode == 0
