"""The node's NetworkPolicy enforcer: informers -> compiler -> nftables.

Like a CNI's policy agent (e.g. kube-network-policies, Calico's Felix): it watches
NetworkPolicies, Pods and Namespaces (plus this Node's podCIDRs, for the bridge gateway,
and the cluster DNS server's EndpointSlices, see :mod:`.dns`), keeps parsed views of
them, and after every burst of changes recompiles the node's ruleset and applies the
difference to the last applied one in one ``nft -f -`` transaction.  The first sync, a
sync after a failure and a periodic resync replace the whole table (atomically).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.netpol import dns
from kubelite.netpol.compiler import Cluster, compile_ruleset
from kubelite.netpol.model import PodInfo, Policy, namespace_labels, parse_pod, parse_policy
from kubelite.netpol.nft import Nft
from kubelite.netpol.render import NftState, full_script, to_state, update_script
from kubelite.netpol.ruleset import Ruleset

log = logging.getLogger("kubelite.netpol")
Obj = dict[str, Any]

NETWORK_POLICIES = Resource("networking.k8s.io", "v1", "networkpolicies")
PODS = Resource("", "v1", "pods")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
NODES = Resource("", "v1", "nodes", namespaced=False)


@dataclass
class PolicyConfig:
    node_name: str
    node_ips: list[str]  # traffic from the node itself (probes) is always allowed
    cluster_cidr: str  # informational: pods are recognised by their IPs, not by this range
    table: str = "kubelite-policy"
    nft: str = "nft"  # a command line: "ip netns exec NS nft" works too
    sync_delay: float = 0.05  # coalesce bursts of changes for this long
    resync_period: float = 300.0  # full table rewrite this often (repairs drift)
    retry_delay: float = 1.0


@dataclass
class SyncStats:
    syncs: int = 0
    full_syncs: int = 0
    failures: int = 0
    last_seconds: float = 0.0
    last_compile_seconds: float = 0.0
    last_script_lines: int = 0
    history: list[float] = field(default_factory=list)


def gateway_addresses(node: Obj | None) -> list[str]:
    """The pod bridge's gateway: the first address of each IPv4 podCIDR of the node."""
    spec = (node or {}).get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.num_addresses > 1:
            out.append(str(net.network_address + 1))
    return out


def _compile(
    policies: list[Policy],
    pods: dict[str, PodInfo],
    namespaces: dict[str, Mapping[str, str]],
    node_name: str,
    node_addrs: list[str],
) -> Ruleset:
    return compile_ruleset(policies, Cluster(pods, namespaces), node_name, node_addrs)


class PolicyEnforcer:
    def __init__(self, client: Client, config: PolicyConfig) -> None:
        self.client = client
        self.config = config
        self.nft = Nft(config.nft)
        self.stats = SyncStats()
        self.ruleset: Ruleset | None = None
        self._policies: dict[str, Policy] = {}
        self._pods: dict[str, PodInfo] = {}
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._gateways: list[str] = []
        self._dns: dict[str, dict[str, PodInfo]] = {}  # slice key -> virtual DNS pods
        self._applied: NftState | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.informers = [
            self._informer(Informer(client, NETWORK_POLICIES), self._on_policy),
            self._informer(Informer(client, PODS), self._on_pod),
            self._informer(Informer(client, NAMESPACES), self._on_namespace),
            self._informer(
                Informer(client, NODES, field_selector=f"metadata.name={config.node_name}"), self._on_node
            ),
            self._informer(
                Informer(client, dns.SLICES, dns.NAMESPACE, label_selector=dns.SELECTOR), self._on_dns_slice
            ),
        ]

    @staticmethod
    def _informer(inf: Informer, handler: Any) -> Informer:
        inf.add_handler(handler)
        return inf

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Informers synced and the first full ruleset applied (raises if nft refuses it)."""
        for inf in self.informers:
            inf.start()
        try:
            for inf in self.informers:
                await inf.wait_synced()
            await self.sync(full=True)
        except BaseException:
            for inf in self.informers:
                await inf.stop()
            raise
        self._task = asyncio.create_task(self._loop(), name="netpol-sync")
        log.info(
            "NetworkPolicy enforcer started: table ip %s, %d policies, %d pod chains",
            self.config.table,
            len(self._policies),
            len(self.ruleset.pod_chains) if self.ruleset else 0,
        )

    async def stop(self) -> None:
        """Stop syncing and delete the table (pods are no longer isolated)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for inf in self.informers:
            await inf.stop()
        try:
            await self.nft.delete_table(self.config.table)
        except Exception:
            log.exception("could not delete nft table %s", self.config.table)
        self._applied = None

    # ------------------------------------------------------------------ handlers

    def _changed(self) -> None:
        self._dirty.set()

    def _on_policy(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self._policies.pop(key, None)
        else:
            self._policies[key] = parse_policy(new)
        self._changed()

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        info = parse_pod(new) if new is not None else None
        if self._pods.get(key) == info:
            return  # e.g. a status condition changed: nothing policies care about
        if info is None:
            self._pods.pop(key, None)
        else:
            self._pods[key] = info
        self._changed()

    def _on_namespace(self, key: str, old: Obj | None, new: Obj | None) -> None:
        labels = namespace_labels(new) if new is not None else None
        if self._namespaces.get(key) == labels:
            return
        if labels is None:
            self._namespaces.pop(key, None)
        else:
            self._namespaces[key] = labels
        self._changed()

    def _on_dns_slice(self, key: str, old: Obj | None, new: Obj | None) -> None:
        pods = dns.virtual_pods(new)
        if self._dns.get(key, {}) == pods:
            return
        if pods:
            self._dns[key] = pods
        else:
            self._dns.pop(key, None)
        self._changed()

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        gateways = gateway_addresses(new)
        if gateways != self._gateways:
            self._gateways = gateways
            self._changed()

    # ------------------------------------------------------------------ syncing

    def node_addresses(self) -> list[str]:
        out = []
        for ip in [*self.config.node_ips, *self._gateways]:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(ip).version == 4:
                    out.append(ip)
        return out

    def compile(self) -> Ruleset:
        """The ruleset for the current caches (runs in the caller's thread)."""
        return self._snapshot()()

    def _snapshot(self) -> functools.partial[Ruleset]:
        """A compile call over copies of the caches, safe to run in a worker thread."""
        return functools.partial(
            _compile,
            list(self._policies.values()),
            {**self._pods, **{k: p for pods in self._dns.values() for k, p in pods.items()}},
            dict(self._namespaces),
            self.config.node_name,
            self.node_addresses(),
        )

    def _script(self, rs: Ruleset, full: bool) -> tuple[NftState, str]:
        state = to_state(rs)
        table = self.config.table
        if full or self._applied is None:
            return state, full_script(table, state)
        return state, update_script(table, self._applied, state)

    async def sync(self, full: bool = False) -> None:
        """Recompile and apply: the difference to the last applied state, or everything.

        Compiling happens in a worker thread on a snapshot of the caches, so a big cluster
        does not stall the event loop.
        """
        async with self._lock:
            self._dirty.clear()  # changes from here on trigger another sync
            t0 = time.monotonic()
            full = full or self._applied is None
            rs = await asyncio.to_thread(self._snapshot())
            state, script = await asyncio.to_thread(self._script, rs, full)
            self.stats.last_compile_seconds = time.monotonic() - t0
            try:
                await self.nft.apply(script)
            except Exception:
                self._applied = None  # the kernel state is unknown: rewrite everything next time
                self.stats.failures += 1
                raise
            self._applied, self.ruleset = state, rs
            self._record(time.monotonic() - t0, full, script)

    def _record(self, seconds: float, full: bool, script: str) -> None:
        st = self.stats
        st.syncs += 1
        st.full_syncs += int(full)
        st.last_seconds = seconds
        st.last_script_lines = script.count("\n")
        st.history = [*st.history[-99:], seconds]
        log.debug("netpol sync full=%s lines=%d in %.1f ms", full, st.last_script_lines, seconds * 1e3)

    async def _loop(self) -> None:
        cfg = self.config
        while True:
            full = False
            try:
                await asyncio.wait_for(self._dirty.wait(), cfg.resync_period)
            except TimeoutError:
                full = True
            await asyncio.sleep(cfg.sync_delay)
            try:
                await self.sync(full=full)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("NetworkPolicy sync failed; full resync in %.1fs", cfg.retry_delay)
                await asyncio.sleep(cfg.retry_delay)
                self._dirty.set()
