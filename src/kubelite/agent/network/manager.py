"""The agent's pod networking, start to finish (``--network cni``).

At start, after the Node is registered: wait for the Node's ``spec.podCIDR`` (the nodeipam
controller assigns it from ``--cluster-cidr``), write kubelite's CNI config (unless the user has
one), set up the node (bridge, sysctls, safety route, node table), follow the other nodes'
pod CIDRs (host-gw routes), then start the Service proxy and the NetworkPolicy enforcer.  At
stop, the reverse: policy, proxy, routes and, when the pods were stopped too (``kubelite up``),
the node plumbing; a standalone agent leaves the network to its running pods, as the kubelet does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kubelite.agent.network import netconf
from kubelite.agent.network.dns import PodDNS, cluster_dns_default
from kubelite.agent.network.node import NetworkSetupError, NodeNetwork, NodeNetworkConfig
from kubelite.agent.network.pod import PodNetwork
from kubelite.agent.network.routes import NodeRoutes
from kubelite.api import errors
from kubelite.client.base import Client, Resource

log = logging.getLogger("kubelite.agent.network")
NODES = Resource("", "v1", "nodes", namespaced=False)
POD_CIDR_TIMEOUT = 30.0


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class NetworkSettings:
    node_ip: str
    cluster_cidr: str
    service_cidr: str
    state_dir: Path  # DATA_DIR/agent/cni
    conf_dir: Path
    bin_dirs: list[str] = field(default_factory=lambda: ["/usr/lib/cni", "/opt/cni/bin"])
    bridge: str = "kubelite0"
    cluster_domain: str = "cluster.local"
    cluster_dns: str = ""
    masquerade_egress: bool = False
    node_table: str = "kubelite-node"
    proxy_table: str = "kubelite-proxy"
    policy_table: str = "kubelite-policy"

    @classmethod
    def from_args(cls, args: argparse.Namespace, agent_dir: Path, node_ip: str) -> NetworkSettings:
        state = agent_dir / "cni"
        service_cidr = str(getattr(args, "service_cidr", None) or "10.96.0.0/12")
        return cls(
            node_ip=node_ip,
            cluster_cidr=str(getattr(args, "cluster_cidr", None) or "10.244.0.0/16"),
            service_cidr=service_cidr,
            state_dir=state,
            conf_dir=Path(getattr(args, "cni_conf_dir", None) or state / "net.d"),
            bin_dirs=str(getattr(args, "cni_bin_dir", None) or "/usr/lib/cni:/opt/cni/bin").split(":"),
            bridge=str(getattr(args, "bridge_name", None) or "kubelite0"),
            cluster_domain=str(getattr(args, "cluster_domain", None) or "cluster.local"),
            cluster_dns=str(getattr(args, "cluster_dns", None) or cluster_dns_default(service_cidr)),
            masquerade_egress=bool(getattr(args, "masquerade_egress", False)),
        )


class AgentNetwork:
    """Owns the node network, the CNI hooks, the node routes, the proxy and the policy enforcer."""

    def __init__(self, settings: NetworkSettings) -> None:
        self.settings = settings
        self.pods = PodNetwork(settings.conf_dir, settings.bin_dirs, settings.state_dir / "cache")
        self.dns = PodDNS([settings.cluster_dns] if settings.cluster_dns else [], settings.cluster_domain)
        self.pod_cidr = ""
        self.node: NodeNetwork | None = None
        self.routes: NodeRoutes | None = None
        self.services: list[Startable] = []  # started proxy/policy, in start order

    async def start(
        self,
        client: Client,
        node_name: str,
        *,
        pod_cidr_timeout: float = POD_CIDR_TIMEOUT,
        teardown_on_failure: bool = False,
    ) -> None:
        """Everything up, in order; on failure what started is stopped again (and the node
        plumbing removed with ``teardown_on_failure``) before the error propagates."""
        try:
            await self._start(client, node_name, pod_cidr_timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop(teardown=teardown_on_failure)
            raise

    async def _start(self, client: Client, node_name: str, pod_cidr_timeout: float) -> None:
        s = self.settings
        self.pod_cidr = await wait_pod_cidr(client, node_name, pod_cidr_timeout)
        written = netconf.write_default(s.conf_dir, self.pod_cidr, s.bridge, s.state_dir / "ipam")
        if written is None:
            log.info("using the CNI configuration in %s (not kubelite's)", s.conf_dir)
        self.node = NodeNetwork(
            NodeNetworkConfig(
                pod_cidr=self.pod_cidr,
                cluster_cidr=s.cluster_cidr,
                service_cidr=s.service_cidr,
                state_dir=s.state_dir,
                bridge=s.bridge,
                masquerade_egress=s.masquerade_egress,
                table=s.node_table,
                node_ips=[s.node_ip],
            )
        )
        await self.node.setup()
        self.routes = NodeRoutes(client, node_name, s.cluster_cidr, self.node.set_node_ips)
        await self.routes.start()
        for make in (self._proxy, self._policy):
            svc = make(client, node_name)
            if svc is not None:
                await svc.start()
                self.services.append(svc)
        log.info("pod network ready node=%s podCIDR=%s bridge=%s", node_name, self.pod_cidr, s.bridge)

    def _proxy(self, client: Client, node_name: str) -> Startable | None:
        try:
            from kubelite.proxy import Proxier, ProxyConfig
        except ImportError as e:
            log.error("the service proxy is not available (%s): Services will not work", e)
            return None
        s = self.settings
        config = ProxyConfig(
            node_name=node_name,
            node_ips=[s.node_ip],
            cluster_cidr=s.cluster_cidr,
            service_cidr=s.service_cidr,
            table=s.proxy_table,
        )
        proxier: Startable = Proxier(client, config)
        return proxier

    def _policy(self, client: Client, node_name: str) -> Startable | None:
        try:
            from kubelite.netpol import PolicyConfig, PolicyEnforcer
        except ImportError as e:
            log.error("the NetworkPolicy enforcer is not available (%s): policies will not apply", e)
            return None
        s = self.settings
        config = PolicyConfig(
            node_name=node_name, node_ips=[s.node_ip], cluster_cidr=s.cluster_cidr, table=s.policy_table
        )
        enforcer: Startable = PolicyEnforcer(client, config)
        return enforcer

    async def stop(self, teardown: bool) -> None:
        """Stop policy and proxy (they delete their tables) and the route sync; with ``teardown``
        also remove the routes and the node plumbing (call it after every pod's sandbox is gone)."""
        for svc in reversed(self.services):
            with contextlib.suppress(Exception):
                await svc.stop()
        self.services.clear()
        if self.routes is not None:
            with contextlib.suppress(Exception):
                await self.routes.stop(remove_routes=teardown)
            self.routes = None
        if teardown and self.node is not None:
            await self.node.teardown()


async def wait_pod_cidr(client: Client, node_name: str, timeout: float) -> str:
    """The Node's ``spec.podCIDR`` once the nodeipam controller has set it."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(errors.NotFound):
            node: dict[str, Any] = await client.get(NODES, "", node_name)
            cidr = str((node.get("spec") or {}).get("podCIDR") or "")
            if cidr:
                return cidr
        if time.monotonic() >= deadline:
            raise NetworkSetupError(
                f"node {node_name} got no spec.podCIDR within {timeout:.0f}s: pod CIDRs are allocated "
                "by the controller-manager from --cluster-cidr (is it running, and does "
                "--cluster-cidr have room for this node?)"
            )
        await asyncio.sleep(0.2)
