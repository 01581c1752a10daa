"""The policy compiler: NetworkPolicies + pods + namespaces -> rule model (evaluated)."""

from __future__ import annotations

from kubelite.netpol import dns
from kubelite.netpol.compiler import Cluster, compile_ruleset
from kubelite.netpol.model import Direction, parse_policy
from kubelite.netpol.render import to_state
from kubelite.netpol.ruleset import Ruleset

from .builders import Obj, cluster_of, compile_objs, labels, namespace, netpol, pod
from .evaluate import allowed

WEB = "10.244.0.2"  # local, default/web app=web
CLIENT = "10.244.0.3"  # local, default/client role=client
OTHER = "10.244.1.4"  # remote node, default/other role=other
PROD_CLIENT = "10.244.1.5"  # remote, prod/client role=client
DEV_CLIENT = "10.244.1.6"  # remote, dev/client role=client
OUTSIDE = "198.51.100.7"

NAMESPACES = [namespace("default"), namespace("prod", {"env": "prod"}), namespace("dev", {"env": "dev"})]
HTTP = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
PODS = [
    pod("web", WEB, labels={"app": "web"}, ports=HTTP),
    pod("client", CLIENT, labels={"role": "client"}),
    pod("other", OTHER, labels={"role": "other"}, node="node-b"),
    pod("client", PROD_CLIENT, "prod", {"role": "client"}, node="node-b"),
    pod("client", DEV_CLIENT, "dev", {"role": "client"}, node="node-b"),
]


def rules(*policies: Obj) -> Ruleset:
    return compile_objs(list(policies), PODS, NAMESPACES)


def test_no_policies_nothing_isolated() -> None:
    rs = rules()
    assert rs.ingress_map == {} and rs.egress_map == {} and rs.pod_chains == {}
    assert allowed(rs, OUTSIDE, WEB) and allowed(rs, WEB, OUTSIDE)


def test_default_deny_ingress() -> None:
    rs = rules(netpol("deny", types=["Ingress"]))
    assert set(rs.ingress_map) == {WEB, CLIENT}
    assert rs.egress_map == {}
    for src in (CLIENT, OTHER, PROD_CLIENT, OUTSIDE):
        assert not allowed(rs, src, WEB)
    assert allowed(rs, WEB, OTHER)  # egress not isolated
    assert allowed(rs, WEB, WEB)  # a pod always reaches itself
    assert allowed(rs, "192.0.2.10", WEB) and allowed(rs, "10.244.0.1", WEB)  # the node (probes)


def test_default_deny_egress() -> None:
    rs = rules(netpol("deny", types=["Egress"]))
    assert set(rs.egress_map) == {WEB, CLIENT} and rs.ingress_map == {}
    assert not allowed(rs, WEB, OTHER)
    assert not allowed(rs, CLIENT, WEB)
    assert not allowed(rs, WEB, OUTSIDE, 53, "UDP")
    assert allowed(rs, OTHER, WEB)  # ingress still open


def test_allow_by_pod_label_same_namespace_only() -> None:
    rs = rules(
        netpol(
            "allow", selector=labels(app="web"), ingress=[{"from": [{"podSelector": labels(role="client")}]}]
        )
    )
    assert set(rs.ingress_map) == {WEB}  # client is not selected: unaffected
    assert allowed(rs, CLIENT, WEB)
    assert not allowed(rs, OTHER, WEB)
    assert not allowed(rs, PROD_CLIENT, WEB)  # same label, other namespace
    assert allowed(rs, OTHER, CLIENT)


def test_allow_by_namespace_label() -> None:
    rs = rules(
        netpol(
            "ns", selector=labels(app="web"), ingress=[{"from": [{"namespaceSelector": labels(env="prod")}]}]
        )
    )
    assert allowed(rs, PROD_CLIENT, WEB)
    assert not allowed(rs, DEV_CLIENT, WEB)
    assert not allowed(rs, CLIENT, WEB)


def test_namespace_selector_by_metadata_name_label() -> None:
    sel = {"matchLabels": {"kubernetes.io/metadata.name": "dev"}}
    rs = rules(netpol("ns", selector=labels(app="web"), ingress=[{"from": [{"namespaceSelector": sel}]}]))
    assert allowed(rs, DEV_CLIENT, WEB) and not allowed(rs, PROD_CLIENT, WEB)


def test_combined_pod_and_namespace_selector() -> None:
    peer = {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]}}
    peer["podSelector"] = labels(role="client")
    rs = rules(netpol("both", selector=labels(app="web"), ingress=[{"from": [peer]}]))
    assert allowed(rs, PROD_CLIENT, WEB) and allowed(rs, DEV_CLIENT, WEB)
    assert not allowed(rs, CLIENT, WEB)  # default has no env label
    other_in_prod = pod("other", "10.244.1.9", "prod", {"role": "other"}, node="node-b")
    rs2 = compile_objs(
        [netpol("both", selector=labels(app="web"), ingress=[{"from": [peer]}])],
        [*PODS, other_in_prod],
        NAMESPACES,
    )
    assert not allowed(rs2, "10.244.1.9", WEB)


def test_empty_namespace_selector_means_all_namespaces() -> None:
    rs = rules(netpol("all", selector=labels(app="web"), ingress=[{"from": [{"namespaceSelector": {}}]}]))
    assert all(allowed(rs, ip, WEB) for ip in (CLIENT, OTHER, PROD_CLIENT, DEV_CLIENT))
    assert not allowed(rs, OUTSIDE, WEB)


def test_ip_block_with_except() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.1.0/24", "10.9.9.9/32"]}}
    rs = rules(netpol("cidr", selector=labels(app="web"), ingress=[{"from": [block]}]))
    assert allowed(rs, CLIENT, WEB) and allowed(rs, "10.1.2.3", WEB)
    assert not allowed(rs, OTHER, WEB) and not allowed(rs, "10.9.9.9", WEB) and not allowed(rs, OUTSIDE, WEB)
    (peer_set,) = rs.addr_sets.values()
    assert peer_set == ("10.0.0.0-10.9.9.8", "10.9.9.10-10.244.0.255", "10.244.2.0-10.255.255.255")


def test_egress_ip_block() -> None:
    rs = rules(netpol("out", types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}]))
    assert allowed(rs, WEB, OUTSIDE) and not allowed(rs, WEB, OTHER)


def test_ports_and_protocols() -> None:
    rule = {"ports": [{"protocol": "TCP", "port": 80}, {"protocol": "UDP", "port": 53}, {"protocol": "SCTP"}]}
    rs = rules(netpol("ports", selector=labels(app="web"), ingress=[rule]))
    assert allowed(rs, OTHER, WEB, 80) and allowed(rs, OTHER, WEB, 53, "UDP")
    assert not allowed(rs, OTHER, WEB, 81) and not allowed(rs, OTHER, WEB, 80, "UDP")
    assert not allowed(rs, OTHER, WEB, 53) and allowed(rs, OTHER, WEB, 9999, "SCTP")


def test_end_port_range() -> None:
    rs = rules(
        netpol("range", selector=labels(app="web"), ingress=[{"ports": [{"port": 8000, "endPort": 8010}]}])
    )
    assert allowed(rs, OTHER, WEB, 8000) and allowed(rs, OTHER, WEB, 8010)
    assert not allowed(rs, OTHER, WEB, 7999) and not allowed(rs, OTHER, WEB, 8011)
    chains = to_state(rs).chains
    assert any("th dport 8000-8010 accept" in r for rules_ in chains.values() for r in rules_)


def test_named_port_ingress_resolves_against_destination_pod() -> None:
    rs = rules(netpol("named", ingress=[{"ports": [{"port": "http"}]}]))
    assert allowed(rs, OTHER, WEB, 8080)
    assert not allowed(rs, OTHER, WEB, 80)
    assert not allowed(rs, OTHER, CLIENT, 8080)  # client has no port called http
    assert not allowed(rs, OTHER, WEB, 8080, "UDP")


def test_named_port_egress_resolves_against_peer_pods() -> None:
    ports_b = [{"name": "http", "containerPort": 9090}]
    pods = [*PODS, pod("b", "10.244.1.20", labels={"app": "b"}, node="node-b", ports=ports_b)]
    pol = netpol(
        "out", selector=labels(role="client"), types=["Egress"], egress=[{"ports": [{"port": "http"}]}]
    )
    rs = compile_objs([pol], pods, NAMESPACES)
    assert allowed(rs, CLIENT, WEB, 8080) and allowed(rs, CLIENT, "10.244.1.20", 9090)
    assert not allowed(rs, CLIENT, WEB, 9090) and not allowed(rs, CLIENT, "10.244.1.20", 8080)
    limited = netpol(
        "out",
        selector=labels(role="client"),
        types=["Egress"],
        egress=[{"to": [{"podSelector": labels(app="b")}], "ports": [{"port": "http"}]}],
    )
    rs = compile_objs([limited], pods, NAMESPACES)
    assert allowed(rs, CLIENT, "10.244.1.20", 9090) and not allowed(rs, CLIENT, WEB, 8080)


def test_policies_are_ored() -> None:
    a = netpol("a", selector=labels(app="web"), ingress=[{"from": [{"podSelector": labels(role="client")}]}])
    b = netpol(
        "b",
        selector=labels(app="web"),
        ingress=[{"from": [{"podSelector": labels(role="other")}], "ports": [{"port": 443}]}],
    )
    rs = rules(a, b)
    assert allowed(rs, CLIENT, WEB, 80)
    assert allowed(rs, OTHER, WEB, 443) and not allowed(rs, OTHER, WEB, 80)
    assert not allowed(rs, PROD_CLIENT, WEB)
    assert len(rs.pod_chains[rs.ingress_map[WEB]].policies) == 2


def test_rules_within_a_policy_are_ored_and_peers_and_ports_anded() -> None:
    ing = [
        {"from": [{"podSelector": labels(role="client")}], "ports": [{"port": 80}]},
        {"from": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": 443}]},
    ]
    rs = rules(netpol("p", selector=labels(app="web"), ingress=ing))
    assert allowed(rs, CLIENT, WEB, 80) and not allowed(rs, CLIENT, WEB, 443)
    assert allowed(rs, OUTSIDE, WEB, 443) and not allowed(rs, OUTSIDE, WEB, 80)


def test_allow_all_rule_and_empty_rules() -> None:
    rs = rules(netpol("all", selector=labels(app="web"), ingress=[{}]))
    assert allowed(rs, OUTSIDE, WEB, 1234, "UDP")
    rs = rules(netpol("none", selector=labels(app="web"), ingress=[]))
    assert not allowed(rs, CLIENT, WEB)


def test_both_directions_must_allow() -> None:
    deny_out = netpol("deny-out", selector=labels(role="client"), types=["Egress"])
    allow_in = netpol("in", selector=labels(app="web"), ingress=[{"from": [{"podSelector": {}}]}])
    rs = rules(deny_out, allow_in)
    assert not allowed(rs, CLIENT, WEB)  # web allows it, but client's egress is denied
    allow_out = netpol(
        "out",
        selector=labels(role="client"),
        types=["Egress"],
        egress=[{"to": [{"podSelector": labels(app="web")}]}],
    )
    deny_in = netpol("deny-in", selector=labels(app="web"))
    assert not allowed(rules(allow_out, deny_in), CLIENT, WEB)
    assert allowed(rules(allow_out, allow_in), CLIENT, WEB)


def test_policy_types_default_and_namespace_scope() -> None:
    pol = parse_policy(netpol("x", egress=[{"to": [{"podSelector": {}}]}]))
    assert pol.types == {Direction.INGRESS, Direction.EGRESS}
    assert parse_policy(netpol("y")).types == {Direction.INGRESS}
    rs = rules(netpol("prod-deny", "prod", types=["Ingress"]))
    assert rs.ingress_map == {}  # no local pod in prod


def test_only_local_pods_get_chains_and_ignored_pods() -> None:
    pods = [
        *PODS,
        pod("host", "192.0.2.10", labels={"app": "web"}, hostNetwork=True),
        {
            **pod("done", "10.244.0.9", labels={"app": "web"}),
            "status": {"phase": "Succeeded", "podIP": "10.244.0.9"},
        },
        pod("pending", "", labels={"app": "web"}),
    ]
    rs = compile_objs([netpol("deny")], pods, NAMESPACES)
    assert set(rs.ingress_map) == {WEB, CLIENT}


def test_unselected_pods_unaffected_by_other_policies() -> None:
    rs = rules(netpol("deny-web", selector=labels(app="web")))
    assert CLIENT not in rs.ingress_map
    assert allowed(rs, OUTSIDE, CLIENT) and not allowed(rs, OUTSIDE, WEB)


def test_peer_set_follows_pods_and_names_are_stable() -> None:
    pol = netpol(
        "allow", selector=labels(app="web"), ingress=[{"from": [{"podSelector": labels(role="client")}]}]
    )
    rs1 = compile_objs([pol], PODS, NAMESPACES)
    new_client = pod("client2", "10.244.1.30", labels={"role": "client"}, node="node-b")
    rs2 = compile_objs([pol], [*PODS, new_client], NAMESPACES)
    assert rs1.policy_chains == rs2.policy_chains and rs1.pod_chains == rs2.pod_chains
    (name,) = rs2.addr_sets
    assert rs2.addr_sets[name] == (CLIENT, "10.244.1.30")
    assert allowed(rs2, "10.244.1.30", WEB) and not allowed(rs1, "10.244.1.30", WEB)


def _dns_slice(address: str, port: int = 53) -> Obj:
    return {
        "metadata": {"name": "kube-dns-node-a", "namespace": "kube-system"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}, "nodeName": "node-a"}],
        "ports": [
            {"name": "dns", "protocol": "UDP", "port": port},
            {"name": "dns-tcp", "protocol": "TCP", "port": port},
        ],
    }


def test_dns_server_endpoint_is_a_kube_dns_peer() -> None:
    base = cluster_of(PODS, [*NAMESPACES, namespace("kube-system")])
    cluster = Cluster({**base.pods, **dns.virtual_pods(_dns_slice("192.0.2.10"))}, base.namespaces)
    to_dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": labels(**{"k8s-app": "kube-dns"}),
    }
    rule = {
        "to": [to_dns],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": "dns-tcp"}],
    }
    pol = parse_policy(netpol("dns", egress=[rule], types=["Egress"]))
    rs = compile_ruleset([pol], cluster, "node-a", ["192.0.2.10"])
    assert allowed(rs, WEB, "192.0.2.10", 53, "UDP") and allowed(rs, WEB, "192.0.2.10", 53, "TCP")
    assert not allowed(rs, WEB, "192.0.2.10", 80) and not allowed(rs, WEB, OTHER, 53, "UDP")
    assert "192.0.2.10" not in rs.ingress_map and "192.0.2.10" not in rs.egress_map  # never isolated
    assert dns.virtual_pods({**_dns_slice("fd00::a"), "addressType": "IPv6"}) == {}
