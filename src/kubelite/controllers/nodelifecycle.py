"""Node lifecycle controller: node health from heartbeats, and the node condition taints.

Mirrors ``pkg/controller/nodelifecycle``:

* health: a node is alive while its Lease in ``kube-node-lease`` is renewed (or its
  ``Ready`` condition's heartbeat moves).  Like Kubernetes, the controller times the
  heartbeats with its own clock from when it saw them change, so clock skew does not
  matter and a restarted controller gives every node a fresh grace period;
* a node silent for ``node_monitor_grace_period`` seconds (40 by default) gets its
  Ready, MemoryPressure, DiskPressure and PIDPressure conditions set to ``Unknown``
  (reason ``NodeStatusUnknown``, "Kubelet stopped posting node status.") and a
  ``NodeNotReady`` event; its pods get ``Ready=False`` and a ``NodeNotReady`` event;
* taints follow the Ready condition: ``False`` -> ``node.kubernetes.io/not-ready``,
  ``Unknown`` -> ``node.kubernetes.io/unreachable``, each with the NoSchedule and the
  NoExecute effect (the taint eviction controller evicts pods from NoExecute taints);
  ``spec.unschedulable`` -> ``node.kubernetes.io/unschedulable:NoSchedule``; pressure
  conditions -> their ``*-pressure:NoSchedule`` taints.  A Ready node loses them;
* disruption modes: NoExecute taints are added at ``node_eviction_rate`` nodes per
  second per zone (0.1, burst 1); in a zone in partial disruption (more than 2 and at
  least 55 % of its nodes unhealthy) at the secondary rate (0.01) when it has more than
  50 nodes, else not at all; and when every node of the cluster is unhealthy the
  controller assumes its own network is at fault and removes the NoExecute taints
  instead (master disruption mode; on leaving it every node gets a fresh grace period).

Like ``monitorNodeHealth``, one pass every ``nodeMonitorPeriod`` (5 s, shorter with a
short grace period) looks at every node: the ones silent for longer than the grace
period are queued to be marked Unknown, and the zone states are computed once for the
pass (from per-zone counts kept up to date by the node informer's events, so neither the
pass nor a reconcile scans the nodes of a zone).  A zone whose state changed, or the
cluster entering or leaving master disruption, queues the zone's unhealthy nodes again
(``handleDisruption``).  Between passes only node events (and pods turning Ready on an
unhealthy node) queue a node: a Lease renewal just moves the node's probe time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import condition, is_pod_ready, meta, node_name_index, now_rfc3339, set_condition
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.nodelifecycle")
Obj = dict[str, Any]
NODES = Resource("", "v1", "nodes", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
PODS = Resource("", "v1", "pods")
LEASE_NAMESPACE = "kube-node-lease"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
BETA_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION_LABEL = "failure-domain.beta.kubernetes.io/region"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
MANAGED_KEYS = {NOT_READY, UNREACHABLE, UNSCHEDULABLE, *CONDITION_TAINTS.values()}
UNKNOWN_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50
SECONDARY_EVICTION_RATE = 0.01  # --secondary-node-eviction-rate
NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


def zone_key(node: Obj) -> str:
    """``nodetopology.GetZoneKey``: region and zone (GA labels, else the beta ones); "" when
    the node has neither."""
    labels = meta(node).get("labels") or {}
    region = labels.get(REGION_LABEL) or labels.get(BETA_REGION_LABEL) or ""
    zone = labels.get(ZONE_LABEL) or labels.get(BETA_ZONE_LABEL) or ""
    return f"{region}:\x00:{zone}" if region or zone else ""


def ready_status(node: Obj) -> str:
    """The status of the node's Ready condition ("" when it has none); no copy made."""
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return str(c.get("status") or "")
    return ""


def compute_zone_state(size: int, unhealthy: int) -> str:
    """``ComputeZoneState`` from a zone's node count and its not-Ready count."""
    if size and unhealthy == size:
        return FULL
    if unhealthy > 2 and unhealthy / size >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL
    return NORMAL


def desired_no_schedule(node: Obj) -> list[Obj]:
    """``doNoScheduleTaintingPass``: NoSchedule taints from conditions and unschedulable."""
    out = []
    for c in (node.get("status") or {}).get("conditions") or []:
        t = c.get("type")
        if t == "Ready" and c.get("status") == "False":
            out.append({"key": NOT_READY, "effect": "NoSchedule"})
        elif t == "Ready" and c.get("status") == "Unknown":
            out.append({"key": UNREACHABLE, "effect": "NoSchedule"})
        elif t in CONDITION_TAINTS and c.get("status") == "True":
            out.append({"key": CONDITION_TAINTS[t], "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        out.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return out


def desired_no_execute_key(node: Obj) -> str | None:
    ready = condition(node, "Ready")
    if ready is None:
        return None
    return {"False": NOT_READY, "Unknown": UNREACHABLE}.get(str(ready.get("status")))


def reconcile_taints(node: Obj, no_execute: str | None, now: str) -> list[Obj]:
    """The node's taints with the controller-managed ones replaced (others kept in place)."""
    current = list((node.get("spec") or {}).get("taints") or [])
    want = desired_no_schedule(node)
    if no_execute:
        want.append({"key": no_execute, "effect": "NoExecute", "timeAdded": now})
    out = []
    for t in current:
        if t.get("key") not in MANAGED_KEYS:
            out.append(t)
            continue
        match = next((w for w in want if w["key"] == t.get("key") and w["effect"] == t.get("effect")), None)
        if match is not None:
            out.append(t)  # keep timeAdded
            want.remove(match)
    out.extend(want)
    return out


def unknown_conditions(node: Obj, now: str) -> list[Obj]:
    """``tryUpdateNodeHealth``: every kubelet condition becomes Unknown."""
    conds = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    for type_ in UNKNOWN_TYPES:
        cur = next((c for c in conds if c.get("type") == type_), None)
        if cur is None:
            conds.append(
                {
                    "type": type_,
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            )
        elif cur.get("status") != "Unknown":
            cur.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
                lastTransitionTime=now,
            )
    return conds


@dataclass
class Probe:
    """What the controller last saw of a node's heartbeats, and when (its own clock)."""

    heartbeat: str = ""
    renew: str = ""
    seen: float = 0.0


@dataclass
class Zone:
    """Node counts of one zone, kept up to date from node events."""

    size: int = 0
    unhealthy: int = 0


class TokenBucket:
    """client-go's token bucket rate limiter (the zone's NoExecute tainter limiter)."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else seconds until one is available."""
        now = time.monotonic()
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else 5.0


class NodeLifecycleController:
    def __init__(
        self,
        client: Client,
        recorder: EventRecorder,
        nodes: Informer,
        leases: Informer,
        pods: Informer,
        grace: float = 40.0,
        eviction_rate: float = 0.1,
        secondary_eviction_rate: float = SECONDARY_EVICTION_RATE,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.nodes = nodes
        self.leases = leases
        self.pods = pods
        self.grace = grace
        self.monitor_period = min(5.0, max(0.2, grace / 4))
        self.eviction_rate = eviction_rate
        self.secondary_eviction_rate = secondary_eviction_rate
        self.probes: dict[str, Probe] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.observed: dict[str, tuple[str, str]] = {}  # node -> (zone key, Ready status)
        self.zones: dict[str, Zone] = {}
        self.unhealthy = 0  # nodes whose Ready condition is not True, over all zones
        self.zone_states: dict[str, str] = {}  # as of the last monitor pass
        self.in_master_disruption = False  # as of the last monitor pass
        self.ctrl = Controller("node-lifecycle", self.reconcile, workers=2)
        self._monitor: asyncio.Task[None] | None = None
        pods.add_indexer("nodeName", node_name_index)
        nodes.add_handler(self._on_node)
        leases.add_handler(self._on_lease)
        pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ observation

    def _probe(self, name: str) -> Probe:
        p = self.probes.get(name)
        if p is None:
            p = self.probes[name] = Probe(seen=time.monotonic())
        return p

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self._count(key, new)
        if new is None:
            self.probes.pop(key, None)
            return
        ready = condition(new, "Ready") or {}
        beat = str(ready.get("lastHeartbeatTime") or "")  # our own Unknown write keeps it
        p = self._probe(key)
        if beat != p.heartbeat:
            p.heartbeat, p.seen = beat, time.monotonic()
        self.ctrl.queue.add(key)

    def _count(self, name: str, node: Obj | None) -> None:
        """Move the node between the zone counts: O(1) per node event."""
        before = self.observed.pop(name, None)
        if before is not None:
            zone = self.zones[before[0]]
            zone.size -= 1
            if before[1] != "True":
                zone.unhealthy -= 1
                self.unhealthy -= 1
            if not zone.size:
                del self.zones[before[0]]
        if node is None:
            return
        key, status = zone_key(node), ready_status(node)
        self.observed[name] = (key, status)
        zone = self.zones.setdefault(key, Zone())
        zone.size += 1
        if status != "True":
            zone.unhealthy += 1
            self.unhealthy += 1

    def _on_lease(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """A renewal only moves the probe time: a silent node is found by the monitor pass,
        and one that comes back is Ready again when its kubelet posts its status."""
        ns, _, name = key.partition("/")
        if ns != LEASE_NAMESPACE or new is None:
            return
        renew = str((new.get("spec") or {}).get("renewTime") or "")
        p = self.probes.get(name)  # a Lease without its Node (yet) is nobody's heartbeat
        if p is not None and renew and renew != p.renew:
            p.renew, p.seen = renew, time.monotonic()

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        node = ((new or {}).get("spec") or {}).get("nodeName")
        if node and is_pod_ready(new or {}) and not is_pod_ready(old or {}):
            self.ctrl.queue.add(str(node))

    async def start(self) -> None:
        for name in list(self.nodes.cache):
            self._probe(name)
            self.ctrl.queue.add(name)
        self.ctrl.start()
        self._monitor = asyncio.create_task(self._monitor_loop(), name="node-lifecycle-monitor")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        await self.ctrl.stop()

    # ------------------------------------------------------------------ monitor pass

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.monitor_period)
            try:
                self.monitor_pass()
            except Exception:
                log.exception("node health monitor pass failed")

    def monitor_pass(self) -> None:
        """``monitorNodeHealth``: queue the nodes silent for longer than the grace period
        (not yet Unknown), then ``handleDisruption``."""
        cutoff = time.monotonic() - self.grace
        probes = self.probes
        for name, (_, status) in self.observed.items():
            p = probes.get(name)
            if status != "Unknown" and (p is None or p.seen < cutoff):
                self.ctrl.queue.add(name)
        self.handle_disruption()

    def handle_disruption(self) -> None:
        """Zone states for this pass; unhealthy nodes of zones whose state changed (or of
        every zone, entering or leaving master disruption) are looked at again."""
        states = {z: self.zone_state(z) for z in self.zones}
        master = self.master_disruption()
        if master != self.in_master_disruption:
            log.info("node lifecycle %s master disruption mode", "entering" if master else "leaving")
            if not master:  # every node gets a fresh grace period
                now = time.monotonic()
                for name in self.observed:
                    self._probe(name).seen = now
            changed = set(states)
        else:
            changed = {z for z, st in states.items() if self.zone_states.get(z, NORMAL) != st}
        self.zone_states, self.in_master_disruption = states, master
        if changed:
            for name, (zone, status) in self.observed.items():
                if status != "True" and zone in changed:
                    self.ctrl.queue.add(name)

    # ------------------------------------------------------------------ zones

    def zone_state(self, zone: str) -> str:
        """Normal, PartialDisruption or FullDisruption (``ComputeZoneState``)."""
        counts = self.zones.get(zone)
        return compute_zone_state(counts.size, counts.unhealthy) if counts else NORMAL

    def master_disruption(self) -> bool:
        """Every node of the cluster is unhealthy (every zone in full disruption)."""
        return bool(self.observed) and self.unhealthy == len(self.observed)

    def zone_rate(self, zone: str) -> float:
        """``setLimiterInZone``: the zone's NoExecute tainting rate for its state."""
        if self.zone_state(zone) != PARTIAL:
            return self.eviction_rate  # Normal, and FullDisruption of some zones only
        size = self.zones[zone].size
        return self.secondary_eviction_rate if size > LARGE_CLUSTER_THRESHOLD else 0.0

    def _may_taint(self, node: Obj) -> float:
        """0 when a NoExecute taint may be added now, else seconds to wait."""
        zone = zone_key(node)
        rate = self.zone_rate(zone)
        bucket = self.buckets.get(zone)
        if bucket is None or bucket.rate != rate:
            # ``SwapLimiter``: a new limiter, drained when the old one had no token left
            fresh = TokenBucket(rate)
            if bucket is not None and (bucket.rate <= 0 or bucket.take() > 0):
                fresh.take()
            bucket = self.buckets[zone] = fresh
        if rate <= 0:
            return self.monitor_period
        return bucket.take()

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        silent = time.monotonic() - self._probe(name).seen
        if silent > self.grace:
            node = await self._mark_unknown(node)
        wait = await self._sync_taints(node)
        if ready_status(node) != "True":
            await self._mark_pods_not_ready(node)
        # a taint held back by the zone's limiter is tried again; everything else waits for
        # an event or the next monitor pass
        return min(self.monitor_period, wait) if wait > 0 else None

    async def _mark_unknown(self, node: Obj) -> Obj:
        before = condition(node, "Ready") or {}
        conds = unknown_conditions(node, now_rfc3339())
        if conds == (node.get("status") or {}).get("conditions"):
            return node
        body = dict(node)
        body["status"] = dict(node.get("status") or {}, conditions=conds)
        out = await self.client.update(NODES, "", body, subresource="status")
        if before.get("status") == "True":
            name = meta(node)["name"]
            log.info("node unreachable node=%s", name)
            self.recorder.event(out, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        return out

    async def _sync_taints(self, node: Obj) -> float:
        name = meta(node)["name"]
        key = desired_no_execute_key(node)
        wait = 0.0
        if key is None and self._current_no_execute(node) is None:
            pass
        elif self.master_disruption():
            key = None
        elif key is not None and not self._has_taint(node, key, "NoExecute"):
            wait = self._may_taint(node)
            if wait > 0:
                key = self._current_no_execute(node)
        taints = reconcile_taints(node, key, now_rfc3339() if key else "")  # the time only for a new taint
        if taints != ((node.get("spec") or {}).get("taints") or []):
            patch = {
                "metadata": {"resourceVersion": meta(node)["resourceVersion"]},
                "spec": {"taints": taints},
            }
            await self.client.patch(NODES, "", name, patch)
        return wait

    @staticmethod
    def _has_taint(node: Obj, key: str, effect: str) -> bool:
        taints = (node.get("spec") or {}).get("taints") or []
        return any(t.get("key") == key and t.get("effect") == effect for t in taints)

    def _current_no_execute(self, node: Obj) -> str | None:
        for key in (NOT_READY, UNREACHABLE):
            if self._has_taint(node, key, "NoExecute"):
                return key
        return None

    async def _mark_pods_not_ready(self, node: Obj) -> None:
        """``MarkPodsNotReady``: pods of an unhealthy node stop being Ready."""
        name = meta(node)["name"]
        now = now_rfc3339()
        for pod in self.pods.by_index("nodeName", name):
            if not is_pod_ready(pod):
                continue
            body = dict(pod)
            status = dict(pod.get("status") or {})
            ready = dict(condition(pod, "Ready") or {"type": "Ready"}, status="False")
            status["conditions"] = set_condition(list(status.get("conditions") or []), ready, now)
            body["status"] = status
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                out = await self.client.update(PODS, meta(pod)["namespace"], body, subresource="status")
                self.recorder.event(out, "Warning", "NodeNotReady", "Node is not ready")


def new(ctx: Any) -> NodeLifecycleController:
    return NodeLifecycleController(
        ctx.client,
        ctx.recorder("node-controller"),
        ctx.informers.get(NODES),
        ctx.informers.get(LEASES),
        ctx.informers.get(PODS),
        grace=float(ctx.option("node_monitor_grace_period", 40.0)),
        eviction_rate=float(ctx.option("node_eviction_rate", 0.1)),
        secondary_eviction_rate=float(ctx.option("secondary_node_eviction_rate", SECONDARY_EVICTION_RATE)),
    )
