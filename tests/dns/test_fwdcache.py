"""Caching of upstream answers: TTL-bounded, aged on the way out, negative answers by SOA."""

from __future__ import annotations

from dnslib import QTYPE, RCODE, RR, SOA, A, DNSRecord  # type: ignore[import-untyped]

from kubelite.dns import wire
from kubelite.dns.fwdcache import ForwardCache


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _query(name: str = "example.com", qtype: str = "A") -> wire.Query:
    q = wire.parse_query(bytes(DNSRecord.question(name, qtype).pack()))
    assert q is not None
    return q


def _reply(
    q: wire.Query, ttls: list[int], rcode: int = RCODE.NOERROR, soa: tuple[int, int] | None = None
) -> bytes:
    r = DNSRecord.parse(q.data).reply()
    r.header.rcode = rcode
    for i, ttl in enumerate(ttls):
        r.add_answer(RR("example.com.", QTYPE.A, rdata=A(f"192.0.2.{i + 1}"), ttl=ttl))
    if soa:
        times = (1, 7200, 900, 86400, soa[1])
        r.add_auth(RR("com.", QTYPE.SOA, rdata=SOA("a.com.", "h.com.", times), ttl=soa[0]))
    return bytes(r.pack())


def test_answers_are_kept_for_their_smallest_ttl_and_aged() -> None:
    clock = Clock()
    cache = ForwardCache(clock=clock)
    q = _query()
    cache.put(q, _reply(q, [20, 12]))
    clock.now += 5
    again = _query("EXAMPLE.com")
    out = DNSRecord.parse(cache.get(again))
    assert out.header.id == again.qid and str(out.q.qname) == "EXAMPLE.com."
    assert [rr.ttl for rr in out.rr] == [15, 7] and [str(rr.rdata) for rr in out.rr] == [
        "192.0.2.1",
        "192.0.2.2",
    ]
    clock.now += 7  # the 12 s record expired: the whole answer goes
    assert cache.get(q) is None and cache.entries == {}


def test_ttl_is_capped_at_30_seconds_and_zero_is_not_cached() -> None:
    clock = Clock()
    cache = ForwardCache(clock=clock)
    q = _query()
    cache.put(q, _reply(q, [3600]))
    clock.now += 29
    assert cache.get(q) is not None
    clock.now += 1
    assert cache.get(q) is None
    cache.put(q, _reply(q, [0]))
    assert cache.get(q) is None


def test_negative_answers_by_soa_and_never_servfail_or_truncated() -> None:
    clock = Clock()
    cache = ForwardCache(clock=clock)
    q = _query("nope.example.com")
    cache.put(q, _reply(q, [], RCODE.NXDOMAIN, soa=(60, 10)))  # min(SOA ttl, minimum) = 10
    assert DNSRecord.parse(cache.get(q)).header.rcode == RCODE.NXDOMAIN
    clock.now += 10
    assert cache.get(q) is None
    cache.put(q, _reply(q, [], RCODE.NXDOMAIN))  # no SOA: not cached
    assert cache.get(q) is None
    cache.put(q, _reply(q, [30], RCODE.SERVFAIL))
    assert cache.get(q) is None
    truncated = bytearray(_reply(q, [30]))
    truncated[2] |= 0x02
    cache.put(q, bytes(truncated))
    assert cache.get(q) is None
    cache.put(q, b"\x00" * 12 + q.data[12 : q.end] + b"\x00")  # garbage: ignored
    assert cache.get(q) is None
