"""Upstream answers kept for their TTL, like the ``cache 30`` of CoreDNS's default Corefile.

An answer is kept for the smallest TTL of its records (NXDOMAIN/NODATA: the SOA's TTL capped by
its minimum field, RFC 2308), at most ``max_ttl`` seconds; truncated answers, SERVFAILs and
negative answers without an SOA are not kept.  A cached answer is served with its TTLs lowered
by the seconds it spent in the cache, and with the query's id and question (case) spliced in.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from kubelite.dns import wire
from kubelite.dns.wire import RCODE, T

MAX_TTL = 30
MAX_ENTRIES = 10_000


class ForwardCache:
    def __init__(
        self,
        max_ttl: int = MAX_TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_ttl = max_ttl
        self.max_entries = max_entries
        self.clock = clock
        self.entries: dict[tuple[bytes, int, bool], tuple[float, float, bytes]] = {}

    @staticmethod
    def _key(q: wire.Query) -> tuple[bytes, int, bool]:
        return q.qname.lower(), q.qtype, bool(q.edns)

    def get(self, q: wire.Query) -> bytes | None:
        """The cached reply to ``q`` (TTLs aged, id and question of ``q``), or None."""
        entry = self.entries.get(self._key(q))
        if entry is None:
            return None
        expires, stored, reply = entry
        now = self.clock()
        if now >= expires:
            del self.entries[self._key(q)]
            return None
        aged = age_ttls(reply, q.end, int(now - stored))
        return q.data[:2] + aged[2:12] + q.data[12 : q.end] + aged[q.end :]

    def put(self, q: wire.Query, reply: bytes) -> None:
        try:
            ttl = cache_ttl(reply, q.end)
        except (IndexError, struct.error):
            return
        ttl = min(ttl, self.max_ttl)
        if ttl <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        now = self.clock()
        self.entries[self._key(q)] = (now + ttl, now, reply)


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += n + 1


def _records(msg: bytes, pos: int) -> list[tuple[int, int, int]]:
    """(type, ttl offset, rdata offset) of every record after the question (ends at ``pos``)."""
    _id, _flags, _qd, an, ns, ar = wire.HEADER.unpack_from(msg)
    out = []
    for _ in range(an + ns + ar):
        pos = _skip_name(msg, pos)
        rtype, _cls, _ttl, size = struct.unpack_from("!HHIH", msg, pos)
        out.append((rtype, pos + 4, pos + 10))
        pos += 10 + size
    if pos > len(msg):
        raise IndexError("records run past the message")
    return out


def cache_ttl(msg: bytes, qend: int) -> int:
    """Seconds ``msg`` may be cached (0: not at all)."""
    _id, flags, _qd, an, ns, _ar = wire.HEADER.unpack_from(msg)
    rcode = flags & 0xF
    if flags & wire.TC or rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
        return 0
    records = _records(msg, qend)
    ttls = [struct.unpack_from("!I", msg, at)[0] for rtype, at, _ in records[:an]]
    if rcode == RCODE.NXDOMAIN or not ttls:  # negative: the SOA decides (RFC 2308 §5)
        soas = [(at, rd) for rtype, at, rd in records[an : an + ns] if rtype == T.SOA]
        if not soas:
            return 0
        at, rdata = soas[0]
        minimum_at = _skip_name(msg, _skip_name(msg, rdata)) + 16
        return int(min(struct.unpack_from("!I", msg, at)[0], struct.unpack_from("!I", msg, minimum_at)[0]))
    return int(min(ttls))


def age_ttls(msg: bytes, qend: int, seconds: int) -> bytes:
    """``msg`` with every record's TTL lowered by ``seconds`` (not below 0; OPT untouched)."""
    if seconds <= 0:
        return msg
    out = bytearray(msg)
    for rtype, at, _ in _records(msg, qend):
        if rtype != T.OPT:
            ttl = struct.unpack_from("!I", out, at)[0]
            struct.pack_into("!I", out, at, max(0, ttl - seconds))
    return bytes(out)
