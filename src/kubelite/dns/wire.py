"""DNS wire-format helpers for the hot path (RFC 1035 §4, EDNS0 RFC 6891).

Cached responses are packed once for the lowercased question with every owner name compressed
to the question (offset 12).  Answering a query then only splices bytes: the query's id, its RD
and CD flags and its own question (same length, original case, so answers echo the query's
case as CoreDNS does), plus an OPT record when the query had one.  Responses larger than the
client's UDP limit are cut to the question with TC set, so the client retries over TCP.

Why by hand: dnslib (used for the forwarding path, and by the tests to decode every answer
independently) takes about 26 µs to parse a query and 60 µs to build and pack a reply on this
machine; splicing a cached packed reply takes about 5 µs, which is what keeps p99 under 5 ms at
1,000 queries/s on a shared core.  No DNS library offers packed-response splicing.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

HEADER = struct.Struct("!HHHHHH")
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
CD = 0x0010
OPCODE_MASK = 0x7800


class T:
    """Record types (RFC 1035, 2782, 3596)."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33
    OPT = 41
    IXFR = 251
    AXFR = 252


class RCODE:
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


class Rec(NamedTuple):
    """One resource record.  ``name``: lowercase, no trailing dot.  ``data``: A/AAAA the address;
    CNAME/PTR/NS the target name; SRV (priority, weight, port, target); TXT the text; SOA
    (mname, rname, (serial, refresh, retry, expire, minimum)); other types raw rdata bytes."""

    name: str
    rtype: int
    ttl: int
    data: Any


TYPE_OPT = T.OPT
UDP_LIMIT = 512
EDNS_LIMIT = 1232  # the DNS flag day 2020 payload size
OPT_RR = struct.pack("!BHHIH", 0, TYPE_OPT, EDNS_LIMIT, 0, 0)

RCODE_FORMERR = RCODE.FORMERR
RCODE_SERVFAIL = RCODE.SERVFAIL
RCODE_NOTIMP = RCODE.NOTIMP
RCODE_REFUSED = RCODE.REFUSED


@dataclass(frozen=True)
class Query:
    """The parts of a query the server needs, read without a full parse."""

    data: bytes
    qid: int
    flags: int
    qname: bytes  # wire form, as sent
    qtype: int
    qclass: int
    end: int  # offset just after the question
    edns: int  # advertised UDP payload size, 0 without OPT

    @property
    def key(self) -> tuple[bytes, int]:
        """Cache key: the wire name lowercased (length bytes are <= 63, never A-Z) and type."""
        return self.qname.lower(), self.qtype

    def name(self) -> str:
        """The lowercased name in text form, without the trailing dot ("" for the root)."""
        labels = []
        pos = 0
        wire = self.qname.lower()
        while wire[pos]:
            n = wire[pos]
            labels.append(wire[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
            pos += n + 1
        return ".".join(labels)

    def udp_limit(self) -> int:
        return max(UDP_LIMIT, min(self.edns, EDNS_LIMIT)) if self.edns else UDP_LIMIT


def parse_query(data: bytes) -> Query | None:
    """The query's header and single question, or None when it isn't a parseable query."""
    if len(data) < 17:
        return None
    data = bytes(data)
    qid, flags, qd, _an, _ns, ar = HEADER.unpack_from(data)
    if flags & QR or qd != 1:
        return None
    pos = 12
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        if n == 0:
            break
        if n > 63:  # compression pointers don't belong in a question
            return None
        pos += n + 1
    qname = data[12 : pos + 1]
    pos += 1
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    end = pos + 4
    return Query(data, qid, flags, qname, qtype, qclass, end, _edns_size(data, end, ar))


def _edns_size(data: bytes, pos: int, arcount: int) -> int:
    """The OPT record's payload size when it is the first additional record (root owner)."""
    if arcount < 1 or pos + 11 > len(data) or data[pos] != 0:
        return 0
    rtype, size = struct.unpack_from("!HH", data, pos + 1)
    return size if rtype == TYPE_OPT else 0


def finish(cached: bytes, q: Query, limit: int) -> bytes:
    """``cached`` (a response to the lowercased question) turned into the reply to ``q``."""
    _qid, flags, qd, an, ns, ar = HEADER.unpack_from(cached)
    flags = (flags & ~(RD | CD)) | (q.flags & (RD | CD))
    body = cached[q.end :]
    opt = OPT_RR if q.edns else b""
    out = HEADER.pack(q.qid, flags, qd, an, ns, ar + bool(opt)) + q.data[12 : q.end] + body + opt
    if len(out) > limit:
        return HEADER.pack(q.qid, flags | TC, 1, 0, 0, bool(opt)) + q.data[12 : q.end] + opt
    return out


def error_reply(q: Query, rcode: int, *, recursion: bool = True) -> bytes:
    """A reply with only the question and ``rcode`` (REFUSED, SERVFAIL, NOTIMP...)."""
    flags = QR | (q.flags & (OPCODE_MASK | RD | CD)) | (RA if recursion else 0) | rcode
    opt = OPT_RR if q.edns else b""
    return HEADER.pack(q.qid, flags, 1, 0, 0, bool(opt)) + q.data[12 : q.end] + opt


def formerr(data: bytes) -> bytes | None:
    """FORMERR for a message that has a header but no usable question (None: not even that)."""
    if len(data) < 12 or HEADER.unpack_from(data)[1] & QR:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    return HEADER.pack(qid, QR | (flags & (OPCODE_MASK | RD)) | RCODE_FORMERR, 0, 0, 0, 0)


def tc_reply(q: Query) -> bytes:
    """An empty NOERROR reply with TC set: the client asks again over TCP."""
    flags = QR | RA | TC | (q.flags & (RD | CD))
    opt = OPT_RR if q.edns else b""
    return HEADER.pack(q.qid, flags, 1, 0, 0, bool(opt)) + q.data[12 : q.end] + opt


def encode_name(name: str) -> bytes:
    """A domain name in wire form, uncompressed (``a.b.`` -> 01 61 01 62 00)."""
    labels = [label.encode("ascii") for label in name.strip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def opcode(q: Query) -> int:
    return (q.flags & OPCODE_MASK) >> 11


def truncated(data: bytes) -> bool:
    return len(data) >= 4 and bool(struct.unpack_from("!H", data, 2)[0] & TC)


def with_id(data: bytes, qid: int) -> bytes:
    return struct.pack("!H", qid) + data[2:]


class _Packer:
    """Records after a question: owners equal to the question name become a pointer to it
    (offset 12); a name already written in full is pointed to again (whole-name compression)."""

    def __init__(self, qname: str, head: bytes) -> None:
        self.out = bytearray(head)
        self.offsets: dict[str, int] = {qname: 12}

    def name(self, name: str, compress: bool = True) -> None:
        at = self.offsets.get(name)
        if compress and at is not None:
            self.out += struct.pack("!H", 0xC000 | at)
            return
        if at is None and len(self.out) < 0x3FFF:
            self.offsets[name] = len(self.out)
        self.out += encode_name(name)

    def record(self, rec: Rec) -> None:
        self.name(rec.name)
        self.out += struct.pack("!HHI", rec.rtype, 1, rec.ttl)
        size_at = len(self.out)
        self.out += b"\x00\x00"
        self._rdata(rec)
        struct.pack_into("!H", self.out, size_at, len(self.out) - size_at - 2)

    def _rdata(self, rec: Rec) -> None:
        t, data = rec.rtype, rec.data
        if t == T.A:
            self.out += socket.inet_aton(data)
        elif t == T.AAAA:
            self.out += socket.inet_pton(socket.AF_INET6, data)
        elif t in (T.CNAME, T.PTR, T.NS):
            self.name(data)
        elif t == T.SRV:
            self.out += struct.pack("!HHH", *data[:3])
            self.name(data[3], compress=False)  # RFC 2782: no compression of the target
        elif t == T.TXT:
            raw = data.encode()
            self.out += b"".join(
                bytes([len(raw[i : i + 255])]) + raw[i : i + 255] for i in range(0, len(raw), 255)
            )
        elif t == T.SOA:
            self.out += encode_name(data[0]) + encode_name(data[1]) + struct.pack("!5I", *data[2])
        else:
            self.out += bytes(data)


def pack_response(
    q: Query, rcode: int, answer: list[Rec], authority: list[Rec], additional: list[Rec], *, aa: bool = True
) -> bytes:
    """A response to ``q``'s lowercased question (id 0, flags QR/AA and ``rcode``), the form
    the cache keeps and :func:`finish` completes."""
    flags = QR | (AA if aa else 0) | rcode
    head = HEADER.pack(0, flags, 1, len(answer), len(authority), len(additional))
    packer = _Packer(q.name(), head + q.qname.lower() + q.data[q.end - 4 : q.end])
    for rec in (*answer, *authority, *additional):
        packer.record(rec)
    return bytes(packer.out)
