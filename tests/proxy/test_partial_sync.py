"""Partial syncs leave the kernel exactly where a full sync would (real nft, own netns).

A seeded random walk of Service/endpoint changes is applied as partial transactions to
one table; every few steps a second table gets a full sync of the same Services, and the
two kernel tables (chains, rules, sets, maps and their elements) must be identical.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from kubelite.proxy.model import TableModel
from kubelite.proxy.render import base_chains, base_maps
from kubelite.proxy.ruleset import Fragment
from tests.proxy.builders import CTX, ep, eps_slice, render, svc

Obj = dict[str, Any]


@pytest.fixture
def netns() -> Iterator[str]:
    ns = f"kltest-h2-ps-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def nft(ns: str, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", *args], input=stdin, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr + (stdin or "")[:3000]
    return proc.stdout


def kernel_state(ns: str, table: str) -> dict[str, Any]:
    """Chains with their rules, sets/maps with their elements; handles and table name dropped."""
    items = json.loads(nft(ns, "-j", "list", "table", "ip", table))["nftables"]
    out: dict[str, Any] = {"chains": {}, "sets": {}}
    for item in items:
        for kind in ("set", "map"):
            if kind in item:
                s = item[kind]
                elems = sorted(json.dumps(e, sort_keys=True) for e in s.get("elem", []))
                out["sets"][s["name"]] = (kind, json.dumps(s.get("type")), s.get("timeout"), elems)
        if "chain" in item:
            c = item["chain"]
            out["chains"].setdefault(c["name"], {"hook": c.get("hook"), "rules": []})
        if "rule" in item:
            r = item["rule"]
            out["chains"][r["chain"]]["rules"].append(json.dumps(r["expr"], sort_keys=True))
    return out


def random_service(rng: random.Random, i: int) -> Fragment:
    kind = rng.choice(["ClusterIP", "NodePort", "LoadBalancer", "gone"])
    if kind == "gone":
        return Fragment()
    spec: Obj = {"type": kind}
    port: Obj = {"name": "http", "port": 80, "protocol": rng.choice(["TCP", "UDP"])}
    if kind != "ClusterIP":
        port["nodePort"] = 30000 + i
        spec["externalTrafficPolicy"] = rng.choice(["Cluster", "Local"])
    if kind == "LoadBalancer":
        spec["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}  # shared: conflicts
    if rng.random() < 0.3:
        spec["sessionAffinity"] = "ClientIP"
    spec["internalTrafficPolicy"] = rng.choice(["Cluster", "Cluster", "Local"])
    endpoints = [
        ep(f"10.244.{i}.{j}", ready=rng.random() < 0.8, node=rng.choice(["node-a", "node-b"]))
        for j in rng.sample(range(1, 8), rng.randrange(0, 5))
    ]
    service = svc(f"s{i}", f"10.96.0.{i + 1}", ports=[port], **spec)
    return render(service, eps_slice(f"s{i}", endpoints, protocol=port["protocol"]))


def test_partial_syncs_match_a_full_sync(netns: str) -> None:
    rng = random.Random(5)
    partial = TableModel("kltest-partial", base_chains(CTX), base_maps())
    nft(netns, "-f", "-", stdin=partial.plan_full({}, set(), set()).text)
    partial.commit(partial.plan_full({}, set(), set()))
    current: dict[str, Fragment] = {}
    for step in range(1, 61):
        changed = {f"default/s{i}": random_service(rng, i) for i in rng.sample(range(8), rng.randrange(1, 4))}
        plan = partial.plan_partial(changed)
        if not plan.empty:
            nft(netns, "-f", "-", stdin=plan.text)
        partial.commit(plan)
        current.update(changed)
        if step % 15 == 0:
            full = TableModel("kltest-full", base_chains(CTX), base_maps())
            nft(netns, "-f", "-", stdin=full.plan_full(current, set(), set()).text)
            assert kernel_state(netns, "kltest-partial") == kernel_state(netns, "kltest-full"), step
            nft(netns, "delete", "table", "ip", "kltest-full")
