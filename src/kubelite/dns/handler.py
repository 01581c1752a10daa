"""One query in, one reply out: the response cache, the cluster zone and forwarding.

The hot path is a dict lookup keyed by (lowercased wire name, type) that yields a packed
response; :func:`kubelite.dns.wire.finish` splices the query's id, flags and question into it.
Cached answers are never stale: each entry belongs to the (namespace, service) its name is about
(``[_port._proto.|endpoint.]svc.ns.svc.<zone>``; ``(ns, "")`` for namespace-level and pod names)
or to the global group (reverse names, the apex, CNAME chains, markers), and a change of a
Service or EndpointSlice drops its pair's entries and the global group; a Namespace change drops
everything.  NXDOMAIN/NODATA answers are cached too.  Names outside the zone go to the
:class:`~kubelite.dns.forward.Forwarder` (allowed clients only); their answers are kept by
:class:`~kubelite.dns.fwdcache.ForwardCache` for their TTL (at most 30 s).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from dnslib import DNSBuffer, DNSError, DNSHeader, DNSQuestion, DNSRecord  # type: ignore[import-untyped]

from kubelite.dns import names, wire
from kubelite.dns.acl import ClientACL
from kubelite.dns.forward import Forwarder
from kubelite.dns.fwdcache import ForwardCache
from kubelite.dns.records import Answer, ClusterZone
from kubelite.dns.state import Scope
from kubelite.dns.wire import Rec, T

log = logging.getLogger("kubelite.dns")
MAX_CACHE = 50_000
MAX_IN_FLIGHT = 1000
TCP_LIMIT = 65535
QCLASS_IN = 1
FORWARD = b""  # cache marker: the name is not ours
CHASE = b"-"  # cache marker: an ExternalName CNAME whose target is resolved per query
REFUSED_TYPES = {T.AXFR, T.IXFR}
GLOBAL = ("", "")


class Handler:
    """Answers raw DNS messages; ``answer`` returns bytes at once or an awaitable of bytes."""

    def __init__(self, zone: ClusterZone, forwarder: Forwarder, acl: ClientACL) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.acl = acl
        self.cache: dict[tuple[bytes, int], bytes] = {}
        self.in_flight = 0  # forwarded queries waiting for an upstream
        self.forwarded = ForwardCache()
        self.groups: dict[tuple[str, str], set[tuple[bytes, int]]] = {}
        zone.state.listeners.append(self.invalidate)

    def answer(self, data: bytes, client: str, tcp: bool) -> bytes | Awaitable[bytes | None] | None:
        q = wire.parse_query(data)
        if q is None:
            return wire.formerr(data)
        early = self._refuse(q)
        if early is not None:
            return early
        limit = TCP_LIMIT if tcp else q.udp_limit()
        cached = self.cache.get(q.key)
        if cached is None:
            cached = self._fill(q)
        if cached == FORWARD:
            return self._forward(q, client, tcp, limit)
        if cached == CHASE:
            return self._chase(q, client, limit)
        return wire.finish(cached, q, limit)

    def invalidate(self, scope: Scope | None) -> None:
        """Drop the cached answers a change of ``scope`` may alter (None: all of them)."""
        if scope is None:
            self.cache.clear()
            self.groups.clear()
            return
        for pair in (GLOBAL, *scope):
            for key in self.groups.pop(pair, ()):
                self.cache.pop(key, None)

    def _group(self, name: str, ans: Answer | None) -> tuple[str, str]:
        if ans is None or ans.chase or not names.in_zone(name, self.zone.domain):
            return GLOBAL
        if ans.answer and ans.answer[0].rtype == T.CNAME:
            return GLOBAL  # an in-zone CNAME chain depends on another Service
        zn = names.parse_zone_name(name, self.zone.domain)
        if zn.kind not in (names.SVC, names.POD) or not zn.namespace:
            return GLOBAL
        return zn.namespace, zn.service if zn.kind == names.SVC else ""

    def _refuse(self, q: wire.Query) -> bytes | None:
        if wire.opcode(q) != 0:
            return wire.error_reply(q, wire.RCODE_NOTIMP)
        if q.qclass != QCLASS_IN or q.qtype in REFUSED_TYPES:
            return wire.error_reply(q, wire.RCODE_REFUSED)
        return None

    def _fill(self, q: wire.Query) -> bytes:
        """Compute and cache the answer template of ``q``'s (name, type)."""
        name = q.name()
        ans = self.zone.resolve(name, q.qtype)
        if ans is None:
            packed = FORWARD
        elif ans.chase:
            packed = CHASE
        else:
            packed = self._pack(q, ans)
        if len(self.cache) >= MAX_CACHE:
            self.invalidate(None)
        self.cache[q.key] = packed
        self.groups.setdefault(self._group(name, ans), set()).add(q.key)
        return packed

    def _pack(self, q: wire.Query, ans: Answer, extra_answers: list[Rec] | None = None) -> bytes:
        answer = ans.answer + (extra_answers or [])
        return wire.pack_response(q, ans.rcode, answer, ans.authority, ans.additional)

    async def _forward(self, q: wire.Query, client: str, tcp: bool, limit: int) -> bytes | None:
        if not self.acl.allows(client):
            return wire.error_reply(q, wire.RCODE_REFUSED, recursion=False)
        reply = self.forwarded.get(q)
        if reply is not None:
            return reply if len(reply) <= limit else wire.tc_reply(q)
        if self.in_flight >= MAX_IN_FLIGHT:
            return wire.error_reply(q, wire.RCODE_SERVFAIL)
        self.in_flight += 1
        try:
            reply = await self.forwarder.exchange(q.data, tcp=tcp)
        finally:
            self.in_flight -= 1
        if reply is None:
            return wire.error_reply(q, wire.RCODE_SERVFAIL)
        self.forwarded.put(q, reply)
        if len(reply) > limit:
            return wire.tc_reply(q)  # too big for this client over UDP: ask again over TCP
        return reply

    async def _chase(self, q: wire.Query, client: str, limit: int) -> bytes | None:
        """An ExternalName: the CNAME plus the target's records from upstream (allowed clients)."""
        ans = self.zone.resolve(q.name(), q.qtype)
        if ans is None or not ans.chase:  # changed meanwhile
            self.cache.pop(q.key, None)
            out = self.answer(q.data, client, limit == TCP_LIMIT)
            return out if out is None or isinstance(out, bytes) else await out
        extra: list[Rec] = []
        if self.acl.allows(client):
            upstream = DNSRecord(DNSHeader(rd=1), q=DNSQuestion(ans.chase, q.qtype, QCLASS_IN))
            reply = await self.forwarder.exchange(bytes(upstream.pack()), tcp=limit == TCP_LIMIT)
            if reply is not None:
                with contextlib.suppress(DNSError, BufferError, ValueError):
                    ans.rcode, extra = upstream_records(reply)
        packed = self._pack(q, ans, extra)
        return wire.finish(packed, q, limit)


def upstream_records(reply: bytes) -> tuple[int, list[Rec]]:
    """The rcode and answer records of an upstream reply, as :class:`Rec` values."""
    parsed = DNSRecord.parse(reply)
    out: list[Rec] = []
    for rr in parsed.rr:
        name = str(rr.rname).rstrip(".").lower()
        if rr.rtype in (T.A, T.AAAA):
            data: Any = str(rr.rdata)
        elif rr.rtype in (T.CNAME, T.PTR, T.NS):
            data = str(rr.rdata.label).rstrip(".").lower()
        else:
            buf = DNSBuffer()
            rr.rdata.pack(buf)
            data = bytes(buf.data)
        out.append(Rec(name, rr.rtype, rr.ttl, data))
    return int(parsed.header.rcode), out
