"""The cluster zone's records, computed from :class:`~kubelite.dns.state.ClusterState`.

Mirrors the Kubernetes DNS specification 1.1.0 as CoreDNS's kubernetes plugin serves it
(``kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa
ip6.arpa }``, ``ttl 5``):

* ``<svc>.<ns>.svc.<zone>``: A/AAAA of the clusterIPs; for a headless Service the ready
  endpoints' addresses (``publishNotReadyAddresses`` arrives as ``ready: true``).
* ``<endpoint>.<svc>.<ns>.svc.<zone>``: an endpoint by its ``hostname`` or dashed address.
* ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV (priority 0, weight 100/N, the port, the
  Service name or, headless, one record per endpoint host name), targets' addresses in the
  additional section.  A bare Service name answers SRV for every port.
* ExternalName: a CNAME (the target is then chased in the zone or upstream).
* ``<a-b-c-d>.<ns>.pod.<zone>``: A of the dashed address when the namespace exists.
* PTR for clusterIPs (``<svc>.<ns>.svc.<zone>``) and ready endpoint addresses
  (``<endpoint>.<svc>.<ns>.svc.<zone>``).  Unknown reverse names inside the cluster or service
  CIDR get NXDOMAIN; other reverse names are not ours (forwarded).
* ``dns-version.<zone>`` TXT ``1.1.0``; the apex has SOA and NS (``ns.dns.<zone>``, the
  kube-dns clusterIP).
* Negative answers: NXDOMAIN for names that don't exist, NODATA (NOERROR, no answers) for names
  that exist without records of the asked type; both carry the zone's SOA in the authority
  section (serial: the last change, minimum: the TTL).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from kubelite.dns import names
from kubelite.dns.names import ZoneName
from kubelite.dns.state import ClusterState, Obj, cluster_ips, endpoint_ready
from kubelite.dns.wire import RCODE, Rec, T

DEFAULT_TTL = 5
MAX_CHASE = 8


@dataclass
class Answer:
    """One authoritative reply: the rcode and sections, plus a CNAME target left to resolve
    upstream (``chase``: an ExternalName outside the zone)."""

    rcode: int = RCODE.NOERROR
    answer: list[Rec] = field(default_factory=list)
    authority: list[Rec] = field(default_factory=list)
    additional: list[Rec] = field(default_factory=list)
    chase: str | None = None


@dataclass(frozen=True)
class Target:
    """One address (or ExternalName) behind a name, with the port it serves and its host name."""

    host: str
    port: int
    host_name: str
    external: bool = False


class NotFound(Exception):
    """The name does not exist (NXDOMAIN)."""


class ClusterZone:
    """Answers for the cluster zone and the reverse names of cluster addresses."""

    def __init__(
        self,
        state: ClusterState,
        domain: str = "cluster.local",
        *,
        ttl: int = DEFAULT_TTL,
        reverse_cidrs: tuple[str, ...] = ("10.244.0.0/16", "10.96.0.0/12"),
    ) -> None:
        self.state = state
        self.domain = domain.lower().strip(".")
        self.ttl = ttl
        self.reverse_nets = [ipaddress.ip_network(c, strict=False) for c in reverse_cidrs]

    # ----------------------------------------------------------------- entry
    def resolve(self, name: str, qtype: int) -> Answer | None:
        """The answer for a lowercased ``name`` (no trailing dot), or None when it isn't ours."""
        if names.in_zone(name, self.domain):
            return self._zone_answer(name, qtype, 0)
        if names.is_reverse(name):
            return self._reverse_answer(name, qtype)
        return None

    def _zone_answer(self, name: str, qtype: int, depth: int) -> Answer:
        zn = names.parse_zone_name(name, self.domain)
        try:
            records = self._records(name, zn, qtype)
        except NotFound:
            return self._negative(RCODE.NXDOMAIN, self.domain)
        if not records.answer:
            return self._negative(RCODE.NOERROR, self.domain)
        if records.chase and names.in_zone(records.chase, self.domain) and depth < MAX_CHASE:
            inner = self._zone_answer(records.chase, qtype, depth + 1)
            inner.answer[:0] = records.answer
            return inner
        return records

    def _negative(self, rcode: int, zone: str) -> Answer:
        return Answer(rcode, authority=[self.soa(zone)])

    def soa(self, zone: str) -> Rec:
        times = (self.state.modified & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl)
        return Rec(zone, T.SOA, self.ttl, (f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", times))

    def _rr(self, name: str, rtype: int, data: Any) -> Rec:
        return Rec(name, rtype, self.ttl, data)

    # ----------------------------------------------------------------- zone names
    def _records(self, name: str, zn: ZoneName, qtype: int) -> Answer:
        if zn.kind == "invalid":
            raise NotFound
        if zn.kind == "apex":
            return self._apex(name, qtype)
        if zn.kind == "version":
            txt = self._rr(name, T.TXT, names.SCHEMA_VERSION)
            return Answer(answer=[txt] if qtype == T.TXT else [])
        if zn.kind == "nameserver":
            return Answer(answer=self._addresses(name, self._dns_ips(), qtype))
        if zn.kind == "dns" or not zn.namespace:
            return Answer()
        if zn.namespace not in self.state.namespaces:
            raise NotFound
        if not zn.service:
            return Answer()
        if zn.kind == names.POD:
            return self._pod(name, zn, qtype)
        return self._service(name, zn, qtype)

    def _apex(self, name: str, qtype: int) -> Answer:
        if qtype == T.SOA:
            return Answer(answer=[self.soa(name)])
        if qtype == T.NS:
            ns_name = f"ns.dns.{self.domain}"
            extra = self._addresses(ns_name, self._dns_ips(), T.A) + self._addresses(
                ns_name, self._dns_ips(), T.AAAA
            )
            return Answer(answer=[self._rr(name, T.NS, ns_name)], additional=extra)
        return Answer()

    def _dns_ips(self) -> list[str]:
        svc = self.state.service("kube-system", "kube-dns")
        return cluster_ips(svc) if svc else []

    def _addresses(self, name: str, ips: list[str], qtype: int) -> list[Rec]:
        out: list[Rec] = []
        seen: set[str] = set()
        for ip in ips:
            if ip in seen:
                continue
            seen.add(ip)
            if ":" in ip and qtype == T.AAAA:
                out.append(self._rr(name, T.AAAA, ip))
            elif ":" not in ip and qtype == T.A:
                out.append(self._rr(name, T.A, ip))
        return out

    def _pod(self, name: str, zn: ZoneName, qtype: int) -> Answer:
        """``pods insecure``: any dashed address in an existing namespace answers itself."""
        addr = names.undashed(zn.service)
        if addr is None or zn.endpoint or zn.port:
            raise NotFound
        return Answer(answer=self._addresses(name, [str(addr)], qtype))

    def _service(self, name: str, zn: ZoneName, qtype: int) -> Answer:
        svc = self.state.service(zn.namespace, zn.service)
        if svc is None:
            raise NotFound
        targets = self._targets(svc, zn)
        if not targets:
            raise NotFound
        if targets[0].external:
            target = targets[0].host.lower().rstrip(".")
            answer = [self._rr(name, T.CNAME, target)]
            return Answer(answer=answer, chase=None if qtype == T.CNAME else target)
        if qtype == T.SRV:
            return self._srv(name, targets)
        return Answer(answer=self._addresses(name, [t.host for t in targets], qtype))

    def _srv(self, name: str, targets: list[Target]) -> Answer:
        unique = list(dict.fromkeys((t.port, t.host_name) for t in targets if t.port >= 0))
        weight = 100 // len(unique) if unique else 0
        answer = [self._rr(name, T.SRV, (0, weight, port, host)) for port, host in unique]
        extra: list[Rec] = []
        for host in dict.fromkeys(h for _, h in unique):
            ips = [t.host for t in targets if t.host_name == host]
            extra += self._addresses(host, ips, T.A) + self._addresses(host, ips, T.AAAA)
        return Answer(answer=answer, additional=extra)

    # ----------------------------------------------------------------- service targets
    def _targets(self, svc: Obj, zn: ZoneName) -> list[Target]:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            ext = str(spec.get("externalName") or "")
            if zn.endpoint or not ext or _is_ip(ext):
                return []
            return [Target(ext, -1, "", external=True)]
        if not cluster_ips(svc) or zn.endpoint:
            return self._endpoint_targets(zn)
        svc_name = f"{zn.service}.{zn.namespace}.svc.{self.domain}"
        return [
            Target(ip, int(p.get("port", 0)), svc_name)
            for p in spec.get("ports") or []
            if _port_matches(zn, p)
            for ip in cluster_ips(svc)
        ]

    def _endpoint_targets(self, zn: ZoneName) -> list[Target]:
        out: list[Target] = []
        svc_name = f"{zn.service}.{zn.namespace}.svc.{self.domain}"
        for eps in self.state.service_slices(zn.namespace, zn.service):
            if eps.get("addressType") not in ("IPv4", "IPv6"):
                continue
            ports = eps.get("ports") or [{"port": -1}]  # no ports: addresses only (no SRV)
            for ep in eps.get("endpoints") or []:
                if not endpoint_ready(ep):
                    continue
                for ip in ep.get("addresses") or []:
                    host = endpoint_host(ep, ip)
                    if zn.endpoint and zn.endpoint != host.lower():
                        continue
                    for p in ports:
                        if _port_matches(zn, p):
                            out.append(Target(ip, int(p.get("port", -1)), f"{host}.{svc_name}"))
        return out

    # ----------------------------------------------------------------- reverse
    def _reverse_answer(self, name: str, qtype: int) -> Answer | None:
        text = names.reverse_address(name)
        if text is None:
            return None
        ptrs = self.reverse_names(text)
        zone = "ip6.arpa" if name.endswith("ip6.arpa") else "in-addr.arpa"
        if not ptrs:
            addr = ipaddress.ip_address(text)
            if any(addr in net for net in self.reverse_nets):
                return self._negative(RCODE.NXDOMAIN, zone)
            return None
        if qtype != T.PTR:
            return self._negative(RCODE.NOERROR, zone)
        return Answer(answer=[self._rr(name, T.PTR, p) for p in ptrs])

    def reverse_names(self, ip: str) -> list[str]:
        """The names a PTR query of ``ip`` answers: the Service owning the clusterIP, else
        every ready endpoint with that address."""
        for svc in self.state.services_with_ip(ip):
            meta = svc.get("metadata") or {}
            return [f"{meta.get('name')}.{meta.get('namespace')}.svc.{self.domain}".lower()]
        out: list[str] = []
        for eps in self.state.slices_with_ip(ip):
            meta = eps.get("metadata") or {}
            svc_name = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
            for ep in eps.get("endpoints") or []:
                if endpoint_ready(ep) and any(_same_ip(a, ip) for a in ep.get("addresses") or []):
                    host = endpoint_host(ep, ip)
                    out.append(f"{host}.{svc_name}.{meta.get('namespace')}.svc.{self.domain}".lower())
        return list(dict.fromkeys(out))


def endpoint_host(ep: Obj, ip: str) -> str:
    """An endpoint's DNS label: its ``hostname`` (StatefulSet pods), else its dashed address."""
    return str(ep.get("hostname") or names.dashed(ip))


def _port_matches(zn: ZoneName, port: Obj) -> bool:
    name_ok = not zn.port or zn.port == str(port.get("name") or "").lower()
    proto_ok = not zn.protocol or zn.protocol == str(port.get("protocol") or "TCP").lower()
    return name_ok and proto_ok


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _same_ip(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False
