"""The simulated kubelets' node side: registration, node status, stop/restart.

Like kwok, one watch on the Nodes labelled ``kubelite.io/simulated=true`` drives every
simulated node: nodes are registered (or re-adopted by name after a restart), nodes
created by users with the label are adopted too, and each node's status is posted the
way kubelet does it: at registration, when it changed (e.g. the node-lifecycle
controller marked it Unknown while the node is alive), and otherwise every 5 minutes
(``nodeStatusReportFrequency``) with a fresh ``lastHeartbeatTime``; liveness in between
is the Lease (:mod:`kubelite.simulator.heartbeat`).

A node annotated ``kubelite.io/simulate-stopped=true`` behaves like a dead kubelet: no
Lease renewals, no status, no pod updates.  Removing the annotation brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import zlib
from collections.abc import Callable

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller
from kubelite.simulator.config import SIMULATED_LABEL, STOPPED_ANNOTATION, SimConfig
from kubelite.simulator.heartbeat import Heartbeats
from kubelite.simulator.nodeobj import (
    Obj,
    build_node,
    healthy_conditions,
    node_index,
    node_labels,
    node_status,
    now_rfc3339,
    ready_condition,
)

log = logging.getLogger("kubelite.simulator.nodes")

NODES = Resource("", "v1", "nodes", namespaced=False)
NodeListener = Callable[[str], None]


def _age(ts: str | None) -> float:
    if not ts:
        return float("inf")
    try:
        t = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (dt.datetime.now(dt.UTC) - t).total_seconds()


def first_report_fraction(name: str) -> float:
    """Share, in (0, 1], of ``nodeStatusReportFrequency`` before the first periodic status
    report of a node this process adopted: spread evenly by name, so nodes registered
    together report at the steady rate (N per period) from the start, as kubelets started
    at different times do, instead of all at once (or none for half a period)."""
    return (1 + zlib.crc32(name.encode()) % 1000) / 1000


def is_stopped(node: Obj) -> bool:
    ann = (node.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(STOPPED_ANNOTATION, "")).lower() == "true"


class NodeManager:
    """Registers, adopts and keeps alive the simulated nodes; knows which are running."""

    def __init__(self, client: Client, cfg: SimConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.informer = Informer(client, NODES, label_selector=f"{SIMULATED_LABEL}=true")
        self.informer.add_handler(self._on_node)
        self.heartbeats = Heartbeats(client, cfg.heartbeat, self.uid, self.is_running)
        self.status = Controller("simulator-node-status", self._reconcile_status, workers=4)
        self.index: dict[str, int] = {}  # our nodes -> index (addresses, pod CIDR, zone)
        self.stopped: set[str] = set()
        self._uids: dict[str, str] = {}
        self._next_index = cfg.nodes
        self._used: set[int] = set()  # indexes taken (addresses and pod CIDRs are per index)
        self._listeners: list[NodeListener] = []
        self._reported: set[str] = set()  # nodes whose status this process posted

    # ------------------------------------------------------------------ queries

    def is_ours(self, name: str) -> bool:
        return name in self.index

    def is_running(self, name: str) -> bool:
        return name in self.index and name not in self.stopped

    def uid(self, name: str) -> str:
        return self._uids.get(name, "")

    def add_listener(self, fn: NodeListener) -> None:
        """``fn(node_name)`` is called when a node is adopted, restarted, stopped or gone."""
        self._listeners.append(fn)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.informer.start()
        await self.informer.wait_synced(60)
        await self.heartbeats.load()
        self.status.start()
        await self.register()
        self.heartbeats.start()

    async def stop(self) -> None:
        await self.heartbeats.stop()
        await self.status.stop()
        await self.informer.stop()
        if self.cfg.cleanup:
            await self.delete_all()

    async def register(self) -> None:
        """Create the nodes ``prefix0..N-1`` that do not exist yet, many at a time."""
        sem = asyncio.Semaphore(self.cfg.register_concurrency)
        missing = [i for i in range(self.cfg.nodes) if self.informer.get(f"{self.cfg.prefix}{i}") is None]

        async def one(i: int) -> None:
            async with sem:
                try:
                    node = await self.client.create(NODES, "", build_node(self.cfg, i))
                except errors.AlreadyExists:
                    return  # created meanwhile: the watch adopts it
                self._adopt(node)

        await asyncio.gather(*(one(i) for i in missing))
        log.info("simulated nodes registered created=%d total=%d", len(missing), len(self.index))

    async def delete_all(self) -> None:
        from kubelite.simulator.heartbeat import LEASES

        for name in list(self.index):
            for res, ns in ((NODES, ""), (LEASES, "kube-node-lease")):
                with contextlib.suppress(errors.NotFound):
                    await self.client.delete(res, ns, name)

    # ------------------------------------------------------------------ watch

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self._forget(key)
            return
        if key not in self.index:
            self._adopt(new)
            return
        was, now = key in self.stopped, is_stopped(new)
        if now and not was:
            self.stopped.add(key)
            log.info("simulated node stopped node=%s", key)
            self._notify(key)
        elif was and not now:
            self.stopped.discard(key)
            log.info("simulated node restarted node=%s", key)
            self.heartbeats.renew_soon(key)
            self._notify(key)
        if not now:
            self.status.queue.add(key)

    def _adopt(self, node: Obj) -> None:
        meta = node.get("metadata") or {}
        name = str(meta.get("name", ""))
        if not name:
            return
        self._uids[name] = str(meta.get("uid", ""))
        if name in self.index:
            return
        idx = node_index(name, self.cfg.prefix)
        if idx is None or idx in self._used:
            while self._next_index in self._used:
                self._next_index += 1
            idx = self._next_index
        self.index[name] = idx
        self._used.add(idx)
        if is_stopped(node):
            self.stopped.add(name)
        self.heartbeats.add(name)  # first Lease within one heartbeat period, spread out
        self.status.queue.add(name)
        self._notify(name)

    def _forget(self, name: str) -> None:
        idx = self.index.pop(name, None)
        if idx is None:
            return
        self._used.discard(idx)
        self.stopped.discard(name)
        self._reported.discard(name)
        self._uids.pop(name, None)
        self.heartbeats.remove(name)
        self._notify(name)

    def _notify(self, name: str) -> None:
        for fn in self._listeners:
            fn(name)

    # ------------------------------------------------------------------ status

    async def _reconcile_status(self, name: str) -> float | None:
        """Post a healthy status when it is missing, not Ready, or due: every
        ``status_report`` seconds, like kubelet's ``nodeStatusReportFrequency``.  The first
        period after this process adopted a node is a share of it (:func:`first_report_fraction`),
        so thousands of nodes registered together report at spread-out times from then on."""
        node = self.informer.get(name)
        if node is None or not self.is_running(name):
            return None
        ready = ready_condition(node) or {}
        age = _age(ready.get("lastHeartbeatTime"))
        has_capacity = bool((node.get("status") or {}).get("capacity"))
        period = self.cfg.status_report
        if name not in self._reported:
            period *= first_report_fraction(name)
        if ready.get("status") == "True" and has_capacity and age < period:
            return period - age
        await self._post_status(node)
        self._reported.add(name)
        return self.cfg.status_report

    async def _post_status(self, node: Obj) -> None:
        """A merge patch of the status: only the conditions once the node has its capacity
        (kubelet patches what changed; a whole-status patch would also write back stale
        copies of fields others set)."""
        name = node["metadata"]["name"]
        now = now_rfc3339()
        current = node.get("status") or {}
        status: Obj = {}
        if not current.get("capacity"):
            fresh = node_status(self.cfg, name, self.index[name], now)
            status = {**fresh, **{k: v for k, v in current.items() if v}}
        status["conditions"] = healthy_conditions(node, now)
        labels = (node.get("metadata") or {}).get("labels") or {}
        want = node_labels(self.cfg, name, self.index[name])
        if any(k not in labels for k in want):
            await self.client.patch(
                NODES, "", name, {"metadata": {"labels": {k: v for k, v in want.items() if k not in labels}}}
            )
        await self.client.patch(NODES, "", name, {"status": status}, subresource="status")
