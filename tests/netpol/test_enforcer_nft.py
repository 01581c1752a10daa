"""PolicyEnforcer end to end: a real API server, real nft, real TCP in network namespaces.

Topology (all in ``kltest-h4-<pid>-...`` namespaces): a node netns with bridge br0
(10.244.0.1/24, br_netfilter on) and three pods on it: web 10.244.0.2 (app=web),
client 10.244.0.3 (role=client), other 10.244.0.4 (role=other); each answers on :8080.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubelite.client.base import Client
from kubelite.netpol import PolicyConfig, PolicyEnforcer, dns
from kubelite.netpol.enforcer import NETWORK_POLICIES, NODES
from tests.unit.lifecycle_api import NAMESPACES, PODS, api_server, eventually, set_pod_status

from . import netns
from .builders import labels, netpol

pytestmark = pytest.mark.skipif(bool(netns.available()), reason=netns.available() or "ok")

IPS = {"web": "10.244.0.2", "client": "10.244.0.3", "other": "10.244.0.4"}
LABELS = {"web": {"app": "web"}, "client": {"role": "client"}, "other": {"role": "other"}}
NODE = "node-a"


async def _create_pods(c: Client) -> None:
    await c.create(
        NODES,
        "",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE},
            "spec": {"podCIDR": "10.244.0.0/24"},
        },
    )
    for name, ip in IPS.items():
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": LABELS[name]},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x", "ports": []}]},
        }
        await c.create(PODS, "default", body)
        await set_pod_status(c, "default", name, ip)


async def reach(lab: netns.Lab, src: str, dst_ip: str, want: bool, timeout: float = 8.0) -> None:
    """Wait until src -> dst_ip:8080 succeeds (want) or is dropped (not want)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = bool(await asyncio.to_thread(lab.agents[src].connect, dst_ip))
        if got == want:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{src} -> {dst_ip}: connected={got}, wanted {want}")
        await asyncio.sleep(0.05)


async def _matrix(lab: netns.Lab, expect: dict[tuple[str, str], bool]) -> None:
    for (src, dst), want in expect.items():
        await reach(lab, src, IPS.get(dst, "10.244.0.1"), want)


def _create(c: Client, obj: dict[str, Any]) -> Any:
    return c.create(NETWORK_POLICIES, obj["metadata"]["namespace"], obj)


async def test_policies_enforced_on_real_traffic(tmp_path: Path) -> None:
    with netns.lab("enf", IPS) as lab:
        lab.start_agent("node", lab.node)
        async with api_server(tmp_path) as api:
            c = api.client
            await _create_pods(c)
            cfg = PolicyConfig(NODE, ["192.0.2.10"], "10.244.0.0/16", table="h4-policy", nft=lab.nft)
            enforcer = PolicyEnforcer(c, cfg)
            await enforcer.start()
            try:
                assert "forward-ingress" in lab.nft_list("h4-policy").stdout
                await _matrix(lab, {("client", "web"): True, ("other", "web"): True, ("node", "web"): True})

                # default deny ingress for app=web: only the node (probes) gets in
                await _create(c, netpol("deny", selector=labels(app="web")))
                await _matrix(
                    lab, {("client", "web"): False, ("other", "web"): False, ("web", "client"): True}
                )
                await _matrix(lab, {("node", "web"): True})

                # allow role=client on 8080: client gets in, other does not
                allow = {"from": [{"podSelector": labels(role="client")}], "ports": [{"port": 8080}]}
                await _create(c, netpol("allow-client", selector=labels(app="web"), ingress=[allow]))
                await _matrix(lab, {("client", "web"): True, ("other", "web"): False})

                # relabel other as a client: only its peer set changes
                await c.patch(PODS, "default", "other", {"metadata": {"labels": {"role": "client"}}})
                await _matrix(lab, {("other", "web"): True})

                # egress deny for role=client: no pod and not the node itself (input hook)
                await _create(c, netpol("no-egress", selector=labels(role="client"), types=["Egress"]))
                await _matrix(
                    lab, {("client", "web"): False, ("client", "other"): False, ("client", "node"): False}
                )
                await _matrix(lab, {("web", "other"): True, ("web", "node"): True})  # other's ingress is open

                # removing the policies restores traffic
                for name in ("deny", "allow-client", "no-egress"):
                    await c.delete(NETWORK_POLICIES, "default", name)
                await _matrix(
                    lab, {("client", "web"): True, ("other", "web"): True, ("client", "node"): True}
                )
                await _matrix(lab, {("web", "other"): True})
                assert enforcer.stats.full_syncs == 1 and enforcer.stats.failures == 0
            finally:
                await enforcer.stop()
            assert lab.nft_list("h4-policy").returncode != 0  # table gone


async def test_start_fails_loudly_when_nft_refuses(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        enforcer = PolicyEnforcer(api.client, PolicyConfig(NODE, [], "10.244.0.0/16", nft="false"))
        with pytest.raises(RuntimeError, match="failed"):
            await enforcer.start()
        assert all(inf._task is None for inf in enforcer.informers)


async def test_namespace_selectors_and_named_ports(tmp_path: Path) -> None:
    with netns.lab("nsel", {"web": IPS["web"], "client": IPS["client"]}) as lab:
        async with api_server(tmp_path) as api:
            c = api.client
            await c.create(
                NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
            )
            http = [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]
            for name, ns in (("web", "default"), ("client", "team")):
                body = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "labels": LABELS[name]},
                    "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x", "ports": http}]},
                }
                await c.create(PODS, ns, body)
                await set_pod_status(c, ns, name, IPS[name])
            enforcer = PolicyEnforcer(c, PolicyConfig(NODE, [], "10.244.0.0/16", table="h4-ns", nft=lab.nft))
            await enforcer.start()
            try:
                # ingress: namespaceSelector + a named port resolved on web (http = 8080)
                peer = {"namespaceSelector": labels(trusted="yes")}
                rule = {"from": [peer], "ports": [{"port": "http"}]}
                await _create(c, netpol("ns", selector=labels(app="web"), ingress=[rule]))
                await _matrix(lab, {("client", "web"): False})
                await c.patch(NAMESPACES, "", "team", {"metadata": {"labels": {"trusted": "yes"}}})
                await _matrix(lab, {("client", "web"): True})

                # egress: a named port resolved on the peer pods (metrics = 9090, not 8080)
                out = netpol("out", "team", labels(role="client"), egress=[{"ports": [{"port": "metrics"}]}])
                await _create(c, {**out, "spec": {**out["spec"], "policyTypes": ["Egress"]}})
                await _matrix(lab, {("client", "web"): False})
                patch = {"spec": {"egress": [{"ports": [{"port": "http"}]}]}}
                await c.patch(NETWORK_POLICIES, "team", "out", patch)
                await _matrix(lab, {("client", "web"): True})
            finally:
                await enforcer.stop()


async def test_bursts_coalesce_and_a_lost_table_is_rebuilt(tmp_path: Path) -> None:
    with netns.lab("burst") as lab:
        async with api_server(tmp_path) as api:
            c = api.client
            cfg = PolicyConfig(NODE, [], "10.244.0.0/16", table="h4-burst", nft=lab.nft, retry_delay=0.1)
            enforcer = PolicyEnforcer(c, cfg)
            await enforcer.start()
            try:
                await _create(c, netpol("deny", selector=labels(app="web")))
                for i in range(20):
                    body = {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": f"w{i}", "labels": {"app": "web"}},
                        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]},
                    }
                    await c.create(PODS, "default", body)
                    await set_pod_status(c, "default", f"w{i}", f"10.244.0.{i + 10}")

                async def all_isolated() -> bool:
                    rs = enforcer.ruleset
                    return rs is not None and len(rs.ingress_map) == 20

                await eventually(all_isolated)
                assert enforcer.stats.syncs < 15  # 41 changes, coalesced into a few syncs
                syncs = enforcer.stats.full_syncs

                netns.sh("ip", "netns", "exec", lab.node, "nft", "delete", "table", "ip", "h4-burst")
                await c.delete(PODS, "default", "w0", grace_period_seconds=0)

                async def rebuilt() -> bool:
                    listing = lab.nft_list("h4-burst").stdout
                    rebuilt = "10.244.0.11 : jump" in listing and "10.244.0.10 :" not in listing
                    return rebuilt and enforcer.stats.full_syncs > syncs

                await eventually(rebuilt)
                assert enforcer.stats.failures >= 1
            finally:
                await enforcer.stop()
            assert lab.nft_list("h4-burst").returncode != 0


async def test_dns_server_slice_is_reachable_through_a_kube_dns_rule(tmp_path: Path) -> None:
    """The node-local DNS server (published in an EndpointSlice) matches kube-dns pod peers."""
    with netns.lab("dns", {"client": IPS["client"]}) as lab:
        lab.start_agent("node", lab.node)  # stands in for the DNS server on 10.244.0.1:8080
        async with api_server(tmp_path) as api:
            c = api.client
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "client", "labels": LABELS["client"]},
                "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]},
            }
            await c.create(PODS, "default", body)
            await set_pod_status(c, "default", "client", IPS["client"])
            enforcer = PolicyEnforcer(c, PolicyConfig(NODE, [], "10.244.0.0/16", table="h4-dns", nft=lab.nft))
            await enforcer.start()
            try:
                to_dns = {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
                rule = {"to": [to_dns], "ports": [{"protocol": "TCP", "port": "dns-tcp"}]}
                await _create(c, netpol("dns", selector=labels(role="client"), egress=[rule]))
                await _matrix(lab, {("client", "node"): False})
                eps = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": "kube-dns-node-a",
                        "labels": {
                            "kubernetes.io/service-name": "kube-dns",
                            "endpointslice.kubernetes.io/managed-by": "dns.kubelite.io",
                        },
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": ["10.244.0.1"], "conditions": {"ready": True}}],
                    "ports": [
                        {"name": "dns", "protocol": "UDP", "port": 8080},
                        {"name": "dns-tcp", "protocol": "TCP", "port": 8080},
                    ],
                }
                await c.create(dns.SLICES, "kube-system", eps)
                await _matrix(lab, {("client", "node"): True})
                await c.delete(dns.SLICES, "kube-system", "kube-dns-node-a")
                await _matrix(lab, {("client", "node"): False})
            finally:
                await enforcer.stop()
