"""The Proxier against a real API server and real nftables, in namespaces of its own.

The Proxier runs in the test process; its ``nft``/``conntrack`` commands run inside the
``node`` netns of a hand-built topology (bridge, three pod netns with TCP/UDP servers,
an outside client netns).  Traffic is real: ClusterIP balancing over ready endpoints,
readiness changes, NodePort on the node IP and 127.0.0.1, a LoadBalancer ingress IP,
ClientIP affinity, fast rejects without endpoints, eTP Local and cleanup on stop.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client.base import Client
from kubelite.proxy import Proxier, ProxyConfig
from tests.proxy.topology import Topology, make_topology
from tests.unit.lifecycle_api import NODES, SERVICES, SLICES, api_server

Obj = dict[str, Any]
pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")

VIP = "10.96.100.1"
ZONE = "topology.kubernetes.io/zone"


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    t = make_topology(3)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
async def proxier(topo: Topology, tmp_path: Path) -> AsyncIterator[tuple[Client, Proxier]]:
    """A started Proxier (nft/conntrack run in the node netns); on exit: stopped, table gone."""
    async with api_server(tmp_path) as api:
        cfg = ProxyConfig(
            node_name="node-a",
            node_ips=["192.0.2.1"],
            cluster_cidr="10.244.0.0/16",
            service_cidr="10.96.0.0/12",
            nft=topo.wrapper(tmp_path, "nft"),
            conntrack=topo.wrapper(tmp_path, "conntrack"),
            retry_delay=0.1,
            sync_period=1.0,  # periodic full resyncs run while the tests send traffic
        )
        p = Proxier(api.client, cfg)
        await p.start()
        try:
            yield api.client, p
        finally:
            await p.stop()
    assert topo.nft("list", "table", "ip", "kubelite-proxy", check=False).returncode != 0


def service(name: str, ip: str, **spec: Any) -> Obj:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    body = {"clusterIP": ip, "ports": ports, **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def eps_slice(svc: str, pods: dict[str, tuple[str, bool]], node: str = "node-a") -> Obj:
    """Slice for ``svc`` with ``pods`` name -> (ip, ready); ports http 8080/TCP and dns 5353/UDP."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-1", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "dns", "port": 5353, "protocol": "UDP"},
        ],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": ready},
                "nodeName": node if name != "p3" else "node-b",
            }
            for name, (ip, ready) in pods.items()
        ],
    }


def all_ready(topo: Topology) -> dict[str, tuple[str, bool]]:
    return {name: (ip, True) for name, ip in topo.pods.items()}


async def applied(p: Proxier, key: str, since: float) -> None:
    deadline = time.monotonic() + 5
    while p.metrics.last_applied.get(key, 0) < since:
        assert time.monotonic() < deadline, f"{key} not applied"
        await asyncio.sleep(0.01)


async def connect(
    topo: Topology, ns: str, host: str, port: int, n: int = 1, proto: str = "tcp", sport: int = 0
) -> list[str]:
    return await asyncio.to_thread(topo.connect, ns, host, port, n, proto, sport)


def pods_of(answers: list[str]) -> Counter[str]:
    return Counter(a.split()[0] for a in answers)


async def test_clusterip_balances_over_ready_endpoints(
    topo: Topology, proxier: tuple[Client, Proxier]
) -> None:
    client, p = proxier
    ports = [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"},
    ]
    t0 = time.monotonic()
    await client.create(SERVICES, "default", service("web", VIP, ports=ports))
    pods = {n: (ip, n != "p3") for n, ip in topo.pods.items()}
    sl = await client.create(SLICES, "default", eps_slice("web", pods))
    await applied(p, "default/web", t0)
    await asyncio.sleep(0.05)
    seen = pods_of(await connect(topo, topo.node, VIP, 80, 40))
    assert set(seen) == {"p1", "p2"}, seen  # p3 is not ready: never chosen
    udp = pods_of(await connect(topo, topo.node, VIP, 53, 20, "udp"))
    assert set(udp) <= {"p1", "p2"} and sum(udp.values()) == 20, udp
    from_pod = await connect(topo, f"{topo.prefix}-p1", VIP, 80, 20)  # pod -> VIP, hairpin included
    assert set(pods_of(from_pod)) == {"p1", "p2"}, from_pod
    assert all(a.split()[1] == "10.244.0.11" for a in from_pod if a.startswith("p2")), from_pod
    # Hairpin: p1 reaching itself through the VIP is masqueraded to the bridge address.
    assert all(a.split()[1] == "10.244.0.1" for a in from_pod if a.startswith("p1")), from_pod

    # p2 turns not ready: it stops getting traffic.
    sl["endpoints"][1]["conditions"]["ready"] = False
    t1 = time.monotonic()
    sl = await client.update(SLICES, "default", sl)
    await applied(p, "default/web", t1)
    assert set(pods_of(await connect(topo, topo.node, VIP, 80, 20))) == {"p1"}

    # No ready endpoint left: the VIP rejects at once (TCP reset, ICMP for UDP).
    sl["endpoints"][0]["conditions"]["ready"] = False
    t2 = time.monotonic()
    sl = await client.update(SLICES, "default", sl)
    await applied(p, "default/web", t2)
    answers = await connect(topo, topo.node, VIP, 80, 3)
    assert all(a.startswith("refused") and float(a.split()[1]) < 0.5 for a in answers), answers
    from_ext = await connect(topo, f"{topo.prefix}-p1", VIP, 80, 1)
    assert from_ext[0].startswith("refused"), from_ext
    # An unserved port of a ClusterIP and an unallocated service IP are rejected too.
    assert (await connect(topo, topo.node, VIP, 81))[0].startswith("refused")
    assert (await connect(topo, topo.node, "10.96.200.200", 80))[0].startswith("refused")


async def test_services_of_another_proxy_are_ignored(topo: Topology, proxier: tuple[Client, Proxier]) -> None:
    client, p = proxier
    body = service("other", "10.96.100.7")
    body["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "someone-else"}
    await client.create(SERVICES, "default", body)
    await client.create(SERVICES, "default", service("mine", "10.96.100.8"))
    t0 = time.monotonic()
    await client.create(SLICES, "default", eps_slice("mine", all_ready(topo)))
    await applied(p, "default/mine", t0)
    assert "default/other" not in p.model.fragments and "default/mine" in p.model.fragments
    assert "10.96.100.7" not in topo.nft("list", "set", "ip", "kubelite-proxy", "cluster-ips").stdout


async def test_nodeport_lb_and_affinity(topo: Topology, proxier: tuple[Client, Proxier]) -> None:
    client, p = proxier
    t0 = time.monotonic()
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]
    await client.create(SERVICES, "default", service("lb", "10.96.100.2", type="LoadBalancer", ports=ports))
    cur = await client.get(SERVICES, "default", "lb")
    cur["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]}}
    await client.update(SERVICES, "default", cur, subresource="status")
    await client.create(SLICES, "default", eps_slice("lb", all_ready(topo)))
    await client.create(
        SERVICES,
        "default",
        service("sticky", "10.96.100.3", sessionAffinity="ClientIP"),
    )
    await client.create(SLICES, "default", eps_slice("sticky", all_ready(topo)))
    await applied(p, "default/lb", t0)
    await applied(p, "default/sticky", t0)
    assert p.metrics.last_applied["default/lb"] >= t0

    # NodePort on the node IP from outside (source masqueraded to the node's bridge address).
    ext = await connect(topo, topo.ext, "192.0.2.1", 30080, 20)
    assert set(pods_of(ext)) == {"p1", "p2", "p3"}, ext
    assert {a.split()[1] for a in ext} == {"10.244.0.1"}, ext
    # NodePort on 127.0.0.1 from the node itself (route_localnet + masquerade).
    local = await connect(topo, topo.node, "127.0.0.1", 30080, 10)
    assert set(pods_of(local)) <= {"p1", "p2", "p3"} and len(local) == 10, local
    assert all(not a.startswith(("refused", "error")) for a in local), local
    # LoadBalancer ingress IP on the service port.
    lb = await connect(topo, topo.ext, "192.0.2.1", 80, 10)
    assert all(a.split()[0] in topo.pods for a in lb), lb
    # ClientIP affinity: one client always lands on one endpoint.
    sticky = pods_of(await connect(topo, topo.node, "10.96.100.3", 80, 15))
    assert len(sticky) == 1 and sum(sticky.values()) == 15, sticky

    # loadBalancerSourceRanges without the client: the LB IP drops it; the NodePort still answers.
    cur = await client.get(SERVICES, "default", "lb")
    cur["spec"]["loadBalancerSourceRanges"] = ["198.51.100.0/24"]
    t1 = time.monotonic()
    await client.update(SERVICES, "default", cur)
    await applied(p, "default/lb", t1)
    assert (await connect(topo, topo.ext, "192.0.2.1", 80))[0].startswith("error"), "firewalled"
    assert (await connect(topo, topo.ext, "192.0.2.1", 30080))[0].split()[0] in topo.pods
    assert sum(r.kind == "full" and r.ok for r in p.metrics.syncs) >= 2  # start + periodic resync


async def test_external_traffic_policy_local(topo: Topology, proxier: tuple[Client, Proxier]) -> None:
    client, p = proxier
    t0 = time.monotonic()
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30081}]
    body = service("loc", "10.96.100.4", type="NodePort", externalTrafficPolicy="Local", ports=ports)
    await client.create(SERVICES, "default", body)
    # p3 runs on another node: external traffic must only reach p1/p2, with the source kept.
    sl = await client.create(SLICES, "default", eps_slice("loc", all_ready(topo)))
    await applied(p, "default/loc", t0)
    ext = await connect(topo, topo.ext, "192.0.2.1", 30081, 20)
    assert set(pods_of(ext)) == {"p1", "p2"}, ext
    assert {a.split()[1] for a in ext} == {"192.0.2.2"}, ext  # client source preserved
    # Only the remote endpoint left: outside traffic is dropped (times out), ClusterIP still works.
    sl["endpoints"] = [e for e in sl["endpoints"] if e["addresses"][0] == topo.pods["p3"]]
    t1 = time.monotonic()
    sl = await client.update(SLICES, "default", sl)
    await applied(p, "default/loc", t1)
    assert set(pods_of(await connect(topo, topo.node, "10.96.100.4", 80, 3))) == {"p3"}
    dropped = await connect(topo, topo.ext, "192.0.2.1", 30081, 1)
    assert dropped[0].startswith("error TimeoutError") or dropped[0].startswith("error timeout"), dropped


async def test_stale_udp_flows_are_cleared(topo: Topology, proxier: tuple[Client, Proxier]) -> None:
    client, p = proxier
    t0 = time.monotonic()
    ports = [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
    await client.create(SERVICES, "default", service("dns", "10.96.100.5", ports=ports))
    sl = await client.create(SLICES, "default", eps_slice("dns", {"p1": (topo.pods["p1"], True)}))
    await applied(p, "default/dns", t0)
    first = await connect(topo, topo.node, "10.96.100.5", 53, 3, "udp", sport=40053)
    assert pods_of(first) == {"p1": 3}, first
    # p1 is replaced by p2; p1 still answers, so only the conntrack cleanup moves the flow.
    sl["endpoints"] = [{"addresses": [topo.pods["p2"]], "nodeName": "node-a"}]
    t1 = time.monotonic()
    await client.update(SLICES, "default", sl)
    await applied(p, "default/dns", t1)
    deadline = time.monotonic() + 3
    while True:
        answer = await connect(topo, topo.node, "10.96.100.5", 53, 1, "udp", sport=40053)
        if answer[0].startswith("p2") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert answer[0].startswith("p2"), answer


async def test_failed_partial_sync_recovers_with_full_sync(
    topo: Topology, proxier: tuple[Client, Proxier]
) -> None:
    client, p = proxier
    t0 = time.monotonic()
    await client.create(SERVICES, "default", service("rec", "10.96.100.6"))
    sl = await client.create(SLICES, "default", eps_slice("rec", {"p1": (topo.pods["p1"], True)}))
    await applied(p, "default/rec", t0)
    topo.nft("delete", "table", "ip", "kubelite-proxy")  # someone wipes our table
    sl["endpoints"] = [{"addresses": [topo.pods["p2"]], "nodeName": "node-a"}]
    t1 = time.monotonic()
    await client.update(SLICES, "default", sl)
    await applied(p, "default/rec", t1)
    assert p.metrics.failures >= 1
    assert [r.kind for r in p.metrics.syncs if r.finished >= t1 and r.ok][-1] == "full"
    assert pods_of(await connect(topo, topo.node, "10.96.100.6", 80, 5)) == {"p2": 5}


async def test_topology_aware_routing_follows_the_node_zone(
    topo: Topology, proxier: tuple[Client, Proxier]
) -> None:
    client, p = proxier
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a", "labels": {ZONE: "z1"}}}
    await client.create(NODES, "", node)
    await client.create(
        SERVICES, "default", service("zoned", "10.96.100.9", trafficDistribution="PreferClose")
    )
    sl = eps_slice("zoned", all_ready(topo))
    for endpoint, zone in zip(sl["endpoints"], ["z1", "z2", "z2"], strict=True):
        endpoint["hints"] = {"forZones": [{"name": zone}]}
    t0 = time.monotonic()
    await client.create(SLICES, "default", sl)
    await applied(p, "default/zoned", t0)
    assert pods_of(await connect(topo, topo.node, "10.96.100.9", 80, 10)) == {"p1": 10}
    # The node moves to z2: a full resync routes to the z2 endpoints.
    cur = await client.get(NODES, "", "node-a")
    cur["metadata"]["labels"][ZONE] = "z2"
    t1 = time.monotonic()
    await client.update(NODES, "", cur)
    await applied(p, "default/zoned", t1)
    assert set(pods_of(await connect(topo, topo.node, "10.96.100.9", 80, 20))) == {"p2", "p3"}
