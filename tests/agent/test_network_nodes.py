"""Two nodes, each a network namespace the test creates (``kltest-h1-*``), joined by a veth pair:
each runs kubelite's node network and CNI config in its own process (setup and teardown in
separate runs, so teardown works from the on-disk state alone, as after an agent restart), with
host-gw routes to the other's pod CIDR.  Pods reach each other across nodes without NAT, reach the
other node's address, and cannot reach other addresses (the node table drops that egress)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.agent.test_network_cni import CLIENT, SERVER, sh

Obj = dict[str, Any]
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
NODES = {"n1": ("10.244.1.0/24", "192.0.2.1"), "n2": ("10.244.2.0/24", "192.0.2.2")}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/lib/cni/bridge").exists() or shutil.which("nft") is None,
    reason="needs root, the CNI plugins and nft",
)


# ----------------------------------------------------------------------------- node-side driver
def _parts(work: Path, node: str) -> tuple[Any, Any, Any]:
    from kubelite.agent.network.node import NodeNetwork, NodeNetworkConfig
    from kubelite.agent.network.pod import PodNetwork
    from kubelite.agent.runtime.base import SandboxConfig

    cidr, ip = NODES[node]
    others = [v[1] for k, v in NODES.items() if k != node]
    state = work / node / "cni"
    net = NodeNetwork(NodeNetworkConfig(cidr, CLUSTER_CIDR, SERVICE_CIDR, state, node_ips=[ip, *others]))
    pods = PodNetwork(state / "net.d", ["/usr/lib/cni"], state / "cache")
    cfg = SandboxConfig(f"{node}aaaa-0000-0000-0000-000000000000", "default", f"pod-{node}", f"pod-{node}")
    return net, pods, cfg


async def node_up(work: Path, node: str, pod_netns: str) -> str:
    from kubelite.agent.network import netconf

    net, pods, cfg = _parts(work, node)
    await net.setup()
    netconf.write_default(net.cfg.state_dir / "net.d", net.cfg.pod_cidr, "kubelite0", net.cfg.ipam_dir)
    for other, (cidr, via) in NODES.items():
        if other != node:
            sh("ip", "route", "replace", cidr, "via", via, check=True)
    ip: str = await pods.setup(cfg, f"/var/run/netns/{pod_netns}")
    return ip


async def node_down(work: Path, node: str, pod_netns: str) -> None:
    from kubelite.agent.runtime.base import Sandbox
    from kubelite.agent.runtime.sandbox import sandbox_id

    net, pods, cfg = _parts(work, node)
    await pods.teardown(Sandbox(sandbox_id(cfg.pod_uid), cfg, netns_path=f"/var/run/netns/{pod_netns}"))
    for other, (cidr, via) in NODES.items():
        if other != node:
            sh("ip", "route", "del", cidr, "via", via)
    await net.teardown()


def driver_main() -> None:
    cmd, work, node, pod_netns = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    if cmd == "up":
        print("IP " + asyncio.run(node_up(work, node, pod_netns)))
    else:
        asyncio.run(node_down(work, node, pod_netns))
        print("DOWN")


# ----------------------------------------------------------------------------- the test
def tcp(target: str, port: int, netns: str) -> str:
    res = sh(sys.executable, "-c", CLIENT, target, str(port), netns=netns)
    return res.stdout.strip() or "error: " + res.stderr.strip()[-120:]


def run_driver(host_ns: str, *args: str) -> str:
    res = sh(sys.executable, "-m", "tests.agent.test_network_nodes", *args, netns=host_ns, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}\n{res.stderr[-3000:]}"
    return res.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def two_nodes() -> Any:
    prefix = f"kltest-h1-{os.getpid()}"
    hosts = {n: f"{prefix}-{n}" for n in NODES}
    pods = {n: f"{prefix}-{n}-pod" for n in NODES}
    work = Path(tempfile.mkdtemp(prefix="kltest-h1-nodes-"))
    try:
        for ns in [*hosts.values(), *pods.values()]:
            sh("ip", "netns", "add", ns, check=True)
            sh("ip", "link", "set", "lo", "up", netns=ns, check=True)
        sh("ip", "-n", hosts["n1"], "link", "add", "kltv1", "type", "veth", "peer", "name", "kltv2",
           "netns", hosts["n2"], check=True)  # fmt: skip
        for n, dev in (("n1", "kltv1"), ("n2", "kltv2")):
            sh("ip", "-n", hosts[n], "addr", "add", f"{NODES[n][1]}/24", "dev", dev, check=True)
            sh("ip", "-n", hosts[n], "link", "set", dev, "up", check=True)
        # an address beyond node 2 (not a node, not a pod): pods must not reach it
        sh("ip", "-n", hosts["n2"], "addr", "add", "198.51.100.1/32", "dev", "lo", check=True)
        sh("ip", "-n", hosts["n1"], "route", "add", "198.51.100.0/24", "via", "192.0.2.2", check=True)
        ips = {n: run_driver(hosts[n], "up", str(work), n, pods[n]).removeprefix("IP ") for n in NODES}
        yield hosts, pods, ips, work
    finally:
        for n in NODES:
            if Path(f"/var/run/netns/{hosts[n]}").exists():
                sh(sys.executable, "-m", "tests.agent.test_network_nodes", "down", str(work), n, pods[n],
                   netns=hosts[n], timeout=60)  # fmt: skip
        for ns in [*hosts.values(), *pods.values()]:
            sh("ip", "netns", "del", ns)
        shutil.rmtree(work, ignore_errors=True)


def test_cross_node_pod_traffic(two_nodes: Any) -> None:
    hosts, pods, ips, _work = two_nodes
    assert ips["n1"].startswith("10.244.1.") and ips["n2"].startswith("10.244.2.")
    server = subprocess.Popen(
        ["ip", "netns", "exec", pods["n2"], sys.executable, "-c", SERVER, "8080", "n2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        # pod to pod across nodes, no NAT: the server sees the client pod's own address
        assert tcp(ips["n2"], 8080, pods["n1"]) == f"hello-from-n2 {ips['n1']}"
        # the other node's host reaches the pod too (node -> remote pod through host-gw)
        assert tcp(ips["n2"], 8080, hosts["n1"]).startswith("hello-from-n2 ")
    finally:
        server.kill()
        server.wait()
    assert sh("busybox", "ping", "-c", "1", "-W", "2", "192.0.2.2", netns=pods["n1"]).returncode == 0
    # egress to an address that is neither a pod nor a node is dropped for pods, not for the node
    assert sh("busybox", "ping", "-c", "1", "-W", "1", "198.51.100.1", netns=hosts["n1"]).returncode == 0
    assert sh("busybox", "ping", "-c", "1", "-W", "1", "198.51.100.1", netns=pods["n1"]).returncode != 0
    counters = sh("nft", "list", "chain", "ip", "kubelite-node", "forward", netns=hosts["n1"]).stdout
    assert "ip saddr 10.244.0.0/16 drop" in counters


def test_teardown_from_disk_state(two_nodes: Any) -> None:
    hosts, pods, _ips, work = two_nodes
    for n in NODES:
        assert run_driver(hosts[n], "down", str(work), n, pods[n]) == "DOWN"
        links = sh("ip", "-o", "link", netns=hosts[n]).stdout
        assert "kubelite0" not in links and "veth" not in links
        routes = sh("ip", "route", netns=hosts[n]).stdout
        assert "10.244." not in routes and "10.96." not in routes
        assert sh("nft", "list", "tables", netns=hosts[n]).stdout.strip() == ""
        assert not (work / n / "cni" / "ipam").exists()
        assert list((work / n / "cni" / "cache" / "results").iterdir()) == []


if __name__ == "__main__":
    driver_main()
