"""API server bootstrap (kubernetes and kube-dns Services, the kubernetes EndpointSlice) and
ClusterIP allocation rules, against a real in-process API server."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from kubelite.api import errors
from kubelite.apiserver.allocators import InUse, ServiceAllocator
from kubelite.apiserver.server import ServerConfig, bootstrap
from tests.unit.lifecycle_api import ENDPOINTS, SERVICES, SLICES, api_server

Obj = dict[str, Any]


def _svc(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"port": 80}], **spec},
    }


async def test_kube_dns_service_at_dot_ten(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        dns = await api.client.get(SERVICES, "kube-system", "kube-dns")
        assert dns["metadata"]["labels"] == {
            "k8s-app": "kube-dns",
            "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "CoreDNS",
        }
        spec = dns["spec"]
        assert spec["clusterIP"] == "10.96.0.10" and spec["clusterIPs"] == ["10.96.0.10"]
        assert "selector" not in spec
        assert [(p["name"], p["port"], p["protocol"]) for p in spec["ports"]] == [
            ("dns", 53, "UDP"),
            ("dns-tcp", 53, "TCP"),
        ]


async def test_kubernetes_endpoint_slice_mirrors_endpoints(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        ep = await api.client.get(ENDPOINTS, "default", "kubernetes")
        sl = await api.client.get(SLICES, "default", "kubernetes")
        assert sl["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
        assert sl["addressType"] == "IPv4"
        ip = ep["subsets"][0]["addresses"][0]["ip"]
        port = ep["subsets"][0]["ports"][0]["port"]
        assert sl["endpoints"] == [{"addresses": [ip], "conditions": {"ready": True}}]
        assert sl["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]


async def test_bootstrap_reconciles_a_changed_api_server_port(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        ep = await c.get(ENDPOINTS, "default", "kubernetes")
        ep["subsets"][0]["addresses"] = [{"ip": "192.0.2.1"}]
        await c.update(ENDPOINTS, "default", ep)
        await bootstrap(api.ctx, ServerConfig(data_dir=tmp_path, port=7443))
        svc = await c.get(SERVICES, "default", "kubernetes")
        assert svc["spec"]["ports"][0]["targetPort"] == 7443 and svc["spec"]["clusterIP"] == "10.96.0.1"
        ep = await c.get(ENDPOINTS, "default", "kubernetes")
        assert ep["subsets"][0] == {
            "addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}],
        }
        sl = await c.get(SLICES, "default", "kubernetes")
        assert sl["ports"][0]["port"] == 7443
        rv = sl["metadata"]["resourceVersion"]
        await bootstrap(api.ctx, ServerConfig(data_dir=tmp_path, port=7443))
        assert (await c.get(SLICES, "default", "kubernetes"))["metadata"]["resourceVersion"] == rv


async def test_bootstrap_survives_a_user_service_holding_the_dns_address(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        await c.delete(SERVICES, "kube-system", "kube-dns")
        await c.create(SERVICES, "default", _svc("squatter", clusterIP="10.96.0.10"))
        await bootstrap(api.ctx, ServerConfig(data_dir=tmp_path))
        with pytest.raises(errors.NotFound):
            await c.get(SERVICES, "kube-system", "kube-dns")


async def test_dynamic_cluster_ips_skip_reserved_addresses(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        ips = [
            (await api.client.create(SERVICES, "default", _svc(f"s{i}")))["spec"]["clusterIP"]
            for i in range(3)
        ]
        assert ips == ["10.96.0.11", "10.96.0.12", "10.96.0.13"]


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        (
            "10.200.0.5",
            'spec.clusterIPs: Invalid value: []string{"10.200.0.5"}: failed to allocate IP 10.200.0.5: '
            "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
        ),
        (
            "10.96.0.0",
            'spec.clusterIPs: Invalid value: []string{"10.96.0.0"}: failed to allocate IP 10.96.0.0: '
            "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
        ),
        (
            "10.111.255.255",
            'spec.clusterIPs: Invalid value: []string{"10.111.255.255"}: failed to allocate IP '
            "10.111.255.255: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
        ),
        (
            "10.96.0.1",
            'spec.clusterIPs: Invalid value: []string{"10.96.0.1"}: failed to allocate IP 10.96.0.1: '
            "provided IP is already allocated",
        ),
        (
            "10.96.0.10",
            'spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: '
            "provided IP is already allocated",
        ),
    ],
)
async def test_requested_cluster_ip_errors(tmp_path: Path, ip: str, message: str) -> None:
    async with api_server(tmp_path) as api:
        with pytest.raises(errors.Invalid) as info:
            await api.client.create(SERVICES, "default", _svc("asked", clusterIP=ip))
        assert message in str(info.value)


async def test_requested_free_cluster_ip_is_granted(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        out = await c.create(SERVICES, "default", _svc("asked", clusterIPs=["10.96.0.5"]))
        assert out["spec"]["clusterIP"] == "10.96.0.5" and out["spec"]["clusterIPs"] == ["10.96.0.5"]
        head = await c.create(SERVICES, "default", _svc("headless", clusterIP="None", selector={"a": "b"}))
        assert head["spec"]["clusterIPs"] == ["None"]


# ------------------------------------------------------------------ node ports and type changes


async def test_node_ports_on_create(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        dns_like = _svc(
            "dns",
            type="NodePort",
            ports=[
                {"name": "udp", "port": 53, "protocol": "UDP", "nodePort": 30053},
                {"name": "tcp", "port": 53, "protocol": "TCP", "nodePort": 30053},
            ],
        )
        out = await c.create(SERVICES, "default", dns_like)
        assert [p["nodePort"] for p in out["spec"]["ports"]] == [30053, 30053]
        with pytest.raises(errors.Invalid, match="30053: provided port is already allocated"):
            await c.create(
                SERVICES, "default", _svc("dup", type="NodePort", ports=[{"port": 1, "nodePort": 30053}])
            )
        bare = await c.create(
            SERVICES, "default", _svc("bare", type="LoadBalancer", allocateLoadBalancerNodePorts=False)
        )
        assert "nodePort" not in bare["spec"]["ports"][0] and "healthCheckNodePort" not in bare["spec"]
        local = await c.create(
            SERVICES, "default", _svc("local", type="LoadBalancer", externalTrafficPolicy="Local")
        )
        hc = local["spec"]["healthCheckNodePort"]
        assert 30000 <= hc <= 32767 and hc != local["spec"]["ports"][0]["nodePort"]


def _stored(name: str, **spec: Any) -> Obj:
    svc = _svc(name, **spec)
    svc["metadata"]["namespace"] = "default"
    return svc


def test_update_to_node_port_allocates_and_keeps_what_the_client_left_out() -> None:
    alloc = ServiceAllocator()
    old = _stored("a", type="ClusterIP", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    new = _stored("a", type="NodePort", ports=[{"name": "", "port": 80}])  # kubectl replace without IPs
    used = InUse({"10.96.0.1", "10.96.0.20"}, {30001})
    alloc.on_update(new, old, used)
    assert new["spec"]["clusterIP"] == "10.96.0.20" and new["spec"]["clusterIPs"] == ["10.96.0.20"]
    np = new["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767 and np != 30001
    again = _stored("a", type="NodePort", ports=[{"name": "", "port": 80}])
    alloc.on_update(again, new, InUse({"10.96.0.20"}, {np}))
    assert again["spec"]["ports"][0]["nodePort"] == np  # kept, not reallocated


def test_update_back_to_cluster_ip_drops_node_ports_and_to_external_name_drops_ips() -> None:
    alloc = ServiceAllocator()
    old = _stored("a", type="NodePort", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    alloc.on_update(new, old, InUse({"10.96.0.20"}, {30080}))
    assert "nodePort" not in new["spec"]["ports"][0]
    ext = copy.deepcopy(new)
    ext["spec"].update(type="ExternalName", externalName="example.com", ipFamilies=["IPv4"])
    alloc.on_update(ext, new, InUse({"10.96.0.20"}, set()))
    assert not {"clusterIP", "clusterIPs", "ipFamilies"} & set(ext["spec"])


def test_update_from_external_name_allocates_a_cluster_ip_and_checks_requested_ports() -> None:
    alloc = ServiceAllocator()
    old = _stored("e", type="ExternalName", externalName="example.com")
    old["spec"].pop("ports")
    new = _stored("e", type="ClusterIP")
    alloc.on_update(new, old, InUse({"10.96.0.1", "10.96.0.11"}, set()))
    assert new["spec"]["clusterIP"] == "10.96.0.12"
    taken = _stored("e", type="NodePort", clusterIP="10.96.0.12", clusterIPs=["10.96.0.12"])
    taken["spec"]["ports"][0]["nodePort"] = 30500
    with pytest.raises(errors.Invalid, match=r"spec.ports\[0\].nodePort: Invalid value: 30500"):
        alloc.on_update(taken, new, InUse({"10.96.0.12"}, {30500}))


async def test_concurrent_creates_get_distinct_addresses_and_ports(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        created = await asyncio.gather(
            *(c.create(SERVICES, "default", _svc(f"s{i}", type="NodePort")) for i in range(25))
        )
        ips = [s["spec"]["clusterIP"] for s in created]
        ports = [s["spec"]["ports"][0]["nodePort"] for s in created]
        assert len(set(ips)) == len(ips) == 25 and len(set(ports)) == 25
        assert not {"10.96.0.1", "10.96.0.10"} & set(ips)


async def test_deleted_service_address_is_free_again_at_once(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        spec = {"clusterIP": "10.96.5.5", "type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}
        await c.create(SERVICES, "default", _svc("a", **spec))
        await c.delete(SERVICES, "default", "a")
        again = await c.create(SERVICES, "default", _svc("a", **spec))  # kubectl replace --force
        assert again["spec"]["clusterIP"] == "10.96.5.5" and again["spec"]["ports"][0]["nodePort"] == 31000
        allocator = api.ctx.extra["service_allocator"]
        assert allocator.live is not None and "10.96.5.5" in allocator.live.ips


async def test_update_hook_sees_live_allocations(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        await api.client.create(
            SERVICES, "default", _svc("holder", type="NodePort", ports=[{"port": 1, "nodePort": 30700}])
        )
        plain = await api.client.create(SERVICES, "default", _svc("b"))
        wants = copy.deepcopy(plain)
        wants["spec"].update(type="NodePort", ports=[{"port": 80, "nodePort": 30700}])
        allocator: ServiceAllocator = api.ctx.extra["service_allocator"]
        with pytest.raises(errors.Invalid, match="30700: provided port is already allocated"):
            allocator.on_update(wants, plain)


async def test_advertise_address_names_the_api_server_endpoint(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        await bootstrap(
            api.ctx, ServerConfig(data_dir=tmp_path, bind="0.0.0.0", advertise_address="192.0.2.7")
        )
        ep = await api.client.get(ENDPOINTS, "default", "kubernetes")
        sl = await api.client.get(SLICES, "default", "kubernetes")
        assert ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.7"}]
        assert sl["endpoints"][0]["addresses"] == ["192.0.2.7"]


async def test_patching_the_type_allocates_and_releases_through_the_api(tmp_path: Path) -> None:
    """``kubectl patch svc x -p '{"spec":{"type":"NodePort"}}'`` gets a node port; going back to
    ClusterIP drops it; ExternalName -> ClusterIP gets an address."""
    async with api_server(tmp_path) as api:
        c = api.client
        await c.create(SERVICES, "default", _svc("web", selector={"app": "web"}))
        out = await c.patch(SERVICES, "default", "web", {"spec": {"type": "NodePort"}})
        port = out["spec"]["ports"][0]["nodePort"]
        assert 30000 <= port <= 32767
        back = await c.patch(SERVICES, "default", "web", {"spec": {"type": "ClusterIP"}})
        assert "nodePort" not in back["spec"]["ports"][0]
        ext = _svc("ext", type="ExternalName", externalName="example.org")
        created = await c.create(SERVICES, "default", ext)
        assert "clusterIP" not in created["spec"]
        body = {"spec": {"type": "ClusterIP", "externalName": None, "selector": {"app": "x"}}}
        now = await c.patch(SERVICES, "default", "ext", body)
        assert now["spec"]["clusterIP"].startswith("10.") and now["spec"]["clusterIPs"] == [
            now["spec"]["clusterIP"]
        ]
