"""The node's side of the pod network: sysctls, the pod bridge, the safety route, the node table.

What flannel/kube-proxy and the bridge CNI plugin leave to the node, done in the agent's own
network namespace:

* sysctls ``net.ipv4.ip_forward=1`` (pods reach other nodes and Service backends),
  ``net.ipv4.conf.all.route_localnet=1`` (NodePort/hostPort on 127.0.0.1) and
  ``net.bridge.bridge-nf-call-iptables=1`` (bridged pod-to-pod traffic sees the Service NAT);
  the first two are restored on teardown.
* the bridge (``kubelite0``) with the podCIDR's first address as gateway; a bridge left by a
  crash is reused;
* ``<service CIDR> dev <bridge>``: a virtual IP no proxy rule translated dies on the bridge
  instead of following the default route out of the machine;
* the nft table ``ip kubelite-node``: in ``forward``, established/related, cluster-internal
  traffic, traffic to the service CIDR and to the nodes' addresses are accepted, other traffic
  from pods is dropped (or masqueraded with ``--masquerade-egress``).

Teardown deletes all of it, plus the ``CNI-HOSTPORT-*`` iptables chains the portmap plugin
leaves behind once no pod uses them, and the IPAM state.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import shlex
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.agent.network.netconf import gateway
from kubelite.agent.runtime.base import ContainerRuntimeError
from kubelite.agent.runtime.util import read_json, run_cmd, write_json

log = logging.getLogger("kubelite.agent.network")
SYSCTL = Path("/proc/sys")
RESTORED_SYSCTLS = ("net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet")
BRIDGE_NF = "net/bridge/bridge-nf-call-iptables"
HOSTPORT_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")


class NetworkSetupError(ContainerRuntimeError):
    """A host command of the node network setup failed."""


@dataclass
class NodeNetworkConfig:
    pod_cidr: str
    cluster_cidr: str
    service_cidr: str
    state_dir: Path  # DATA_DIR/agent/cni: node.json (what to undo) and ipam/
    bridge: str = "kubelite0"
    masquerade_egress: bool = False
    table: str = "kubelite-node"
    nft: str = "nft"
    iptables: tuple[str, ...] = ("iptables", "ip6tables")
    node_ips: list[str] = field(default_factory=list)

    @property
    def ipam_dir(self) -> Path:
        return self.state_dir / "ipam"


async def _run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    rc, out = await run_cmd(*argv, stdin=stdin.encode() if stdin is not None else None, timeout=30)
    if rc != 0 and check:
        raise NetworkSetupError(f"{' '.join(argv[:6])} failed: {out}")
    return out if rc == 0 else ""


def node_table(cfg: NodeNetworkConfig, node_ips: Iterable[str] = ()) -> str:
    """The ``nft -f -`` transaction that (re)creates the node table."""
    cluster, service, t = cfg.cluster_cidr, cfg.service_cidr, cfg.table
    ips = sorted(set(node_ips))
    elements = f" elements = {{ {', '.join(ips)} }}" if ips else ""
    egress = "accept" if cfg.masquerade_egress else "drop"
    lines = [
        f"table ip {t} {{}}",
        f"delete table ip {t}",
        f"table ip {t} {{",
        f"  set node-ips {{ type ipv4_addr;{elements} }}",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        "    ct state established,related accept",
        f"    ip saddr {cluster} ip daddr {cluster} accept",
        f"    ip daddr {cluster} accept",
        f"    ip daddr {service} accept",
        f"    ip saddr {cluster} ip daddr @node-ips accept",
        f"    ip saddr {cluster} {egress}",
        "  }",
    ]
    if cfg.masquerade_egress:
        lines += [
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
            f"    ip saddr {cluster} ip daddr != {cluster} ip daddr != @node-ips masquerade",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


class NodeNetwork:
    """Sets up and tears down the node's pod network plumbing (idempotent)."""

    def __init__(self, cfg: NodeNetworkConfig) -> None:
        self.cfg = cfg
        self.state_file = cfg.state_dir / "node.json"
        self.node_ips: set[str] = set(cfg.node_ips)

    async def setup(self) -> None:
        cfg = self.cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        state = read_json(self.state_file) or {}
        if "sysctls" not in state:  # the values before the first setup (kept across restarts)
            state["sysctls"] = {k: _read_sysctl(k) for k in RESTORED_SYSCTLS}
        if "nat_tables_existed" not in state:  # portmap (via iptables-nft) creates them
            state["nat_tables_existed"] = {
                fam: bool(await _run(cfg.nft, "list", "table", fam, "nat", check=False))
                for fam in ("ip", "ip6")
            }
        state.update({"bridge": cfg.bridge, "service_cidr": cfg.service_cidr, "table": cfg.table})
        write_json(self.state_file, state)
        for key in RESTORED_SYSCTLS:
            _write_sysctl(key, "1")
        if (SYSCTL / BRIDGE_NF).exists():
            _write_sysctl(BRIDGE_NF, "1")
        await self._bridge()
        await _run("ip", "route", "replace", cfg.service_cidr, "dev", cfg.bridge)
        await self.apply_table()

    async def _bridge(self) -> None:
        cfg = self.cfg
        net = ipaddress.ip_network(cfg.pod_cidr, strict=False)
        address = f"{gateway(cfg.pod_cidr)}/{net.prefixlen}"
        kind = await link_kind(cfg.bridge)
        if kind is None:
            await _run("ip", "link", "add", cfg.bridge, "type", "bridge")
        elif kind != "bridge":
            raise NetworkSetupError(f"{cfg.bridge} exists and is not a bridge (--bridge-name)")
        current = await _ipv4_addresses(cfg.bridge)
        for other in current - {address}:  # a podCIDR change: the old gateway address goes
            await _run("ip", "addr", "del", other, "dev", cfg.bridge, check=False)
        if address not in current:
            await _run("ip", "addr", "add", address, "dev", cfg.bridge)
        await _run("ip", "link", "set", cfg.bridge, "up")

    async def apply_table(self) -> None:
        await _run(self.cfg.nft, "-f", "-", stdin=node_table(self.cfg, self.node_ips))

    async def set_node_ips(self, ips: Iterable[str]) -> None:
        """The nodes' addresses pods may reach without masquerade (one set flush + add)."""
        new = set(ips)
        if new == self.node_ips:
            return
        self.node_ips = new
        t = self.cfg.table
        body = f"flush set ip {t} node-ips\n"
        if new:
            body += f"add element ip {t} node-ips {{ {', '.join(sorted(new))} }}\n"
        await _run(self.cfg.nft, "-f", "-", stdin=body)

    async def teardown(self) -> None:
        """Remove everything :meth:`setup` and the plugins left (best effort: nothing raises)."""
        state = read_json(self.state_file) or {}
        await self._remove_own(state)
        await self._remove_plugin_leftovers(state)
        for key, value in (state.get("sysctls") or {}).items():
            if value is not None:
                with contextlib.suppress(NetworkSetupError):
                    _write_sysctl(str(key), str(value))
        shutil.rmtree(self.cfg.ipam_dir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)

    async def _remove_own(self, state: dict[str, object]) -> None:
        """The node table, the safety route and the bridge (with it the pods' veths)."""
        cfg = self.cfg
        bridge = str(state.get("bridge") or cfg.bridge)
        service_cidr = str(state.get("service_cidr") or cfg.service_cidr)
        await _run(cfg.nft, "delete", "table", "ip", str(state.get("table") or cfg.table), check=False)
        await _run("ip", "route", "del", service_cidr, "dev", bridge, check=False)
        if await link_kind(bridge) == "bridge":
            await _run("ip", "link", "del", bridge, check=False)

    async def _remove_plugin_leftovers(self, state: dict[str, object]) -> None:
        """portmap's shared hostPort chains, and the nat tables iptables-nft made for them."""
        for binary in self.cfg.iptables:
            await remove_hostport_chains(binary)
        existed = state.get("nat_tables_existed")
        for family, was_there in (existed if isinstance(existed, dict) else {}).items():
            if not was_there:
                await _drop_empty_nat_table(self.cfg.nft, str(family))


async def link_kind(dev: str) -> str | None:
    """None when ``dev`` does not exist, else its kind ("bridge", "veth", "" for plain devices).
    Asked through netlink (``ip``), not /sys, which shows the namespace that mounted it."""
    rc, out = await run_cmd("ip", "-j", "-d", "link", "show", "dev", dev)
    if rc != 0:
        return None
    try:
        return str(((json.loads(out) or [{}])[0].get("linkinfo") or {}).get("info_kind") or "")
    except (ValueError, AttributeError, IndexError):
        return ""


def _read_sysctl(key: str) -> str | None:
    try:
        return (SYSCTL / key).read_text().strip()
    except OSError:
        return None


def _write_sysctl(key: str, value: str) -> None:
    try:
        (SYSCTL / key).write_text(value)
    except OSError as e:
        raise NetworkSetupError(f"cannot set sysctl {key.replace('/', '.')}={value}: {e}") from e


async def _ipv4_addresses(dev: str) -> set[str]:
    out = await _run("ip", "-j", "-4", "addr", "show", "dev", dev, check=False)
    found: set[str] = set()
    try:
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info") or []:
                found.add(f"{a['local']}/{a['prefixlen']}")
    except (ValueError, KeyError, TypeError):
        pass
    return found


async def remove_hostport_chains(iptables: str = "iptables") -> bool:
    """Delete the portmap plugin's shared ``CNI-HOSTPORT-*`` nat chains and the jumps into them,
    but only once no pod's ``CNI-DN-*`` chain hangs off them (another CNI user may share them).
    Returns True when they are gone."""
    rc, dump = await run_cmd(iptables + "-save", "-t", "nat")
    if rc != 0 or "CNI-HOSTPORT-" not in dump:
        return True
    rules = [ln for ln in dump.splitlines() if ln.startswith("-A ")]
    if any(ln.startswith("-A CNI-HOSTPORT-DNAT ") for ln in rules):
        log.info("CNI-HOSTPORT-DNAT still has pods' rules: keeping the hostPort chains")
        return False
    for ln in rules:
        parts = ln.split()
        if parts[1] not in HOSTPORT_CHAINS and any(f"-j {c}" in ln for c in HOSTPORT_CHAINS):
            await run_cmd(iptables, "-t", "nat", "-D", *shlex.split(ln)[1:])
    for chain in HOSTPORT_CHAINS:
        await run_cmd(iptables, "-t", "nat", "-F", chain)
    for chain in HOSTPORT_CHAINS:
        await run_cmd(iptables, "-t", "nat", "-X", chain)
    return True


async def _drop_empty_nat_table(nft: str, family: str) -> None:
    """iptables-nft created ``<family> nat`` for the portmap chains; remove it once it holds no
    rule (only called when it did not exist before the node was set up)."""
    rc, out = await run_cmd(nft, "-a", "list", "table", family, "nat")
    if rc != 0:
        return
    body = [ln.strip() for ln in out.splitlines()]
    has_rules = any("# handle" in ln and not ln.startswith(("chain ", "table ")) for ln in body)
    chains = [ln for ln in body if ln.startswith("chain ")]
    if not has_rules and all(
        c.split()[1] in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING") for c in chains
    ):
        await run_cmd(nft, "delete", "table", family, "nat")
