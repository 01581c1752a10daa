"""Stale UDP conntrack entries after endpoint changes, like kube-proxy's conntrack cleanup.

UDP has no connection teardown, so a conntrack entry DNATed to a removed endpoint would
keep black-holing a client's flow.  When a UDP endpoint goes away, flows from each of the
Service's destinations (ClusterIPs, externalIPs, LoadBalancer IPs, the NodePort) to that
endpoint are deleted; when a UDP Service port goes from no ready endpoints to some, flows
to its destinations are deleted (they were created while nothing answered).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kubelite.proxy.endpoints import Endpoint
from kubelite.proxy.nft import run
from kubelite.proxy.service import PortInfo, ServiceInfo

log = logging.getLogger("kubelite.proxy.conntrack")


@dataclass(frozen=True)
class UdpView:
    """One UDP Service port as last applied: destinations and ready endpoint IPs."""

    vips: tuple[str, ...]
    node_port: int
    ready: frozenset[str]


def udp_views(
    info: ServiceInfo | None, endpoints: dict[PortInfo, tuple[Endpoint, ...]]
) -> dict[str, UdpView]:
    """UDP ports of a Service keyed by port name; ``endpoints`` are those the rules use."""
    if info is None:
        return {}
    vips = info.cluster_ips + info.external_ips
    return {
        port.name: UdpView(vips, port.node_port, frozenset(e.ip for e in endpoints.get(port, ())))
        for port in info.ports
        if port.protocol == "udp"
    }


def _stale_endpoint_flows(old: UdpView, removed: frozenset[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for ep in sorted(removed):
        out += [["-D", "-p", "udp", "--orig-dst", vip, "--dst-nat", ep] for vip in old.vips]
        if old.node_port:
            out.append(["-D", "-p", "udp", "--orig-port-dst", str(old.node_port), "--dst-nat", ep])
    return out


def _stale_service_flows(new: UdpView) -> list[list[str]]:
    out = [["-D", "-p", "udp", "--orig-dst", vip] for vip in new.vips]
    if new.node_port:
        out.append(["-D", "-p", "udp", "--orig-port-dst", str(new.node_port)])
    return out


def stale_flows(old: dict[str, UdpView], new: dict[str, UdpView]) -> list[list[str]]:
    """conntrack argument lists that delete flows made stale by going from ``old`` to ``new``."""
    out: list[list[str]] = []
    for name, before in old.items():
        after = new.get(name)
        removed = before.ready - (after.ready if after else frozenset())
        out += _stale_endpoint_flows(before, removed)
    for name, view in new.items():
        prev = old.get(name)
        if view.ready and not (prev and prev.ready):
            out += _stale_service_flows(view)
    return out


async def delete_flows(binary: str, commands: list[list[str]]) -> None:
    """Run the deletions; "0 flow entries" (exit 1) is not an error."""
    for args in commands:
        try:
            code, _, err = await run([binary, *args])
        except OSError as e:
            log.warning("conntrack not runnable: %s", e)
            return
        if code != 0 and "0 flow entries" not in err:
            log.warning("conntrack %s failed (%s): %s", " ".join(args), code, err.strip())
