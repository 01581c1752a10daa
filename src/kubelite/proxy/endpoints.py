"""Endpoints of one Service port, from its EndpointSlices.

Mirrors kube-proxy's endpoints change tracker: slices are joined to the Service by the
``kubernetes.io/service-name`` label, slice ports are matched to the Service port by name
and protocol, each endpoint contributes its first address, and an endpoint is ready unless
``conditions.ready`` is false (nil means ready); ``serving`` nil defers to ready,
``terminating`` nil means false.  The same address:port listed by several slices counts
once (ready wins).  ``zones`` are the topology hints (``hints.forZones``), None without.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubelite.proxy.service import PortInfo

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zones: tuple[str, ...] | None = None


def slice_service_key(eps: Obj) -> str | None:
    """``namespace/service`` a slice belongs to, or None when it is not labelled."""
    meta = eps.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace') or 'default'}/{svc}" if svc else None


def _slice_port(eps: Obj, port: PortInfo) -> int | None:
    for p in eps.get("ports") or []:
        name = p.get("name") or ""
        proto = str(p.get("protocol") or "TCP").lower()
        if name == port.name and proto == port.protocol and p.get("port") is not None:
            return int(p["port"])
    return None


def _endpoints_of(eps: Obj, target: int) -> Iterable[Endpoint]:
    for ep in eps.get("endpoints") or []:
        addrs = ep.get("addresses") or []
        if not addrs:
            continue
        cond = ep.get("conditions") or {}
        ready = cond.get("ready") is not False
        serving = ready if cond.get("serving") is None else bool(cond["serving"])
        hints = ep.get("hints")
        zones = tuple(z.get("name", "") for z in hints.get("forZones") or []) if hints else None
        node = str(ep.get("nodeName") or "")
        yield Endpoint(str(addrs[0]), target, node, ready, serving, bool(cond.get("terminating")), zones)


def port_endpoints(slices: Iterable[Obj], port: PortInfo) -> tuple[Endpoint, ...]:
    """All endpoints (ready or not) of ``port`` across ``slices``, sorted by address."""
    found: dict[tuple[str, int], Endpoint] = {}
    for eps in slices:
        if eps.get("addressType", "IPv4") != "IPv4":
            continue
        target = _slice_port(eps, port)
        if target is None:
            continue
        for ep in _endpoints_of(eps, target):
            prev = found.get((ep.ip, ep.port))
            if prev is None or (ep.ready and not prev.ready):
                found[(ep.ip, ep.port)] = ep
    return tuple(sorted(found.values()))
