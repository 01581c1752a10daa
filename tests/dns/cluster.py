"""A small cluster (state + zone + handler) and a query helper for the record tests."""

from __future__ import annotations

from typing import Any

from dnslib import EDNS0, QTYPE, DNSRecord  # type: ignore[import-untyped]

from kubelite.dns.acl import ClientACL
from kubelite.dns.forward import Forwarder
from kubelite.dns.handler import Handler
from kubelite.dns.records import ClusterZone
from kubelite.dns.state import ClusterState
from tests.dns.objects import endpoint, endpoint_slice, service

PG_PORTS = [{"name": "postgres", "port": 5432, "protocol": "TCP"}]


def build() -> tuple[ClusterState, ClusterZone, Handler]:
    """default: web (ClusterIP), dual (v4+v6), v6only, ext (ExternalName out of zone), alias
    (ExternalName to web), kube-system/kube-dns; db: pg (headless, StatefulSet-like), empty
    (headless without ready endpoints)."""
    st = ClusterState()
    for ns in ("default", "db", "kube-system"):
        st.set_namespace(ns, True)
    web_ports = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics", "port": 9090}]
    st.set_service("default/web", service("web", ips=["10.96.0.20"], ports=web_ports))
    st.set_slice("default/web-abc", endpoint_slice("web-abc", "web", endpoints=[endpoint("10.244.0.10")]))
    st.set_service("default/dual", service("dual", ips=["10.96.0.21", "fd00::21"]))
    st.set_service("default/v6only", service("v6only", ips=["fd00::22"]))
    st.set_service("default/ext", service("ext", external="Example.COM"))
    st.set_service("default/alias", service("alias", external="web.default.svc.cluster.local"))
    dns_ports = [{"name": "dns", "port": 53, "protocol": "UDP"}]
    st.set_service("kube-system/kube-dns", service("kube-dns", "kube-system", ["10.96.0.10"], dns_ports))
    st.set_service("db/pg", service("pg", "db", ["None"], PG_PORTS))
    eps = [
        endpoint("10.244.1.5", "pg-0"),
        endpoint("10.244.1.6", "pg-1"),
        endpoint("10.244.1.7", "pg-2", ready=False),
        endpoint("10.244.1.8", ready=None),
    ]
    st.set_slice("db/pg-xyz", endpoint_slice("pg-xyz", "pg", "db", eps, PG_PORTS))
    st.set_service("db/empty", service("empty", "db", ["None"], PG_PORTS))
    st.set_slice(
        "db/empty-1", endpoint_slice("empty-1", "empty", "db", [endpoint("10.244.1.9", ready=False)])
    )
    zone = ClusterZone(st, "cluster.local")
    return st, zone, Handler(zone, Forwarder([]), ClientACL(["10.244.0.0/16"]))


def ask(handler: Handler, name: str, qtype: str = "A", *, tcp: bool = False, edns: int = 0) -> Any:
    """Send one query through the handler (cluster names answer synchronously); parsed reply."""
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=edns))
    out = handler.answer(bytes(q.pack()), "127.0.0.1", tcp)
    assert isinstance(out, bytes), f"{name} {qtype} was not answered synchronously"
    reply = DNSRecord.parse(out)
    assert reply.header.id == q.header.id
    return reply


def rdatas(reply: Any, qtype: str | None = None, section: str = "rr") -> list[str]:
    rrs = getattr(reply, section)
    return [str(rr.rdata) for rr in rrs if qtype is None or rr.rtype == getattr(QTYPE, qtype)]
