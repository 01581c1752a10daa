"""Pure rendering: Services + EndpointSlices -> chains, sets and map elements."""

from __future__ import annotations

import re

from kubelite.proxy import names as n
from kubelite.proxy.endpoints import Endpoint, port_endpoints
from kubelite.proxy.service import (
    DEFAULT_AFFINITY_TIMEOUT,
    PortInfo,
    service_info,
)
from tests.proxy.builders import CTX, ep, eps_slice, render, svc

PID = n.port_id("default", "web", "tcp", "http")


def dispatch(chain_rules: tuple[str, ...]) -> str:
    """The first rule of the random pick (or the only DNAT)."""
    return next(r for r in chain_rules if "numgen" in r or "dnat" in r)


def pick_probabilities(rules: tuple[str, ...]) -> dict[str, float]:
    """Probability of reaching each target of a ``numgen random mod k == 0`` cascade."""
    out: dict[str, float] = {}
    remaining = 1.0
    for rule in rules:
        m = re.match(r"numgen random mod (\d+) == 0 (.*)$", rule)
        if m:
            p = remaining / int(m.group(1))
            out[m.group(2)] = p
            remaining -= p
        elif "dnat to" in rule or rule.startswith("goto "):
            out[rule] = remaining
            remaining = 0.0
    return out


def test_clusterip_only_ready_endpoints_get_traffic() -> None:
    frag = render(
        svc(),
        eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3", ready=False), ep("10.244.0.4", ready=None)]),
    )
    assert frag.chains == {
        n.service_chain(PID): (
            "ip daddr 10.96.0.20 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
            "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.0.2:8080",
            "meta l4proto tcp dnat to 10.244.0.4:8080",
        )
    }
    assert frag.elements[n.SERVICE_IPS] == {"10.96.0.20 . tcp . 80": f"goto {n.service_chain(PID)}"}
    assert frag.elements[n.CLUSTER_IPS] == {"10.96.0.20": ""}
    assert frag.elements[n.HAIRPIN] == {"10.244.0.2 . 10.244.0.2": "", "10.244.0.4 . 10.244.0.4": ""}
    assert n.NO_ENDPOINT_SERVICES not in frag.elements


def test_single_endpoint_is_a_plain_dnat() -> None:
    frag = render(svc(), eps_slice("web", [ep("10.244.0.2")]))
    assert frag.chains[n.service_chain(PID)][-1] == "meta l4proto tcp dnat to 10.244.0.2:8080"


def test_no_ready_endpoints_reject_in_filter_maps() -> None:
    frag = render(
        svc(type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]),
        eps_slice("web", [ep("10.244.0.3", ready=False)]),
    )
    assert frag.chains == {}
    assert frag.elements[n.NO_ENDPOINT_SERVICES] == {"10.96.0.20 . tcp . 80": "goto reject-chain"}
    assert frag.elements[n.NO_ENDPOINT_NODEPORTS] == {"tcp . 30080": "goto reject-chain"}
    assert n.SERVICE_IPS not in frag.elements


def test_headless_and_external_name_get_nothing() -> None:
    assert render(svc(ip="None"), eps_slice("web", [ep("10.244.0.2")])).chains == {}
    assert service_info(svc(ip="None")) is None
    ext = svc(type="ExternalName", externalName="example.com")
    assert service_info(ext) is None


def test_endpoints_matched_by_port_name_and_protocol() -> None:
    port = PortInfo("http", "tcp", 80)
    slices = [
        eps_slice("web", [ep("10.244.0.2")]),
        eps_slice("web", [ep("10.244.0.3")], name="metrics"),
        eps_slice("web", [ep("10.244.0.4")], protocol="UDP"),
        eps_slice("web", [ep("10.244.0.2", ready=False), ep("10.244.0.5", ready=False)]),
        {**eps_slice("web", [ep("fd00::1")]), "addressType": "IPv6"},
    ]
    assert port_endpoints(slices, port) == (
        Endpoint("10.244.0.2", 8080, "node-a", True),  # duplicate across slices: ready wins
        Endpoint("10.244.0.5", 8080, "node-a", ready=False, serving=False),
    )


def test_nodeport_external_ips_and_lb_ingress() -> None:
    service = svc(
        type="LoadBalancer",
        externalIPs=["198.51.100.7"],
        ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        status={
            "loadBalancer": {
                "ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}, {"ip": "192.0.2.9", "ipMode": "Proxy"}]
            }
        },
    )
    frag = render(service, eps_slice("web", [ep("10.244.0.2")]))
    ext = n.external_chain(PID)
    assert frag.chains[ext] == ("jump mark-for-masquerade", f"goto {n.service_chain(PID)}")
    assert frag.elements[n.SERVICE_IPS] == {
        "10.96.0.20 . tcp . 80": f"goto {n.service_chain(PID)}",
        "198.51.100.7 . tcp . 80": f"goto {ext}",
        "192.0.2.1 . tcp . 80": f"goto {ext}",
    }
    assert frag.elements[n.SERVICE_NODEPORTS] == {"tcp . 30080": f"goto {ext}"}


def test_external_traffic_policy_local() -> None:
    service = svc(
        type="NodePort",
        externalTrafficPolicy="Local",
        ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
    )
    frag = render(service, eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3", node="node-b")]))
    ext, local = n.external_chain(PID), n.local_chain(PID)
    assert frag.chains[ext] == (
        f"ip saddr {CTX.cluster_cidr} goto {n.service_chain(PID)}",
        "fib saddr type local jump mark-for-masquerade",
        f"fib saddr type local goto {n.service_chain(PID)}",
        f"goto {local}",
    )
    assert dispatch(frag.chains[local]) == "meta l4proto tcp dnat to 10.244.0.2:8080"
    assert "mod 2 " in dispatch(frag.chains[n.service_chain(PID)])  # cluster-wide: both
    # No local endpoint: outside traffic dropped, no jump to a local chain.
    frag = render(service, eps_slice("web", [ep("10.244.0.3", node="node-b")]))
    assert local not in frag.chains and f"goto {local}" not in frag.chains[ext]
    assert frag.elements[n.NO_ENDPOINT_NODEPORTS] == {"tcp . 30080": "drop"}
    assert frag.elements[n.SERVICE_IPS]["10.96.0.20 . tcp . 80"] == f"goto {n.service_chain(PID)}"


def test_internal_traffic_policy_local() -> None:
    service = svc(internalTrafficPolicy="Local")
    frag = render(service, eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3", node="node-b")]))
    local = n.local_chain(PID)
    assert frag.elements[n.SERVICE_IPS] == {"10.96.0.20 . tcp . 80": f"goto {local}"}
    assert frag.chains[local][0].startswith("ip daddr 10.96.0.20 ip saddr != ")
    assert dispatch(frag.chains[local]) == "meta l4proto tcp dnat to 10.244.0.2:8080"
    frag = render(service, eps_slice("web", [ep("10.244.0.3", node="node-b")]))
    assert frag.elements[n.NO_ENDPOINT_SERVICES] == {"10.96.0.20 . tcp . 80": "drop"}
    assert n.SERVICE_IPS not in frag.elements


def test_client_ip_affinity_sets() -> None:
    frag = render(svc(sessionAffinity="ClientIP"), eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3")]))
    aff = n.affinity_set(PID, "10.244.0.2", 8080, DEFAULT_AFFINITY_TIMEOUT)
    assert frag.sets[aff] == 10800 and len(frag.sets) == 2
    rules = frag.chains[n.service_chain(PID)]
    assert f"ip saddr @{aff} goto {n.endpoint_chain(PID, '10.244.0.2', 8080)}" in rules
    assert rules.index(dispatch(rules)) == len(rules) - 2  # affinity lookups come first
    assert pick_probabilities(rules) == {
        f"goto {n.endpoint_chain(PID, '10.244.0.2', 8080)}": 0.5,
        f"goto {n.endpoint_chain(PID, '10.244.0.3', 8080)}": 0.5,
    }
    assert frag.chains[n.endpoint_chain(PID, "10.244.0.2", 8080)] == (
        f"update @{aff} {{ ip saddr }}",
        "meta l4proto tcp dnat to 10.244.0.2:8080",
    )
    custom = svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    frag2 = render(custom, eps_slice("web", [ep("10.244.0.2")]))
    assert list(frag2.sets.values()) == [60] and aff not in frag2.sets  # a new timeout is a new set


def test_udp_port_dnat_uses_protocol() -> None:
    service = svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    frag = render(service, eps_slice("web", [ep("10.244.0.2")], name="dns", port=5353, protocol="UDP"))
    pid = n.port_id("default", "web", "udp", "dns")
    assert frag.chains[n.service_chain(pid)][-1] == "meta l4proto udp dnat to 10.244.0.2:5353"
    assert frag.elements[n.SERVICE_IPS] == {"10.96.0.20 . udp . 53": f"goto {n.service_chain(pid)}"}


def test_names_are_valid_nft_identifiers() -> None:
    name = n.endpoint_chain(n.port_id("kube-system", "kube-dns", "udp", ""), "10.244.0.2", 53)
    assert name.startswith("endpoint-") and name.endswith("kube-system/kube-dns/udp/__10.244.0.2/53")
    assert len(n.short_hash("x")) == 8 and n.short_hash("x").isalnum()


def test_topology_mode_and_traffic_distribution_are_read() -> None:
    auto = svc()
    auto["metadata"]["annotations"] = {"service.kubernetes.io/topology-mode": "Auto"}
    info = service_info(auto)
    assert info is not None and info.topology
    info = service_info(svc(trafficDistribution="PreferClose"))
    assert info is not None and info.topology
    info = service_info(svc())
    assert info is not None and not info.topology


def test_terminating_endpoints_serve_when_none_is_ready() -> None:
    term = {"addresses": ["10.244.0.9"], "conditions": {"ready": False, "serving": True, "terminating": True}}
    frag = render(svc(), eps_slice("web", [ep("10.244.0.3", ready=False), term]))
    assert frag.chains[n.service_chain(PID)][-1] == "meta l4proto tcp dnat to 10.244.0.9:8080"


def test_load_balancer_source_ranges_firewall() -> None:
    service = svc(
        type="LoadBalancer",
        loadBalancerSourceRanges=[" 203.0.113.0/25", "fd00::/8"],
        status={"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
    )
    frag = render(service, eps_slice("web", [ep("10.244.0.2")]))
    fw = n.firewall_chain(PID)
    assert frag.chains[fw] == ("ip saddr 203.0.113.0/25 return", "drop")
    assert frag.elements[n.FIREWALL_IPS] == {"192.0.2.1 . tcp . 80": f"goto {fw}"}
    legacy = svc(type="LoadBalancer", status={"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}})
    legacy["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"
    }
    assert render(legacy).chains[fw] == ("ip saddr 10.0.0.0/8 return", "drop")  # even without endpoints
    assert n.FIREWALL_IPS not in render(svc(loadBalancerSourceRanges=["10.0.0.0/8"])).elements


def test_random_pick_is_uniform() -> None:
    for count in (2, 3, 7):
        ips = [f"10.244.0.{i + 2}" for i in range(count)]
        frag = render(svc(), eps_slice("web", [ep(ip) for ip in ips]))
        probs = pick_probabilities(frag.chains[n.service_chain(PID)])
        assert sorted(probs) == sorted(f"meta l4proto tcp dnat to {ip}:8080" for ip in ips)
        assert all(abs(p - 1 / count) < 1e-9 for p in probs.values()), probs
