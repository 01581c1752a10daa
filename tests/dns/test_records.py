"""Record logic of the cluster zone (Kubernetes DNS spec 1.1.0 as CoreDNS serves it)."""

from __future__ import annotations

from typing import Any

from dnslib import QTYPE, RCODE  # type: ignore[import-untyped]

from kubelite.dns.names import parse_zone_name, reverse_address, undashed
from tests.dns.cluster import ask, build, rdatas
from tests.dns.objects import endpoint, endpoint_slice, service


def test_clusterip_service_a_record_with_ttl_5_and_authoritative() -> None:
    _, _, h = build()
    r = ask(h, "web.default.svc.cluster.local")
    assert r.header.rcode == RCODE.NOERROR and r.header.aa == 1
    assert rdatas(r, "A") == ["10.96.0.20"]
    assert [rr.ttl for rr in r.rr] == [5]


def test_names_are_case_insensitive_and_answers_echo_the_query_case() -> None:
    _, _, h = build()
    ask(h, "web.default.svc.cluster.local")  # fills the cache with the lowercase form
    r = ask(h, "WeB.DEFAULT.Svc.Cluster.Local")
    assert rdatas(r, "A") == ["10.96.0.20"]
    assert str(r.rr[0].rname) == "WeB.DEFAULT.Svc.Cluster.Local."
    assert str(r.q.qname) == "WeB.DEFAULT.Svc.Cluster.Local."


def test_aaaa_for_ipv4_only_service_is_nodata_with_soa() -> None:
    st, _, h = build()
    r = ask(h, "web.default.svc.cluster.local", "AAAA")
    assert r.header.rcode == RCODE.NOERROR and r.rr == []
    soa = r.auth[0]
    assert soa.rtype == QTYPE.SOA and str(soa.rname) == "cluster.local."
    assert soa.rdata.times[0] == st.modified and soa.rdata.times[-1] == 5 and soa.ttl == 5


def test_dual_stack_and_ipv6_only_services() -> None:
    _, _, h = build()
    assert rdatas(ask(h, "dual.default.svc.cluster.local", "A"), "A") == ["10.96.0.21"]
    assert rdatas(ask(h, "dual.default.svc.cluster.local", "AAAA"), "AAAA") == ["fd00::21"]
    v6 = ask(h, "v6only.default.svc.cluster.local", "A")
    assert v6.header.rcode == RCODE.NOERROR and v6.rr == []
    assert rdatas(ask(h, "v6only.default.svc.cluster.local", "AAAA"), "AAAA") == ["fd00::22"]


def test_nxdomain_versus_nodata() -> None:
    _, _, h = build()
    nx = [
        "nope.default.svc.cluster.local",  # no such service
        "web.nons.svc.cluster.local",  # no such namespace
        "nons.svc.cluster.local",
        "foo.cluster.local",  # neither svc nor pod
        "a.b.c.web.default.svc.cluster.local",  # too many labels
        "_http._udp.web.default.svc.cluster.local",  # no such port/protocol
        "empty.db.svc.cluster.local",  # headless without ready endpoints
    ]
    for name in nx:
        r = ask(h, name)
        assert r.header.rcode == RCODE.NXDOMAIN, name
        assert r.auth and r.auth[0].rtype == QTYPE.SOA, name
    nodata = ["cluster.local", "svc.cluster.local", "pod.cluster.local", "default.svc.cluster.local"]
    nodata += ["default.pod.cluster.local", "dns.cluster.local"]
    for name in nodata:
        r = ask(h, name)
        assert (r.header.rcode, r.rr) == (RCODE.NOERROR, []), name
        assert r.auth[0].rtype == QTYPE.SOA, name
    other_type = ask(h, "web.default.svc.cluster.local", "MX")
    assert (other_type.header.rcode, other_type.rr) == (RCODE.NOERROR, [])
    assert ask(h, "nope.default.svc.cluster.local", "MX").header.rcode == RCODE.NXDOMAIN


def test_headless_service_returns_ready_endpoints_only() -> None:
    _, _, h = build()
    r = ask(h, "pg.db.svc.cluster.local")
    assert sorted(rdatas(r, "A")) == ["10.244.1.5", "10.244.1.6", "10.244.1.8"]  # .7 is not ready
    assert ask(h, "pg.db.svc.cluster.local", "AAAA").rr == []


def test_endpoint_hostnames_and_dashed_addresses() -> None:
    _, _, h = build()
    assert rdatas(ask(h, "pg-0.pg.db.svc.cluster.local"), "A") == ["10.244.1.5"]
    assert rdatas(ask(h, "PG-1.pg.db.svc.cluster.local"), "A") == ["10.244.1.6"]
    assert rdatas(ask(h, "10-244-1-8.pg.db.svc.cluster.local"), "A") == ["10.244.1.8"]
    assert ask(h, "pg-2.pg.db.svc.cluster.local").header.rcode == RCODE.NXDOMAIN  # not ready
    assert ask(h, "pg-9.pg.db.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    # endpoint names work behind ClusterIP services too (CoreDNS)
    assert rdatas(ask(h, "10-244-0-10.web.default.svc.cluster.local"), "A") == ["10.244.0.10"]


def test_srv_for_clusterip_service_ports() -> None:
    _, _, h = build()
    r = ask(h, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rdatas(r, "SRV") == ["0 100 80 web.default.svc.cluster.local."]
    assert rdatas(r, "A", "ar") == ["10.96.0.20"]
    assert str(r.ar[0].rname) == "web.default.svc.cluster.local."
    every = ask(h, "web.default.svc.cluster.local", "SRV")
    assert sorted(rdatas(every, "SRV")) == [
        "0 50 80 web.default.svc.cluster.local.",
        "0 50 9090 web.default.svc.cluster.local.",
    ]
    assert ask(h, "_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV").rr[0].rdata.port == 53
    assert ask(h, "_dns._tcp.kube-dns.kube-system.svc.cluster.local", "SRV").header.rcode == RCODE.NXDOMAIN


def test_srv_for_headless_service_names_each_endpoint() -> None:
    _, _, h = build()
    r = ask(h, "_postgres._tcp.pg.db.svc.cluster.local", "SRV")
    assert sorted(rdatas(r, "SRV")) == [
        "0 33 5432 10-244-1-8.pg.db.svc.cluster.local.",
        "0 33 5432 pg-0.pg.db.svc.cluster.local.",
        "0 33 5432 pg-1.pg.db.svc.cluster.local.",
    ]
    glue = {str(rr.rname): str(rr.rdata) for rr in r.ar}
    assert glue["pg-0.pg.db.svc.cluster.local."] == "10.244.1.5"
    assert glue["10-244-1-8.pg.db.svc.cluster.local."] == "10.244.1.8"


def test_external_name_is_a_cname() -> None:
    _, zone, h = build()
    r = ask(h, "ext.default.svc.cluster.local", "CNAME")
    assert rdatas(r, "CNAME") == ["example.com."]
    ans = zone.resolve("ext.default.svc.cluster.local", QTYPE.A)
    assert ans is not None and ans.chase == "example.com"  # the target is resolved upstream
    alias = ask(h, "alias.default.svc.cluster.local", "A")  # in-zone target: chased here
    assert rdatas(alias, "CNAME") == ["web.default.svc.cluster.local."]
    assert rdatas(alias, "A") == ["10.96.0.20"]
    assert ask(h, "x.ext.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_pod_records_pods_insecure() -> None:
    st, _, h = build()
    assert rdatas(ask(h, "10-244-1-5.db.pod.cluster.local"), "A") == ["10.244.1.5"]
    assert rdatas(ask(h, "1-2-3-4.default.pod.cluster.local"), "A") == ["1.2.3.4"]  # not verified
    assert ask(h, "10-244-1-5.db.pod.cluster.local", "AAAA").rr == []
    assert rdatas(ask(h, "fd00--5.db.pod.cluster.local", "AAAA"), "AAAA") == ["fd00::5"]
    assert ask(h, "10-244-1-5.nons.pod.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(h, "not-an-ip.db.pod.cluster.local").header.rcode == RCODE.NXDOMAIN
    st.set_namespace("db", False)
    assert ask(h, "10-244-1-5.db.pod.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_ptr_for_service_and_endpoint_addresses() -> None:
    _, zone, h = build()
    assert rdatas(ask(h, "20.0.96.10.in-addr.arpa", "PTR")) == ["web.default.svc.cluster.local."]
    assert rdatas(ask(h, "5.1.244.10.in-addr.arpa", "PTR")) == ["pg-0.pg.db.svc.cluster.local."]
    assert rdatas(ask(h, "8.1.244.10.in-addr.arpa", "PTR")) == ["10-244-1-8.pg.db.svc.cluster.local."]
    assert rdatas(ask(h, "10.0.244.10.in-addr.arpa", "PTR")) == ["10-244-0-10.web.default.svc.cluster.local."]
    v6 = "2.2.0.0." + "0." * 24 + "0.0.d.f.ip6.arpa"
    assert rdatas(ask(h, v6, "PTR")) == ["v6only.default.svc.cluster.local."]
    unknown = ask(h, "99.99.96.10.in-addr.arpa", "PTR")  # inside the service CIDR: ours
    assert unknown.header.rcode == RCODE.NXDOMAIN and str(unknown.auth[0].rname) == "in-addr.arpa."
    assert ask(h, "7.1.244.10.in-addr.arpa", "PTR").header.rcode == RCODE.NXDOMAIN  # not ready
    assert zone.resolve("8.8.8.8.in-addr.arpa", QTYPE.PTR) is None  # not ours: forwarded
    assert zone.resolve("example.com", QTYPE.A) is None


def test_dns_version_soa_and_ns_at_the_apex() -> None:
    _, _, h = build()
    assert rdatas(ask(h, "dns-version.cluster.local", "TXT")) == ['"1.1.0"']
    soa = ask(h, "cluster.local", "SOA")
    assert soa.rr[0].rtype == QTYPE.SOA and str(soa.rr[0].rdata.mname) == "ns.dns.cluster.local."
    ns = ask(h, "cluster.local", "NS")
    assert rdatas(ns, "NS") == ["ns.dns.cluster.local."] and rdatas(ns, "A", "ar") == ["10.96.0.10"]
    assert rdatas(ask(h, "ns.dns.cluster.local"), "A") == ["10.96.0.10"]


def test_changes_invalidate_cached_answers() -> None:
    st, _, h = build()
    assert rdatas(ask(h, "web.default.svc.cluster.local"), "A") == ["10.96.0.20"]
    assert ask(h, "new.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    st.set_service("default/new", service("new", ips=["10.96.0.30"]))
    st.set_service("default/web", None)
    assert rdatas(ask(h, "new.default.svc.cluster.local"), "A") == ["10.96.0.30"]
    assert ask(h, "web.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    eps = [endpoint("10.244.1.9", "e-0")]
    st.set_slice("db/empty-1", endpoint_slice("empty-1", "empty", "db", eps))
    assert rdatas(ask(h, "empty.db.svc.cluster.local"), "A") == ["10.244.1.9"]
    st.set_slice("db/pg-xyz", None)
    assert ask(h, "pg.db.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(h, "5.1.244.10.in-addr.arpa", "PTR").header.rcode == RCODE.NXDOMAIN


def test_large_answers_truncate_over_udp_only() -> None:
    st, _, h = build()
    eps = [endpoint(f"10.244.2.{i}", f"big-{i}") for i in range(1, 120)]
    st.set_service("db/big", service("big", "db", ["None"], []))
    st.set_slice("db/big-1", endpoint_slice("big-1", "big", "db", eps, []))
    udp = ask(h, "big.db.svc.cluster.local")
    assert udp.header.tc == 1 and udp.rr == []
    edns = ask(h, "big.db.svc.cluster.local", edns=4096)  # capped at 1232 bytes
    assert edns.header.tc == 1 and edns.ar and edns.ar[0].rtype == QTYPE.OPT
    tcp = ask(h, "big.db.svc.cluster.local", tcp=True)
    assert tcp.header.tc == 0 and len(tcp.rr) == 119
    small = ask(h, "pg.db.svc.cluster.local", edns=1232)
    assert small.header.tc == 0 and len(small.rr) == 3 and small.ar[0].rtype == QTYPE.OPT


def test_name_parsing_helpers() -> None:
    zn = parse_zone_name("_http._tcp.web.default.svc.cluster.local", "cluster.local")
    assert (zn.kind, zn.port, zn.protocol, zn.service, zn.namespace) == (
        "svc",
        "http",
        "tcp",
        "web",
        "default",
    )
    assert parse_zone_name("pg-0.pg.db.svc.cluster.local", "cluster.local").endpoint == "pg-0"
    assert parse_zone_name("x.cluster.local", "cluster.local").kind == "invalid"
    assert str(undashed("10-0-0-1")) == "10.0.0.1" and str(undashed("fd00--1")) == "fd00::1"
    assert undashed("web") is None
    assert reverse_address("4.3.2.1.in-addr.arpa") == "1.2.3.4"
    assert reverse_address("3.2.1.in-addr.arpa") is None


def test_other_cluster_domain() -> None:
    from kubelite.dns.records import ClusterZone
    from kubelite.dns.state import ClusterState

    st = ClusterState()
    st.set_namespace("default", True)
    st.set_service("default/web", service("web", ips=["10.96.0.20"]))
    zone = ClusterZone(st, "Kube.Example.")
    ans = zone.resolve("web.default.svc.kube.example", QTYPE.A)
    assert ans is not None and [rec.data for rec in ans.answer] == ["10.96.0.20"]
    assert zone.resolve("web.default.svc.cluster.local", QTYPE.A) is None


def test_repeated_queries_are_served_from_the_cache() -> None:
    st, zone, h = build()
    calls: list[str] = []
    resolve = zone.resolve

    def counting(name: str, qtype: int) -> Any:
        calls.append(name)
        return resolve(name, qtype)

    zone.resolve = counting  # type: ignore[method-assign]
    for name in (
        "web.default.svc.cluster.local",
        "WEB.default.svc.cluster.local",
        "nope.default.svc.cluster.local",
    ):
        ask(h, name)
        ask(h, name)
    assert calls == ["web.default.svc.cluster.local", "nope.default.svc.cluster.local"]
    st.set_namespace("other", True)  # any change drops the cache
    ask(h, "web.default.svc.cluster.local")
    assert len(calls) == 3


def test_a_change_drops_only_the_answers_it_can_alter() -> None:
    st, zone, h = build()
    calls: list[str] = []
    resolve = zone.resolve

    def counting(name: str, qtype: int) -> Any:
        calls.append(name)
        return resolve(name, qtype)

    zone.resolve = counting  # type: ignore[method-assign]
    asked = [
        "web.default.svc.cluster.local",
        "dual.default.svc.cluster.local",
        "alias.default.svc.cluster.local",  # CNAME to web: must follow web's changes
        "pg-0.pg.db.svc.cluster.local",
        "20.0.96.10.in-addr.arpa",
    ]
    for name in asked:
        ask(h, name, "PTR" if "arpa" in name else "A")
    calls.clear()
    st.set_service("default/web", service("web", ips=["10.96.0.99"]))
    for name in asked:
        ask(h, name, "PTR" if "arpa" in name else "A")
    assert sorted(calls) == sorted(
        ["web.default.svc.cluster.local", "alias.default.svc.cluster.local", "20.0.96.10.in-addr.arpa"]
    )
    assert rdatas(ask(h, "alias.default.svc.cluster.local"), "A") == ["10.96.0.99"]
    assert ask(h, "20.0.96.10.in-addr.arpa", "PTR").header.rcode == RCODE.NXDOMAIN
    calls.clear()
    eps = [endpoint("10.244.1.50", "pg-0")]
    st.set_slice("db/pg-xyz", endpoint_slice("pg-xyz", "pg", "db", eps))
    assert rdatas(ask(h, "pg-0.pg.db.svc.cluster.local"), "A") == ["10.244.1.50"]
    ask(h, "dual.default.svc.cluster.local")
    assert calls == ["pg-0.pg.db.svc.cluster.local"]
