"""Unit tests of the agent's network pieces that need no root: resolv.conf per dnsPolicy, the
default CNI config, config loading, the CNI protocol against fake plugins (env, stdin, chaining,
cache, DEL order, errors, timeouts), hostPort mappings, the node table and host-gw routes."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.network import netconf
from kubelite.agent.network.cni import (
    Attachment,
    CNIClient,
    CNIError,
    PodRef,
    load_network,
    parse_conf,
    plugin_stdin,
    pod_ip,
)
from kubelite.agent.network.dns import PodDNS, cluster_dns_default, parse_resolv_conf
from kubelite.agent.network.manager import NetworkSettings, wait_pod_cidr
from kubelite.agent.network.node import NodeNetworkConfig, node_table
from kubelite.agent.network.pod import PodNetwork, port_mappings, runtime_config
from kubelite.agent.network.routes import desired_routes
from kubelite.agent.runtime.base import Sandbox, SandboxConfig
from kubelite.api import errors

Obj = dict[str, Any]
HOST = (
    "nameserver 10.255.255.53\nnameserver 10.0.0.2\nsearch corp.example lab.example.\noptions edns0 ndots:2\n"
)


def pod(policy: str | None = None, host_network: bool = False, dns_config: Obj | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c"}]}
    if policy:
        spec["dnsPolicy"] = policy
    if host_network:
        spec["hostNetwork"] = True
    if dns_config is not None:
        spec["dnsConfig"] = dns_config
    return {"metadata": {"name": "p", "namespace": "team"}, "spec": spec}


@pytest.fixture
def dns(tmp_path: Path) -> PodDNS:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(HOST)
    return PodDNS(["10.96.0.10"], "cluster.local", resolv)


# ----------------------------------------------------------------------------- resolv.conf
def test_cluster_first(dns: PodDNS) -> None:
    assert dns.resolv_conf(pod()) == (
        "search team.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


def test_cluster_first_host_network_falls_back_to_default(dns: PodDNS) -> None:
    conf = dns.pod_config(pod("ClusterFirst", host_network=True))
    assert conf.nameservers == ["10.255.255.53", "10.0.0.2"]
    assert conf.searches == ["corp.example", "lab.example"]
    assert conf.options == ["edns0", "ndots:2"]


def test_cluster_first_with_host_net(dns: PodDNS) -> None:
    conf = dns.pod_config(pod("ClusterFirstWithHostNet", host_network=True))
    assert conf.nameservers == ["10.96.0.10"]
    assert conf.searches[:3] == ["team.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert conf.options == ["ndots:5"]


def test_default_is_the_hosts(dns: PodDNS) -> None:
    conf = dns.pod_config(pod("Default"))
    assert conf.nameservers == ["10.255.255.53", "10.0.0.2"] and conf.options == ["edns0", "ndots:2"]


def test_none_only_dns_config(dns: PodDNS) -> None:
    cfg = {
        "nameservers": ["1.2.3.4"],
        "searches": ["a.example"],
        "options": [{"name": "ndots", "value": "1"}],
    }
    assert dns.resolv_conf(pod("None", dns_config=cfg)) == (
        "search a.example\nnameserver 1.2.3.4\noptions ndots:1\n"
    )
    assert dns.resolv_conf(pod("None", dns_config={})) == "\n"


def test_dns_config_appended_and_merged(dns: PodDNS) -> None:
    cfg = {
        "nameservers": ["10.96.0.10", "9.9.9.9"],
        "searches": ["svc.cluster.local", "extra.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "single-request-reopen"}, {"name": "edns0"}],
    }
    conf = dns.pod_config(pod("ClusterFirst", dns_config=cfg))
    assert conf.nameservers == ["10.96.0.10", "9.9.9.9"]
    assert conf.searches[-1] == "extra.example" and conf.searches.count("svc.cluster.local") == 1
    assert conf.options == ["ndots:2", "single-request-reopen", "edns0"]


def test_limits(dns: PodDNS) -> None:
    cfg = {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"], "searches": [f"d{i}.example" for i in range(40)]}
    conf = dns.pod_config(pod("ClusterFirst", dns_config=cfg))
    assert conf.nameservers == ["10.96.0.10", "1.1.1.1", "2.2.2.2"]
    assert len(conf.searches) == 32
    assert conf.warnings == [
        "Nameserver limits were exceeded, some nameservers have been omitted, "
        "the applied nameserver line is: 10.96.0.10 1.1.1.1 2.2.2.2",
        "Search Line limits were exceeded, some search paths have been omitted, "
        "the applied search line is: " + " ".join(conf.searches),
    ]
    assert dns.pod_config(pod()).warnings == []


def test_no_cluster_dns_falls_back_to_host(tmp_path: Path) -> None:
    (tmp_path / "r").write_text(HOST)
    assert PodDNS([], "cluster.local", tmp_path / "r").pod_config(pod()).nameservers[0] == "10.255.255.53"


def test_parse_and_defaults() -> None:
    conf = parse_resolv_conf("# c\nsearch a b\nsearch c.\nnameserver 1.1.1.1\noptions x\noptions y:1\n")
    assert (conf.searches, conf.options, conf.nameservers) == (["c"], ["y:1"], ["1.1.1.1"])
    assert cluster_dns_default("10.96.0.0/12") == "10.96.0.10"
    assert cluster_dns_default("10.43.0.0/16") == "10.43.0.10"


# ----------------------------------------------------------------------------- CNI config
def test_default_config_written_and_refreshed(tmp_path: Path) -> None:
    d = tmp_path / "net.d"
    path = netconf.write_default(d, "10.244.3.0/24", "kubelite0", tmp_path / "ipam")
    assert path == d / "10-kubelite.conflist"
    net = load_network(d)
    assert (
        net is not None
        and net.name == "kubelite"
        and [p["type"] for p in net.plugins] == ["bridge", "portmap"]
    )
    bridge = net.plugins[0]
    assert bridge["bridge"] == "kubelite0" and bridge["isGateway"] and bridge["hairpinMode"]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24", "gateway": "10.244.3.1"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert net.plugins[1] == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    netconf.write_default(d, "10.244.9.0/24", "kubelite0", tmp_path / "ipam")
    net = load_network(d)
    assert net is not None and net.plugins[0]["ipam"]["ranges"][0][0]["subnet"] == "10.244.9.0/24"
    assert sorted(p.name for p in d.iterdir()) == ["10-kubelite.conflist"]


def test_user_config_wins(tmp_path: Path) -> None:
    d = tmp_path / "net.d"
    d.mkdir()
    (d / "05-mine.conf").write_text(json.dumps({"cniVersion": "1.0.0", "name": "mine", "type": "ptp"}))
    assert netconf.write_default(d, "10.244.3.0/24", "kubelite0", tmp_path) is None
    net = load_network(d)
    assert net is not None and net.name == "mine" and net.plugins == ({"type": "ptp"},)


def test_config_order_and_invalid_files_skipped(tmp_path: Path) -> None:
    (tmp_path / "00-broken.conflist").write_text("{not json")
    (tmp_path / "01-noplugins.conflist").write_text(json.dumps({"name": "x", "plugins": []}))
    (tmp_path / "02-readme.txt").write_text("{}")
    (tmp_path / "10-b.json").write_text(json.dumps({"name": "b", "type": "bridge"}))
    (tmp_path / "20-a.conflist").write_text(json.dumps({"name": "a", "plugins": [{"type": "bridge"}]}))
    net = load_network(tmp_path)
    assert net is not None and net.name == "b" and net.cni_version == "1.0.0"
    with pytest.raises(CNIError, match="no plugins"):
        parse_conf(tmp_path / "01-noplugins.conflist")
    assert load_network(tmp_path / "missing") is None


def test_plugin_stdin_runtime_config_by_capability() -> None:
    net = netconf.default_conflist("10.244.3.0/24", "kubelite0", Path("/x"))
    from kubelite.agent.network.cni import NetworkConfigList

    nl = NetworkConfigList(net["name"], net["cniVersion"], tuple(net["plugins"]))
    rc = {"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}], "bandwidth": {}}
    bridge = plugin_stdin(nl, nl.plugins[0], rc, None)
    assert "runtimeConfig" not in bridge and "prevResult" not in bridge
    assert bridge["name"] == "kubelite" and bridge["cniVersion"] == "1.0.0"
    pm = plugin_stdin(nl, nl.plugins[1], rc, {"cniVersion": "1.0.0", "ips": []})
    assert pm["runtimeConfig"] == {"portMappings": rc["portMappings"]}
    assert pm["prevResult"] == {"cniVersion": "1.0.0", "ips": []}


def test_port_mappings_and_runtime_config() -> None:
    p = {
        "spec": {
            "initContainers": [{"name": "i", "ports": [{"containerPort": 1, "hostPort": 0}]}],
            "containers": [
                {"name": "a", "ports": [{"containerPort": 8080, "hostPort": 80}, {"containerPort": 9}]},
                {
                    "name": "b",
                    "ports": [
                        {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"}
                    ],
                },
            ],
        }
    }
    pm = port_mappings(p)
    assert pm == ((80, 8080, "tcp", ""), (53, 53, "udp", "127.0.0.1"))
    cfg = SandboxConfig("u", "ns", "n", "h", port_mappings=pm)
    assert runtime_config(cfg) == {
        "portMappings": [
            {"hostPort": 80, "containerPort": 8080, "protocol": "tcp"},
            {"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
        ]
    }
    assert runtime_config(SandboxConfig("u", "ns", "n", "h")) == {}


def test_pod_ip_prefers_the_sandbox_ipv4() -> None:
    result = {
        "interfaces": [{"name": "br"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "fd00::5/64", "interface": 1}, {"address": "10.244.3.5/24", "interface": 1}],
    }
    assert pod_ip(result) == "10.244.3.5"
    assert pod_ip({"ips": [{"address": "fd00::5/64"}]}) == "fd00::5"
    assert pod_ip({}) == ""


# ----------------------------------------------------------------------------- fake plugins
FAKE = """#!{python}
# a fake CNI plugin: logs its command, env and stdin; answers like a real one
import json, os, sys
name = os.path.basename(sys.argv[0])
keys = ("command", "containerid", "netns", "ifname", "path", "args")
env = {{k: os.environ.get("CNI_" + k.upper(), "") for k in keys}}
with open(os.path.join(os.path.dirname(sys.argv[0]), "calls.log"), "a") as f:
    f.write(json.dumps({{"plugin": name, **env, "stdin": json.load(sys.stdin)}}) + "\\n")
if name == "failing":
    err = {{"code": 7, "msg": "no more addresses", "details": "range 10.244.3.0/24 is full"}}
    print(json.dumps({{"cniVersion": "1.0.0", **err}}))
    sys.exit(1)
if name == "crashing":
    print("panic: boom", file=sys.stderr)
    sys.exit(2)
if name == "slow":
    os.system("sleep 5")
if env["command"] == "ADD":
    ifaces = [{{"name": "eth0", "sandbox": env["netns"]}}]
    ips = [{{"address": "10.244.3.7/24", "interface": 0}}]
    print(json.dumps({{"cniVersion": "1.0.0", "interfaces": ifaces, "ips": ips, "by": name}}))
"""


def fake_plugins(d: Path, *names: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / n).write_text(FAKE.format(python=sys.executable))
        (d / n).chmod((d / n).stat().st_mode | stat.S_IEXEC)
    return d


def calls(d: Path) -> list[Obj]:
    log = d / "calls.log"
    return [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []


def write_list(conf_dir: Path, *types: str) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    plugins = [
        {"type": t, **({"capabilities": {"portMappings": True}} if t == "second" else {})} for t in types
    ]
    (conf_dir / "10-test.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "testnet", "plugins": plugins})
    )


def sandbox_cfg() -> SandboxConfig:
    return SandboxConfig(
        "abcdef12-3456-7890-abcd-ef1234567890",
        "team",
        "web-0",
        "web-0",
        port_mappings=((80, 8080, "tcp", ""),),
    )


def test_add_and_del_protocol(tmp_path: Path) -> None:
    bins = fake_plugins(tmp_path / "bin", "first", "second")
    write_list(tmp_path / "net.d", "first", "second")
    net = PodNetwork(tmp_path / "net.d", [str(tmp_path / "nope"), str(bins)], tmp_path / "cache")
    ip = asyncio.run(net.setup(sandbox_cfg(), "/var/run/netns/kubelite-abcdef123456"))
    assert ip == "10.244.3.7"
    add1, add2 = calls(bins)
    assert (add1["plugin"], add1["command"], add2["plugin"]) == ("first", "ADD", "second")
    assert add1["containerid"] == "abcdef123456" and add1["ifname"] == "eth0"
    assert add1["netns"] == "/var/run/netns/kubelite-abcdef123456"
    assert add1["path"] == f"{tmp_path / 'nope'}:{bins}"
    assert add1["args"] == (
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web-0;"
        "K8S_POD_INFRA_CONTAINER_ID=abcdef123456;K8S_POD_UID=abcdef12-3456-7890-abcd-ef1234567890"
    )
    assert add1["stdin"] == {"type": "first", "name": "testnet", "cniVersion": "1.0.0"}
    assert add2["stdin"]["prevResult"]["by"] == "first"
    assert add2["stdin"]["runtimeConfig"] == {
        "portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]
    }
    # the config changes, the agent restarts: DEL still uses what the ADD cached, in reverse
    (tmp_path / "net.d" / "10-test.conflist").unlink()
    (bins / "calls.log").unlink()
    fresh = PodNetwork(tmp_path / "net.d", [str(bins)], tmp_path / "cache")
    sb = Sandbox("abcdef123456", sandbox_cfg(), ip=ip, netns_path="/var/run/netns/kubelite-abcdef123456")
    asyncio.run(fresh.teardown(sb))
    del2, del1 = calls(bins)
    assert (del2["plugin"], del2["command"], del1["plugin"], del1["command"]) == (
        "second",
        "DEL",
        "first",
        "DEL",
    )
    assert del2["stdin"]["prevResult"]["by"] == "second" and del1["stdin"]["prevResult"]["by"] == "second"
    assert del2["stdin"]["runtimeConfig"]["portMappings"][0]["hostPort"] == 80
    assert list((tmp_path / "cache" / "results").iterdir()) == []
    (bins / "calls.log").unlink()
    asyncio.run(fresh.teardown(sb))  # nothing cached, no config: nothing to run
    assert calls(bins) == []


def test_del_without_cache_uses_the_current_config(tmp_path: Path) -> None:
    bins = fake_plugins(tmp_path / "bin", "first", "second")
    write_list(tmp_path / "net.d", "first", "second")
    net = PodNetwork(tmp_path / "net.d", [str(bins)], tmp_path / "cache")
    asyncio.run(net.teardown(Sandbox("abcdef123456", sandbox_cfg(), netns_path="/var/run/netns/x")))
    assert [(c["plugin"], c["command"]) for c in calls(bins)] == [("second", "DEL"), ("first", "DEL")]
    assert "prevResult" not in calls(bins)[0]["stdin"]


def test_plugin_error_json_becomes_a_clear_message(tmp_path: Path) -> None:
    bins = fake_plugins(tmp_path / "bin", "first", "failing")
    write_list(tmp_path / "net.d", "first", "failing")
    net = PodNetwork(tmp_path / "net.d", [str(bins)], tmp_path / "cache")
    with pytest.raises(CNIError) as e:
        asyncio.run(net.setup(sandbox_cfg(), "/var/run/netns/x"))
    assert str(e.value) == (
        'failed to set up the pod network (network "testnet"): plugin type="failing" failed (add): '
        "no more addresses: range 10.244.3.0/24 is full (code 7)"
    )
    assert not (tmp_path / "cache" / "results").exists()


def test_plugin_crash_missing_plugin_no_config(tmp_path: Path) -> None:
    bins = fake_plugins(tmp_path / "bin", "crashing")
    write_list(tmp_path / "net.d", "crashing")
    net = PodNetwork(tmp_path / "net.d", [str(bins)], tmp_path / "cache")
    with pytest.raises(CNIError, match=r'type="crashing" failed \(add\): exit status 2: panic: boom'):
        asyncio.run(net.setup(sandbox_cfg(), "/x"))
    write_list(tmp_path / "net.d", "absent")
    with pytest.raises(CNIError, match=r'CNI plugin "absent" not found in'):
        asyncio.run(net.setup(sandbox_cfg(), "/x"))
    empty = PodNetwork(tmp_path / "empty", [str(bins)], tmp_path / "cache")
    with pytest.raises(CNIError, match="network is not ready: no CNI configuration"):
        asyncio.run(empty.setup(sandbox_cfg(), "/x"))


def test_plugin_timeout(tmp_path: Path) -> None:
    bins = fake_plugins(tmp_path / "bin", "slow")
    write_list(tmp_path / "net.d", "slow")
    client = CNIClient([str(bins)], tmp_path / "cache", timeout=0.3)
    net = load_network(tmp_path / "net.d")
    assert net is not None
    att = Attachment(net, "id1", "/x", PodRef("ns", "n", "u", "id1"))
    with pytest.raises(CNIError, match="timed out"):
        asyncio.run(client.add(att))


# ----------------------------------------------------------------------------- node pieces
def test_node_table() -> None:
    cfg = NodeNetworkConfig("10.244.3.0/24", "10.244.0.0/16", "10.96.0.0/12", Path("/x"))
    text = node_table(cfg, ["192.0.2.2", "192.0.2.1"])
    assert text.startswith("table ip kubelite-node {}\ndelete table ip kubelite-node\n")
    assert "elements = { 192.0.2.1, 192.0.2.2 }" in text
    assert "ip saddr 10.244.0.0/16 drop" in text and "masquerade" not in text
    assert "ip daddr 10.96.0.0/12 accept" in text
    cfg.masquerade_egress = True
    text = node_table(cfg)
    assert "ip saddr 10.244.0.0/16 accept" in text and "drop" not in text
    assert "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 ip daddr != @node-ips masquerade" in text


def test_desired_routes() -> None:
    def node(name: str, cidr: str | None, ip: str | None) -> Obj:
        return {
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}] if ip else []},
        }

    nodes = [node("me", "10.244.0.0/24", "192.0.2.1"), node("a", "10.244.1.0/24", "192.0.2.2"),
             node("b", None, "192.0.2.3"), node("c", "10.244.3.0/24", None)]  # fmt: skip
    assert desired_routes(nodes, "me") == {"10.244.1.0/24": "192.0.2.2"}


def test_settings_from_args(tmp_path: Path) -> None:
    import argparse

    args = argparse.Namespace(
        service_cidr="10.43.0.0/16", cluster_cidr="10.42.0.0/16", cni_conf_dir=None,
        cni_bin_dir="/a:/b", bridge_name="br9", cluster_domain="k.local", cluster_dns=None,
        masquerade_egress=True,
    )  # fmt: skip
    s = NetworkSettings.from_args(args, tmp_path, "192.0.2.5")
    assert s.cluster_dns == "10.43.0.10" and s.conf_dir == tmp_path / "cni" / "net.d"
    assert s.bin_dirs == ["/a", "/b"] and s.bridge == "br9" and s.masquerade_egress


class _NodeClient:
    def __init__(self, cidr_after: int) -> None:
        self.calls = 0
        self.cidr_after = cidr_after

    async def get(self, res: Any, ns: str, name: str) -> Obj:
        self.calls += 1
        if self.calls == 1:
            raise errors.NotFound("nodes", name)
        return {"spec": {"podCIDR": "10.244.5.0/24"} if self.calls >= self.cidr_after else {}}


def test_wait_pod_cidr() -> None:
    assert asyncio.run(wait_pod_cidr(_NodeClient(3), "n1", 5)) == "10.244.5.0/24"  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"node n1 got no spec.podCIDR within 0s.*--cluster-cidr"):
        asyncio.run(wait_pod_cidr(_NodeClient(10**6), "n1", 0.3))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- pod worker wiring
def test_worker_gives_the_sandbox_cluster_dns_and_host_ports(tmp_path: Path) -> None:
    from kubelite.agent.podworker import PodWorker
    from tests.agent.fakes import FakeAgent, make_pod

    async def main() -> None:
        agent = FakeAgent(tmp_path)
        (tmp_path / "resolv.conf").write_text(HOST)
        agent.pod_dns = PodDNS(["10.96.0.10"], "k.local", tmp_path / "resolv.conf")  # type: ignore[attr-defined]
        ports = [{"containerPort": 80, "hostPort": 8080}]
        many = {"searches": [f"s{i}.example" for i in range(40)]}
        web = make_pod([{"name": "c", "image": "img:1", "ports": ports}], dnsConfig=many)
        host = make_pod([{"name": "c", "image": "img:1", "ports": ports}], hostNetwork=True)
        for p in (web, host):
            agent.pods[p["metadata"]["uid"]] = p
            await PodWorker(agent, p["metadata"]["uid"]).sync()  # type: ignore[arg-type]
        web_cfg = agent.runtime.pods_sandboxes[web["metadata"]["uid"]].config
        assert web_cfg.dns_resolv_conf.startswith(
            "search default.svc.k.local svc.k.local k.local corp.example"
        )
        assert "nameserver 10.96.0.10\noptions ndots:5\n" in web_cfg.dns_resolv_conf
        assert web_cfg.port_mappings == ((8080, 80, "tcp", ""),)
        host_cfg = agent.runtime.pods_sandboxes[host["metadata"]["uid"]].config
        assert host_cfg.port_mappings == ()  # hostNetwork: no CNI, the port is the node's
        assert "nameserver 10.255.255.53" in host_cfg.dns_resolv_conf  # ClusterFirst -> Default
        reasons = [e[1] for e in agent.recorder.events]
        assert reasons.count("DNSConfigForming") == 1

    asyncio.run(main())
