"""Issue 5 acceptance on two nodes: pod to pod across nodes (host-gw routes between the nodes'
podCIDRs) and a ClusterIP Service whose backends sit on both nodes.

Each node is a network namespace acting as a host, plugged into a bridge ``kltest-br<m>`` the test
creates; the control plane (``kubelite up --no-agent``) runs in the root namespace bound only to the
bridge's test address, and ``kubelite agent`` runs inside each host namespace.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.netns_helpers import (
    Agent,
    Api,
    Lan,
    create_lan,
    fetch_many,
    finish,
    force_cleanup,
    http_get,
    pod_spec,
    run,
    service,
    sleeper,
    start_agent,
    start_control_plane,
    stop_process,
    wait_for,
    wait_ready,
    web_container,
)

pytestmark = pytest.mark.e2e
NS = "two-nodes"


@dataclass
class Two:
    lan: Lan
    cluster: Cluster
    agents: list[Agent]
    api: Api


def _running_containers(agent: Agent) -> list[str]:
    root = agent.data_dir / "runc"
    return run("runc", "--root", str(root), "list", "-q", check=False).split() if root.is_dir() else []


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    base = tmp_path_factory.mktemp("two")
    lan = create_lan()
    agents: list[Agent] = []
    try:
        hosts = [lan.add_host("a"), lan.add_host("b")]
        cluster = start_control_plane(lan, base / "cp")
        try:
            for host, node in zip(hosts, ("h7-node-a", "h7-node-b"), strict=True):
                agents.append(start_agent(cluster, host, node, base / node))
            yield Two(lan, cluster, agents, Api(cluster))
        finally:
            # a standalone agent leaves its pods running when it stops (as the kubelet does)
            cluster.kubectl("delete", "pods", "--all", "-n", NS, "--grace-period=0", "--force", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(_running_containers(a) for a in agents):
                time.sleep(0.3)
            for a in agents:
                stop_process(a.proc)
            finish(cluster)
    finally:
        for a in agents:
            force_cleanup(a.data_dir)
        lan.delete()


def _pod(name: str, node: str, container: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {**pod_spec(container), "nodeName": node},
    }


def test_pods_reach_each_other_across_nodes(two: Two) -> None:
    c = two.cluster
    c.kubectl("create", "namespace", NS)
    nodes = {n["metadata"]["name"]: n for n in two.api.get("/api/v1/nodes")["items"]}
    assert set(nodes) == {"h7-node-a", "h7-node-b"}, sorted(nodes)
    cidrs = {name: ipaddress.ip_network(n["spec"]["podCIDR"]) for name, n in nodes.items()}
    assert not cidrs["h7-node-a"].overlaps(cidrs["h7-node-b"]), cidrs

    for suffix, node in (("a", "h7-node-a"), ("b", "h7-node-b")):
        c.apply(_pod(f"web-{suffix}", node, web_container(), {"app": "web"}))
        client = sleeper(f"client-{suffix}", NS, {"role": "client", "node": suffix})
        client["spec"]["nodeName"] = node
        c.apply(client)
    pods = {p["metadata"]["name"]: p for p in wait_ready(two.api, NS, "app=web", 2)}
    wait_ready(two.api, NS, "role=client", 2)
    for name, node in (("web-a", "h7-node-a"), ("web-b", "h7-node-b")):
        assert ipaddress.ip_address(pods[name]["status"]["podIP"]) in cidrs[node], pods[name]["status"]

    # host-gw: each node routes the other's podCIDR via the other's address
    a, b = two.lan.hosts
    assert f"{cidrs['h7-node-b']} via {b.ip}" in a.sh("ip", "-4", "route"), a.sh("ip", "-4", "route")
    assert f"{cidrs['h7-node-a']} via {a.ip}" in b.sh("ip", "-4", "route"), b.sh("ip", "-4", "route")

    for src, dst in (("client-a", "web-b"), ("client-b", "web-a"), ("client-a", "web-a")):
        url = f"http://{pods[dst]['status']['podIP']}:8080/"

        def answered(u: str = url, s: str = src, d: str = dst) -> bool:
            return fetch_many(c, NS, s, u, 1) == [d]

        wait_for(answered, 15, f"{src} -> {dst}")


def test_cluster_ip_balances_over_both_nodes(two: Two) -> None:
    c = two.cluster
    c.apply(service("web", NS, {"app": "web"}))
    vip = two.api.get(f"/api/v1/namespaces/{NS}/services/web")["spec"]["clusterIP"]
    for src in ("client-a", "client-b"):

        def both(s: str = src) -> Counter[str] | None:
            got = Counter(fetch_many(c, NS, s, f"http://{vip}/", 30))
            assert set(got) == {"web-a", "web-b"}, dict(got)
            return got

        wait_for(both, 20, f"{src} -> {vip} reaches web-a and web-b", step=0.5)


def test_internal_traffic_policy_local_keeps_traffic_on_the_node(two: Two) -> None:
    c = two.cluster
    c.apply(service("local", NS, {"app": "web"}, internalTrafficPolicy="Local"))
    vip = two.api.get(f"/api/v1/namespaces/{NS}/services/local")["spec"]["clusterIP"]
    for src, want in (("client-a", {"web-a"}), ("client-b", {"web-b"})):

        def only_local(s: str = src, w: set[str] = want) -> bool:
            got = set(fetch_many(c, NS, s, f"http://{vip}/", 20))
            assert got == w, (s, got)
            return True

        wait_for(only_local, 20, f"{src} -> {vip} stays on its node", step=0.5)


def test_node_ports_with_cluster_and_local_external_policy(two: Two) -> None:
    """From outside the nodes (the root namespace, on the test bridge): a NodePort with
    externalTrafficPolicy Cluster reaches the pods of both nodes through either node; with Local
    each node answers only with its own pod."""
    c = two.cluster
    c.apply(service("np", NS, {"app": "web"}, type="NodePort"))
    c.apply(service("np-local", NS, {"app": "web"}, type="NodePort", externalTrafficPolicy="Local"))
    ports = {
        name: int(two.api.get(f"/api/v1/namespaces/{NS}/services/{name}")["spec"]["ports"][0]["nodePort"])
        for name in ("np", "np-local")
    }
    a, b = two.lan.hosts
    for host in (a, b):

        def both(ip: str = host.ip) -> bool:
            got = {http_get(ip, ports["np"]) for _ in range(30)}
            assert got == {"web-a", "web-b"}, (ip, got)
            return True

        wait_for(both, 20, f"NodePort {ports['np']} on {host.ip} reaches both nodes' pods", step=0.3)
    for host, want in ((a, {"web-a"}), (b, {"web-b"})):

        def local(ip: str = host.ip, w: set[str] = want) -> bool:
            got = {http_get(ip, ports["np-local"]) for _ in range(20)}
            assert got == w, (ip, got)
            return True

        wait_for(local, 20, f"NodePort {ports['np-local']} (Local) on {host.ip}", step=0.3)


def test_node_network_stays_in_the_host_namespaces(two: Two) -> None:
    """Each agent programmed its own host namespace; the root namespace got no route through the
    test bridge (other runs may use the root namespace, so only this run's traces are checked)."""
    for host in two.lan.hosts:
        assert "kubelite0" in host.links()
        tables = host.nft_tables()
        for table in ("kubelite-proxy", "kubelite-policy", "kubelite-node"):
            assert f"table ip {table}" in tables, tables
    routes = run("ip", "-4", "route", "show", "table", "all").splitlines()
    via_lan = [r for r in routes if two.lan.bridge in r and "proto kernel" not in r]
    assert via_lan == [], via_lan
