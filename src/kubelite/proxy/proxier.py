"""The Service proxy loop: informers -> dirty services -> one nft transaction per burst.

Mirrors kube-proxy's nftables Proxier: Service and EndpointSlice events mark Services
dirty; a sync (after a few milliseconds of coalescing) re-renders only those Services and
applies the difference (partial sync).  The first sync, one every ``sync_period`` and
the one after any failed apply are full syncs.  Stale UDP conntrack entries are deleted
after the rules that made them stale are in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.proxy import conntrack
from kubelite.proxy.config import ProxyConfig
from kubelite.proxy.endpoints import slice_service_key
from kubelite.proxy.metrics import ProxyMetrics, SyncRecord, now
from kubelite.proxy.model import Plan, TableModel
from kubelite.proxy.nft import Nft
from kubelite.proxy.render import (
    RenderContext,
    base_chains,
    base_maps,
    render_service,
    service_endpoints,
    used_endpoints,
)
from kubelite.proxy.ruleset import Fragment
from kubelite.proxy.service import service_info

log = logging.getLogger("kubelite.proxy")
Obj = dict[str, Any]
SERVICES = Resource("", "v1", "services")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
NODES = Resource("", "v1", "nodes", namespaced=False)
BY_SERVICE = "service"
# Like kube-proxy: Services handled by another proxy, and headless ones, are not watched.
PROXIED = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
RENDER_BATCH = 100


def _slice_index(obj: Obj) -> list[str]:
    key = slice_service_key(obj)
    return [key] if key else []


class Proxier:
    def __init__(self, client: Client, config: ProxyConfig) -> None:
        self.client = client
        self.config = config
        self.ctx = RenderContext(config.node_name, config.cluster_cidr, config.service_cidr)
        self.nft = Nft(config.nft, config.table, in_process=config.nft == "nft")
        self.model = TableModel(config.table, base_chains(self.ctx), base_maps())
        self.metrics = ProxyMetrics()
        self.services = Informer(client, SERVICES, label_selector=PROXIED)
        self.slices = Informer(client, ENDPOINT_SLICES, label_selector=PROXIED)
        self.nodes = Informer(client, NODES, field_selector=f"metadata.name={config.node_name}")
        self.slices.add_indexer(BY_SERVICE, _slice_index)
        self.services.add_handler(self._on_service)
        self.slices.add_handler(self._on_slice)
        self.nodes.add_handler(self._on_node)
        self._dirty: dict[str, float] = {}
        self._udp: dict[str, dict[str, conntrack.UdpView]] = {}
        self._wake = asyncio.Event()
        self._need_full = True
        self._task: asyncio.Task[None] | None = None
        self._bg: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Sync the informers and apply the first full ruleset (raises if nft refuses it)."""
        for inf in (self.services, self.slices, self.nodes):
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in (self.services, self.slices, self.nodes)))
        self.ctx = replace(self.ctx, zone=self._zone(self.nodes.get(self.config.node_name)))
        await self.sync(full=True)
        self._task = asyncio.create_task(self._loop(), name="kubelite-proxy")

    async def stop(self) -> None:
        """Stop syncing and delete the table (nothing of the proxy remains)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for inf in (self.services, self.slices, self.nodes):
            await inf.stop()
        for task in list(self._bg):
            task.cancel()
        try:
            await self.nft.delete_table()
        finally:
            self.nft.close()

    # ------------------------------------------------------------------ events

    def _mark(self, key: str) -> None:
        self._dirty.setdefault(key, now())
        self._wake.set()

    def _on_service(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self._mark(key)

    @staticmethod
    def _zone(node: Obj | None) -> str:
        return str(((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL, ""))

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """This node's zone decides topology-aware routing: a new zone re-renders everything."""
        zone = self._zone(new)
        if key == self.config.node_name and zone != self.ctx.zone:
            self.ctx = replace(self.ctx, zone=zone)
            self._need_full = True
            self._wake.set()

    def _on_slice(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            svc = slice_service_key(obj) if obj else None
            if svc:
                self._mark(svc)

    # ------------------------------------------------------------------ sync

    async def _loop(self) -> None:
        next_full = now() + self.config.sync_period
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_full - now()))
            self._wake.clear()
            if self._dirty:
                await asyncio.sleep(self.config.coalesce)
            full = self._need_full or now() >= next_full
            try:
                await self.sync(full)
            except Exception:
                log.exception(
                    "proxy sync failed table=%s; full resync in %ss",
                    self.config.table,
                    self.config.retry_delay,
                )
                await asyncio.sleep(self.config.retry_delay)
                self._wake.set()
                continue
            if full:
                next_full = now() + self.config.sync_period

    def _render(self, key: str) -> tuple[Fragment, dict[str, conntrack.UdpView]]:
        svc = self.services.get(key)
        info = service_info(svc) if svc else None
        eps = service_endpoints(info, self.slices.by_index(BY_SERVICE, key)) if info else {}
        used = used_endpoints(info, eps, self.ctx)
        return render_service(info, eps, self.ctx), conntrack.udp_views(info, used)

    async def sync(self, full: bool = False) -> None:
        """Apply pending changes (or everything when ``full``); on failure the next sync is full."""
        dirty, self._dirty = self._dirty, {}
        if full:
            self._need_full = False  # a zone change during this sync asks for another one
        try:
            await self._sync(full, dirty)
        except BaseException:
            for k, t in dirty.items():
                self._dirty[k] = min(t, self._dirty.get(k, t))
            self._need_full = True
            raise

    async def _render_all(self, keys: set[str]) -> dict[str, tuple[Fragment, dict[str, conntrack.UdpView]]]:
        rendered: dict[str, tuple[Fragment, dict[str, conntrack.UdpView]]] = {}
        for i, key in enumerate(sorted(keys)):
            rendered[key] = self._render(key)
            if i % RENDER_BATCH == RENDER_BATCH - 1:
                await asyncio.sleep(0)  # a full render must not stall the event loop
        return rendered

    async def _sync(self, full: bool, dirty: dict[str, float]) -> None:
        started = now()
        keys = set(dirty)
        if full:
            keys |= set(self.services.cache) | set(self.model.fragments) | set(self._udp)
        rendered = await self._render_all(keys)
        frags = {k: f for k, (f, _) in rendered.items()}
        if full:
            chains, sets = await self.nft.existing()
            plan = self.model.plan_full(frags, chains, sets)
        else:
            plan = self.model.plan_partial(frags)
        render_s = now() - started
        await self._apply(plan, "full" if full else "partial", dirty, render_s)
        self._clean_conntrack({k: v for k, (_, v) in rendered.items()})

    async def _apply(self, plan: Plan, kind: str, dirty: dict[str, float], render_s: float) -> None:
        t0 = now()
        try:
            if not plan.empty:
                await self.nft.apply(plan.text)
        except Exception:
            self.metrics.record(SyncRecord(kind, False, 0, 0, render_s, now() - t0, now()), set())
            raise
        done = now()
        self.model.commit(plan)
        oldest = min(dirty.values(), default=done)
        rec = SyncRecord(
            kind, True, len(plan.changed), plan.text.count("\n"), render_s, done - t0, done, done - oldest
        )
        self.metrics.record(rec, plan.changed | set(dirty))

    def _clean_conntrack(self, views: dict[str, dict[str, conntrack.UdpView]]) -> None:
        commands: list[list[str]] = []
        for key, new in views.items():
            commands += conntrack.stale_flows(self._udp.get(key, {}), new)
            if new:
                self._udp[key] = new
            else:
                self._udp.pop(key, None)
        if commands:
            task = asyncio.create_task(conntrack.delete_flows(self.config.conntrack, commands))
            self._bg.add(task)
            task.add_done_callback(self._bg.discard)
