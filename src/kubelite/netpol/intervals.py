"""IPv4 address intervals: pod IPs and ipBlocks as merged ranges for nft interval sets.

Addresses are plain ints (fast to sort and merge, unlike :mod:`ipaddress` objects).  A
set element is rendered as an address, a CIDR when the range is an aligned block, or
``first-last`` otherwise, which nft interval sets accept as they are.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable

Interval = tuple[int, int]  # inclusive


def to_int(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")


def to_str(n: int) -> str:
    return socket.inet_ntoa(n.to_bytes(4, "big"))


def network(net: ipaddress.IPv4Network) -> Interval:
    return int(net.network_address), int(net.broadcast_address)


@functools.lru_cache(maxsize=4096)
def block(cidr: ipaddress.IPv4Network, excepts: tuple[ipaddress.IPv4Network, ...]) -> tuple[Interval, ...]:
    """An ipBlock: ``cidr`` minus every ``except`` range."""
    out = [network(cidr)]
    for first, last in sorted(network(e) for e in excepts):
        nxt: list[Interval] = []
        for a, b in out:
            if last < a or first > b:
                nxt.append((a, b))
                continue
            if a < first:
                nxt.append((a, first - 1))
            if last < b:
                nxt.append((last + 1, b))
        out = nxt
    return tuple(out)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, non-adjacent intervals covering the same addresses."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + 1:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def element(a: int, b: int) -> str:
    if a == b:
        return to_str(a)
    size = b - a + 1
    if size & (size - 1) == 0 and a % size == 0:
        return f"{to_str(a)}/{32 - size.bit_length() + 1}"
    return f"{to_str(a)}-{to_str(b)}"


def render(intervals: Iterable[Interval]) -> tuple[str, ...]:
    """Elements for an nft interval set (merged first: nft rejects overlaps)."""
    return tuple(element(a, b) for a, b in merge(intervals))


def contains(elements: Iterable[str], ip: str) -> bool:
    """Whether a rendered set holds ``ip`` (used by tests and diagnostics)."""
    n = to_int(ip)
    for e in elements:
        if "-" in e:
            lo, hi = e.split("-")
            a, b = to_int(lo), to_int(hi)
        else:
            a, b = network(ipaddress.IPv4Network(e))
        if a <= n <= b:
            return True
    return False
