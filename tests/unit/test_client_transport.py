"""The HTTPS client transport (``kubelite.client.http``) against a real API server over real TLS,
and against small raw servers for the connection-level behaviours (keep-alive retry, pool bound,
cancellation, connect timeout, client certificates).  The tests run on asyncio's loop; the last
ones run the main paths again on uvloop (what the kubelite processes use: its transports differ)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite import pki
from kubelite.api import errors
from kubelite.apiserver.server import RunningServer, ServerConfig, serve
from kubelite.client.base import Client, Resource
from kubelite.client.http import ConnectionClosed, HTTPTransport, KubeConfig, load_kubeconfig

CONFIGMAPS = Resource("", "v1", "configmaps")
Obj = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def api_server(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Path]]:
    """``kubelite server`` in this event loop: real uvicorn, real TLS, real store."""
    cfg = ServerConfig(data_dir=tmp_path / "server", port=free_port())
    ready: asyncio.Future[RunningServer] = asyncio.get_running_loop().create_future()

    async def on_ready(running: RunningServer) -> None:
        ready.set_result(running)

    thresholds = gc.get_threshold()  # serve() tunes the collector for a server process
    task = asyncio.create_task(serve(cfg, on_ready))
    try:
        running = await asyncio.wait_for(asyncio.shield(ready), 30)
        yield running, cfg.kubeconfig_path
    finally:
        if ready.done():
            ready.result().uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 30)
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, KubeConfig]]:
    async with api_server(tmp_path) as (running, kubeconfig):
        yield running, load_kubeconfig(kubeconfig)


def configmap(name: str, data: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {}}


# ------------------------------------------------------------------ against the API server


async def test_verbs_and_errors_over_tls(cluster: tuple[RunningServer, KubeConfig]) -> None:
    _, cfg = cluster
    client = Client(HTTPTransport(cfg), user_agent="transport-test/v1.32.0")
    try:
        made = await client.create(CONFIGMAPS, "default", configmap("a", {"k": "v"}))
        assert made["metadata"]["resourceVersion"]
        assert (await client.get(CONFIGMAPS, "default", "a"))["data"] == {"k": "v"}
        with pytest.raises(errors.AlreadyExists):
            await client.create(CONFIGMAPS, "default", configmap("a"))
        with pytest.raises(errors.NotFound):
            await client.get(CONFIGMAPS, "default", "missing")
        with pytest.raises(errors.Invalid):
            await client.create(CONFIGMAPS, "default", configmap("Not_A_Name"))
        stale = dict(made, data={"k": "w"})
        await client.update(CONFIGMAPS, "default", stale)
        with pytest.raises(errors.Conflict):
            await client.update(CONFIGMAPS, "default", stale)  # same resourceVersion again
        patched = await client.patch(CONFIGMAPS, "default", "a", {"data": {"x": "y"}})
        assert patched["data"] == {"k": "w", "x": "y"}
        listed = await client.list(CONFIGMAPS, "default", field_selector="metadata.name=a")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
        await client.delete(CONFIGMAPS, "default", "a")
        with pytest.raises(errors.NotFound):
            await client.delete(CONFIGMAPS, "default", "a")
    finally:
        await client.close()


async def test_wrong_token_is_unauthorized(cluster: tuple[RunningServer, KubeConfig]) -> None:
    _, cfg = cluster
    bad = KubeConfig(server=cfg.server, ca_pem=cfg.ca_pem, token="not-the-token")
    client = Client(HTTPTransport(bad))
    try:
        with pytest.raises(errors.Unauthorized):
            await client.get(CONFIGMAPS, "default", "x")
    finally:
        await client.close()


async def test_server_certificate_is_verified(
    cluster: tuple[RunningServer, KubeConfig], tmp_path: Path
) -> None:
    _, cfg = cluster
    other_ca, _, _ = make_ca(tmp_path)
    client = Client(HTTPTransport(KubeConfig(server=cfg.server, ca_pem=other_ca, token=cfg.token)))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await client.get(CONFIGMAPS, "default", "x")
    finally:
        await client.close()


async def test_many_concurrent_requests_stay_within_the_pool(
    cluster: tuple[RunningServer, KubeConfig],
) -> None:
    _, cfg = cluster
    transport = HTTPTransport(cfg, max_connections=4)
    client = Client(transport)
    opened = 0
    connect = transport._connect

    async def counting_connect(on_lost: Any = None) -> Any:
        nonlocal opened
        opened += 1
        return await connect(on_lost)

    transport._connect = counting_connect  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(client.create(CONFIGMAPS, "default", configmap(f"c{i}")) for i in range(200)))
        got = await asyncio.gather(*(client.get(CONFIGMAPS, "default", f"c{i}") for i in range(200)))
        assert [g["metadata"]["name"] for g in got] == [f"c{i}" for i in range(200)]
        assert opened == 4
        assert len(transport._idle) == 4
    finally:
        await client.close()


async def test_watch_streams_events_and_ends_with_the_server(
    cluster: tuple[RunningServer, KubeConfig],
) -> None:
    _, cfg = cluster
    client = Client(HTTPTransport(cfg))
    try:
        made = await client.create(CONFIGMAPS, "default", configmap("w"))
        rv = str(int(made["metadata"]["resourceVersion"]) - 1)
        seen = []
        async for ev in client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=1):
            seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 1:
                await client.patch(CONFIGMAPS, "default", "w", {"data": {"a": "b"}})
        assert seen[:2] == [("ADDED", "w"), ("MODIFIED", "w")]
        assert all(t in ("ADDED", "MODIFIED", "BOOKMARK") for t, _ in seen)
        with pytest.raises(errors.BadRequest):
            async for _ in client.watch(CONFIGMAPS, "default", label_selector="a in (b"):
                pass
    finally:
        await client.close()


async def test_stopping_a_watch_closes_its_connection(cluster: tuple[RunningServer, KubeConfig]) -> None:
    _, cfg = cluster
    transport = HTTPTransport(cfg)
    client = Client(transport)
    try:
        await client.create(CONFIGMAPS, "default", configmap("s"))
        stream = client.watch(CONFIGMAPS, "default")
        ev = await anext(stream)
        assert ev.type == "ADDED"
        assert len(transport._streams) == 1
        await stream.aclose()
        assert not transport._streams
    finally:
        await client.close()


# ------------------------------------------------------------------ raw servers


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A TCP (or TLS) server calling ``handler(reader, writer, connection_number)``."""
    count = 0

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        try:
            await handler(reader, writer, count)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=ssl_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ssl_ctx else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    line, *rest = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in rest if h)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line, headers, body


def ok(body: bytes = b"{}") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


async def test_request_wire_format() -> None:
    got: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            got.append(await read_request(reader))
            writer.write(ok())

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url + "/prefix", ca_pem=b"", token="tok"))
        await t.request("PUT", "/api/v1/x?a=b", b'{"a":1}', {"content-type": "application/json"})
        await t.request("GET", "/api/v1/na me", None, {"authorization": "Bearer other"})
        await t.close()
    (line1, h1, b1), (line2, h2, b2) = got
    assert line1 == "PUT /prefix/api/v1/x?a=b HTTP/1.1"
    assert h1["authorization"] == "Bearer tok" and h1["content-length"] == "7" and b1 == b'{"a":1}'
    assert h1["host"] == url.split("//")[1]
    assert line2 == "GET /prefix/api/v1/na%20me HTTP/1.1"
    assert h2["authorization"] == "Bearer other" and "content-length" not in h2 and b2 == b""


async def test_stale_keep_alive_connection_is_retried_once() -> None:
    """The server closes a kept-alive connection as the next request arrives (its idle timeout
    raced the request): nothing came back, so the request goes out again on a new connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(ok(b'{"conn":%d}' % n))
        await writer.drain()
        if n == 1:
            await read_request(reader)  # the second request on connection 1: dropped unanswered
            return
        while True:
            await read_request(reader)
            writer.write(ok(b'{"conn":%d}' % n))

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url, ca_pem=b"", token=""))
        assert await t.request("GET", "/a", None, {}) == (200, b'{"conn":1}')
        assert await t.request("GET", "/b", None, {}) == (200, b'{"conn":2}')
        await t.close()


async def test_fresh_connection_closed_without_answer_fails() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url, ca_pem=b"", token=""))
        with pytest.raises(ConnectionClosed):
            await t.request("GET", "/a", None, {})
        assert t._count == 0
        await t.close()


async def test_connection_closed_by_server_while_idle_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
        await writer.drain()

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url, ca_pem=b"", token=""))
        for _ in range(3):
            assert await t.request("GET", "/a", None, {}) == (200, b"{}")
        assert not t._idle and t._count == 0
        await t.close()


async def test_chunked_response_is_joined() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        writer.write(b"2\r\nde\r\n0\r\n\r\n")
        await writer.drain()

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url, ca_pem=b"", token=""))
        assert await t.request("POST", "/a", b"", {}) == (201, b"abcde")
        await t.close()


async def test_slow_stream_reader_pauses_the_socket_and_gets_every_chunk() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(300):
            line = b'{"n":%d}\n' % i
            writer.write(b"%x\r\n%b\r\n" % (len(line), line))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url, ca_pem=b"", token=""))
        got = b""
        paused = False
        async for chunk in t.stream("GET", "/w", {}):
            got += chunk
            conn = next(iter(t._streams))
            paused = paused or conn._paused
            await asyncio.sleep(0.001)
        assert paused
        assert got == b"".join(b'{"n":%d}\n' % i for i in range(300))
        assert not t._streams
        await t.close()


async def test_cancelled_request_frees_its_connection_slot() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            line, _, _ = await read_request(reader)
            if "slow" in line:
                await release.wait()
            writer.write(ok())
            await writer.drain()

    async with raw_server(handler) as url:
        t = HTTPTransport(KubeConfig(server=url, ca_pem=b"", token=""), max_connections=1)
        slow = asyncio.create_task(t.request("GET", "/slow", None, {}))
        waiting = asyncio.create_task(t.request("GET", "/queued", None, {}))
        await asyncio.sleep(0.05)
        assert len(t._waiters) == 1
        waiting.cancel()
        slow.cancel()
        for task in (slow, waiting):
            with pytest.raises(asyncio.CancelledError):
                await task
        release.set()
        assert await asyncio.wait_for(t.request("GET", "/next", None, {}), 5) == (200, b"{}")
        assert t._count == 1
        await t.close()


async def test_connect_timeout(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await asyncio.sleep(10)  # accepts TCP, never answers the TLS handshake

    async with raw_server(handler) as url:
        ca, _, _ = make_ca(tmp_path)
        https = url.replace("http://", "https://")
        t = HTTPTransport(KubeConfig(server=https, ca_pem=ca, token=""), timeout=0.2)
        with pytest.raises(TimeoutError):
            await t.request("GET", "/a", None, {})
        assert t._count == 0
        await t.close()


async def test_client_certificate_from_kubeconfig(tmp_path: Path) -> None:
    """A kubeconfig user with client-certificate-data / client-key-data presents that
    certificate in the TLS handshake (a server requiring client certificates accepts it)."""
    ca_pem, ca_cert, ca_key = make_ca(tmp_path)
    pki._new_serving(ca_cert, ca_key, tmp_path / "s.crt", tmp_path / "s.key", ["127.0.0.1"])
    client_cert, client_key = issue_client(ca_cert, ca_key, "alice")
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca_pem.decode())
    sctx.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    sctx.verify_mode = ssl.CERT_REQUIRED
    subjects: list[Any] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        subjects.append(writer.get_extra_info("peercert")["subject"])
        await read_request(reader)
        writer.write(ok())
        await writer.drain()

    async with raw_server(handler, sctx) as url:
        cfg = KubeConfig(url, ca_pem, "", client_cert_pem=client_cert, client_key_pem=client_key)
        t = HTTPTransport(cfg)
        assert await t.request("GET", "/a", None, {}) == (200, b"{}")
        await t.close()
    assert subjects == [((("commonName", "alice"),),)]


# ------------------------------------------------------------------ certificates


def make_ca(d: Path) -> tuple[bytes, Path, Path]:
    """A CA made by kubelite's own PKI code, in ``d``: (its PEM, cert path, key path)."""
    cert, key = d / "ca.crt", d / "ca.key"
    pki._new_ca(cert, key)
    return cert.read_bytes(), cert, key


def issue_client(ca_cert: Path, ca_key: Path, cn: str) -> tuple[bytes, bytes]:
    """A client certificate for ``cn`` (kubelite's PKI issues none: its users have tokens)."""
    ca, ca_priv = pki._load_ca(ca_cert, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_priv, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), pki._key_pem(key)


# ------------------------------------------------------------------ uvloop


def test_verbs_watch_and_retry_on_uvloop(tmp_path: Path) -> None:
    async def main() -> None:
        async with api_server(tmp_path) as (running, kubeconfig):
            cluster = (running, load_kubeconfig(kubeconfig))
            await test_verbs_and_errors_over_tls(cluster)
            await test_watch_streams_events_and_ends_with_the_server(cluster)
            await test_stopping_a_watch_closes_its_connection(cluster)
        await test_stale_keep_alive_connection_is_retried_once()
        await test_cancelled_request_frees_its_connection_slot()
        await test_client_certificate_from_kubeconfig(tmp_path)

    uvloop.run(main())


# ------------------------------------------------------------------ watch line framing


class _ChunkedStream:
    """A transport whose watch stream is given bytes cut into given chunks."""

    def __init__(self, data: bytes, cuts: list[int]) -> None:
        self.data = data
        self.cuts = sorted({c for c in cuts if 0 < c < len(data)})
        self.closed = False

    async def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        raise AssertionError("not used")

    async def stream(self, method: str, path: str, headers: dict[str, str]) -> AsyncIterator[bytes]:
        try:
            start = 0
            for cut in [*self.cuts, len(self.data)]:
                yield self.data[start:cut]
                start = cut
        finally:
            self.closed = True

    async def close(self) -> None:
        return None


EVENTS = [
    {"type": "ADDED", "object": {"metadata": {"name": f"o{i}"}, "data": {"k": "v\n" * i}}} for i in range(6)
]


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, 2000), max_size=12), blank=st.booleans())
def test_watch_events_are_framed_whatever_the_chunking(cuts: list[int], blank: bool) -> None:
    lines = [orjson.dumps(e) + b"\n" for e in EVENTS]
    data = (b"\n" if blank else b"").join(lines)
    transport = _ChunkedStream(data, cuts)

    async def run() -> list[Any]:
        return [ev.object async for ev in Client(transport).watch(CONFIGMAPS, "default")]  # type: ignore[arg-type]

    assert asyncio.run(run()) == [e["object"] for e in EVENTS]
    assert transport.closed


def test_watch_error_event_raises_and_closes_the_stream() -> None:
    gone = {
        "type": "ERROR",
        "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
    }
    data = orjson.dumps(EVENTS[0]) + b"\n" + orjson.dumps(gone) + b"\n" + orjson.dumps(EVENTS[1]) + b"\n"
    transport = _ChunkedStream(data, [])

    async def run() -> list[Any]:
        seen = []
        async for ev in Client(transport).watch(CONFIGMAPS, "default"):  # type: ignore[arg-type]
            seen.append(ev.object)
        return seen

    with pytest.raises(errors.Gone, match="too old"):
        asyncio.run(run())
    assert transport.closed
