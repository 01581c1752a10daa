"""Benchmark: compile + apply times for many policies and pods (real nft in a netns).

Run as root from the repository root: ``python bench/netpol_apply.py [policies] [pods]`` (default 100 / 500).
Half the pods are on the benchmarked node; policies mix pod, namespace and ipBlock peers,
numeric and named ports.  Prints the full sync time and incremental update times.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' netns helpers

from tests.netpol import netns
from tests.netpol.builders import cluster_of, labels, namespace, netpol, pod

from kubelite.netpol.compiler import compile_ruleset
from kubelite.netpol.model import parse_policy
from kubelite.netpol.render import full_script, to_state, update_script

Obj = dict[str, Any]


def make_cluster(n_pol: int, n_pods: int, seed: int = 1) -> tuple[list[Obj], list[Obj], list[Obj]]:
    rnd = random.Random(seed)
    namespaces = [namespace(f"ns{i}", {"team": f"t{i % 3}"}) for i in range(10)]
    pods = []
    for i in range(n_pods):
        node = "node-a" if i % 2 == 0 else "node-b"
        ip = f"10.244.{i % 2}.{i // 2 + 2}" if i < 500 else f"10.245.{i // 250}.{i % 250 + 2}"
        ports = [{"name": "http", "containerPort": 8000 + i % 5}]
        lab = {"app": f"app{rnd.randrange(20)}", "tier": rnd.choice(["fe", "be", "db"])}
        pods.append(pod(f"p{i}", ip, f"ns{i % 10}", lab, node=node, ports=ports))
    policies = []
    for i in range(n_pol):
        ns = f"ns{i % 10}"
        peers: list[Obj] = [
            {"podSelector": labels(tier=rnd.choice(["fe", "be"]))},
            {
                "namespaceSelector": labels(team=f"t{i % 3}"),
                "podSelector": labels(app=f"app{rnd.randrange(20)}"),
            },
            {"ipBlock": {"cidr": "192.168.0.0/16", "except": [f"192.168.{i % 256}.0/24"]}},
        ]
        ingress = [
            {"from": peers, "ports": [{"port": 80}, {"port": "http"}, {"port": 9000, "endPort": 9100}]}
        ]
        egress = [
            {"to": [{"podSelector": labels(app=f"app{rnd.randrange(20)}")}], "ports": [{"port": "http"}]}
        ]
        sel = labels(app=f"app{rnd.randrange(20)}")
        policies.append(netpol(f"pol{i}", ns, sel, ingress, egress, ["Ingress", "Egress"]))
    return policies, pods, namespaces


def timed(label: str, fn: Any) -> Any:
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:<48} {(time.perf_counter() - t0) * 1e3:8.1f} ms")
    return out


def main() -> None:
    n_pol = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_pods = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    policies, pods, namespaces = make_cluster(n_pol, n_pods)
    parsed = [parse_policy(p) for p in policies]

    def compile_(pods_: list[Obj]) -> Any:
        return to_state(compile_ruleset(parsed, cluster_of(pods_, namespaces), "node-a", ["192.0.2.10"]))

    with netns.lab("bench") as lab:

        def apply(script: str) -> None:
            netns.sh("ip", "netns", "exec", lab.node, "nft", "-f", "-", input=script)

        state = timed(f"compile {n_pol} policies / {n_pods} pods", lambda: compile_(pods))
        script = full_script("bench", state)
        print(
            f"full script: {script.count(chr(10))} lines, {len(state.chains)} chains, {len(state.sets)} sets"
        )
        timed("apply full script (nft -f)", lambda: apply(script))
        timed("apply full script again (replace table)", lambda: apply(script))
        extra = pod("new", "10.244.1.250", "ns3", {"app": "app3", "tier": "fe"}, node="node-b")
        new_state = timed("recompile with one more remote pod", lambda: compile_([*pods, extra]))
        upd = update_script("bench", state, new_state)
        print(f"incremental script: {upd.count(chr(10))} lines")
        timed("apply incremental update", lambda: apply(upd))
        app = policies[0]["spec"]["podSelector"]["matchLabels"]["app"]  # selected by pol0 (ns0)
        local = pod("newlocal", "10.244.0.250", "ns0", {"app": app, "tier": "be"}, node="node-a")
        third = compile_([*pods, extra, local])
        upd2 = update_script("bench", new_state, third)
        print(f"incremental script (new selected local pod): {upd2.count(chr(10))} lines")
        timed("apply incremental update (new selected local pod)", lambda: apply(upd2))


if __name__ == "__main__":
    main()
