"""Streams through the API server to the node agents (kube-apiserver's kubelet client).

``pods/log`` is a plain GET proxied to the agent's ``/containerLogs`` and streamed back as
``text/plain``; ``pods/exec``, ``pods/attach`` and ``pods/portforward`` are WebSocket upgrades:
the agent's WebSocket is opened first with the subprotocols the client offered, then the
client's is accepted with the one the agent chose, and binary messages are relayed both ways
(an agent refusal - e.g. 400 ``container "x" ... is waiting to start`` - goes back as the same
HTTP answer, so kubectl prints the Status).

The agent is found from its Node: ``status.addresses`` (InternalIP) and
``status.daemonEndpoints.kubeletEndpoint.Port``.  The connection is TLS pinned to the certificate
the agent published on the Node (:data:`kubelite.agent.streams.tls.CERT_ANNOTATION`), checked in
the handshake before anything is sent; the API server then authenticates with its own bearer
token (user ``system:kube-apiserver``), which the agent verifies with a TokenReview.

kubectl's SPDY fallback (a ``POST`` with ``Upgrade: SPDY/3.1``) is taken over by
:mod:`kubelite.apiserver.spdyupgrade` and arrives here as a WebSocket scope too: port-forward's
SPDY byte stream is relayed unchanged (the agent's WebSocket carries the same stream), exec and
attach go through :class:`kubelite.apiserver.spdyexec.SpdyExecBridge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from kubelite.agent.streams.asgi import until_disconnect
from kubelite.agent.streams.protocol import wscompat, wsv5
from kubelite.agent.streams.tls import CERT_ANNOTATION, pinned_context
from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import Request, Send
from kubelite.apiserver.rest import Target
from kubelite.apiserver.spdyexec import SpdyExecBridge
from kubelite.apiserver.spdyupgrade import SPDY_EXTENSION

wscompat.install()  # accept "SPDY/3.1+portforward.k8s.io" as a subprotocol name
log = logging.getLogger("kubelite.apiserver.nodeproxy")
Obj = dict[str, Any]
APISERVER_USER = "system:kube-apiserver"
CONNECT_TIMEOUT = 10.0
_AGENT_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach", "portforward": "portForward"}
_LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")
_EXEC_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")


@dataclass(frozen=True)
class AgentEndpoint:
    node: str
    host: str
    port: int
    cert_pem: str

    def url(self, scheme: str, path: str, query: list[tuple[str, str]]) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        qs = f"?{urlencode(query)}" if query else ""
        return f"{scheme}://{host}:{self.port}{path}{qs}"


def endpoint_of(node: Obj) -> AgentEndpoint:
    """The agent endpoint a Node advertises; 503 for nodes without a real agent."""
    name = str(node["metadata"]["name"])
    status = node.get("status") or {}
    cert = ((node["metadata"].get("annotations") or {}).get(CERT_ANNOTATION)) or ""
    port = int((((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")) or 0)
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addrs.get("InternalIP") or addrs.get("ExternalIP") or addrs.get("Hostname") or ""
    if not cert or not port or not host:
        raise errors.ServiceUnavailable(f'node "{name}" has no node agent endpoint serving streams')
    return AgentEndpoint(name, str(host), port, str(cert))


def container_names(pod: Obj) -> tuple[list[str], list[str]]:
    spec = pod.get("spec") or {}
    return (
        [str(c["name"]) for c in spec.get("containers") or []],
        [str(c["name"]) for c in spec.get("initContainers") or []]
        + [str(c["name"]) for c in spec.get("ephemeralContainers") or []],
    )


def pick_container(pod: Obj, requested: str) -> str:
    """The container a request names, validated as kube-apiserver does (400 otherwise)."""
    name = str(pod["metadata"]["name"])
    main, others = container_names(pod)
    if not requested:
        if len(main) == 1:
            return main[0]
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]"
        if others:
            msg += f" or one of the init containers: [{' '.join(others)}]"
        raise errors.BadRequest(msg)
    if requested not in main and requested not in others:
        raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
    return requested


class NodeProxy:
    """``ctx.node_proxy``: called by :func:`kubelite.apiserver.subresources.stream`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.token = secrets.token_urlsafe(32)
        ctx.tokens[self.token] = APISERVER_USER
        self._contexts: dict[str, ssl.SSLContext] = {}

    def ssl_context(self, ep: AgentEndpoint) -> ssl.SSLContext:
        ctx = self._contexts.get(ep.cert_pem)
        if ctx is None:
            try:
                ctx = pinned_context(ep.cert_pem)
            except ssl.SSLError as e:
                raise errors.ServiceUnavailable(f'node "{ep.node}" publishes an unusable certificate') from e
            self._contexts[ep.cert_pem] = ctx
        return ctx

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def endpoint(self, ctx: ServerContext, node_name: str) -> AgentEndpoint:
        nodes = ctx.index.get("", "v1", "nodes")
        assert nodes is not None
        try:
            node = await ctx.objects.get(nodes, "", node_name)
        except errors.NotFound as e:
            raise errors.ServiceUnavailable(f'node "{node_name}" not found') from e
        return endpoint_of(node)

    async def handle(self, ctx: ServerContext, req: Request, send: Send, t: Target, pod: Obj) -> None:
        sub = t.subresource
        if sub not in _AGENT_PATHS:
            raise errors.MethodNotAllowed(f"the {sub} subresource is not supported for pods")
        path = f"/{_AGENT_PATHS[sub]}/{quote(t.namespace)}/{quote(t.name)}"
        query: list[tuple[str, str]] = []
        if sub != "portforward":
            path += "/" + quote(pick_container(pod, req.q("container")))
            allowed = _LOG_PARAMS if sub == "log" else _EXEC_PARAMS
            query = [(k, v) for k in allowed for v in req.query.get(k, [])]
        ep = await self.endpoint(ctx, str(pod["spec"]["nodeName"]))
        if req.scope["type"] == "websocket":
            if sub == "log":
                raise errors.BadRequest("logs are served over plain HTTP, not WebSocket")
            await self.relay_websocket(req, send, ep, path, query)
        elif sub == "log":
            if req.method != "GET":
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            await self.proxy_logs(req, send, ep, path, query)
        else:
            raise errors.BadRequest(
                f"{sub}: upgrade to WebSocket (v5.channel.k8s.io) or to SPDY/3.1 "
                "(X-Stream-Protocol-Version v4.channel.k8s.io) to use this stream"
            )

    # ------------------------------------------------------------------ logs

    async def proxy_logs(
        self, req: Request, send: Send, ep: AgentEndpoint, path: str, query: list[tuple[str, str]]
    ) -> None:
        timeout = httpx.Timeout(CONNECT_TIMEOUT, read=None)
        async with httpx.AsyncClient(verify=self.ssl_context(ep), timeout=timeout) as client:
            try:
                async with client.stream(
                    "GET", ep.url("https", path, query), headers=self.auth_header
                ) as resp:
                    await self._relay_response(req, send, resp)
            except httpx.TransportError as e:
                raise errors.ServiceUnavailable(f'cannot reach the node agent of "{ep.node}": {e}') from e

    async def _relay_response(self, req: Request, send: Send, resp: httpx.Response) -> None:
        ctype = resp.headers.get("content-type", "text/plain")
        await send(
            {
                "type": "http.response.start",
                "status": resp.status_code,
                "headers": [(b"content-type", ctype.encode()), (b"cache-control", b"no-cache, private")],
            }
        )

        async def pump() -> None:
            async for chunk in resp.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        # `kubectl logs -f` interrupted: stop at once (closing the agent's stream ends its follow)
        await until_disconnect(req.receive, pump())

    # ------------------------------------------------------------------ websockets

    async def relay_websocket(
        self, req: Request, send: Send, ep: AgentEndpoint, path: str, query: list[tuple[str, str]]
    ) -> None:
        first = await req.receive()
        if first["type"] != "websocket.connect":
            return
        offered = [str(p) for p in req.scope.get("subprotocols") or []]
        # exec/attach over raw SPDY (spdyupgrade) are bridged to the agent's WebSocket v5
        spdy_scope = SPDY_EXTENSION in (req.scope.get("extensions") or {})
        bridged = spdy_scope and not path.startswith("/portForward/")
        protocols = [Subprotocol(p) for p in ([wsv5.PROTOCOL_V5] if bridged else offered)]
        try:
            upstream = await connect(
                ep.url("wss", path, query),
                ssl=self.ssl_context(ep),
                subprotocols=protocols,
                additional_headers=self.auth_header,
                max_size=None,
                compression=None,
                ping_interval=None,
                open_timeout=CONNECT_TIMEOUT,
            )
        except InvalidStatus as e:
            await _deny(send, e.response.status_code, bytes(e.response.body or b""))
            return
        except (TimeoutError, OSError, WebSocketException) as e:
            raise errors.ServiceUnavailable(f'cannot reach the node agent of "{ep.node}": {e}') from e
        async with upstream:
            if bridged:
                await send({"type": "websocket.accept", "subprotocol": offered[0]})
                await SpdyExecBridge(req.receive, send, upstream).run()
                return
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _relay(req, send, upstream)


async def _deny(send: Send, code: int, body: bytes) -> None:
    await send(
        {
            "type": "websocket.http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


async def _relay(req: Request, send: Send, upstream: ClientConnection) -> None:
    """Both directions until either side closes; the agent's close code reaches the client."""

    async def client_to_agent() -> bool:
        """True when the client went away, False when the agent's side closed first."""
        while True:
            msg = await req.receive()
            if msg["type"] == "websocket.disconnect":
                return True
            if msg["type"] == "websocket.receive":
                data = msg.get("bytes")
                try:
                    await upstream.send(data if data is not None else str(msg.get("text") or "").encode())
                except ConnectionClosed:
                    return False

    async def agent_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in upstream:
                data = message if isinstance(message, bytes) else message.encode()
                await send({"type": "websocket.send", "bytes": data})

    up = asyncio.create_task(client_to_agent())
    down = asyncio.create_task(agent_to_client())
    try:
        done, _ = await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        if up in done and up.exception() is None and up.result() is False:  # the agent closed first
            done, _ = await asyncio.wait((down,), timeout=2)
    finally:
        for task in (up, down):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if down in done:
        code = upstream.close_code or 1000
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code if code != 1006 else 1011})
    else:
        await upstream.close()
