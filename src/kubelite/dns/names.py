"""Names of the Kubernetes DNS schema (specification 1.1.0) and the reverse zones.

A cluster-zone name is read right to left like CoreDNS's kubernetes plugin does:
``[_port._proto.|endpoint.]service.namespace.(svc|pod).<zone>``.  Names are matched
case-insensitively: callers pass them lowercased, without the trailing dot.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SCHEMA_VERSION = "1.1.0"
SVC = "svc"
POD = "pod"


@dataclass(frozen=True)
class ZoneName:
    """A parsed name inside the cluster zone.

    ``kind``: ``apex`` (the zone itself), ``version`` (``dns-version``), ``nameserver``
    (``ns.dns``), ``dns`` (the empty ``dns`` node), ``svc``/``pod`` (with the parts present),
    or ``invalid`` (cannot exist: NXDOMAIN).
    """

    kind: str
    namespace: str = ""
    service: str = ""
    endpoint: str = ""
    port: str = ""
    protocol: str = ""


INVALID = ZoneName("invalid")


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def parse_zone_name(name: str, zone: str) -> ZoneName:
    """Split ``name`` (inside ``zone``) into the parts of the DNS schema."""
    base = name[: -len(zone)].rstrip(".") if name != zone else ""
    if base == "":
        return ZoneName("apex")
    special = {"dns-version": "version", "ns.dns": "nameserver", "dns": "dns"}.get(base)
    if special:
        return ZoneName(special)
    segs = base.split(".")
    kind = segs.pop()
    if kind not in (SVC, POD):
        return INVALID
    parts = {"namespace": "", "service": ""}
    for field in ("namespace", "service"):
        if segs:
            parts[field] = segs.pop()
    if not segs:
        return ZoneName(kind, parts["namespace"], parts["service"])
    if len(segs) == 1:
        return ZoneName(kind, parts["namespace"], parts["service"], endpoint=segs[0])
    if len(segs) == 2:
        port, proto = (s[1:] if s.startswith("_") else s for s in segs)
        return ZoneName(kind, parts["namespace"], parts["service"], port=port, protocol=proto)
    return INVALID


def dashed(ip: str) -> str:
    """The dashed form of an address used as a DNS label (10.0.0.1 -> 10-0-0-1, a::1 -> a--1)."""
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a dashed pod label names (three dashes and no ``--``: IPv4), or None."""
    text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else label.replace("-", ":")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def reverse_address(name: str) -> str | None:
    """The address of a complete ``in-addr.arpa``/``ip6.arpa`` name, else None."""
    if name.endswith(".in-addr.arpa"):
        octets = name[: -len(".in-addr.arpa")].split(".")
        if len(octets) != 4:
            return None
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(octets))))
        except ValueError:
            return None
    if name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32 or any(len(n) != 1 for n in nibbles):
            return None
        digits = "".join(reversed(nibbles))
        try:
            return str(ipaddress.IPv6Address(":".join(digits[i : i + 4] for i in range(0, 32, 4))))
        except ValueError:
            return None
    return None


def is_reverse(name: str) -> bool:
    return in_zone(name, "in-addr.arpa") or in_zone(name, "ip6.arpa")
