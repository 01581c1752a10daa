"""Node IPAM controller: every Node gets a slice of the cluster CIDR as its ``spec.podCIDR``.

Mirrors kube-controller-manager's ``nodeipam`` range allocator
(``pkg/controller/nodeipam/ipam/range_allocator.go`` and ``cidrset``):

* ``--cluster-cidr`` is cut into ``/--node-cidr-mask-size`` subnets (at most 2^16 of them);
* CIDRs nodes already carry count as used (simulated nodes and nodes created with a
  podCIDR pick their own), and so do the subnets overlapping the service CIDR;
* a Node without ``spec.podCIDRs`` gets the next free subnet, searching round-robin
  from after the last one handed out (a just-freed subnet is not reused at once), set
  by a patch of ``spec.podCIDR`` and ``spec.podCIDRs``;
* a deleted Node's subnet becomes free again;
* when the range is full the Node gets a ``CIDRNotAvailable`` event and is retried.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import meta
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.nodeipam")
Obj = dict[str, Any]
NODES = Resource("", "v1", "nodes", namespaced=False)
MAX_SUBNET_BITS = 16  # cidrset refuses more than 2^16 node subnets
RETRY_SECONDS = 10.0


class CIDRSet:
    """The ``/mask`` subnets of one cluster CIDR, each free or held by a node name."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask_size < self.network.prefixlen or mask_size > self.network.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit cluster CIDR {self.network}")
        if mask_size - self.network.prefixlen > MAX_SUBNET_BITS:
            raise ValueError(
                f"node CIDR mask size {mask_size} gives more than 2^{MAX_SUBNET_BITS} subnets "
                f"of {self.network}"
            )
        self.mask_size = mask_size
        self.size = 1 << (mask_size - self.network.prefixlen)
        self._step = 1 << (self.network.max_prefixlen - mask_size)
        self._holders: dict[int, str] = {}
        self._next = 0

    def subnet(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._step
        return f"{ipaddress.ip_address(base)}/{self.mask_size}"

    def _indices(self, cidr: str) -> range:
        """The subnets ``cidr`` overlaps (empty when it lies outside the cluster CIDR)."""
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version != self.network.version or not net.overlaps(self.network):
            return range(0)
        lo = max(int(net.network_address), int(self.network.network_address))
        hi = min(int(net.broadcast_address), int(self.network.broadcast_address))
        base = int(self.network.network_address)
        return range((lo - base) // self._step, (hi - base) // self._step + 1)

    def occupy(self, cidr: str, holder: str) -> bool:
        """Mark the subnets of ``cidr`` used by ``holder``; False when outside the range."""
        indices = self._indices(cidr)
        for i in indices:
            self._holders.setdefault(i, holder)
        return len(indices) > 0

    def release(self, cidr: str, holder: str) -> None:
        """Free the subnets of ``cidr`` that ``holder`` holds (another holder's stay used)."""
        for i in self._indices(cidr):
            if self._holders.get(i) == holder:
                del self._holders[i]

    def allocate_next(self, holder: str) -> str | None:
        """The next free subnet after the last one handed out, or None when full."""
        for step in range(self.size):
            i = (self._next + step) % self.size
            if i not in self._holders:
                self._holders[i] = holder
                self._next = (i + 1) % self.size
                return self.subnet(i)
        return None

    def held_by(self, holder: str) -> list[str]:
        return [self.subnet(i) for i, h in sorted(self._holders.items()) if h == holder]

    def used(self) -> int:
        return len(self._holders)


def node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or [] if c]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [str(spec["podCIDR"])]
    return cidrs


SERVICE_RANGE_HOLDER = "<service-cidr>"


class NodeIPAMController:
    def __init__(
        self,
        client: Client,
        nodes: Informer,
        cidrs: CIDRSet,
        recorder: EventRecorder,
        service_cidr: str = "",
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.client = client
        self.nodes = nodes
        self.cidrs = cidrs
        self.recorder = recorder
        self.retry_seconds = retry_seconds
        # node name -> CIDR patched onto it but not yet seen in the cache
        self.reserved: dict[str, str] = {}
        if service_cidr:
            cidrs.occupy(service_cidr, SERVICE_RANGE_HOLDER)
        self.ctrl = Controller("node-ipam", self.reconcile, workers=1)
        nodes.add_handler(self._on_node)

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self._release(key, old)
            for node in self.nodes.list():  # waiting nodes may fit now
                if not node_cidrs(node):
                    self.ctrl.queue.add(meta(node)["name"])
            return
        # heartbeats do not matter: a node waiting for a free CIDR is retried on a timer
        # and whenever a node goes away
        if new is not None and (old is None or node_cidrs(old) != node_cidrs(new)):
            self.ctrl.queue.add(key)

    def _release(self, name: str, node: Obj) -> None:
        for cidr in node_cidrs(node):
            self.cidrs.release(cidr, name)
        reserved = self.reserved.pop(name, None)
        if reserved:
            self.cidrs.release(reserved, name)

    async def start(self) -> None:
        """Occupy every CIDR nodes already carry before handing out any (as at kcm start)."""
        for node in self.nodes.list():
            self._occupy(node)
        for node in self.nodes.list():
            self.ctrl.queue.add(meta(node)["name"])
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    def _occupy(self, node: Obj) -> None:
        name = meta(node)["name"]
        for cidr in node_cidrs(node):
            try:
                inside = self.cidrs.occupy(cidr, name)
            except ValueError:
                inside = False
            if not inside:
                log.debug("node podCIDR outside the cluster CIDR node=%s cidr=%s", name, cidr)

    async def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        if node_cidrs(node):
            reserved = self.reserved.pop(name, None)
            if reserved and reserved not in node_cidrs(node):
                self.cidrs.release(reserved, name)  # someone else set another CIDR first
            self._occupy(node)
            return None
        cidr = self.reserved.get(name) or self.cidrs.allocate_next(name)
        if cidr is None:
            await self.recorder.record(
                node, "Normal", "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable"
            )
            log.warning("no free pod CIDR for node=%s used=%d", name, self.cidrs.used())
            return self.retry_seconds
        self.reserved[name] = cidr
        try:
            await self.client.patch(
                NODES,
                "",
                name,
                {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}},
                patch_type="application/strategic-merge-patch+json",
                field_manager="node-ipam-controller",
            )
        except errors.NotFound:
            self._release(name, node)
            return None
        except errors.Invalid:
            self._release(name, node)  # the node got a CIDR meanwhile: the update event follows
            raise
        except Exception:
            self.reserved.pop(name, None)
            self.cidrs.release(cidr, name)
            raise
        log.info("set node podCIDR node=%s cidr=%s", name, cidr)
        return None


def new(ctx: Any) -> NodeIPAMController:
    cidrs = CIDRSet(
        str(ctx.option("cluster_cidr", "10.244.0.0/16")), int(ctx.option("node_cidr_mask_size", 24))
    )
    return NodeIPAMController(
        ctx.client,
        ctx.informers.get(NODES),
        cidrs,
        ctx.recorder("node-ipam-controller"),
        service_cidr=str(ctx.option("service_cidr", "") or ""),
        retry_seconds=float(ctx.option("node_ipam_retry_seconds", RETRY_SECONDS)),
    )
