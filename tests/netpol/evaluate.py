"""An interpreter of the compiled rule model: would the node let this connection through?

It follows the table layout of :mod:`kubelite.netpol.render` (established traffic aside):
the source pod's egress chain, then the node-address bypass and the destination pod's
ingress chain; a pod without a chain in a direction is not isolated in it.
"""

from __future__ import annotations

from kubelite.netpol import intervals
from kubelite.netpol.model import Direction
from kubelite.netpol.ruleset import Match, Ruleset


def _in_set(elements: tuple[str, ...], ip: str) -> bool:
    return intervals.contains(elements, ip)


def _matches(rs: Ruleset, m: Match, peer: str, dst: str, proto: str, port: int) -> bool:
    if m.peers is not None and not _in_set(rs.addr_sets[m.peers], peer):
        return False
    if m.ports is not None:
        if m.ports.protocol != proto:
            return False
        if m.ports.first is not None:
            last = m.ports.last if m.ports.last is not None else m.ports.first
            if not m.ports.first <= port <= last:
                return False
    return m.named is None or (dst, proto.lower(), port) in rs.port_sets[m.named]


def direction_allows(
    rs: Ruleset, direction: Direction, pod: str, peer: str, dst: str, proto: str, port: int
) -> bool:
    chain_name = rs.pod_map(direction).get(pod)
    if chain_name is None:
        return True
    chain = rs.pod_chains[chain_name]
    if peer in chain.ips:
        return True
    for policy in chain.policies:
        pc = rs.policy_chains[policy]
        assert pc.direction is direction
        if any(_matches(rs, m, peer, dst, proto, port) for m in pc.matches):
            return True
    return False


def allowed(rs: Ruleset, src: str, dst: str, port: int = 80, proto: str = "TCP") -> bool:
    """A new connection src -> dst:port/proto, as this node's table decides it."""
    if not direction_allows(rs, Direction.EGRESS, src, dst, dst, proto, port):
        return False
    if _in_set(rs.node_addrs, src):
        return True
    return direction_allows(rs, Direction.INGRESS, dst, src, dst, proto, port)
