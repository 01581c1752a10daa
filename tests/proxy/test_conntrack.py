"""Which UDP flows become stale when endpoints change."""

from __future__ import annotations

from kubelite.proxy.conntrack import UdpView, stale_flows, udp_views
from kubelite.proxy.render import service_endpoints
from kubelite.proxy.service import service_info
from tests.proxy.builders import ep, eps_slice, svc

DNS = [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}, {"name": "http", "port": 80}]


def views(*ips: str) -> dict[str, UdpView]:
    info = service_info(svc(type="NodePort", externalIPs=["198.51.100.7"], ports=DNS))
    assert info is not None
    sl = eps_slice("web", [ep(ip) for ip in ips], name="dns", port=5353, protocol="UDP")
    return udp_views(info, service_endpoints(info, [sl]))


def test_only_udp_ports_are_tracked() -> None:
    assert list(views("10.244.0.2")) == ["dns"]


def test_removed_endpoint_flows_are_deleted_for_every_destination() -> None:
    cmds = stale_flows(views("10.244.0.2", "10.244.0.3"), views("10.244.0.2"))
    assert cmds == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.20", "--dst-nat", "10.244.0.3"],
        ["-D", "-p", "udp", "--orig-dst", "198.51.100.7", "--dst-nat", "10.244.0.3"],
        ["-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.244.0.3"],
    ]


def test_first_endpoint_clears_flows_to_the_service() -> None:
    cmds = stale_flows(views(), views("10.244.0.2"))
    assert cmds == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.20"],
        ["-D", "-p", "udp", "--orig-dst", "198.51.100.7"],
        ["-D", "-p", "udp", "--orig-port-dst", "30053"],
    ]
    assert stale_flows(views("10.244.0.2"), views("10.244.0.2", "10.244.0.3")) == []


def test_deleted_service_clears_its_endpoint_flows() -> None:
    assert len(stale_flows(views("10.244.0.2"), {})) == 3
