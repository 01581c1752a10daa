"""Configuration of the Service proxy (what the node agent passes in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProxyConfig:
    """Where the proxy runs and which table it owns.

    ``node_ips`` are the node's addresses; NodePorts answer on every local address
    (``fib daddr type local``, which includes them and 127.0.0.1, as iptables-mode
    kube-proxy with route_localnet does).  Traffic from outside ``cluster_cidr`` to a
    ClusterIP is masqueraded; unallocated addresses of ``service_cidr`` are rejected.
    """

    node_name: str
    node_ips: list[str]
    cluster_cidr: str
    service_cidr: str
    table: str = "kubelite-proxy"
    nft: str = "nft"  # the nft command; the default "nft" is run in-process via libnftables if present
    conntrack: str = "conntrack"
    sync_period: float = 60.0  # full resync interval (seconds), like kube-proxy's syncPeriod
    coalesce: float = 0.003  # wait this long after the first change to batch a burst
    retry_delay: float = 1.0  # wait before retrying a failed apply (always a full resync)
