"""Parsing of policies and pods, and the address-interval arithmetic behind peer sets."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from kubelite.netpol import intervals
from kubelite.netpol.enforcer import gateway_addresses
from kubelite.netpol.model import (
    NAMESPACE_NAME_LABEL,
    PortSpec,
    namespace_labels,
    parse_pod,
    parse_policy,
    parse_port,
)

from .builders import netpol, pod


def test_ports_parse_numbers_names_ranges_and_protocols() -> None:
    assert parse_port({"port": 80}) == PortSpec("TCP", 80)
    assert parse_port({"protocol": "UDP", "port": "dns"}) == PortSpec("UDP", name="dns")
    assert parse_port({"port": 8000, "endPort": 8080}) == PortSpec("TCP", 8000, 8080)
    assert parse_port({"protocol": "SCTP"}) == PortSpec("SCTP")
    assert parse_port({"protocol": "ICMP", "port": 1}) is None


def test_unusable_peers_and_ports_make_a_rule_match_nothing() -> None:
    v6 = netpol("v6", ingress=[{"from": [{"ipBlock": {"cidr": "2001:db8::/64"}}]}])
    assert parse_policy(v6).ingress[0].peers == ()
    bad_proto = netpol("p", ingress=[{"ports": [{"protocol": "ICMP"}]}])
    assert parse_policy(bad_proto).ingress[0].peers == ()
    allow_all = netpol("all", ingress=[{"from": []}])
    assert parse_policy(allow_all).ingress[0].peers is None


def test_invalid_selector_selects_nothing() -> None:
    pol = parse_policy(netpol("x", selector={"matchExpressions": [{"key": "a", "operator": "Bogus"}]}))
    assert not pol.pod_selector.matches({"a": "b"}) and not pol.pod_selector.matches({})


def test_pod_view() -> None:
    p = pod("w", "10.244.0.2", ports=[{"name": "http", "containerPort": 80, "protocol": "TCP"}])
    p["status"]["podIPs"] = [{"ip": "10.244.0.2"}, {"ip": "fd00::2"}]
    p["spec"]["initContainers"] = [
        {
            "name": "side",
            "restartPolicy": "Always",
            "ports": [{"name": "m", "containerPort": 9, "protocol": "UDP"}],
        }
    ]
    info = parse_pod(p)
    assert info is not None and info.ips == ("10.244.0.2",)
    assert info.named_port("http", "TCP") == 80 and info.named_port("http", "UDP") is None
    assert info.named_port("m", "UDP") == 9
    assert parse_pod(pod("v6only", "fd00::3")) is None


def test_namespace_labels_include_metadata_name() -> None:
    assert namespace_labels({"metadata": {"name": "dev", "labels": {"a": "b"}}}) == {
        "a": "b",
        NAMESPACE_NAME_LABEL: "dev",
    }


def test_gateway_is_first_address_of_pod_cidrs() -> None:
    node = {"spec": {"podCIDR": "10.244.3.0/24", "podCIDRs": ["10.244.3.0/24", "fd00:3::/64"]}}
    assert gateway_addresses(node) == ["10.244.3.1"]
    assert gateway_addresses(None) == []


def test_interval_rendering() -> None:
    assert intervals.render([(1, 1)]) == ("0.0.0.1",)
    ten = intervals.network(ipaddress.IPv4Network("10.0.0.0/8"))
    assert intervals.render([ten]) == ("10.0.0.0/8",)
    assert intervals.render([(10, 12), (13, 13), (20, 30)]) == ("0.0.0.10-0.0.0.13", "0.0.0.20-0.0.0.30")
    assert intervals.render([(0, 2**32 - 1)]) == ("0.0.0.0/0",)


_nets = st.builds(
    lambda a, p: ipaddress.IPv4Network((a, p), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


@given(_nets, st.lists(_nets, max_size=4), st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_block_minus_excepts_matches_ipaddress(
    cidr: ipaddress.IPv4Network, excepts: list[ipaddress.IPv4Network], probes: list[int]
) -> None:
    elements = intervals.render(intervals.block(cidr, tuple(excepts)))
    probes += [int(cidr.network_address), int(cidr.broadcast_address)]
    probes += [int(e.network_address) - 1 for e in excepts if int(e.network_address) > 0]
    for n in probes:
        addr = ipaddress.IPv4Address(n)
        want = addr in cidr and not any(addr in e for e in excepts)
        assert intervals.contains(elements, str(addr)) == want
