"""The agent endpoint's ASGI application and its uvicorn server (see :mod:`.server`).

Imported only when the endpoint gets its first connection: uvicorn, websockets, httptools, click
and the stream handlers cost ~5 MB resident, which an agent nobody calls at rest never pays.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

import orjson
import uvicorn

from kubelite.agent.streams import execattach, logs, portforward
from kubelite.agent.streams.asgi import (
    Receive,
    Scope,
    Send,
    StreamError,
    WebSocket,
    headers_of,
    path_parts,
    query_of,
    send_http,
)
from kubelite.agent.streams.auth import Authenticator, AuthError
from kubelite.agent.streams.protocol import wscompat
from kubelite.agent.streams.stats import StatsCollector, prometheus
from kubelite.agent.streams.targets import NodeAgent
from kubelite.agent.streams.tls import ServingCert

wscompat.install()  # accept "SPDY/3.1+portforward.k8s.io" as a subprotocol name
log = logging.getLogger("kubelite.agent.streams")


class StreamApp:
    """The ASGI application."""

    def __init__(self, agent: NodeAgent, auth: Authenticator) -> None:
        self.agent = agent
        self.auth = auth
        self.stats = StatsCollector(agent)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan" or kind not in ("http", "websocket"):
            return
        parts = path_parts(scope)
        ws = WebSocket(scope, receive, send) if kind == "websocket" else None
        try:
            if parts == ["healthz"]:
                await self._answer(send, ws, 200, b"ok", "text/plain")
                return
            try:
                await self.auth.user(headers_of(scope))
            except AuthError as e:
                raise StreamError(e.code, str(e)) from e
            if ws is not None:
                await self._websocket(ws, parts, query_of(scope))
            else:
                await self._http(scope, receive, send, parts)
        except StreamError as e:
            await self._answer(send, ws, e.code, e.status())
        except Exception:
            log.exception("agent stream request failed path=%s", scope.get("path"))
            with contextlib.suppress(Exception):
                await self._answer(send, ws, 500, StreamError(500, "internal error").status())

    async def _answer(
        self, send: Send, ws: WebSocket | None, code: int, body: bytes, ctype: str = "application/json"
    ) -> None:
        if ws is None:
            await send_http(send, code, body, ctype)
        elif code >= 400 and not ws.closed:
            await ws.deny(code, body)

    async def _http(self, scope: Scope, receive: Receive, send: Send, parts: list[str]) -> None:
        if scope.get("method", "GET") != "GET":
            raise StreamError(405, "method not allowed")
        head = parts[0] if parts else ""
        if head == "containerLogs":
            await logs.serve_logs(self.agent, parts[1:], query_of(scope), receive, send)
        elif parts == ["stats", "summary"]:
            await send_http(send, 200, orjson.dumps(await self.stats.summary()))
        elif parts in (["metrics"], ["metrics", "resource"]):
            body = prometheus(await self.stats.summary())
            await send_http(send, 200, body, "text/plain; version=0.0.4")
        else:
            raise StreamError(404, f"the agent has no endpoint {scope.get('path')}")

    async def _websocket(self, ws: WebSocket, parts: list[str], query: dict[str, list[str]]) -> None:
        await ws.wait_connect()
        head = parts[0] if parts else ""
        if head == "exec":
            await execattach.serve_exec(self.agent, ws, parts[1:], query)
        elif head == "attach":
            await execattach.serve_attach(self.agent, ws, parts[1:], query)
        elif head == "portForward":
            await portforward.serve_portforward(self.agent, ws, parts[1:])
        else:
            raise StreamError(404, f"the agent has no stream endpoint /{'/'.join(parts)}")


class QuietServer(uvicorn.Server):
    """uvicorn inside the agent's event loop: the process's signal handlers stay the host's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(agent: NodeAgent, auth: Authenticator, cert: ServingCert) -> QuietServer:
    """uvicorn for :class:`StreamApp` with the agent's serving certificate (TLS only)."""
    config = uvicorn.Config(
        StreamApp(agent, auth),
        loop="none",
        ws="websockets-sansio",
        ws_max_size=64 * 1024 * 1024,
        ws_ping_interval=None,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        ssl_certfile=str(cert.cert_path),
        ssl_keyfile=str(cert.key_path),
        timeout_graceful_shutdown=2,
    )
    return QuietServer(config)


async def serve(server: QuietServer, sock: socket.socket) -> None:
    await server.serve(sockets=[sock])
