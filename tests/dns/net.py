"""A fake upstream resolver on loopback and UDP/TCP query helpers for the server tests."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]

BIG = [f"192.0.2.{i}" for i in range(10, 13)]


class FakeUpstream:
    """``example.com`` A 192.0.2.1; ``big.example`` truncated over UDP, three A records over TCP;
    anything else NXDOMAIN.  ``seen`` records (name, "udp"|"tcp")."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def reply(self, data: bytes, proto: str) -> bytes:
        q = DNSRecord.parse(data)
        name = str(q.q.qname).rstrip(".").lower()
        self.seen.append((name, proto))
        r = q.reply()
        if name == "example.com" and q.q.qtype == QTYPE.A:
            r.add_answer(RR("example.com.", QTYPE.A, rdata=A("192.0.2.1"), ttl=60))
        elif name == "big.example" and proto == "udp":
            r.header.tc = 1
        elif name == "big.example":
            for ip in BIG:
                r.add_answer(RR("big.example.", QTYPE.A, rdata=A(ip), ttl=60))
        else:
            r.header.rcode = RCODE.NXDOMAIN
        return bytes(r.pack())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        outer = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(outer.reply(data, "udp"), addr)

        for _ in range(20):  # the UDP port's number may be taken for TCP: try another
            self._udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
            self.port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", self.port)
                return
            except OSError:
                self._udp.close()
        raise RuntimeError("no free UDP+TCP port pair")

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            out = self.reply(await reader.readexactly(size), "tcp")
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.reply.done():
            self.reply.set_result(data)


async def udp_query(port: int, name: str, qtype: str = "A", timeout: float = 3.0) -> Any:
    loop = asyncio.get_running_loop()
    q = DNSRecord.question(name, qtype)
    transport, proto = await loop.create_datagram_endpoint(_Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(bytes(q.pack()))
        data = await asyncio.wait_for(proto.reply, timeout)
    finally:
        transport.close()
    reply = DNSRecord.parse(data)
    assert reply.header.id == q.header.id
    return reply


async def tcp_query(port: int, names: list[tuple[str, str]], timeout: float = 3.0) -> list[Any]:
    """Several queries on one TCP connection (RFC 7766 pipelining, answered in order)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for name, qtype in names:
            q = DNSRecord.question(name, qtype)
            data = bytes(q.pack())
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout))[0]
            out.append(DNSRecord.parse(await reader.readexactly(size)))
    finally:
        writer.close()
    return out


def ips(reply: Any, qtype: str = "A") -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == getattr(QTYPE, qtype))
