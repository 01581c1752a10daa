"""What the proxy needs from a Service: its VIPs, ports and traffic policies.

Mirrors kube-proxy's ServicePort view (pkg/proxy/service.go): headless Services
(clusterIP None) and ExternalName Services get no rules; LoadBalancer ingress IPs with
``ipMode: Proxy`` are left to the load balancer; only IPv4 addresses are used (the
tables are family ``ip``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; v1.DefaultClientIPServiceAffinitySeconds
_EXTERNAL_TYPES = ("NodePort", "LoadBalancer")
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS_DEPRECATED = "service.kubernetes.io/topology-aware-hints"


@dataclass(frozen=True)
class PortInfo:
    """One Service port: ``protocol`` is lower-case (tcp/udp/sctp); ``node_port`` 0 = none."""

    name: str
    protocol: str
    port: int
    node_port: int = 0


@dataclass(frozen=True)
class ServiceInfo:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...]
    external_ips: tuple[str, ...]  # spec.externalIPs + status.loadBalancer.ingress[].ip
    ports: tuple[PortInfo, ...]
    affinity_timeout: int = 0  # 0 = no ClientIP session affinity
    internal_local: bool = False  # internalTrafficPolicy: Local
    external_local: bool = False  # externalTrafficPolicy: Local (NodePort/LoadBalancer only)
    topology: bool = False  # topology-aware routing asked for (topology-mode Auto / PreferClose)
    lb_ips: tuple[str, ...] = ()  # the LoadBalancer ingress IPs (also in external_ips)
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges (IPv4 CIDRs)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def _unique_ipv4(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if is_ipv4(v) and v not in out:
            out.append(v)
    return tuple(out)


def _cluster_ips(spec: Obj) -> list[str]:
    ips = list(spec.get("clusterIPs") or [])
    if not ips and spec.get("clusterIP"):
        ips = [spec["clusterIP"]]
    return [ip for ip in ips if ip and ip != "None"]


def _ingress_ips(svc: Obj) -> list[str]:
    if (svc.get("spec") or {}).get("type") != "LoadBalancer":
        return []
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if i.get("ip") and i.get("ipMode", "VIP") != "Proxy"]


def _affinity_timeout(spec: Obj) -> int:
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
    return int(cfg) if cfg else DEFAULT_AFFINITY_TIMEOUT


def _topology(meta: Obj, spec: Obj) -> bool:
    annotations = meta.get("annotations") or {}
    mode = annotations.get(TOPOLOGY_MODE) or annotations.get(TOPOLOGY_HINTS_DEPRECATED) or ""
    return mode in ("Auto", "auto") or spec.get("trafficDistribution") == "PreferClose"


def _source_ranges(meta: Obj, spec: Obj) -> tuple[str, ...]:
    """spec.loadBalancerSourceRanges, else the legacy annotation; IPv4 CIDRs, spaces trimmed."""
    ranges = list(spec.get("loadBalancerSourceRanges") or [])
    if not ranges:
        ranges = str((meta.get("annotations") or {}).get(SOURCE_RANGES_ANNOTATION, "")).split(",")
    out: list[str] = []
    for r in ranges:
        try:
            net = ipaddress.ip_network(r.strip(), strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and str(net) not in out:
            out.append(str(net))
    return tuple(out)


def _ports(spec: Obj) -> tuple[PortInfo, ...]:
    external = spec.get("type") in _EXTERNAL_TYPES
    out = []
    for p in spec.get("ports") or []:
        node_port = int(p.get("nodePort") or 0) if external else 0
        proto = str(p.get("protocol") or "TCP").lower()
        out.append(PortInfo(str(p.get("name") or ""), proto, int(p["port"]), node_port))
    return tuple(out)


def service_info(svc: Obj) -> ServiceInfo | None:
    """The proxy's view of ``svc``, or None when kube-proxy programs nothing for it."""
    spec = svc.get("spec") or {}
    meta = svc.get("metadata") or {}
    if spec.get("type") == "ExternalName":
        return None
    cluster_ips = _unique_ipv4(_cluster_ips(spec))
    if not cluster_ips:
        return None  # headless, or IPv6-only
    return ServiceInfo(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        cluster_ips=cluster_ips,
        external_ips=_unique_ipv4(list(spec.get("externalIPs") or []) + _ingress_ips(svc)),
        ports=_ports(spec),
        affinity_timeout=_affinity_timeout(spec),
        internal_local=spec.get("internalTrafficPolicy") == "Local",
        external_local=spec.get("type") in _EXTERNAL_TYPES and spec.get("externalTrafficPolicy") == "Local",
        topology=_topology(meta, spec),
        lb_ips=_unique_ipv4(_ingress_ips(svc)),
        source_ranges=_source_ranges(meta, spec),
    )
