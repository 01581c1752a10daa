"""A pod's ``/etc/resolv.conf`` per ``dnsPolicy``, as the kubelet forms it (pkg/kubelet/network/dns).

* ``ClusterFirst`` (not hostNetwork) and ``ClusterFirstWithHostNet``: the cluster DNS server as
  the only nameserver, ``search <ns>.svc.<domain> svc.<domain> <domain>`` then the host's search
  domains, ``options ndots:5`` (the host's options are not kept).
* ``ClusterFirst`` with ``hostNetwork`` falls back to ``Default``: the host's resolv.conf
  (nameservers, search, options).
* ``None``: nothing but ``dnsConfig``.
* ``dnsConfig`` is then appended: nameservers and searches without duplicates, options merged by
  name (the pod's value wins).  At most 3 nameservers and 32 search domains of at most 2048
  characters in all (longer domains than 253 characters are dropped), as the kubelet enforces.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
DEFAULT_OPTIONS = ("ndots:5",)
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN = 253


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # DNSConfigForming event messages

    def render(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {n}" for n in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def parse_resolv_conf(text: str) -> ResolvConf:
    """nameserver lines accumulate; the last search and options lines win (the kubelet's rules)."""
    out = ResolvConf()
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            out.nameservers.append(fields[1])
        elif fields[0] == "search":
            out.searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            out.options = fields[1:]
    return out


def cluster_dns_default(service_cidr: str) -> str:
    """The conventional kube-dns ClusterIP: the service CIDR's network address + 10."""
    net = ipaddress.ip_network(service_cidr, strict=False)
    return str(net.network_address + 10)


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_options(existing: list[str], extra: list[Obj]) -> list[str]:
    merged: dict[str, str | None] = {}
    for op in existing:
        name, sep, value = op.partition(":")
        merged[name] = value if sep else None
    for item in extra:
        raw = item.get("value")
        merged[str(item.get("name") or "")] = str(raw) if raw is not None else None
    return [f"{k}:{v}" if v else k for k, v in merged.items() if k]


def fit_searches(searches: list[str]) -> list[str]:
    kept = [s for s in searches[:MAX_SEARCH_PATHS] if len(s) <= MAX_DOMAIN]
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
    return kept


@dataclass
class PodDNS:
    """The agent's DNS settings (``--cluster-dns``, ``--cluster-domain``, the host's resolv.conf)."""

    cluster_dns: list[str]
    cluster_domain: str = "cluster.local"
    host_resolv_conf: Path = Path("/etc/resolv.conf")

    def host(self) -> ResolvConf:
        try:
            return parse_resolv_conf(self.host_resolv_conf.read_text())
        except OSError:
            return ResolvConf()

    def pod_config(self, pod: Obj) -> ResolvConf:
        spec = pod.get("spec") or {}
        namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        host_network = bool(spec.get("hostNetwork"))
        conf = self.host()
        if policy == "None":
            conf = ResolvConf()
        elif self.cluster_dns and (
            policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network)
        ):
            domain = self.cluster_domain
            cluster = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain] if domain else []
            conf = ResolvConf(list(self.cluster_dns), _dedup(cluster + conf.searches), list(DEFAULT_OPTIONS))
        extra = spec.get("dnsConfig") or {}
        if extra:
            conf.nameservers = _dedup(conf.nameservers + [str(n) for n in extra.get("nameservers") or []])
            conf.searches = _dedup(conf.searches + [str(s) for s in extra.get("searches") or []])
            conf.options = merge_options(conf.options, list(extra.get("options") or []))
        if len(conf.nameservers) > MAX_NAMESERVERS:
            conf.nameservers = conf.nameservers[:MAX_NAMESERVERS]
            conf.warnings.append(
                "Nameserver limits were exceeded, some nameservers have been omitted, "
                "the applied nameserver line is: " + " ".join(conf.nameservers)
            )
        fitted = fit_searches(conf.searches)
        if fitted != conf.searches:
            conf.searches = fitted
            conf.warnings.append(
                "Search Line limits were exceeded, some search paths have been omitted, "
                "the applied search line is: " + " ".join(fitted)
            )
        return conf

    def resolv_conf(self, pod: Obj) -> str:
        return self.pod_config(pod).render()
