"""Routes to the other nodes' pod CIDRs, like flannel's ``host-gw`` backend.

Every other Node with a ``spec.podCIDR`` and an ``InternalIP`` gets ``ip route replace <podCIDR>
via <InternalIP>`` (the nodes must share a layer-2 segment, as host-gw requires).  Routes follow
Node changes (a changed address or CIDR replaces the route, a deleted Node loses it) and all of
them are removed on :meth:`NodeRoutes.stop`.  The nodes' addresses are also handed to a callback
(the node table lets pods reach them without masquerade).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.agent.runtime.util import run_cmd
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer

log = logging.getLogger("kubelite.agent.network.routes")
NODES = Resource("", "v1", "nodes", namespaced=False)
Obj = dict[str, Any]
NodeIPsCallback = Callable[[set[str]], Awaitable[None]]
RETRY = 5.0


def internal_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP" and ":" not in str(a.get("address", "")):
            return str(a["address"])
    return ""


def desired_routes(nodes: list[Obj], own_name: str) -> dict[str, str]:
    """podCIDR -> gateway (InternalIP) for every other node that has both."""
    routes: dict[str, str] = {}
    for node in nodes:
        if (node.get("metadata") or {}).get("name") == own_name:
            continue
        spec = node.get("spec") or {}
        cidrs = [c for c in (spec.get("podCIDRs") or [spec.get("podCIDR")]) if c and ":" not in str(c)]
        ip = internal_ip(node)
        if cidrs and ip:
            routes[str(cidrs[0])] = ip
    return routes


class NodeRoutes:
    """Keeps the host-gw routes in line with the Nodes (one reconcile task, event-driven)."""

    def __init__(
        self,
        client: Client,
        node_name: str,
        cluster_cidr: str,
        on_node_ips: NodeIPsCallback | None = None,
    ) -> None:
        self.node_name = node_name
        self.cluster_cidr = ipaddress.IPv4Network(cluster_cidr, strict=False)
        self.on_node_ips = on_node_ips
        self.informer = Informer(client, NODES)
        self.informer.add_handler(lambda _k, _o, _n: self._dirty.set())
        self.installed: dict[str, str] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30) -> None:
        self.installed = await self._existing()  # left by a crashed agent: fixed by reconcile
        self.informer.start()
        await self.informer.wait_synced(timeout)
        await self.reconcile()
        self._task = asyncio.create_task(self._loop(), name="agent-node-routes")

    async def _existing(self) -> dict[str, str]:
        """Gateway routes into the cluster CIDR already in the table (from an earlier run)."""
        rc, out = await run_cmd("ip", "-j", "-4", "route", "show")
        found: dict[str, str] = {}
        with contextlib.suppress(ValueError, TypeError, KeyError):
            for r in json.loads(out) if rc == 0 else []:
                dst, via = str(r.get("dst", "")), str(r.get("gateway", ""))
                if via and "/" in dst and ":" not in dst and self._in_cluster(dst):
                    found[dst] = via
        return found

    def _in_cluster(self, cidr: str) -> bool:
        return ipaddress.IPv4Network(cidr, strict=False).subnet_of(self.cluster_cidr)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), RETRY)
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("node route sync failed")

    async def reconcile(self) -> None:
        nodes = self.informer.list()
        want = desired_routes(nodes, self.node_name)
        for cidr, via in list(self.installed.items()):
            if want.get(cidr) != via:
                await run_cmd("ip", "route", "del", cidr, "via", via)
                del self.installed[cidr]
        for cidr, via in want.items():
            if self.installed.get(cidr) == via:
                continue
            rc, out = await run_cmd("ip", "route", "replace", cidr, "via", via)
            if rc == 0:
                self.installed[cidr] = via
                log.info("route to pod CIDR %s via node %s", cidr, via)
            else:
                log.warning("cannot route pod CIDR %s via %s: %s", cidr, via, out)
        if self.on_node_ips is not None:
            ips = {ip for ip in (internal_ip(n) for n in nodes) if ip}
            await self.on_node_ips(ips)

    async def stop(self, remove_routes: bool = True) -> None:
        """Stop following Nodes; remove the routes too unless pods keep running (a standalone
        agent going away leaves them, as flannel does)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.informer.stop()
        for cidr, via in list(self.installed.items()) if remove_routes else []:
            await run_cmd("ip", "route", "del", cidr, "via", via)
        self.installed.clear()
