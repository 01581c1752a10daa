"""Node Lease heartbeats for thousands of simulated nodes from one task.

kubelet renews its Lease in ``kube-node-lease`` (holderIdentity = node name,
leaseDurationSeconds 40) every 10 s by default; the node-lifecycle controller treats a
Lease that stops being renewed as a dead node.  Here every node sits in one slot of a
timing wheel that turns once per heartbeat period, so renewals are spread evenly over
the period (5,000 nodes every 10 s is 50 renewals per 0.1 s tick, never 5,000 at once)
and there is no task or timer per node.  A renewal is a PUT of the whole Lease, like
kubelet's; the writes of a tick may overlap the next ticks, so a slow API server delays
renewals by its latency rather than stretching every node's period.

Like kubelet's lease controller, a renewal carries the resourceVersion of the Lease it
last wrote or read (the Lease strategy refuses unconditional updates:
``AllowUnconditionalUpdate`` is false, so a real kube-apiserver answers a PUT without one
with 422), and a conflict makes it read the Lease again and retry once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import orjson

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.simulator.config import LEASE_DURATION_SECONDS, NODE_LEASE_NAMESPACE
from kubelite.simulator.nodeobj import Obj, now_micro

log = logging.getLogger("kubelite.simulator.heartbeat")

LEASES = Resource("coordination.k8s.io", "v1", "leases")
MIN_TICK = 0.1  # seconds between wheel slots (at most heartbeat/MIN_TICK slots)
CONCURRENCY = 32  # lease writes in flight
MAX_SLOTS_IN_FLIGHT = 10  # wheel slots whose renewals may still run when the next one starts
# kubelet sends its Lease as protobuf, which the API server never scans for unknown or
# duplicate JSON fields; a renewal built here has neither, so ask the server not to look
RENEW_QUERY = "fieldValidation=Ignore"


def lease_object(node: str, node_uid: str, renew_time: str, resource_version: str = "") -> Obj:
    """The Lease kubelet keeps for ``node``, owned by the Node so it goes with it; with the
    resourceVersion it updates (none on create)."""
    meta: Obj = {"name": node, "namespace": NODE_LEASE_NAMESPACE}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": renew_time,
        },
    }


class Wheel:
    """Slots of names visited in turn, one slot per tick; pure bookkeeping, no I/O."""

    def __init__(self, period: float, min_tick: float = MIN_TICK) -> None:
        self.period = period
        self.slots: list[set[str]] = [set() for _ in range(max(1, int(period / min_tick)))]
        self.where: dict[str, int] = {}
        self.cursor = 0

    @property
    def tick(self) -> float:
        return self.period / len(self.slots)

    def add(self, name: str) -> None:
        if name in self.where:
            return
        n = len(self.slots)
        slot = min(range(n), key=lambda i: (len(self.slots[i]), (i - self.cursor) % n))
        self.slots[slot].add(name)
        self.where[name] = slot

    def remove(self, name: str) -> None:
        slot = self.where.pop(name, None)
        if slot is not None:
            self.slots[slot].discard(name)

    def advance(self) -> list[str]:
        """The names due at this tick; moves the cursor to the next slot."""
        due = sorted(self.slots[self.cursor])
        self.cursor = (self.cursor + 1) % len(self.slots)
        return due

    def __len__(self) -> int:
        return len(self.where)


class Heartbeats:
    """Renews the Lease of every running simulated node once per ``period`` seconds."""

    def __init__(
        self,
        client: Client,
        period: float,
        node_uid: Callable[[str], str],
        is_running: Callable[[str], bool],
    ) -> None:
        self.client = client
        self.wheel = Wheel(period)
        self.node_uid = node_uid
        self.is_running = is_running
        self.renewals = 0
        self._sem = asyncio.Semaphore(CONCURRENCY)
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._have_lease: set[str] = set()  # nodes whose Lease we know exists
        self._versions: dict[str, str] = {}  # node -> resourceVersion of its Lease as last seen

    def add(self, node: str) -> None:
        self.wheel.add(node)

    def remove(self, node: str) -> None:
        self.wheel.remove(node)
        self._have_lease.discard(node)
        self._versions.pop(node, None)

    async def load(self) -> None:
        """Learn which Leases exist already (one list), so renewals go straight to
        update and first heartbeats straight to create."""
        cont = ""
        while True:
            page = await self.client.list(LEASES, NODE_LEASE_NAMESPACE, limit=1000, continue_=cont)
            for item in page.get("items") or []:
                self._remember(item)
            cont = (page.get("metadata") or {}).get("continue", "")
            if not cont:
                return

    def renew_soon(self, node: str) -> None:
        """Renew now, outside the wheel (a node that just registered or restarted)."""
        t = asyncio.create_task(self._renew(node))
        self._inflight.add(t)
        t.add_done_callback(self._inflight.discard)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="simulator-heartbeats")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._task = None

    async def _run(self) -> None:
        """Turn the wheel: one slot per tick.  A slot's renewals run while the next slots
        start (like kubelets, which renew independently), up to ``MAX_SLOTS_IN_FLIGHT``
        slots; beyond that a slow API server stretches the period instead of piling up
        requests, and a warning says so when a turn takes 1.5 times the period."""
        loop = asyncio.get_running_loop()
        next_at = turn_started = loop.time()
        in_flight: deque[asyncio.Future[list[None]]] = deque()
        try:
            while True:
                if self.wheel.cursor == 0:
                    self._check_turn(loop.time() - turn_started)
                    turn_started = loop.time()
                due = [n for n in self.wheel.advance() if self.is_running(n)]
                while in_flight and in_flight[0].done():
                    in_flight.popleft()
                while len(in_flight) >= MAX_SLOTS_IN_FLIGHT:
                    await in_flight.popleft()
                if due:
                    in_flight.append(asyncio.gather(*(self._renew(n) for n in due)))
                next_at = max(next_at + self.wheel.tick, loop.time())
                await asyncio.sleep(next_at - loop.time())
        finally:
            for slot in in_flight:
                slot.cancel()

    def _check_turn(self, took: float) -> None:
        if took > 1.5 * self.wheel.period:
            log.warning(
                "node heartbeats falling behind period=%.1fs turn=%.1fs nodes=%d",
                self.wheel.period,
                took,
                len(self.wheel),
            )

    def _remember(self, lease: Obj) -> None:
        """Note a Lease the API server returned: it exists, at this resourceVersion."""
        meta = lease.get("metadata") or {}
        name = str(meta.get("name") or "")
        if name:
            self._have_lease.add(name)
            rv = meta.get("resourceVersion")
            if rv:
                self._versions[name] = str(rv)

    async def _create(self, lease: Obj) -> None:
        try:
            self._remember(await self.client.create(LEASES, NODE_LEASE_NAMESPACE, lease))
        except errors.AlreadyExists:  # a concurrent renewal (or an old run) created it
            await self._reread_and_update(lease)

    async def _update(self, lease: Obj) -> None:
        """PUT the Lease; of the answer only the new resourceVersion is kept."""
        name = lease["metadata"]["name"]
        raw = await self.client.send("PUT", f"{LEASES.path(NODE_LEASE_NAMESPACE, name)}?{RENEW_QUERY}", lease)
        rv = ((orjson.loads(raw) if raw else {}).get("metadata") or {}).get("resourceVersion")
        if rv:
            self._versions[name] = str(rv)

    async def _reread_and_update(self, lease: Obj) -> None:
        """kubelet's answer to a conflict: read the Lease, then update that version."""
        name = lease["metadata"]["name"]
        self._remember(await self.client.get(LEASES, NODE_LEASE_NAMESPACE, name))
        rv = self._versions.get(name, "")
        meta = dict(lease["metadata"], resourceVersion=rv) if rv else lease["metadata"]
        await self._update({**lease, "metadata": meta})

    async def _renew(self, node: str) -> None:
        async with self._sem:
            # renewTime is when the write goes out (not when it was queued), as kubelet's
            lease = lease_object(node, self.node_uid(node), now_micro(), self._versions.get(node, ""))
            try:
                await self._write(node, lease)
                self.renewals += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("lease renewal failed node=%s error=%s", node, e)

    async def _write(self, node: str, lease: Obj) -> None:
        if node not in self._have_lease:
            lease["metadata"].pop("resourceVersion", None)
            await self._create(lease)
            return
        try:
            await self._update(lease)
        except errors.NotFound:
            self._have_lease.discard(node)
            self._versions.pop(node, None)
            lease["metadata"].pop("resourceVersion", None)
            await self._create(lease)
        except errors.Conflict:
            await self._reread_and_update(lease)
