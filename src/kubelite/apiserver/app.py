"""The ASGI application: authentication, routing, dispatch to verbs, error mapping."""

from __future__ import annotations

import hmac
import logging
import platform

import orjson

from kubelite.api import errors
from kubelite.apiserver import rest, subresources, watch
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import JSON, Receive, Request, Scope, Send, send_bytes, send_error
from kubelite.apiserver.negotiation import DISCOVERY_V2, DISCOVERY_V2BETA1, wants_aggregated_discovery
from kubelite.apiserver.rest import Target
from kubelite.registry.resources import REMOVED_GROUP_VERSIONS, ResourceInfo

log = logging.getLogger("kubelite.apiserver")

ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/version")
STREAM_SUBRESOURCES = ("log", "exec", "attach", "portforward", "proxy")

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+kubelite",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-22T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": f"linux/{'arm64' if platform.machine() in ('aarch64', 'arm64') else 'amd64'}",
}


class App:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            return
        req = Request.from_scope(scope, receive)
        try:
            self._authenticate(req)
            await self._route(req, send)
        except errors.APIError as e:
            if scope["type"] == "websocket":
                await _reject_websocket(send, e)
            else:
                await send_error(send, e, req.warnings)
        except Exception:  # the server keeps serving whatever one request did
            log.exception("request failed method=%s path=%s", req.method, req.path)
            err = errors.InternalError("an internal error occurred while handling the request")
            try:
                await send_error(send, err)
            except Exception:  # response already started
                log.debug("could not send error response path=%s", req.path)

    # ------------------------------------------------------------------ auth

    def _authenticate(self, req: Request) -> None:
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            for known, user in self.ctx.tokens.items():
                if hmac.compare_digest(known.encode(), token.encode()):
                    req.user = user
                    return
            raise errors.Unauthorized("Unauthorized")
        if req.path in ANONYMOUS_PATHS or req.path.startswith(("/healthz/", "/livez/", "/readyz/")):
            req.user = "system:anonymous"
            return
        raise errors.Unauthorized("Unauthorized")

    # ------------------------------------------------------------------ routing

    async def _route(self, req: Request, send: Send) -> None:
        path = req.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if not parts:
            await self._root(send)
            return
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            await send_bytes(send, 200, b"ok", "text/plain; charset=utf-8")
        elif head == "version":
            await send_bytes(send, 200, orjson.dumps(VERSION_INFO))
        elif head == "openapi":
            await self._openapi(req, send, parts[1:])
        elif head == "api":
            await self._api(req, send, parts[1:])
        elif head == "apis":
            await self._apis(req, send, parts[1:])
        elif head == "metrics":
            metrics = self.ctx.extra.get("metrics")
            body = metrics() if metrics else b""
            await send_bytes(send, 200, body, "text/plain; version=0.0.4")
        else:
            raise errors.NotFound("the server could not find the requested resource")

    async def _root(self, send: Send) -> None:
        paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]
        for g, vs in self.ctx.index.group_versions().items():
            if g:
                paths.append(f"/apis/{g}")
                paths.extend(f"/apis/{g}/{v}" for v in vs)
        await send_bytes(send, 200, orjson.dumps({"paths": sorted(paths)}))

    async def _openapi(self, req: Request, send: Send, rest_parts: list[str]) -> None:
        if rest_parts == ["v2"]:
            await self._openapi_v2(req, send)
            return
        if rest_parts[:1] != ["v3"]:
            raise errors.NotFound("the server could not find the requested resource")
        if len(rest_parts) == 1:
            await send_bytes(send, 200, self.ctx.openapi.index_document())
            return
        gv = "/".join(rest_parts[1:])
        doc = self.ctx.openapi.group_version_document(gv)
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        body, etag = doc
        quoted = f'"{etag}"'
        if req.headers.get("if-none-match") == quoted:
            await send(
                {"type": "http.response.start", "status": 304, "headers": [(b"etag", quoted.encode())]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send_bytes(send, 200, body, JSON, {"etag": quoted, "cache-control": "public, immutable"})

    async def _openapi_v2(self, req: Request, send: Send) -> None:
        """An empty OpenAPI v2 document: kubectl only falls back to v2 for group-versions that v3 does
        not describe (removed APIs, unknown CRDs); an empty document lets it report those as
        "no matches for kind" exactly as against a real 1.32 server."""
        if "protobuf" in req.headers.get("accept", ""):
            await send_bytes(send, 200, b"", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        else:
            await send_bytes(
                send,
                200,
                orjson.dumps(
                    {
                        "swagger": "2.0",
                        "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
                        "paths": {},
                    }
                ),
            )

    async def _api(self, req: Request, send: Send, parts: list[str]) -> None:
        if not parts:
            await self._discovery_root(req, send, legacy_core=True)
            return
        if parts[0] != "v1":
            raise errors.NotFound("the server could not find the requested resource")
        if len(parts) == 1:
            await self._resource_list(send, "", "v1")
            return
        await self._resource(req, send, "", "v1", parts[1:])

    async def _apis(self, req: Request, send: Send, parts: list[str]) -> None:
        if not parts:
            await self._discovery_root(req, send, legacy_core=False)
            return
        group = parts[0]
        if len(parts) == 1:
            body = self.ctx.discovery.api_group(group)
            if body is None:
                raise errors.NotFound("the server could not find the requested resource")
            await send_bytes(send, 200, body)
            return
        version = parts[1]
        if len(parts) == 2:
            await self._resource_list(send, group, version)
            return
        await self._resource(req, send, group, version, parts[2:])

    async def _discovery_root(self, req: Request, send: Send, legacy_core: bool) -> None:
        agg = wants_aggregated_discovery(req.headers.get("accept", ""))
        if agg:
            ct = DISCOVERY_V2 if agg == "v2" else DISCOVERY_V2BETA1
            await send_bytes(send, 200, self.ctx.discovery.aggregated(legacy_core, agg), ct)
        elif legacy_core:
            await send_bytes(send, 200, self.ctx.discovery.api_versions(self.ctx.server_address))
        else:
            await send_bytes(send, 200, self.ctx.discovery.api_group_list())

    async def _resource_list(self, send: Send, group: str, version: str) -> None:
        body = self.ctx.discovery.resource_list(group, version)
        if body is None:
            raise errors.NotFound("the server could not find the requested resource")
        await send_bytes(send, 200, body)

    # ------------------------------------------------------------------ resources

    def _target(self, group: str, version: str, parts: list[str]) -> Target:
        namespace = ""
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in ("status", "finalize"):
            namespace = parts[1]
            parts = parts[2:]
        if not parts or len(parts) > 3:
            raise errors.NotFound("the server could not find the requested resource")
        info = self.ctx.index.get(group, version, parts[0])
        if info is None:
            gv = f"{group}/{version}" if group else version
            if gv in REMOVED_GROUP_VERSIONS:
                raise errors.NotFound(
                    f"the server could not find the requested resource: {gv} is not served by Kubernetes 1.32"
                )
            raise errors.NotFound("the server could not find the requested resource")
        name = parts[1] if len(parts) > 1 else ""
        sub = parts[2] if len(parts) > 2 else ""
        if sub and info.subresource(sub) is None:
            raise errors.NotFound("the server could not find the requested resource")
        if info.namespaced and name and not namespace and info.kind != "Namespace":
            raise errors.NotFound("the server could not find the requested resource")
        return Target(info, namespace, name, sub)

    async def _resource(self, req: Request, send: Send, group: str, version: str, parts: list[str]) -> None:
        t = self._target(group, version, parts)
        info = t.info
        m = req.method
        if t.subresource:
            await self._subresource(req, send, t)
            return
        if not info.persisted:
            await self._virtual(req, send, t)
            return
        if not t.name:
            if m == "GET":
                if req.q_bool("watch"):
                    _require_verb(info, "watch", m)
                    await watch.watch(self.ctx, req, send, t)
                else:
                    _require_verb(info, "list", m)
                    await rest.list_(self.ctx, req, send, t)
            elif m == "POST":
                _require_verb(info, "create", m)
                if info.namespaced and not t.namespace:
                    raise errors.MethodNotAllowed(
                        "the server does not allow this method on the requested resource"
                    )
                await rest.create(self.ctx, req, send, t)
            elif m == "DELETE":
                _require_verb(info, "deletecollection", m)
                await rest.delete_collection(self.ctx, req, send, t)
            else:
                raise _not_allowed()
            return
        if m == "GET":
            _require_verb(info, "get", m)
            await rest.get(self.ctx, req, send, t)
        elif m == "PUT":
            _require_verb(info, "update", m)
            await rest.update(self.ctx, req, send, t)
        elif m == "PATCH":
            _require_verb(info, "patch", m)
            await rest.patch_(self.ctx, req, send, t)
        elif m == "DELETE":
            _require_verb(info, "delete", m)
            await rest.delete(self.ctx, req, send, t)
        else:
            raise _not_allowed()

    async def _subresource(self, req: Request, send: Send, t: Target) -> None:
        sub = t.subresource
        m = req.method
        if sub == "status":
            if m == "GET":
                await rest.get(self.ctx, req, send, t)
            elif m == "PUT":
                await rest.update(self.ctx, req, send, t)
            elif m == "PATCH":
                await rest.patch_(self.ctx, req, send, t)
            else:
                raise _not_allowed()
        elif sub == "scale":
            if m not in ("GET", "PUT", "PATCH"):
                raise _not_allowed()
            await subresources.scale(self.ctx, req, send, t)
        elif sub == "binding" and m == "POST":
            await subresources.bind(self.ctx, req, send, t.namespace, t.name)
        elif sub == "eviction" and m == "POST":
            await subresources.evict(self.ctx, req, send, t)
        elif sub == "finalize" and m == "PUT":
            await subresources.finalize(self.ctx, req, send, t)
        elif sub in STREAM_SUBRESOURCES:
            await subresources.stream(self.ctx, req, send, t)
        else:
            handler = self.ctx.extra.get("subresource_handlers", {}).get((t.info.group, t.info.plural, sub))
            if handler is None:
                raise _not_allowed()
            await handler(self.ctx, req, send, t)

    async def _virtual(self, req: Request, send: Send, t: Target) -> None:
        handler = self.ctx.extra.get("virtual_handlers", {}).get((t.info.group, t.info.plural))
        if handler is not None:  # e.g. metrics.k8s.io (kubelite.apiserver.metrics)
            await handler(self.ctx, req, send, t)
            return
        if req.method != "POST":
            raise _not_allowed()
        if t.info.plural == "bindings":
            await subresources.bind(self.ctx, req, send, t.namespace, "")
            return
        await subresources.review(self.ctx, req, send, t.info)


def _require_verb(info: ResourceInfo, verb: str, method: str) -> None:
    if verb not in info.verbs:
        raise _not_allowed()


def _not_allowed() -> errors.MethodNotAllowed:
    return errors.MethodNotAllowed("the server does not allow this method on the requested resource")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _reject_websocket(send: Send, err: errors.APIError) -> None:
    body = orjson.dumps(err.to_status())
    await send(
        {
            "type": "websocket.http.response.start",
            "status": err.code,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
