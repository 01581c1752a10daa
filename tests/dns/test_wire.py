"""Raw message handling: malformed queries, opcodes, classes, zone transfers, EDNS, flags."""

from __future__ import annotations

import struct

from dnslib import CLASS, OPCODE, QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.dns import wire
from kubelite.dns.acl import ClientACL, local_addresses
from kubelite.dns.forward import parse_upstream, resolv_conf_upstreams
from tests.dns.cluster import build


def _raw(h: object, data: bytes) -> bytes:
    out = h.answer(data, "127.0.0.1", False)  # type: ignore[attr-defined]
    assert isinstance(out, bytes)
    return out


def test_garbage_gets_formerr_or_silence() -> None:
    _, _, h = build()
    assert h.answer(b"\x00\x01", "127.0.0.1", False) is None  # not even a header
    header_only = struct.pack("!HHHHHH", 7, 0x0100, 0, 0, 0, 0)
    reply = DNSRecord.parse(_raw(h, header_only + b"\x00" * 5))
    assert reply.header.id == 7 and reply.header.rcode == RCODE.FORMERR
    pointer = struct.pack("!HHHHHH", 8, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01"
    assert DNSRecord.parse(_raw(h, pointer)).header.rcode == RCODE.FORMERR
    response = DNSRecord.question("web.default.svc.cluster.local").reply()
    assert h.answer(bytes(response.pack()), "127.0.0.1", False) is None  # never answer answers


def test_opcode_class_and_zone_transfers() -> None:
    _, _, h = build()
    notify = DNSRecord.question("cluster.local", "SOA")
    notify.header.opcode = OPCODE.NOTIFY
    assert DNSRecord.parse(_raw(h, bytes(notify.pack()))).header.rcode == RCODE.NOTIMP
    chaos = DNSRecord.question("version.bind", "TXT", "CH")
    assert chaos.q.qclass == CLASS.CH
    assert DNSRecord.parse(_raw(h, bytes(chaos.pack()))).header.rcode == RCODE.REFUSED
    axfr = DNSRecord.question("cluster.local", "AXFR")
    assert DNSRecord.parse(_raw(h, bytes(axfr.pack()))).header.rcode == RCODE.REFUSED
    # a cached name asked with another class is still refused
    _raw(h, bytes(DNSRecord.question("web.default.svc.cluster.local").pack()))
    web_ch = DNSRecord.question("web.default.svc.cluster.local", "A", "CH")
    assert DNSRecord.parse(_raw(h, bytes(web_ch.pack()))).header.rcode == RCODE.REFUSED


def test_rd_and_cd_flags_are_echoed() -> None:
    _, _, h = build()
    q = DNSRecord.question("web.default.svc.cluster.local")
    q.header.rd = 0
    q.header.cd = 1
    r = DNSRecord.parse(_raw(h, bytes(q.pack())))
    assert (r.header.rd, r.header.cd, r.header.qr, r.header.aa) == (0, 1, 1, 1)
    q2 = DNSRecord.question("web.default.svc.cluster.local")  # rd=1 by default
    assert DNSRecord.parse(_raw(h, bytes(q2.pack()))).header.rd == 1


def test_parse_query_reads_edns_size() -> None:
    from dnslib import EDNS0

    q = DNSRecord.question("a.b")
    q.add_ar(EDNS0(udp_len=4096))
    parsed = wire.parse_query(bytes(q.pack()))
    assert parsed is not None and parsed.edns == 4096 and parsed.udp_limit() == wire.EDNS_LIMIT
    assert parsed.name() == "a.b" and parsed.qtype == QTYPE.A


def test_acl_allows_cluster_service_loopback_and_node_addresses() -> None:
    acl = ClientACL(["10.244.0.0/16", "10.96.0.0/12"], node_ips=["192.168.1.10"])
    for ip in ("10.244.3.4", "10.96.0.10", "127.0.0.1", "::1", "192.168.1.10", "::ffff:10.244.0.1"):
        assert acl.allows(ip), ip
    for ip in ("192.168.1.11", "8.8.8.8", "fd00::1", "garbage"):
        assert not acl.allows(ip), ip
    assert not ClientACL(["10.244.0.0/16"], loopback=False).allows("127.0.0.1")
    assert "127.0.0.1" in local_addresses()


def test_upstream_parsing(tmp_path: object) -> None:
    from pathlib import Path

    assert parse_upstream("10.0.0.2") == ("10.0.0.2", 53)
    assert parse_upstream("10.0.0.2:5353") == ("10.0.0.2", 5353)
    assert parse_upstream("[fd00::2]:54") == ("fd00::2", 54)
    assert parse_upstream("fd00::2") == ("fd00::2", 53)
    conf = Path(str(tmp_path)) / "resolv.conf"
    conf.write_text("# c\nsearch x\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver bad\n")
    assert resolv_conf_upstreams(conf) == [("10.0.0.2", 53), ("fe80::1", 53)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_never_raise(data: bytes) -> None:
    _, _, h = build()
    out = h.answer(data, "10.244.0.9", False)
    if out is not None and not isinstance(out, bytes):
        out.close()  # type: ignore[attr-defined]  # a forward coroutine: not awaited here


@settings(max_examples=200, deadline=None)
@given(
    st.lists(  # printable ASCII (dnslib, used to read the reply, refuses other label bytes)
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12).map(str.encode),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "MX", "ANY"]),
    st.sampled_from(["default.svc.cluster.local", "db.pod.cluster.local", "in-addr.arpa", "cluster.local"]),
)
def test_odd_labels_in_zone_names_answer_cleanly(labels: list[bytes], qtype: str, suffix: str) -> None:
    _, _, h = build()
    wire_name = b"".join(bytes([len(lb)]) + lb for lb in labels)
    wire_name += b"".join(bytes([len(p)]) + p.encode() for p in suffix.split(".")) + b"\x00"
    qtype_num = getattr(QTYPE, qtype)
    data = struct.pack("!HHHHHH", 99, 0x0100, 1, 0, 0, 0) + wire_name + struct.pack("!HH", qtype_num, 1)
    out = h.answer(data, "10.244.0.9", False)
    if out is not None and not isinstance(out, bytes):
        out.close()  # type: ignore[attr-defined]
        return
    assert isinstance(out, bytes)
    reply = DNSRecord.parse(out)
    assert reply.header.id == 99 and reply.header.qr == 1
    assert reply.header.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN)
