"""Forwarding of names outside the cluster zone, like CoreDNS's ``forward . /etc/resolv.conf``.

The query goes to the upstreams in order over UDP with a fresh random id; a truncated answer is
asked again over TCP.  Each try has a timeout; when every upstream fails the caller answers
SERVFAIL.  Upstreams come from ``--dns-upstream IP[:PORT]`` or the host's /etc/resolv.conf.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import struct
from pathlib import Path

from kubelite.dns import wire

log = logging.getLogger("kubelite.dns.forward")
Upstream = tuple[str, int]
DEFAULT_TIMEOUT = 2.0


def parse_upstream(text: str) -> Upstream:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return str(ipaddress.ip_address(host.rstrip("]"))), int(port or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return str(ipaddress.ip_address(host)), int(port)
    return str(ipaddress.ip_address(text)), 53


def resolv_conf_upstreams(path: Path = Path("/etc/resolv.conf")) -> list[Upstream]:
    """The ``nameserver`` lines of a resolv.conf (unparseable ones skipped)."""
    out: list[Upstream] = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    out.append((str(ipaddress.ip_address(fields[1].split("%")[0])), 53))
    return out


class _UDPExchange(asyncio.DatagramProtocol):
    def __init__(self, qid: int) -> None:
        self.qid = qid
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 2 and struct.unpack_from("!H", data)[0] == self.qid and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


class Forwarder:
    """Sends raw queries to upstream resolvers; ``exchange`` returns the raw reply or None."""

    def __init__(self, upstreams: list[Upstream], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.upstreams = upstreams
        self.timeout = timeout

    async def exchange(self, query: bytes, *, tcp: bool = False) -> bytes | None:
        """The upstream reply to ``query`` (its id restored), trying each upstream in turn."""
        qid = struct.unpack_from("!H", query)[0]
        for upstream in self.upstreams:
            fresh = secrets.randbits(16)
            out = wire.with_id(query, fresh)
            try:
                reply = await self._tcp(out, upstream) if tcp else await self._udp(out, upstream, fresh)
                if not tcp and wire.truncated(reply):
                    reply = await self._tcp(out, upstream)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                log.debug("upstream %s:%d failed: %r", upstream[0], upstream[1], e)
                continue
            if not _same_question(out, reply):
                log.debug("upstream %s:%d answered another question", upstream[0], upstream[1])
                continue
            return wire.with_id(reply, qid)
        return None

    async def _udp(self, query: bytes, upstream: Upstream, qid: int) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _UDPExchange(qid), remote_addr=upstream
        )
        try:
            transport.sendto(query)
            return await asyncio.wait_for(proto.reply, self.timeout)
        finally:
            transport.close()

    async def _tcp(self, query: bytes, upstream: Upstream) -> bytes:
        async def go() -> bytes:
            reader, writer = await asyncio.open_connection(*upstream)
            try:
                writer.write(struct.pack("!H", len(query)) + query)
                await writer.drain()
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                return await reader.readexactly(size)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        reply = await asyncio.wait_for(go(), self.timeout)
        if len(reply) < 12 or struct.unpack_from("!H", reply)[0] != struct.unpack_from("!H", query)[0]:
            raise ValueError("upstream reply id mismatch")
        return reply


def _same_question(query: bytes, reply: bytes) -> bool:
    """The reply echoes the query's question (compared case-insensitively)."""
    q = wire.parse_query(query)
    if q is None:
        return True
    return reply[12 : q.end].lower() == query[12 : q.end].lower()
