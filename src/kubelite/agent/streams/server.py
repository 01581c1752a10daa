"""The agent's own HTTPS endpoint (the kubelet's port 10250), which the API server calls.

Routes (all but ``/healthz`` need an allowed caller, see :mod:`.auth`):

* ``GET /containerLogs/<ns>/<pod>/<container>`` - :mod:`.logs`
* WebSocket ``/exec/<ns>/<pod>/<container>``, ``/attach/...`` - :mod:`.execattach`
* WebSocket ``/portForward/<ns>/<pod>`` - :mod:`.portforward`
* ``GET /stats/summary`` (JSON) and ``/metrics``, ``/metrics/resource`` (Prometheus text)

TLS uses the agent's self-signed certificate (:mod:`.tls`), which :meth:`StreamServer.node_fields`
publishes on the Node together with the port, for the API server to pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import uvicorn

from kubelite.agent.streams import execattach, logs, portforward, tls
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
from kubelite.agent.streams.auth import Authenticator, AuthError, token_review
from kubelite.agent.streams.protocol import wscompat
from kubelite.agent.streams.stats import StatsCollector, prometheus
from kubelite.agent.streams.targets import NodeAgent

wscompat.install()  # accept "SPDY/3.1+portforward.k8s.io" as a subprotocol name
log = logging.getLogger("kubelite.agent.streams")
DEFAULT_PORT = 10250


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


class _QuietServer(uvicorn.Server):
    """uvicorn inside the agent's event loop: the process's signal handlers stay the host's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int, fallback: bool) -> socket.socket:
    """Bind ``host:port``; when the port is taken and ``fallback``, an ephemeral port instead."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        if not fallback or e.errno != errno.EADDRINUSE:
            sock.close()
            raise
        log.warning("agent port %d is in use; serving streams on an ephemeral port", port)
        sock.bind((host, 0))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


class StreamServer:
    """Start/stop the endpoint; ``port`` is the bound port once started."""

    def __init__(
        self,
        agent: NodeAgent,
        data_dir: Path,
        port: int | None = None,
        bind: str = "0.0.0.0",
        hosts: list[str] | None = None,
    ) -> None:
        self.agent = agent
        self.requested_port = DEFAULT_PORT if port is None else port
        self.fallback = port is None  # only the default port may move when it is taken
        self.bind = bind
        self.cert = tls.ensure_serving_cert(data_dir, agent.node_name, list(hosts or []))
        self.auth = Authenticator(token_review(agent.client))  # type: ignore[attr-defined]
        self.port = 0
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = bind_socket(self.bind, self.requested_port, self.fallback)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            StreamApp(self.agent, self.auth),
            loop="none",
            ws="websockets-sansio",
            ws_max_size=64 * 1024 * 1024,
            ws_ping_interval=None,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            ssl_certfile=str(self.cert.cert_path),
            ssl_keyfile=str(self.cert.key_path),
            timeout_graceful_shutdown=2,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="agent-streams")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the agent's stream server did not start")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        self._server = self._task = None

    def node_fields(self) -> tuple[dict[str, str], int]:
        """(Node annotations to set, kubelet endpoint port) for the agent's registration."""
        return {tls.CERT_ANNOTATION: self.cert.pem}, self.port
