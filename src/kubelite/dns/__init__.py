"""Cluster DNS: the Kubernetes DNS specification served from informer caches (CoreDNS-like).

``kubelite up`` runs it when a real node with pod networking runs (an agent with ``--network
cni``: not ``--no-dns``/``--no-agent``/``--simulated-nodes``, root, runc works), bound to the
node's address (``--node-ip`` or the primary address) on ``--dns-port``; ``kubelite dns`` runs
it alone (``--bind-address``).  Names outside ``--cluster-domain`` are forwarded to
``--dns-upstream`` or the host's /etc/resolv.conf nameservers, for pods, services, loopback and
the node's own addresses only.  The server publishes itself as the kube-dns EndpointSlice
``kube-system/kube-dns-<node>``.
"""

from __future__ import annotations

import argparse
import os
import socket

from kubelite.client.base import Client
from kubelite.dns.acl import local_addresses
from kubelite.dns.forward import Upstream, parse_upstream, resolv_conf_upstreams
from kubelite.dns.server import DNSConfig, DNSServer

__all__ = ["DNSConfig", "DNSServer", "component", "config_from_args"]


def _enabled_in_up(args: argparse.Namespace) -> bool:
    """``up`` runs DNS only next to a real agent with CNI networking (same checks as the agent)."""
    if getattr(args, "no_dns", False) or getattr(args, "no_agent", False):
        return False
    if getattr(args, "simulated_nodes", 0) or getattr(args, "network", "cni") != "cni":
        return False
    if os.geteuid() != 0:
        return False
    from kubelite.agent.agent import runc_works

    return runc_works()


def _upstreams(args: argparse.Namespace, bind: str, port: int) -> list[Upstream]:
    given = [parse_upstream(u) for u in getattr(args, "dns_upstream", None) or []]
    chosen = given or resolv_conf_upstreams()
    return [u for u in chosen if u != (bind, port)]  # never forward to ourselves


def config_from_args(args: argparse.Namespace) -> DNSConfig:
    """The server settings of ``kubelite up`` (node address, agent node name) or ``kubelite dns``."""
    from kubelite.agent.nodeinfo import primary_ip

    host = socket.gethostname().split(".")[0].lower() or "localhost"
    if args.command == "up":
        bind = getattr(args, "node_ip", None) or primary_ip()
        node_name = getattr(args, "node_name", None) or host
    else:
        bind = getattr(args, "bind_address", None) or primary_ip()
        node_name = ""
    port = int(getattr(args, "dns_port", 53))
    wildcard = bind in ("0.0.0.0", "::")
    return DNSConfig(
        bind_address=bind,
        port=port,
        cluster_domain=str(getattr(args, "cluster_domain", "cluster.local")),
        cluster_cidr=str(getattr(args, "cluster_cidr", "10.244.0.0/16")),
        service_cidr=str(getattr(args, "service_cidr", "10.96.0.0/12")),
        upstreams=_upstreams(args, bind, port),
        node_ips=sorted({bind, *local_addresses()} - {"0.0.0.0", "::"}),
        publish_address=primary_ip() if wildcard else "",
        publish_name=getattr(args, "node_name", None) or host,
        node_name=node_name,
        freeze_gc=args.command == "dns",  # alone in its process: no other component's objects
        required=args.command == "dns",  # in ``up`` a taken port must not stop the cluster
    )


async def component(client: Client, args: argparse.Namespace) -> DNSServer | None:
    """``kubelite up`` (see :func:`_enabled_in_up`) and ``kubelite dns``."""
    if args.command == "up" and not _enabled_in_up(args):
        return None
    return DNSServer(client, config_from_args(args))
