"""The cluster objects DNS answers from: Services, EndpointSlices and Namespaces, indexed.

Fed by informer handlers (:class:`kubelite.dns.server.DNSServer`) or directly by tests.  Like
CoreDNS's kubernetes plugin it keeps indexes by Service key (``ns/name``), EndpointSlices by
their ``kubernetes.io/service-name`` label, and reverse indexes from cluster IPs and endpoint
addresses to their objects (PTR).  Every change bumps :attr:`generation` and the SOA serial
(:attr:`modified`, unix seconds) and calls the change listeners with its scope: the
(namespace, service) pairs whose names may answer differently, or None for "anything" (a
Namespace came or went); the server drops the cached responses of that scope.  Objects are
the informers' shared dicts: never mutated here.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]
Scope = set[tuple[str, str]]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def obj_key(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def cluster_ips(svc: Obj) -> list[str]:
    """``spec.clusterIPs`` (or ``clusterIP``) without ``None``/empty values."""
    spec = svc.get("spec") or {}
    ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    return [ip for ip in ips if ip and ip != "None"]


def slice_service_key(eps: Obj) -> str:
    """``ns/service`` of an EndpointSlice (its service-name label), or "" when it has none."""
    name = (_meta(eps).get("labels") or {}).get(SERVICE_NAME_LABEL, "")
    return f"{_meta(eps).get('namespace', '')}/{name}" if name else ""


def endpoint_ready(ep: Obj) -> bool:
    """EndpointSlice ``conditions.ready``: nil means ready (publishNotReadyAddresses sets true)."""
    return (ep.get("conditions") or {}).get("ready") is not False


def slice_addresses(eps: Obj) -> Iterable[str]:
    if eps.get("addressType") not in ("IPv4", "IPv6"):
        return ()
    return (a for ep in eps.get("endpoints") or [] if endpoint_ready(ep) for a in ep.get("addresses") or [])


class ClusterState:
    """Indexed Services, EndpointSlices and Namespace names; ``set_*`` take None to delete."""

    def __init__(self) -> None:
        self.services: dict[str, Obj] = {}
        self.slices: dict[str, Obj] = {}
        self.namespaces: set[str] = set()
        self.slices_by_service: dict[str, set[str]] = {}
        self.services_by_ip: dict[str, set[str]] = {}
        self.slices_by_ip: dict[str, set[str]] = {}
        self.generation = 0
        self.modified = int(time.time())
        self.listeners: list[Callable[[Scope | None], None]] = []

    # ----------------------------------------------------------------- updates
    def set_service(self, key: str, svc: Obj | None) -> None:
        old = self.services.pop(key, None)
        if old is not None:
            _unindex(self.services_by_ip, cluster_ips(old), key)
        if svc is not None:
            self.services[key] = svc
            _index(self.services_by_ip, cluster_ips(svc), key)
        self._changed({_pair(key)})

    def set_slice(self, key: str, eps: Obj | None) -> None:
        old = self.slices.pop(key, None)
        if old is not None:
            _unindex(self.slices_by_service, [slice_service_key(old)], key)
            _unindex(self.slices_by_ip, slice_addresses(old), key)
        if eps is not None:
            self.slices[key] = eps
            _index(self.slices_by_service, [slice_service_key(eps)], key)
            _index(self.slices_by_ip, slice_addresses(eps), key)
        pairs = {slice_service_key(o) for o in (old, eps) if o is not None}
        self._changed({_pair(k) for k in pairs if k})

    def set_namespace(self, name: str, present: bool) -> None:
        if present:
            self.namespaces.add(name)
        else:
            self.namespaces.discard(name)
        self._changed(None)

    def _changed(self, scope: Scope | None) -> None:
        self.generation += 1
        self.modified = max(self.modified, int(time.time()))
        for fn in self.listeners:
            fn(scope)

    # ----------------------------------------------------------------- lookups
    def service(self, namespace: str, name: str) -> Obj | None:
        return self.services.get(f"{namespace}/{name}")

    def service_slices(self, namespace: str, name: str) -> list[Obj]:
        keys = self.slices_by_service.get(f"{namespace}/{name}", ())
        return [self.slices[k] for k in sorted(keys) if k in self.slices]

    def services_with_ip(self, ip: str) -> list[Obj]:
        keys = self.services_by_ip.get(ip, ())
        return [self.services[k] for k in sorted(keys) if k in self.services]

    def slices_with_ip(self, ip: str) -> list[Obj]:
        return [self.slices[k] for k in sorted(self.slices_by_ip.get(ip, ())) if k in self.slices]


def _pair(key: str) -> tuple[str, str]:
    ns, _, name = key.partition("/")
    return ns, name


def normalize_ip(value: str) -> str:
    """The canonical text of an address (IPv6 compressed, lowercase); "" when not an address."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


def _index(index: dict[str, set[str]], values: Iterable[str], key: str) -> None:
    for v in values:
        if v:
            index.setdefault(normalize_ip(v) if ":" in v else v, set()).add(key)


def _unindex(index: dict[str, set[str]], values: Iterable[str], key: str) -> None:
    for v in values:
        keys = index.get(normalize_ip(v) if ":" in v else v)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[v]
