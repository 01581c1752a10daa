"""The node's pod network with the real CNI plugins, ip and nft, inside network namespaces the
test creates (``kltest-h1-*``): the root namespace is never touched.

A driver (this module run as ``python -m tests.agent.test_network_cni``) runs under
``ip netns exec <host ns>`` and plays the node: NodeNetwork setup, two pod namespaces attached
through kubelite's CNI config, traffic checks, a DEL from the on-disk cache by a fresh client
(an agent restart), host-gw routes from Nodes in a real in-process API server, then teardown.
It prints its observations as JSON; the tests assert on them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
POD_CIDR = "10.244.7.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
HOST_PORT = 18080

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/lib/cni/bridge").exists() or shutil.which("nft") is None,
    reason="needs root, the CNI plugins and nft",
)


def sh(
    *argv: str, netns: str = "", check: bool = False, timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    # cwd: the drivers run as ``python -m tests.agent...`` from the repository root
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, cwd=ROOT)


# ----------------------------------------------------------------------------- the driver
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
print("ready", flush=True)
while True:
    c, addr = s.accept()
    c.sendall(("hello-from-" + sys.argv[2] + " " + addr[0] + "\\n").encode()); c.close()
"""

CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
    print(c.recv(100).decode().strip())
"""


def tcp(target: str, port: int, netns: str = "") -> str:
    res = sh(sys.executable, "-c", CLIENT, target, str(port), netns=netns)
    return res.stdout.strip() or res.stderr.strip()[-200:]


async def drive(prefix: str, work: Path) -> Obj:
    from kubelite.agent.network import netconf
    from kubelite.agent.network.node import NodeNetwork, NodeNetworkConfig
    from kubelite.agent.network.pod import PodNetwork
    from kubelite.agent.runtime.base import Sandbox, SandboxConfig
    from kubelite.agent.runtime.sandbox import sandbox_id

    out: Obj = {}
    state = work / "cni"
    conf_dir = state / "net.d"
    node = NodeNetwork(NodeNetworkConfig(POD_CIDR, CLUSTER_CIDR, SERVICE_CIDR, state, node_ips=["192.0.2.1"]))
    out["ip_forward_before"] = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    t0 = time.monotonic()
    await node.setup()
    await node.setup()  # idempotent: a second run (agent restart) reuses the bridge
    out["node_setup_ms"] = (time.monotonic() - t0) * 1000 / 2
    out["conf_written"] = str(netconf.write_default(conf_dir, POD_CIDR, "kubelite0", state / "ipam"))
    out["sysctls"] = {
        k: Path("/proc/sys", k).read_text().strip()
        for k in (
            "net/ipv4/ip_forward",
            "net/ipv4/conf/all/route_localnet",
            "net/bridge/bridge-nf-call-iptables",
        )
    }
    out["service_route"] = sh("ip", "route", "show", SERVICE_CIDR).stdout.strip()
    out["bridge_addr"] = sh("ip", "-4", "-o", "addr", "show", "dev", "kubelite0").stdout
    out["table"] = sh("nft", "list", "table", "ip", "kubelite-node").stdout

    pods = PodNetwork(conf_dir, ["/nonexistent", "/usr/lib/cni"], state / "cache")
    cfgs = {
        name: SandboxConfig(
            pod_uid=f"{name}0000-1111-2222-3333-444455556666",
            namespace="default",
            name=f"pod-{name}",
            hostname=f"pod-{name}",
            port_mappings=((HOST_PORT, 8080, "tcp", ""),) if name == "b" else (),
        )
        for name in ("a", "b")
    }
    ips: dict[str, str] = {}
    add_ms: list[float] = []
    for name, cfg in cfgs.items():
        t0 = time.monotonic()
        ips[name] = await pods.setup(cfg, f"/var/run/netns/{prefix}-{name}")
        add_ms.append((time.monotonic() - t0) * 1000)
    out["ips"] = ips
    out["add_ms"] = add_ms
    out["cache_files"] = sorted(p.name for p in (state / "cache" / "results").iterdir())

    server = subprocess.Popen(
        ["ip", "netns", "exec", f"{prefix}-b", sys.executable, "-c", SERVER, "8080", "b"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        out["server"] = server.stdout.readline().strip()
        out["ping_a_b"] = sh(
            "busybox", "ping", "-c", "1", "-W", "2", ips["b"], netns=f"{prefix}-a"
        ).returncode
        out["tcp_a_b"] = tcp(ips["b"], 8080, netns=f"{prefix}-a")
        out["tcp_host_b"] = tcp(ips["b"], 8080)
        out["hostport_localhost"] = tcp("127.0.0.1", HOST_PORT)
        out["hostport_from_pod"] = tcp(netconf.gateway(POD_CIDR), HOST_PORT, netns=f"{prefix}-a")
        out["pod_routes"] = sh("ip", "route", netns=f"{prefix}-a").stdout
        out["hostport_chains"] = sh("iptables-save", "-t", "nat").stdout.count("CNI-HOSTPORT-DNAT")
    finally:
        server.kill()
        server.wait()

    # an agent restart: a fresh client finds the ADD results in the cache and DELs from them
    fresh = PodNetwork(conf_dir, ["/usr/lib/cni"], state / "cache")
    del_ms: list[float] = []
    for name, cfg in cfgs.items():
        sb = Sandbox(sandbox_id(cfg.pod_uid), cfg, ip=ips[name], netns_path=f"/var/run/netns/{prefix}-{name}")
        t0 = time.monotonic()
        await fresh.teardown(sb)
        del_ms.append((time.monotonic() - t0) * 1000)
        await fresh.teardown(sb)  # already gone: tolerated
    out["del_ms"] = del_ms
    out["cache_after_del"] = sorted(p.name for p in (state / "cache" / "results").iterdir())
    out["ipam_after_del"] = sorted(p.name for p in (state / "ipam" / "kubelite").iterdir())
    out["veths_after_del"] = sh("ip", "-o", "link", "show", "master", "kubelite0").stdout
    out["routes"] = await drive_routes()

    await node.teardown()
    out["after_teardown"] = {
        "links": sh("ip", "-o", "link").stdout,
        "routes": sh("ip", "route").stdout,
        "tables": sh("nft", "list", "tables").stdout,
        "nat6": sh("ip6tables-save", "-t", "nat").stdout,
        "nat": sh("iptables-save", "-t", "nat").stdout,
        "ipam_exists": (state / "ipam").exists(),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
    }
    out["manager"] = await drive_manager(work)
    return out


async def drive_routes() -> Obj:
    """host-gw routes from Nodes in a real (in-process) API server; the other "nodes" sit on a
    bridge of this namespace (192.0.2.0/24)."""
    from kubelite.agent.network.routes import NODES, NodeRoutes
    from tests.unit.lifecycle_api import api_server

    sh("ip", "link", "add", "kltnodes0", "type", "bridge", check=True)
    sh("ip", "addr", "add", "192.0.2.1/24", "dev", "kltnodes0", check=True)
    sh("ip", "link", "set", "kltnodes0", "up", check=True)
    out: Obj = {}

    def node(name: str, cidr: str, ip: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
        }

    async def settle(check: str, present: bool) -> str:
        for _ in range(200):
            table = sh("ip", "route").stdout
            if (check in table) == present:
                return table
            await asyncio.sleep(0.05)
        return sh("ip", "route").stdout

    # a stale route of an earlier run, into the cluster CIDR: adopted, then removed
    sh("ip", "route", "add", "10.244.99.0/24", "via", "192.0.2.99", check=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with api_server(Path(tmp)) as api:
            seen: list[set[str]] = []

            async def on_ips(ips: set[str]) -> None:
                seen.append(set(ips))

            await api.client.create(NODES, "", node("self", "10.244.7.0/24", "192.0.2.1"))
            await api.client.create(NODES, "", node("n2", "10.244.8.0/24", "192.0.2.2"))
            routes = NodeRoutes(api.client, "self", CLUSTER_CIDR, on_ips)
            await routes.start()
            out["initial"] = await settle("10.244.8.0/24 via 192.0.2.2", True)
            await api.client.create(NODES, "", node("n3", "10.244.9.0/24", "192.0.2.3"))
            out["added"] = await settle("10.244.9.0/24 via 192.0.2.3", True)
            n2 = await api.client.get(NODES, "", "n2")
            n2["status"]["addresses"] = [{"type": "InternalIP", "address": "192.0.2.22"}]
            await api.client.update(NODES, "", n2, subresource="status")
            out["changed"] = await settle("10.244.8.0/24 via 192.0.2.22", True)
            await api.client.delete(NODES, "", "n3")
            out["deleted"] = await settle("10.244.9.0/24", False)
            for _ in range(200):  # the callback runs right after the route changes
                if seen and "192.0.2.3" not in seen[-1]:
                    break
                await asyncio.sleep(0.05)
            out["node_ips"] = sorted(seen[-1]) if seen else []
            await routes.stop(remove_routes=False)  # a standalone agent stops: routes stay
            out["kept"] = sh("ip", "route").stdout
            again = NodeRoutes(api.client, "self", CLUSTER_CIDR)  # restarted: adopts them
            await again.start()
            await again.stop()
            out["stopped"] = sh("ip", "route").stdout
    sh("ip", "link", "del", "kltnodes0")
    return out


class _Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def start(self) -> None:
        self.log.append(f"start {self.name} bridge={bool(sh('ip', 'link', 'show', 'kubelite0').stdout)}")

    async def stop(self) -> None:
        self.log.append(
            f"stop {self.name} table={bool(sh('nft', 'list', 'table', 'ip', 'kubelite-node').stdout)}"
        )


async def drive_manager(work: Path) -> Obj:
    """The agent's network lifecycle (AgentNetwork) against a real in-process API server: waits
    for the podCIDR, sets up, starts proxy and policy after the node network, stops in reverse."""
    from kubelite.agent.network.manager import NODES, AgentNetwork, NetworkSettings
    from tests.unit.lifecycle_api import api_server

    out: Obj = {}
    log: list[str] = []
    settings = NetworkSettings(
        node_ip="192.0.2.1",
        cluster_cidr=CLUSTER_CIDR,
        service_cidr=SERVICE_CIDR,
        state_dir=work / "mgr" / "cni",
        conf_dir=work / "mgr" / "cni" / "net.d",
        bin_dirs=["/usr/lib/cni"],
    )
    net = AgentNetwork(settings)
    net._proxy = lambda c, n: _Recorder("proxy", log)  # type: ignore[method-assign]
    net._policy = lambda c, n: _Recorder("policy", log)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        async with api_server(Path(tmp)) as api:
            node: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}}
            await api.client.create(NODES, "", node)

            async def assign() -> None:  # what the nodeipam controller does, a little later
                await asyncio.sleep(0.3)
                await api.client.patch(NODES, "", "n1", {"spec": {"podCIDR": "10.244.12.0/24"}})

            task = asyncio.create_task(assign())
            await net.start(api.client, "n1", pod_cidr_timeout=10)
            await task
            out["pod_cidr"] = net.pod_cidr
            out["conf"] = sorted(p.name for p in settings.conf_dir.iterdir())
            out["bridge"] = sh("ip", "-4", "-o", "addr", "show", "dev", "kubelite0").stdout
            await net.stop(teardown=True)
            out["log"] = log
            out["after"] = sh("ip", "-o", "link").stdout + sh("nft", "list", "tables").stdout
    return out


def driver_main() -> None:
    prefix, work = sys.argv[1], Path(sys.argv[2])
    print("RESULT " + json.dumps(asyncio.run(drive(prefix, work))))


# ----------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def observed() -> Obj:
    prefix = f"kltest-h1-{os.getpid()}"
    names = [f"{prefix}-host", f"{prefix}-a", f"{prefix}-b"]
    work = Path(tempfile.mkdtemp(prefix="kltest-h1-"))
    try:
        for n in names:
            sh("ip", "netns", "add", n, check=True)
            sh("ip", "link", "set", "lo", "up", netns=n, check=True)
        res = sh(
            sys.executable,
            "-m",
            "tests.agent.test_network_cni",
            prefix,
            str(work),
            netns=names[0],
            timeout=90,
        )
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
        assert lines, f"driver failed (rc {res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
        data: Obj = json.loads(lines[0][len("RESULT ") :])
        data["host_links_after"] = sh("ip", "-o", "link", netns=names[0]).stdout
        return data
    finally:
        for n in names:
            sh("ip", "netns", "del", n)
        shutil.rmtree(work, ignore_errors=True)


def test_node_setup(observed: Obj) -> None:
    assert observed["sysctls"] == {
        "net/ipv4/ip_forward": "1",
        "net/ipv4/conf/all/route_localnet": "1",
        "net/bridge/bridge-nf-call-iptables": "1",
    }
    assert "10.244.7.1/24" in observed["bridge_addr"]
    assert observed["service_route"].startswith(f"{SERVICE_CIDR} dev kubelite0")
    table = observed["table"]
    assert "hook forward" in table and "ct state established,related accept" in table
    assert f"ip saddr {CLUSTER_CIDR} drop" in table
    assert "192.0.2.1" in table  # the node IPs set
    assert observed["conf_written"].endswith("10-kubelite.conflist")


def test_pod_ips_from_pod_cidr(observed: Obj) -> None:
    import ipaddress

    ips = observed["ips"]
    assert len(set(ips.values())) == 2
    for ip in ips.values():
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(POD_CIDR)
        assert ip != "10.244.7.1"
    assert "default via 10.244.7.1" in observed["pod_routes"]
    assert len(observed["cache_files"]) == 2


def test_pod_to_pod_and_host(observed: Obj) -> None:
    ips = observed["ips"]
    assert observed["server"] == "ready"
    assert observed["ping_a_b"] == 0
    assert observed["tcp_a_b"] == f"hello-from-b {ips['a']}"
    assert observed["tcp_host_b"] == "hello-from-b 10.244.7.1"


def test_host_port(observed: Obj) -> None:
    assert observed["hostport_localhost"].startswith("hello-from-b "), observed["hostport_localhost"]
    assert observed["hostport_from_pod"].startswith("hello-from-b "), observed["hostport_from_pod"]
    assert observed["hostport_chains"] > 0


def test_del_from_cache_after_restart(observed: Obj) -> None:
    assert observed["cache_after_del"] == []
    assert [n for n in observed["ipam_after_del"] if n[0].isdigit()] == []  # every IP released
    assert observed["veths_after_del"].strip() == ""


def test_host_gw_routes(observed: Obj) -> None:
    r = observed["routes"]
    assert "10.244.8.0/24 via 192.0.2.2" in r["initial"]
    assert "10.244.7.0/24 via" not in r["initial"]  # never a route to itself
    assert "10.244.99.0/24" not in r["initial"]  # a stale route of an earlier run is removed
    assert "10.244.9.0/24 via 192.0.2.3" in r["added"]
    assert "10.244.8.0/24 via 192.0.2.22" in r["changed"] and "192.0.2.2 " not in r["changed"]
    assert "10.244.9.0/24" not in r["deleted"]
    assert r["node_ips"] == ["192.0.2.1", "192.0.2.22"]
    assert "10.244.8.0/24 via 192.0.2.22" in r["kept"]
    assert "via 192.0.2" not in r["stopped"]


def test_teardown_leaves_nothing(observed: Obj) -> None:
    after = observed["after_teardown"]
    assert "kubelite0" not in after["links"] and "veth" not in after["links"]
    assert "10.96.0.0" not in after["routes"] and "10.244." not in after["routes"]
    assert after["tables"].strip() == ""  # node table, and the nat tables portmap made
    assert "CNI-" not in after["nat6"]
    assert "CNI-" not in after["nat"]
    assert after["ipam_exists"] is False
    assert after["ip_forward"] == observed["ip_forward_before"]  # restored


def test_agent_network_lifecycle(observed: Obj) -> None:
    m = observed["manager"]
    assert m["pod_cidr"] == "10.244.12.0/24"
    assert m["conf"] == ["10-kubelite.conflist"]
    assert "10.244.12.1/24" in m["bridge"]
    assert m["log"] == [
        "start proxy bridge=True",
        "start policy bridge=True",
        "stop policy table=True",
        "stop proxy table=True",
    ]
    assert "kubelite0" not in m["after"] and "kubelite-node" not in m["after"]


def test_timings(observed: Obj) -> None:
    print(
        f"\nnode setup {observed['node_setup_ms']:.1f} ms, "
        f"CNI ADD {observed['add_ms']}, DEL {observed['del_ms']}"
    )
    assert max(observed["add_ms"]) < 2000 and max(observed["del_ms"]) < 2000


if __name__ == "__main__":
    driver_main()
