"""The agent's resident-memory measures: what it does not load at rest, and that the lazily loaded
parts still work (the serving certificate made in a child process, the stream endpoint's HTTP
stack loaded on its first connection, the registry client's HTTPS transport made on first use)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from kubelite.agent.images.distribution import new_http_client
from kubelite.agent.streams import tls
from kubelite.agent.streams.server import StreamServer

HEAVY = ("cryptography", "uvicorn", "websockets", "httptools")


def test_agent_import_leaves_the_stream_stack_and_cryptography_unloaded() -> None:
    code = (
        "import sys, kubelite.cli, kubelite.agent.agent;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_serving_cert_child_process_makes_a_usable_pair(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "kubelite.agent.streams.tls", str(tmp_path), "node-a", "10.1.2.3"],
        check=True,
        timeout=60,
    )
    sc = tls.ensure_serving_cert(tmp_path, "node-a", [])  # present: kept as it is
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(sc.cert_path, sc.key_path)
    assert "BEGIN CERTIFICATE" in sc.pem
    tls.pinned_context(sc.pem)  # the API server's side accepts it as the pin


async def test_stream_server_listens_at_once_and_loads_http_on_first_connection(tmp_path: Path) -> None:
    agent = SimpleNamespace(node_name="node-b", client=None, runtime=None, informer=None, workers={})
    server = StreamServer(agent, tmp_path, port=0, bind="127.0.0.1")  # type: ignore[arg-type]
    await server.start()
    try:
        assert server.port > 0 and not server.serving
        ctx = tls.pinned_context(server.cert.pem)
        async with httpx.AsyncClient(verify=ctx, timeout=10) as c:
            first = await c.get(f"https://127.0.0.1:{server.port}/healthz")
            again = await c.get(f"https://127.0.0.1:{server.port}/healthz")
        assert (first.status_code, first.text) == (200, "ok")
        assert again.status_code == 200
        assert server.serving
    finally:
        await server.stop()


async def test_stream_server_stops_cleanly_when_never_called(tmp_path: Path) -> None:
    agent = SimpleNamespace(node_name="node-c", client=None, runtime=None, informer=None, workers={})
    server = StreamServer(agent, tmp_path, port=0, bind="127.0.0.1")  # type: ignore[arg-type]
    await server.start()
    port = server.port
    await server.stop()
    assert not server.serving
    with httpx.Client(verify=False, timeout=2) as c:
        try:
            c.get(f"https://127.0.0.1:{port}/healthz")
            refused = False
        except httpx.ConnectError:
            refused = True
    assert refused


async def _serve_once(ssl_ctx: ssl.SSLContext | None) -> tuple[asyncio.Server, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=ssl_ctx)
    return server, int(server.sockets[0].getsockname()[1])


async def test_registry_client_verifies_https_and_needs_no_tls_for_http(tmp_path: Path) -> None:
    """The HTTPS transport (with the CA bundle) is made on first use only, and still verifies."""
    tls._make_cert(tmp_path, "registry", [])  # a self-signed certificate no CA vouches for
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "pki" / "agent.crt", tmp_path / "pki" / "agent.key")
    plain, plain_port = await _serve_once(None)
    secure, secure_port = await _serve_once(server_ctx)
    client = new_http_client(5.0)
    try:
        r = await client.get(f"http://127.0.0.1:{plain_port}/v2/")
        assert (r.status_code, r.text) == (200, "ok")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{secure_port}/v2/")
    finally:
        await client.aclose()
        for s in (plain, secure):
            s.close()
            await s.wait_closed()
