"""Service ClusterIP and NodePort allocation (kube-apiserver's service REST allocators).

What Services hold is kept current from the store's commit listener (exactly as fresh as a
read, like the namespace cache), plus short-lived reservations of what was just handed out
and is not committed yet, so concurrent creates never get the same address or port.
Stores without a listener fall back to listing the Services under a lock.

* create: a ClusterIP for every type but ExternalName (the lowest free address above .10;
  a requested one must be in range and free), nodePorts for NodePort and LoadBalancer
  Services (not for ``allocateLoadBalancerNodePorts: false`` ones unless asked for), and a
  ``healthCheckNodePort`` for LoadBalancers with ``externalTrafficPolicy: Local``;
* update (``on_update``, synchronous: it runs inside the compare-and-swap mutation): what
  the service strategy's ``patchAllocatedValues`` and ``dropTypeDependentFields`` do (values
  the client left out are kept, values the new type no longer needs are dropped) and what
  ``allocateUpdate`` allocates when the type starts needing them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.objects import collection_prefix
from kubelite.apiserver.writes import WriteOptions
from kubelite.store.types import Event, EventType

log = logging.getLogger("kubelite.allocators")

Obj = dict[str, Any]
NODE_PORT_RANGE = (30000, 32767)
# dynamic ClusterIPs start above .10: .1 is the kubernetes Service, .10 kube-dns
FIRST_DYNAMIC_OFFSET = 11
RESERVATION_SECONDS = 30.0  # how long a handed-out value stays taken before it is committed


@dataclass
class InUse:
    """ClusterIPs and node ports (nodePorts and healthCheckNodePorts) held by Services."""

    ips: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)


def needs_cluster_ip(spec: Obj) -> bool:
    return bool(spec.get("type", "ClusterIP") != "ExternalName")


def needs_node_ports(spec: Obj) -> bool:
    typ = spec.get("type", "ClusterIP")
    return typ == "NodePort" or (
        typ == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False
    )


def needs_health_check_port(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def held_ips(spec: Obj) -> set[str]:
    return {str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"}


def held_ports(spec: Obj) -> set[int]:
    ports = {int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(int(spec["healthCheckNodePort"]))
    return ports


def _patch_allocated_values(new: Obj, old: Obj) -> None:
    """``patchAllocatedValues``: an update that leaves out allocated values keeps them
    (node ports matched by port name, unless another new port already uses the number)."""
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not new.get("clusterIP") and old.get("clusterIP"):
            new["clusterIP"] = old["clusterIP"]
        if not new.get("clusterIPs") and old.get("clusterIPs"):
            new["clusterIPs"] = list(old["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(new):
        taken = held_ports({"ports": new.get("ports")}) & held_ports({"ports": old.get("ports")})
        by_name = {str(p.get("name", "")): p.get("nodePort") for p in old.get("ports") or []}
        for p in new.get("ports") or []:
            if not p.get("nodePort") and by_name.get(str(p.get("name", ""))) not in (None, 0, *taken):
                p["nodePort"] = by_name[str(p.get("name", ""))]
    keep_hc = needs_health_check_port(old) and needs_health_check_port(new)
    if keep_hc and not new.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
        new["healthCheckNodePort"] = old["healthCheckNodePort"]


def _drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """``dropTypeDependentFields``: allocated values the new type does not need go away when
    the client did not change them."""
    if needs_cluster_ip(old) and not needs_cluster_ip(new) and held_ips(new) == held_ips(old):
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            new.pop(key, None)
    old_node_ports = [p.get("nodePort") for p in old.get("ports") or []]
    new_node_ports = [p.get("nodePort") for p in new.get("ports") or []]
    if needs_node_ports(old) and not needs_node_ports(new) and new_node_ports == old_node_ports:
        for p in new.get("ports") or []:
            p.pop("nodePort", None)
    if (
        needs_health_check_port(old)
        and not needs_health_check_port(new)
        and new.get("healthCheckNodePort") == old.get("healthCheckNodePort")
    ):
        new.pop("healthCheckNodePort", None)
    _drop_external_fields(new, old)


def _drop_external_fields(new: Obj, old: Obj) -> None:
    """The rest of ``dropTypeDependentFields``: externalTrafficPolicy leaves with the node ports,
    loadBalancerClass and allocateLoadBalancerNodePorts with the LoadBalancer type (when the
    client left them unchanged)."""
    external = ("NodePort", "LoadBalancer")
    if (
        old.get("type") in external
        and new.get("type") not in external
        and new.get("externalTrafficPolicy") == old.get("externalTrafficPolicy")
    ):
        new.pop("externalTrafficPolicy", None)
    if old.get("type") == "LoadBalancer" and new.get("type") != "LoadBalancer":
        for key in ("loadBalancerClass", "allocateLoadBalancerNodePorts"):
            if new.get(key) == old.get(key):
                new.pop(key, None)


def _forget(counts: Counter[Any], values: set[Any]) -> None:
    for v in values:
        counts[v] -= 1
        if counts[v] <= 0:
            del counts[v]


class Holdings:
    """What every stored Service holds, kept current from store commit events."""

    def __init__(self) -> None:
        self.by_key: dict[str, tuple[set[str], set[int]]] = {}
        self.ips: Counter[str] = Counter()
        self.ports: Counter[int] = Counter()

    def set(self, key: str, svc: Obj | None) -> None:
        old_ips, old_ports = self.by_key.pop(key, (set(), set()))
        _forget(self.ips, old_ips)
        _forget(self.ports, old_ports)
        if svc is not None:
            spec = svc.get("spec") or {}
            held = (held_ips(spec), held_ports(spec))
            self.by_key[key] = held
            self.ips.update(held[0])
            self.ports.update(held[1])

    def on_events(self, events: list[Event]) -> None:
        for ev in events:
            if ev.type is EventType.DELETE:
                self.set(ev.kv.key, None)
            else:
                self.set(ev.kv.key, orjson.loads(ev.kv.value))


class ServiceAllocator:
    def __init__(self, service_cidr: str = "10.96.0.0/12") -> None:
        self.network = ipaddress.ip_network(service_cidr)
        self.lock = asyncio.Lock()
        self.live: Holdings | None = None
        self._reserved_ips: dict[str, float] = {}
        self._reserved_ports: dict[int, float] = {}

    async def start(self, ctx: ServerContext) -> None:
        """Follow the stored Services (when the store has a commit listener)."""
        listen = getattr(ctx.objects.store, "listen", None)
        info = ctx.index.get("", "v1", "services")
        if listen is None or info is None:
            return
        live = Holdings()
        touched: set[str] = set()

        def on_events(events: list[Event]) -> None:
            touched.update(ev.kv.key for ev in events)
            live.on_events(events)
            for ev in events:  # committed: the reservation has done its job
                ips, ports = live.by_key.get(ev.kv.key, (set(), set()))
                for ip in ips:
                    self._reserved_ips.pop(ip, None)
                for port in ports:
                    self._reserved_ports.pop(port, None)

        listen(collection_prefix(info, ""), on_events)
        page = await ctx.objects.list(info, "")
        for svc in page.items:
            m = svc.get("metadata") or {}
            key = f"{collection_prefix(info, str(m.get('namespace', '')))}{m.get('name', '')}"
            if key not in touched:
                live.set(key, svc)
        self.live = live

    def _reserve(self, spec: Obj) -> None:
        until = time.monotonic() + RESERVATION_SECONDS
        for ip in held_ips(spec):
            self._reserved_ips[ip] = until
        for port in held_ports(spec):
            self._reserved_ports[port] = until

    def _live_in_use(self, live: Holdings) -> InUse:
        now = time.monotonic()
        self._reserved_ips = {k: t for k, t in self._reserved_ips.items() if t > now}
        self._reserved_ports = {k: t for k, t in self._reserved_ports.items() if t > now}
        return InUse(set(live.ips) | set(self._reserved_ips), set(live.ports) | set(self._reserved_ports))

    def first_ip(self, offset: int = 1) -> str:
        return str(self.network.network_address + offset)

    async def in_use(self, ctx: ServerContext) -> InUse:
        """Addresses and ports held or just handed out."""
        if self.live is not None:
            return self._live_in_use(self.live)
        info = ctx.index.get("", "v1", "services")
        assert info is not None
        page = await ctx.objects.list(info, "")
        used = InUse()
        for svc in page.items:
            spec = svc.get("spec") or {}
            used.ips |= held_ips(spec)
            used.ports |= held_ports(spec)
        return used

    def _pick_ip(self, used: set[str]) -> str:
        """The lowest free address above the ones reserved by convention."""
        for offset in range(FIRST_DYNAMIC_OFFSET, self.network.num_addresses - 1):
            ip = str(self.network.network_address + offset)
            if ip not in used:
                return ip
        raise errors.InternalError("failed to allocate a serviceIP: range is full")

    def _check_requested(self, svc: Obj, ip: str, used: set[str]) -> None:
        """A requested ClusterIP must be a usable address of the range (not the network or
        broadcast address) and free; kube-apiserver's allocator errors name ``spec.clusterIPs``.
        Reserved addresses (.1, .10) may be asked for explicitly, as kubeadm does for DNS."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return  # validation reports the malformed address
        first, last = self.network.network_address, self.network.broadcast_address
        if addr not in self.network or addr == first or (addr == last and self.network.version == 4):
            raise _cluster_ips_invalid(
                svc,
                f"failed to allocate IP {ip}: provided IP is not in the valid range. "
                f"The range of valid IPs is {self.network}",
            )
        if ip in used:
            raise _cluster_ips_invalid(svc, f"failed to allocate IP {ip}: provided IP is already allocated")

    async def on_create(self, ctx: ServerContext, svc: Obj, opts: WriteOptions) -> None:
        spec = svc.setdefault("spec", {})
        if needs_cluster_ip(spec):
            self._check_families(svc, spec)
        async with self.lock:
            used = await self.in_use(ctx)
            if needs_cluster_ip(spec):
                self._assign_ip(svc, spec, used.ips)
            self._assign_node_ports(svc, spec, used.ports, set())
            if not opts.dry_run:
                self._reserve(spec)

    def on_update(self, svc: Obj, old: Obj, used: InUse | None = None, dry_run: bool = False) -> None:
        """Prepare ``svc`` replacing ``old``.  Synchronous, to run inside the compare-and-swap
        mutation; ``used`` defaults to the live view (stores with a listener)."""
        spec = svc.setdefault("spec", {})
        old_spec = old.get("spec") or {}
        _patch_allocated_values(spec, old_spec)
        _drop_type_dependent_fields(spec, old_spec)
        if used is None:
            used = self._live_in_use(self.live) if self.live is not None else InUse()
        own_ips, own_ports = held_ips(old_spec), held_ports(old_spec)
        if needs_cluster_ip(spec) and not needs_cluster_ip(old_spec):
            self._check_families(svc, spec)
            self._assign_ip(svc, spec, used.ips - own_ips)
        self._assign_node_ports(svc, spec, used.ports - own_ports, own_ports)
        if not dry_run:
            self._reserve(spec)

    def _check_families(self, svc: Obj, spec: Obj) -> None:
        """``initIPFamilyFields``: a Service may only ask for the IP family this single-stack
        cluster serves (headless selectorless Services are exempt, as in kube-apiserver)."""
        if spec.get("clusterIP") == "None" and not spec.get("selector"):
            return
        ours = f"IPv{self.network.version}"
        causes: list[errors.Cause] = []
        if spec.get("ipFamilyPolicy") == "RequireDualStack":
            causes.append(
                errors.Cause(
                    "FieldValueInvalid",
                    'Invalid value: "RequireDualStack": '
                    "this cluster is not configured for dual-stack services",
                    "spec.ipFamilyPolicy",
                )
            )
        for i, family in enumerate(spec.get("ipFamilies") or []):
            if family != ours:
                causes.append(
                    errors.Cause(
                        "FieldValueInvalid",
                        f'Invalid value: "{family}": not configured on this cluster',
                        f"spec.ipFamilies[{i}]",
                    )
                )
        if causes:
            name = (svc.get("metadata") or {}).get("name", "")
            raise errors.invalid("Service", "", name, causes)

    def _assign_ip(self, svc: Obj, spec: Obj, used: set[str]) -> None:
        ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if ip == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return
        if ip:
            self._check_requested(svc, str(ip), used)
        else:
            ip = self._pick_ip(used)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _assign_node_ports(self, svc: Obj, spec: Obj, used: set[int], own: set[int]) -> None:
        """Requested node ports must be free (``own`` ones the Service already holds are);
        missing ones are allocated when the type needs them.  One number may serve several
        ports of the Service (TCP and UDP 53 alike)."""
        mine: set[int] = set()
        for i, port in enumerate(spec.get("ports") or []):
            np = port.get("nodePort")
            if np:
                self._claim(svc, f"spec.ports[{i}].nodePort", int(np), used, own | mine)
                mine.add(int(np))
            elif needs_node_ports(spec):
                port["nodePort"] = self._next_port(used | mine)
                mine.add(port["nodePort"])
        hc = spec.get("healthCheckNodePort")
        if hc:
            self._claim(svc, "spec.healthCheckNodePort", int(hc), used | mine, own)
        elif needs_health_check_port(spec):
            spec["healthCheckNodePort"] = self._next_port(used | mine)
        used |= mine

    @staticmethod
    def _claim(svc: Obj, path: str, port: int, used: set[int], own: set[int]) -> None:
        if port in used and port not in own:
            raise _invalid(svc, path, f"Invalid value: {port}: provided port is already allocated")

    @staticmethod
    def _next_port(used: set[int]) -> int:
        lo, hi = NODE_PORT_RANGE
        free = [p for p in range(lo, hi + 1) if p not in used]
        if not free:
            raise errors.InternalError("failed to allocate a nodePort: range is full")
        return random.choice(free)


def _invalid(svc: Obj, field: str, message: str) -> errors.Invalid:
    name = (svc.get("metadata") or {}).get("name", "")
    return errors.invalid("Service", "", name, [errors.Cause("FieldValueInvalid", message, field)])


def _cluster_ips_invalid(svc: Obj, message: str) -> errors.Invalid:
    ips = (svc.get("spec") or {}).get("clusterIPs") or [(svc.get("spec") or {}).get("clusterIP")]
    value = "[]string{" + ", ".join(f'"{ip}"' for ip in ips if ip) + "}"
    return _invalid(svc, "spec.clusterIPs", f"Invalid value: {value}: {message}")
