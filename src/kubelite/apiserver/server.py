"""Assemble and run the API server: store, resource index, discovery, OpenAPI, HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from kubelite import gctuning, pki
from kubelite.api import errors
from kubelite.apiserver import metrics
from kubelite.apiserver.admission import default_storage_class, default_toleration_seconds_hook
from kubelite.apiserver.allocators import ServiceAllocator
from kubelite.apiserver.app import App
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.crds import CRDRegistry
from kubelite.apiserver.discovery import Discovery
from kubelite.apiserver.eviction import eviction_check
from kubelite.apiserver.nodemetrics import AgentMetrics
from kubelite.apiserver.nodeproxy import NodeProxy
from kubelite.apiserver.objects import ObjectStore
from kubelite.apiserver.openapi import OpenAPIV3
from kubelite.apiserver.rest import create_object
from kubelite.apiserver.spdyupgrade import UpgradingHttpProtocol
from kubelite.apiserver.writes import WriteOptions, admit_update
from kubelite.registry.resources import METRICS, ResourceInfo, builtin_index
from kubelite.store import open_store
from kubelite.store.types import Store

log = logging.getLogger("kubelite.server")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
DNS_OFFSET = 10  # kube-dns's conventional ClusterIP: the service CIDR's network address + 10


@dataclass
class ServerConfig:
    data_dir: Path
    port: int = 6443
    bind: str = "127.0.0.1"
    datastore: str = ""
    service_cidr: str = "10.96.0.0/12"
    advertise_hosts: list[str] = field(default_factory=list)
    # kube-apiserver's --advertise-address: the address the kubernetes Service's endpoints
    # name (pods reach the API server there); "" = the bind address, 127.0.0.1 for a wildcard
    advertise_address: str = ""
    # DefaultTolerationSeconds admission: not-ready/unreachable NoExecute tolerations
    default_toleration_seconds: int = 300

    @property
    def datastore_url(self) -> str:
        return self.datastore or f"sqlite://{self.data_dir / 'state.db'}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"


@dataclass
class RunningServer:
    ctx: ServerContext
    store: Store
    crds: CRDRegistry
    uvicorn_server: uvicorn.Server


async def build_context(
    store: Store, cfg: ServerConfig, tokens: dict[str, str]
) -> tuple[ServerContext, CRDRegistry]:
    index = builtin_index()
    ctx = ServerContext(
        index=index,
        objects=ObjectStore(store),
        discovery=Discovery(index),
        openapi=None,
        tokens=tokens,
        server_address=f"{cfg.bind}:{cfg.port}",
    )
    crds = CRDRegistry(ctx)
    ctx.crds = crds
    ctx.openapi = OpenAPIV3(index, crds.schemas_for)
    allocator = ServiceAllocator(cfg.service_cidr)
    await allocator.start(ctx)
    ctx.extra["service_allocator"] = allocator
    ctx.extra["create_hooks"] = {
        ("", "Service"): allocator.on_create,
        ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd_finalizer,
        ("", "Pod"): default_toleration_seconds_hook(cfg.default_toleration_seconds),
        ("", "PersistentVolumeClaim"): default_storage_class,
    }
    ctx.extra["eviction_check"] = eviction_check
    ctx.extra["virtual_handlers"] = metrics.handlers()
    ctx.node_proxy = NodeProxy(ctx)  # logs/exec/attach/port-forward to the node agents
    ctx.extra["node_metrics_provider"] = AgentMetrics(ctx, ctx.node_proxy)
    for r in METRICS:
        index.add(r)
    await crds.start()
    await bootstrap(ctx, cfg)
    return ctx, crds


async def _crd_finalizer(ctx: ServerContext, crd: dict[str, Any], opts: WriteOptions) -> None:
    fins = crd["metadata"].setdefault("finalizers", [])
    if CRD_CLEANUP_FINALIZER not in fins:
        fins.append(CRD_CLEANUP_FINALIZER)


def _resource(ctx: ServerContext, group: str, plural: str) -> ResourceInfo:
    return next(r for r in ctx.index.resources if r.group == group and r.plural == plural and r.preferred)


async def _ensure(ctx: ServerContext, group: str, plural: str, namespace: str, obj: dict[str, Any]) -> None:
    info = _resource(ctx, group, plural)
    with contextlib.suppress(errors.AlreadyExists):
        if await ctx.objects.get_kv(info, namespace, obj["metadata"]["name"]) is None:
            await create_object(ctx, info, namespace, obj, WriteOptions(manager="kube-apiserver"))


def _get_path(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj.setdefault(part, {})
    if value is None:
        obj.pop(last, None)
    else:
        obj[last] = copy.deepcopy(value)


async def _reconcile(
    ctx: ServerContext, group: str, plural: str, namespace: str, obj: dict[str, Any], paths: tuple[str, ...]
) -> None:
    """Create ``obj``, or reset the fields at ``paths`` of the stored one when they drifted
    (kube-apiserver's endpoints reconciler and kubernetes-service controller do likewise)."""
    info = _resource(ctx, group, plural)
    name = obj["metadata"]["name"]
    if await ctx.objects.get_kv(info, namespace, name) is None:
        await _ensure(ctx, group, plural, namespace, obj)
        return

    def mutate(cur: dict[str, Any]) -> dict[str, Any] | None:
        new = copy.deepcopy(cur)
        for path in paths:
            _set_path(new, path, _get_path(obj, path))
        if new == cur:
            return cur
        return admit_update(ctx, info, new, cur, WriteOptions(manager="kube-apiserver"))

    with contextlib.suppress(errors.NotFound):
        await ctx.objects.guaranteed_update(info, namespace, name, mutate)


def kubernetes_service(allocator: ServiceAllocator, port: int) -> dict[str, Any]:
    """The ``default/kubernetes`` Service fronting the API server at the service CIDR's .1."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": allocator.first_ip(1),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    }


def kubernetes_endpoints(ip: str, port: int) -> dict[str, Any]:
    """``default/kubernetes`` Endpoints: the API server's address (never mirrored to slices)."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [
            {"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        ],
    }


def kubernetes_endpoint_slice(ip: str, port: int) -> dict[str, Any]:
    """``default/kubernetes`` EndpointSlice as kube-apiserver's EndpointsAdapter writes it:
    named after the Service, only the ``kubernetes.io/service-name`` label (no managed-by:
    no controller owns it), one ready endpoint per API server address."""
    family = "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": family,
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


def kube_dns_service(allocator: ServiceAllocator) -> dict[str, Any]:
    """``kube-system/kube-dns`` at the service CIDR's .10, as kubeadm's CoreDNS add-on
    names it; selectorless: the kubelite DNS server publishes its own EndpointSlice."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": allocator.first_ip(DNS_OFFSET),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
            "sessionAffinity": "None",
        },
    }


async def bootstrap(ctx: ServerContext, cfg: ServerConfig) -> None:
    """What kube-apiserver (and kubeadm's DNS add-on) set up on start: the system namespaces,
    the ``kubernetes`` Service with its Endpoints and EndpointSlice (ports and address kept
    current), and the ``kube-dns`` Service."""
    for ns in SYSTEM_NAMESPACES:
        await _ensure(
            ctx, "", "namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
    allocator: ServiceAllocator = ctx.extra["service_allocator"]
    await _reconcile(ctx, "", "services", "default", kubernetes_service(allocator, cfg.port), ("spec.ports",))
    endpoint_ip = cfg.advertise_address or (
        cfg.bind if cfg.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
    )
    await _reconcile(
        ctx,
        "",
        "endpoints",
        "default",
        kubernetes_endpoints(endpoint_ip, cfg.port),
        ("metadata.labels", "subsets"),
    )
    await _reconcile(
        ctx,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        kubernetes_endpoint_slice(endpoint_ip, cfg.port),
        ("metadata.labels", "addressType", "endpoints", "ports"),
    )
    try:
        await _ensure(ctx, "", "services", "kube-system", kube_dns_service(allocator))
    except errors.Invalid as e:  # .10 taken by a user Service: DNS is left without its VIP
        log.warning("kube-dns Service not created error=%s", e)


def _ssl_hosts(cfg: ServerConfig) -> list[str]:
    hosts = list(cfg.advertise_hosts)
    if cfg.bind not in ("0.0.0.0", "::", ""):
        hosts.append(cfg.bind)
    return hosts


def prepare_credentials(cfg: ServerConfig) -> pki.ClusterCredentials:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    creds = pki.ensure_credentials(cfg.data_dir, _ssl_hosts(cfg))
    host = cfg.bind if cfg.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
    pki.write_kubeconfig(cfg.kubeconfig_path, f"https://{host}:{cfg.port}", creds)
    return creds


async def serve(
    cfg: ServerConfig,
    on_ready: Callable[[RunningServer], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``should_exit``); the store is closed cleanly afterwards."""
    creds = prepare_credentials(cfg)
    store = open_store(cfg.datastore_url)
    await store.start()
    try:
        ctx, crds = await build_context(store, cfg, {creds.admin_token: "admin"})
        gctuning.freeze_startup_objects()
        config = uvicorn.Config(
            App(ctx),
            host=cfg.bind,
            port=cfg.port,
            loop="none",
            http=UpgradingHttpProtocol,  # httptools, one write per response, + SPDY port-forward
            ws="websockets-sansio",
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            # nothing reads the client address or X-Forwarded-* headers, so uvicorn's forwarded-
            # headers middleware (one more ASGI layer per request) is left out
            proxy_headers=False,
            ssl_certfile=str(creds.serving_cert),
            ssl_keyfile=str(creds.serving_key),
            ssl_cert_reqs=ssl.CERT_NONE,
            timeout_keep_alive=120,
            timeout_graceful_shutdown=3,
            backlog=2048,
        )
        server = _GracefulServer(config)
        running = RunningServer(ctx, store, crds, server)
        waiter = asyncio.create_task(_announce(running, on_ready))
        try:
            await server.serve()
        finally:
            waiter.cancel()
            await crds.stop()
            for stop in ctx.extra.get("on_shutdown", []):
                await stop()
    finally:
        await store.close()


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which kills the process
    before ``serve`` closes the controllers and the store (and exits with -15). kube-apiserver
    finishes its shutdown and exits 0; so does this server: the signal is consumed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


async def _announce(
    running: RunningServer, on_ready: Callable[[RunningServer], Awaitable[None]] | None
) -> None:
    while not running.uvicorn_server.started:
        if running.uvicorn_server.should_exit:
            return
        await asyncio.sleep(0.005)
    if on_ready is not None:
        await on_ready(running)
