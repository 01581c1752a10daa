"""Who may use the server as a resolver for names outside the cluster (never an open resolver).

Forwarding is allowed for clients in the cluster (pod) CIDR, the service CIDR, loopback and the
node's own addresses; others get REFUSED for such names (cluster names are answered to anyone,
like an authoritative server).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.0/8", "::1/128")


def local_addresses(fib_trie: Path = Path("/proc/net/fib_trie")) -> list[str]:
    """The host's own IPv4 addresses (``/32 host LOCAL`` entries of the routing trie)."""
    out: list[str] = []
    last = ""
    with contextlib.suppress(OSError):
        for line in fib_trie.read_text().splitlines():
            text = line.strip()
            if text.startswith(("|--", "+--")):
                last = text.split()[1]
            elif text == "/32 host LOCAL" and last:
                out.append(last)
    return sorted(set(out))


class ClientACL:
    """``allows(ip)``: may this client have names outside the cluster zone resolved?"""

    def __init__(self, cidrs: Iterable[str], *, loopback: bool = True, node_ips: Iterable[str] = ()) -> None:
        nets = [*cidrs, *(LOOPBACK if loopback else ())]
        nets += [f"{ip}/{32 if ':' not in ip else 128}" for ip in node_ips]
        self.networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in nets]
        self._seen: dict[str, bool] = {}

    def allows(self, ip: str) -> bool:
        hit = self._seen.get(ip)
        if hit is None:
            hit = self._check(ip)
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[ip] = hit
        return hit

    def _check(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == net.version and addr in net for net in self.networks)
