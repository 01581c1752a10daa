"""The cluster DNS server: informers -> :class:`ClusterState`, UDP and TCP listeners, and the
published kube-dns EndpointSlice (the component ``kubelite up``/``kubelite dns`` run).

UDP and TCP listen on the same (address, port); with port 0 the UDP port is chosen first and
TCP takes the same number.  TCP carries length-prefixed messages (RFC 7766), several per
connection, closed after 10 s idle.  Answers are sent only after the informers synced, so a
fresh server never says NXDOMAIN for a Service it hasn't seen yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from kubelite.client.base import Client, Resource
from kubelite.dns import publish
from kubelite.dns.acl import ClientACL
from kubelite.dns.forward import Forwarder, Upstream
from kubelite.dns.handler import Handler
from kubelite.dns.records import DEFAULT_TTL, ClusterZone
from kubelite.dns.state import ClusterState
from kubelite.machinery.informer import Informer, Obj

log = logging.getLogger("kubelite.dns")
SERVICES = Resource("", "v1", "services")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
TCP_IDLE = 10.0
BIND_ATTEMPTS = 20
UDP_RCVBUF = 4 << 20


@dataclass
class DNSConfig:
    """Where to listen and what to serve.  ``publish_name`` "" publishes no EndpointSlice."""

    bind_address: str = "127.0.0.1"
    port: int = 53
    cluster_domain: str = "cluster.local"
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    upstreams: list[Upstream] = field(default_factory=list)
    node_ips: list[str] = field(default_factory=list)
    allow_loopback: bool = True
    publish_name: str = ""
    publish_address: str = ""  # the endpoint address ("" = bind_address; set for 0.0.0.0)
    node_name: str = ""
    ttl: int = DEFAULT_TTL
    upstream_timeout: float = 2.0
    freeze_gc: bool = False  # a process of its own: keep the synced caches out of GC passes
    required: bool = True  # False (``up``): a port that cannot be bound is logged, not fatal


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = self.handler.answer(data, addr[0], False)
        except Exception:
            log.exception("dns query from %s failed", addr[0])
            return
        if out is None or isinstance(out, bytes):
            if out and self.transport is not None:
                self.transport.sendto(out, addr)
            return
        task = asyncio.ensure_future(self._later(out, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _later(self, pending: Awaitable[bytes | None], addr: tuple[str, int]) -> None:
        try:
            out = await pending
        except Exception:
            log.exception("dns query from %s failed", addr[0])
            return
        if out and self.transport is not None:
            self.transport.sendto(out, addr)


class DNSServer:
    """``start``: sync informers, listen, publish; ``stop``: unpublish, close, stop informers."""

    def __init__(self, client: Client, config: DNSConfig) -> None:
        self.client = client
        self.config = config
        self.state = ClusterState()
        cidrs = (config.cluster_cidr, config.service_cidr)
        self.zone = ClusterZone(self.state, config.cluster_domain, ttl=config.ttl, reverse_cidrs=cidrs)
        acl = ClientACL(cidrs, loopback=config.allow_loopback, node_ips=config.node_ips)
        self.handler = Handler(self.zone, Forwarder(config.upstreams, config.upstream_timeout), acl)
        self.informers = [
            self._informer(SERVICES, lambda k, new: self.state.set_service(k, new)),
            self._informer(SLICES, lambda k, new: self.state.set_slice(k, new)),
            self._informer(NAMESPACES, lambda k, new: self.state.set_namespace(k, new is not None)),
        ]
        self.port = config.port
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_proto: _UDP | None = None
        self._tcp: asyncio.Server | None = None
        self._published = ""
        self.failure = ""  # why an optional server is not serving
        self._conns: set[asyncio.StreamWriter] = set()

    def _informer(self, res: Resource, apply: Callable[[str, Obj | None], None]) -> Informer:
        inf = Informer(self.client, res)
        inf.add_handler(lambda key, _old, new: apply(key, new))
        return inf

    @property
    def summary(self) -> str:
        """What ``kubelite up`` adds to its ready line."""
        if self.failure:
            return " dns=unavailable"
        return f" dns={self.config.bind_address}:{self.port}"

    async def start(self) -> None:
        try:
            await self._start()
        except Exception as e:
            await self.stop()
            if self.config.required or not isinstance(e, OSError):
                raise
            self.failure = str(e)
            log.error("%s; pods get no cluster DNS (choose another --dns-port, or --no-dns)", e)

    async def _start(self) -> None:
        for inf in self.informers:
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in self.informers))
        if self.config.freeze_gc:
            gc.collect()
            gc.freeze()  # full collections then skip the (long-lived) synced objects
        try:
            await self._listen()
        except OSError as e:
            where = f"{self.config.bind_address}:{self.config.port}"
            raise OSError(e.errno, f"cluster DNS cannot listen on {where} (UDP+TCP): {e.strerror}") from e
        if self.config.publish_name:
            body = publish.endpoint_slice(
                self.config.publish_name,
                self.config.publish_address or self.config.bind_address,
                self.port,
                self.config.node_name,
            )
            await publish.publish(self.client, body)
            self._published = body["metadata"]["name"]
        log.info("dns serving %s on %s:%d", self.zone.domain, self.config.bind_address, self.port)

    async def _listen(self) -> None:
        """UDP and TCP on one port; an ephemeral UDP port is retried until TCP can share it."""
        for attempt in range(BIND_ATTEMPTS):
            await self._bind_udp()
            try:
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, self.config.bind_address, self.port, reuse_address=True
                )
                return
            except OSError as e:
                if self.config.port or e.errno != errno.EADDRINUSE or attempt == BIND_ATTEMPTS - 1:
                    self._close_udp()
                    raise
                self._close_udp()

    async def _bind_udp(self) -> None:
        loop = asyncio.get_running_loop()
        proto = _UDP(self.handler)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: proto, local_addr=(self.config.bind_address, self.config.port)
        )
        self._udp, self._udp_proto = transport, proto
        _grow_receive_buffer(transport.get_extra_info("socket"))
        self.port = int(transport.get_extra_info("sockname")[1])

    def _close_udp(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._udp_proto is not None:
            for task in list(self._udp_proto.tasks):
                task.cancel()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = str((writer.get_extra_info("peername") or ("", 0))[0])
        self._conns.add(writer)
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE))[0]
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                out = self.handler.answer(data, client, True)
                if out is not None and not isinstance(out, bytes):
                    out = await out
                if not out:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("dns tcp connection from %s failed", client)
        finally:
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._published:
            await publish.unpublish(self.client, self._published)
            self._published = ""
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._conns):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
            self._tcp = None
        self._close_udp()
        for inf in self.informers:
            await inf.stop()


def _grow_receive_buffer(sock: socket.socket | None) -> None:
    """A 4 MiB receive buffer, so bursts survive a busy event loop (root may exceed rmem_max)."""
    if sock is None:
        return
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_RCVBUF)
            return
