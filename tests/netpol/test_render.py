"""The nft renderer: scripts nft accepts, and incremental updates equal to full rewrites."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.netpol.render import NftState, full_script, to_state, update_script

from . import netns
from .builders import compile_objs, labels, namespace, netpol, pod

pytestmark = pytest.mark.skipif(bool(netns.available()), reason=netns.available() or "ok")

APPS = ["web", "db", "cache"]
NAMESPACES = [namespace("default", {"env": "dev"}), namespace("prod", {"env": "prod"})]


def _random_peer(rnd: random.Random) -> dict[str, Any]:
    kind = rnd.choice(["pod", "ns", "both", "block"])
    if kind == "block":
        return {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"10.244.{rnd.randint(0, 2)}.0/24"]}}
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = labels(app=rnd.choice(APPS))
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = labels(env=rnd.choice(["dev", "prod"]))
    return peer


def _random_rule(rnd: random.Random, peers_field: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if rnd.random() < 0.7:
        rule[peers_field] = [_random_peer(rnd) for _ in range(rnd.randint(1, 2))]
    ports = [
        rnd.choice(
            [{"port": 80}, {"port": "http"}, {"protocol": "UDP", "port": 53}, {"port": 8000, "endPort": 8100}]
        )
        for _ in range(rnd.randint(0, 2))
    ]
    if ports:
        rule["ports"] = ports
    return rule


def random_state(seed: int) -> NftState:
    """A random but valid cluster: pods on two nodes, 0-4 policies of every flavour."""
    rnd = random.Random(seed)
    pods = []
    for i in range(rnd.randint(0, 8)):
        ns = rnd.choice(["default", "prod"])
        http = [{"name": "http", "containerPort": rnd.choice([8080, 9090])}]
        node = rnd.choice(["node-a", "node-b"])
        ip = f"10.244.{0 if node == 'node-a' else 1}.{i + 2}"
        pods.append(pod(f"p{i}", ip, ns, {"app": rnd.choice(APPS)}, node=node, ports=http))
    policies = []
    for i in range(rnd.randint(0, 4)):
        sel = rnd.choice([{}, labels(app=rnd.choice(APPS))])
        types = rnd.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
        ingress = [_random_rule(rnd, "from") for _ in range(rnd.randint(0, 2))]
        egress = [_random_rule(rnd, "to") for _ in range(rnd.randint(0, 2))]
        policies.append(netpol(f"pol{i}", rnd.choice(["default", "prod"]), sel, ingress, egress, types))
    return to_state(compile_objs(policies, pods, NAMESPACES))


def _normalized(lab: netns.Lab, table: str) -> list[Any]:
    out = netns.sh("ip", "netns", "exec", lab.node, "nft", "-j", "list", "table", "ip", table).stdout
    objs = []
    seq: dict[str, int] = {}
    for item in json.loads(out)["nftables"]:
        ((kind, body),) = item.items()
        if kind in ("metainfo", "table"):
            continue
        body = {k: v for k, v in body.items() if k not in ("handle", "table")}
        if "elem" in body:
            body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
        owner = body.get("chain", body.get("name", ""))
        seq[owner] = seq.get(owner, -1) + 1  # rules keep their order within their chain
        objs.append((kind, owner, seq[owner], json.dumps(body, sort_keys=True)))
    return sorted(objs)


@pytest.fixture(scope="module")
def nft_lab():  # type: ignore[no-untyped-def]
    with netns.lab("render") as box:
        yield box


def apply(lab: netns.Lab, script: str) -> None:
    if script:
        netns.sh("ip", "netns", "exec", lab.node, "nft", "-f", "-", input=script)


def test_full_script_loads_and_lists(nft_lab: netns.Lab) -> None:
    pols = [
        netpol("deny", selector=labels(app="web")),
        netpol("named", ingress=[{"ports": [{"port": "http"}]}]),
    ]
    pods = [pod("w", "10.244.0.2", labels={"app": "web"}, ports=[{"name": "http", "containerPort": 80}])]
    state = to_state(compile_objs(pols, pods))
    apply(nft_lab, full_script("h4full", state))
    listing = nft_lab.nft_list("h4full").stdout
    assert "ip daddr vmap @ingress-pods" in listing and "10.244.0.2 . tcp . 80" in listing
    assert "type filter hook input priority filter - 1; policy accept;" in listing
    apply(nft_lab, full_script("h4full", state))  # idempotent: replaces the table
    netns.sh("ip", "netns", "exec", nft_lab.node, "nft", "delete", "table", "ip", "h4full")


def test_update_only_touches_changes() -> None:
    web = pod("w", "10.244.0.2", labels={"app": "web"})
    pol = netpol("allow", selector=labels(app="web"), ingress=[{"from": [{"podSelector": labels(app="c")}]}])
    old = to_state(compile_objs([pol], [web]))
    new = to_state(compile_objs([pol], [web, pod("c", "10.244.1.3", labels={"app": "c"}, node="node-b")]))
    script = update_script("t", old, new)
    (name,) = (n for n in new.sets if n.startswith("pol-in"))
    assert script.splitlines() == [f"add element ip t {name} {{ 10.244.1.3 }}"]
    assert update_script("t", new, new) == ""


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**31), min_size=2, max_size=4))
def test_incremental_updates_equal_full_rewrite(nft_lab: netns.Lab, seeds: list[int]) -> None:
    states = [random_state(s) for s in seeds]
    apply(nft_lab, full_script("h4inc", states[0]))
    for old, new in itertools.pairwise(states):
        apply(nft_lab, update_script("h4inc", old, new))
        apply(nft_lab, full_script("h4ref", new))
        assert _normalized(nft_lab, "h4inc") == _normalized(nft_lab, "h4ref")
