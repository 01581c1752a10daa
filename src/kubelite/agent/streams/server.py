"""The agent's own HTTPS endpoint (the kubelet's port 10250), which the API server calls.

Routes (all but ``/healthz`` need an allowed caller, see :mod:`.auth`):

* ``GET /containerLogs/<ns>/<pod>/<container>`` - :mod:`.logs`
* WebSocket ``/exec/<ns>/<pod>/<container>``, ``/attach/...`` - :mod:`.execattach`
* WebSocket ``/portForward/<ns>/<pod>`` - :mod:`.portforward`
* ``GET /stats/summary`` (JSON) and ``/metrics``, ``/metrics/resource`` (Prometheus text)

TLS uses the agent's self-signed certificate (:mod:`.tls`), which :meth:`StreamServer.node_fields`
publishes on the Node together with the port, for the API server to pin.

Like the kubelet, the port is bound and listening from the start; the HTTP/WebSocket stack
(uvicorn and the handlers, :mod:`.app`) is loaded when the first connection arrives, which waits
in the listen backlog meanwhile (~0.1 s, once).  An agent nobody calls (the usual state: logs,
exec and ``kubectl top`` are on demand) does not keep those ~5 MB resident.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from kubelite.agent.streams import tls
from kubelite.agent.streams.auth import Authenticator, token_review
from kubelite.agent.streams.targets import NodeAgent

if TYPE_CHECKING:
    from kubelite.agent.streams.app import QuietServer

log = logging.getLogger("kubelite.agent.streams")
DEFAULT_PORT = 10250


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
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def serving(self) -> bool:
        """True once the HTTP stack is loaded (after the first connection)."""
        return self._task is not None

    async def start(self) -> None:
        """Bind and listen; the certificate is checked now, the HTTP stack loads on first use."""
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            self.cert.cert_path, self.cert.key_path
        )
        sock = bind_socket(self.bind, self.requested_port, self.fallback)
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._first_connection)

    def _first_connection(self) -> None:
        assert self._loop is not None and self._sock is not None
        self._loop.remove_reader(self._sock.fileno())
        if self._task is None:
            self._task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        from kubelite.agent.streams import app  # the heavy part, see the module docstring

        assert self._sock is not None
        self._server = app.make_server(self.agent, self.auth, self.cert)
        try:
            await app.serve(self._server, self._sock)
        except Exception:
            log.exception("the agent's stream server failed")
            raise

    async def stop(self) -> None:
        if self._sock is not None and self._loop is not None and self._task is None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._task = self._sock = None

    def node_fields(self) -> tuple[dict[str, str], int]:
        """(Node annotations to set, kubelet endpoint port) for the agent's registration."""
        return {tls.CERT_ANNOTATION: self.cert.pem}, self.port
