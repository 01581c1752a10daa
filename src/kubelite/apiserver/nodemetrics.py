"""Real resource metrics for ``metrics.k8s.io/v1beta1``, gathered from the node agents.

This is what metrics-server does: read every node's ``/stats/summary`` (through the same pinned,
authenticated connection as the streams, :mod:`kubelite.apiserver.nodeproxy`) and turn it into
PodMetrics and NodeMetrics.  Answers are cached for a couple of seconds so ``kubectl top`` and the
HPA do not hammer the agents; nodes without an agent endpoint (simulated nodes) are skipped - the
simulator answers for those (both providers are merged by :mod:`kubelite.apiserver.metrics`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.nodeproxy import AgentEndpoint, NodeProxy, endpoint_of

log = logging.getLogger("kubelite.apiserver.nodemetrics")
Obj = dict[str, Any]
API_VERSION = "metrics.k8s.io/v1beta1"
CACHE_SECONDS = 2.0
WINDOW = "10s"


def _cpu(nanocores: int) -> str:
    return f"{max(0, int(nanocores))}n"


def _memory(nbytes: int) -> str:
    return f"{max(0, int(nbytes)) // 1024}Ki"


def pod_metrics_from(summary: Obj, labels: dict[tuple[str, str], dict[str, str]]) -> list[Obj]:
    out = []
    for pod in summary.get("pods") or []:
        ref = pod.get("podRef") or {}
        key = (str(ref.get("namespace", "")), str(ref.get("name", "")))
        containers = [
            {
                "name": c["name"],
                "usage": {
                    "cpu": _cpu((c.get("cpu") or {}).get("usageNanoCores", 0)),
                    "memory": _memory((c.get("memory") or {}).get("workingSetBytes", 0)),
                },
            }
            for c in pod.get("containers") or []
        ]
        stamp = (pod.get("cpu") or {}).get("time", "")
        meta: Obj = {"name": key[1], "namespace": key[0], "creationTimestamp": stamp}
        if labels.get(key):
            meta["labels"] = labels[key]
        out.append({"metadata": meta, "timestamp": stamp, "window": WINDOW, "containers": containers})
    return out


def node_metrics_from(summary: Obj, labels: dict[str, str]) -> Obj:
    node = summary.get("node") or {}
    stamp = (node.get("cpu") or {}).get("time", "")
    meta: Obj = {"name": node.get("nodeName", ""), "creationTimestamp": stamp}
    if labels:
        meta["labels"] = labels
    return {
        "metadata": meta,
        "timestamp": stamp,
        "window": WINDOW,
        "usage": {
            "cpu": _cpu((node.get("cpu") or {}).get("usageNanoCores", 0)),
            "memory": _memory((node.get("memory") or {}).get("workingSetBytes", 0)),
        },
    }


class AgentMetrics:
    """An async metrics provider: ``await pod_metrics(ns)``, ``await node_metrics()``."""

    def __init__(self, ctx: ServerContext, proxy: NodeProxy) -> None:
        self.ctx = ctx
        self.proxy = proxy
        self._cache: tuple[float, list[tuple[Obj, Obj]]] | None = None
        self._lock = asyncio.Lock()

    async def _nodes(self) -> list[Obj]:
        info = self.ctx.index.get("", "v1", "nodes")
        assert info is not None
        page = await self.ctx.objects.list(info, "", match=lambda _: True)
        return list(page.items or [])

    async def _summary(self, ep: AgentEndpoint) -> Obj | None:
        try:
            async with httpx.AsyncClient(verify=self.proxy.ssl_context(ep), timeout=5.0) as client:
                resp = await client.get(ep.url("https", "/stats/summary", []), headers=self.proxy.auth_header)
            if resp.status_code != 200:
                log.info("stats of node %s: HTTP %d", ep.node, resp.status_code)
                return None
            out: Obj = resp.json()
            return out
        except (httpx.HTTPError, ValueError) as e:
            log.info("stats of node %s unavailable: %s", ep.node, e)
            return None

    async def summaries(self) -> list[tuple[Obj, Obj]]:
        """(node, summary) of every node whose agent answered."""
        async with self._lock:
            now = time.monotonic()
            if self._cache is not None and now - self._cache[0] < CACHE_SECONDS:
                return self._cache[1]
            eps: list[tuple[Obj, AgentEndpoint]] = []
            for node in await self._nodes():
                try:
                    eps.append((node, endpoint_of(node)))
                except errors.APIError:
                    continue
            results = await asyncio.gather(*(self._summary(ep) for _, ep in eps))
            found = [(node, s) for (node, _), s in zip(eps, results, strict=True) if s is not None]
            self._cache = (time.monotonic(), found)
            return found

    async def pod_metrics(self, namespace: str = "") -> list[Obj]:
        pods_info = self.ctx.index.get("", "v1", "pods")
        assert pods_info is not None
        out: list[Obj] = []
        for _, summary in await self.summaries():
            wanted = [
                p for p in summary.get("pods") or [] if not namespace or p["podRef"]["namespace"] == namespace
            ]
            labels: dict[tuple[str, str], dict[str, str]] = {}
            for p in wanted:
                ns, name = p["podRef"]["namespace"], p["podRef"]["name"]
                try:
                    obj = await self.ctx.objects.get(pods_info, ns, name)
                except errors.NotFound:
                    continue
                labels[(ns, name)] = dict((obj.get("metadata") or {}).get("labels") or {})
            out.extend(
                m
                for m in pod_metrics_from({"pods": wanted}, labels)
                if (m["metadata"]["namespace"], m["metadata"]["name"]) in labels
            )
        return out

    async def node_metrics(self) -> list[Obj]:
        return [
            node_metrics_from(summary, dict((node.get("metadata") or {}).get("labels") or {}))
            for node, summary in await self.summaries()
        ]
