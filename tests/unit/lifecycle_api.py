"""A real in-process API server (memory SQLite) and controller runner for controller tests.

Shared by the node-lifecycle, disruption, endpoints, service-account, volume and HPA
tests: the controllers talk to the same admission/validation/storage code as in
``kubelite up``, through the in-process client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.apiserver.app import App
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.server import ServerConfig, build_context
from kubelite.client.base import Client, Resource
from kubelite.client.inprocess import ASGITransport
from kubelite.controllers.manager import ControllerContext
from kubelite.store import open_store

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
PDBS = Resource("policy", "v1", "poddisruptionbudgets")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
EVENTS = Resource("", "v1", "events")


@dataclass
class Api:
    ctx: ServerContext
    client: Client


@asynccontextmanager
async def api_server(tmp_path: Path) -> AsyncIterator[Api]:
    store = open_store("memory://")
    await store.start()
    try:
        ctx, crds = await build_context(store, ServerConfig(data_dir=tmp_path), {"t0ken": "admin"})
        client = Client(ASGITransport(App(ctx), "t0ken"), user_agent="unit-test/v1.32.0")
        try:
            yield Api(ctx, client)
        finally:
            await crds.stop()
    finally:
        await store.close()


@asynccontextmanager
async def running(
    client: Client, factories: list[Callable[[ControllerContext], Any]], options: dict[str, Any] | None = None
) -> AsyncIterator[list[Any]]:
    """Build controllers like the manager does, sync informers, start; stop on exit."""
    cctx = ControllerContext(client, dict(options or {}))
    ctrls = [f(cctx) for f in factories]
    await cctx.informers.start()
    for c in ctrls:
        await c.start()
    try:
        yield ctrls
    finally:
        for c in reversed(ctrls):
            await c.stop()
        await cctx.informers.stop()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns a truthy value (returned) or raise its last error."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            out = await check()
            if out:
                return out
            last = AssertionError(f"condition still false: {out!r}")
        except AssertionError as e:
            last = e
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out: {last}")


def pod(
    name: str,
    labels: dict[str, str] | None = None,
    node: str = "",
    ip: str = "",
    ready: bool = True,
    ports: list[Obj] | None = None,
    owner: Obj | None = None,
) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "nginx", "ports": ports or []}]}
    if node:
        spec["nodeName"] = node
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }
    if owner:
        body["metadata"]["ownerReferences"] = [owner]
    return body


async def set_pod_status(client: Client, ns: str, name: str, ip: str = "", ready: bool = True) -> Obj:
    cur = await client.get(PODS, ns, name)
    cur["status"] = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}] if ip else [],
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False"},
            {"type": "PodScheduled", "status": "True"},
        ],
    }
    out: Obj = await client.update(PODS, ns, cur, subresource="status")
    return out
