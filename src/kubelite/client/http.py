"""HTTPS transport for components that run as separate processes (``--kubeconfig``).

HTTP/1.1 keep-alive connections on asyncio protocols, responses parsed by httptools (the
C parser uvicorn serves with; already a dependency), like client-go's ``http.Transport``: a
bounded pool of connections per API server, one request per connection at a time, idle
connections reused first, a request that meets a keep-alive connection the server had just
closed (nothing came back) retried once on a fresh one.  Watches get a connection of their
own for the life of the stream.

Hand-written rather than httpx: a py-spy profile of ``kubelite simulate`` showed ~4 ms of
client CPU per small request with httpx/httpcore under load (its pool assigns every queued
request to connections on every change: O(queued x connections), plus anyio stream
bookkeeping per read).  Measured per Lease PUT, 32 in flight: httpx ~5 ms, aiohttp (not a
dependency) ~0.27 ms, this path ~0.1 ms -- one ``transport.write`` and a few parser
callbacks per response.  Timeouts are httpx's as configured before: connecting (TCP + TLS)
is bounded, responses are not (watches and slow lists); a request waiting for a free
connection waits in line rather than failing.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httptools
import yaml

MAX_CONNECTIONS = 32  # per transport; further requests wait for a free connection (FIFO)
STREAM_HIGH_WATER = 64  # chunks queued for a watch's reader before the socket is paused
STREAM_LOW_WATER = 8  # ... and resumed
# bytes a URL path may carry as they are (RFC 3986 pchar + query); anything else is escaped
_SAFE_URL = "/?&=%:+,;@!$'()*~[]-._"


@dataclass(frozen=True)
class KubeConfig:
    server: str
    ca_pem: bytes
    token: str
    client_cert_pem: bytes = b""
    client_key_pem: bytes = b""


def _data(entry: dict[str, Any], key: str, base: Path) -> bytes:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / str(entry[key])).read_bytes()
    return b""


def load_kubeconfig(path: Path, context: str = "") -> KubeConfig:
    cfg = yaml.safe_load(path.read_text())
    ctx_name = context or cfg.get("current-context", "")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    base = path.parent
    return KubeConfig(
        server=cluster["server"],
        ca_pem=_data(cluster, "certificate-authority", base),
        token=user.get("token", ""),
        client_cert_pem=_data(user, "client-certificate", base),
        client_key_pem=_data(user, "client-key", base),
    )


def _ssl_context(cfg: KubeConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=cfg.ca_pem.decode() if cfg.ca_pem else None)
    if cfg.client_cert_pem:
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(cfg.client_cert_pem)
            cert.flush()
            key.write(cfg.client_key_pem)
            key.flush()
            ctx.load_cert_chain(cert.name, key.name)
    return ctx


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the response was complete."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, the response collected (or, for a
    stream, handed to a queue chunk by chunk) by httptools' callbacks."""

    def __init__(self, on_lost: Any = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.used = False  # has carried a request (a failure then may be a stale keep-alive)
        self.received = False  # bytes of the current response arrived
        self.closed = False
        self.status = 0
        self.keep_alive = True
        self._chunks: list[bytes] = []
        self._done: asyncio.Future[None] | None = None
        self._queue: asyncio.Queue[bytes | BaseException | None] | None = None
        self._on_lost = on_lost
        self._paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ConnectionClosed(f"invalid HTTP response: {e}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionClosed("the server closed the connection"))
        if self._on_lost is not None:
            self._on_lost(self)

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self._queue is not None:
            self._queue.put_nowait(b"")  # the status is known: the stream may start

    def on_body(self, body: bytes) -> None:
        if self._queue is not None:
            self._queue.put_nowait(body)
            if self._queue.qsize() >= STREAM_HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True  # a slow watcher: let TCP push back on the server
                self.transport.pause_reading()
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self._queue is not None:
            self._queue.put_nowait(None)
        elif self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._queue is not None:
            self._queue.put_nowait(exc)
        elif self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    # use
    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        if self.closed:  # closed by the server while it was being handed over
            raise ConnectionClosed("the server closed the connection")
        self.used = True
        self.received = False
        self._chunks = []
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        await self._done
        self._done = None
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        return self.status, body

    def start_stream(self, data: bytes) -> asyncio.Queue[bytes | BaseException | None]:
        assert self.transport is not None
        self._queue = asyncio.Queue()
        self.transport.write(data)
        return self._queue

    def drained(self) -> None:
        """The stream's reader caught up: read from the socket again."""
        queue = self._queue
        if self._paused and queue is not None and queue.qsize() <= STREAM_LOW_WATER and not self.closed:
            self._paused = False
            assert self.transport is not None
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class HTTPTransport:
    """Requests to one API server over a pool of at most ``max_connections`` keep-alive
    connections (client-go's default transport has no per-host cap, but kubelet and the
    controllers send a handful at a time: a bound keeps the server's and this process's
    work per request flat when callers fan out thousands)."""

    def __init__(
        self, cfg: KubeConfig, timeout: float = 30.0, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        url = urlsplit(cfg.server)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = _ssl_context(cfg) if url.scheme == "https" else None
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout  # connecting (TCP + TLS handshake); responses may take as long as they take
        self.max_connections = max_connections
        self._host = f"host: {url.netloc.rsplit('@', 1)[-1]}\r\n"
        self._auth = f"authorization: Bearer {cfg.token}\r\n" if cfg.token else ""
        self._idle: collections.deque[_Connection] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._count = 0  # pooled connections open or being opened
        self._streams: set[_Connection] = set()
        self._closed = False

    # ------------------------------------------------------------ wire format

    def _encode(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        if not path.isascii() or " " in path:
            path = quote(path, safe=_SAFE_URL)
        head = [f"{method} {self.prefix}{path} HTTP/1.1\r\n", self._host]
        if "authorization" not in headers:  # a request's own credentials win, as with httpx
            head.append(self._auth)
        head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head.append(f"content-length: {len(body)}\r\n\r\n")
            return "".join(head).encode("latin-1") + body
        if method in ("POST", "PUT", "PATCH"):
            head.append("content-length: 0\r\n")
        head.append("\r\n")
        return "".join(head).encode("latin-1")

    async def _connect(self, on_lost: Any = None) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            _, proto = await loop.create_connection(
                lambda: _Connection(on_lost),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
        return proto

    # ------------------------------------------------------------ pool

    def _lost(self, conn: _Connection) -> None:
        """An idle connection the server closed leaves the pool at once (one in use is
        released by its request)."""
        try:
            self._idle.remove(conn)
        except ValueError:
            return
        self._free_slot()

    async def _acquire(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be timed out
            if not conn.closed:
                return conn
            self._free_slot()
        if self._count < self.max_connections:
            self._count += 1
            return await self._open_in_slot()
        fut: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            handed = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a connection (or a slot) as we were cancelled
                got = fut.result()
                if got is not None:
                    self._release(got, True)
                else:
                    self._free_slot()
            raise
        return handed if handed is not None else await self._open_in_slot()

    async def _open_in_slot(self) -> _Connection:
        """Connect; the caller holds one of the ``max_connections`` slots."""
        try:
            return await self._connect(self._lost)
        except BaseException:
            self._free_slot()
            raise

    def _free_slot(self) -> None:
        """A connection closed: its slot passes to the first waiter (who connects), or is freed."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._count -= 1

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if not reusable or conn.closed or self._closed:
            conn.close()
            self._free_slot()
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)

    # ------------------------------------------------------------ API

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        data = self._encode(method, path, body, headers)
        for attempt in (0, 1):
            conn = await self._acquire()
            reused = conn.used
            ok = False
            try:
                status, raw = await conn.request(data)
                ok = conn.keep_alive
                return status, raw
            except ConnectionClosed:
                # a kept-alive connection the server closed before reading the request (nothing
                # came back): send it again on a fresh connection, once, as Go's transport does
                if attempt or not reused or conn.received:
                    raise
            finally:
                self._release(conn, ok)
        raise AssertionError("unreachable")

    async def stream(self, method: str, path: str, headers: dict[str, str]) -> AsyncGenerator[bytes, None]:
        """A streamed response (a watch) on a connection of its own, closed when the caller
        stops reading; API errors come as :mod:`kubelite.api.errors`."""
        conn = await self._connect()
        self._streams.add(conn)
        try:
            queue = conn.start_stream(self._encode(method, path, None, headers))
            first = await queue.get()
            if isinstance(first, BaseException):
                raise first
            if conn.status >= 400:
                await self._raise_error(conn, queue, first)
            item: bytes | BaseException | None = first
            while item is not None:
                if isinstance(item, BaseException):
                    raise item
                if item:
                    yield item
                item = await queue.get()
                conn.drained()
        finally:
            self._streams.discard(conn)
            conn.close()

    @staticmethod
    async def _raise_error(
        conn: _Connection, queue: asyncio.Queue[bytes | BaseException | None], first: bytes | None
    ) -> None:
        from kubelite.client.base import raise_for_status

        body = b""
        item: bytes | BaseException | None = first
        while item is not None and not isinstance(item, BaseException):
            body += item
            item = await queue.get()
        raise_for_status(conn.status, body)

    async def close(self) -> None:
        self._closed = True  # connections still carrying a request close when it ends
        for conn in [*self._idle, *self._streams]:
            conn.close()
        self._idle.clear()
        for fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost
