"""ServiceLB controller: LoadBalancer Services get the node addresses as their ingress.

Like k3s's ServiceLB (``pkg/cloudprovider/servicelb.go``), without its per-Service
DaemonSet: the kubelite proxy on every node answers ``<ingress ip>:<service port>``
itself.  A ``type: LoadBalancer`` Service without ``spec.loadBalancerClass`` gets
``status.loadBalancer.ingress`` = one entry per address of the Ready nodes (a node's
ExternalIPs when it has any, else its InternalIPs; only the Service's IP families),
sorted, each with ``ipMode: VIP``.  Nodes labelled
``node.kubernetes.io/exclude-from-external-load-balancers`` are left out, as Kubernetes'
service controller does.  The ingress follows nodes coming, going and changing
readiness, and is cleared when the Service stops being a LoadBalancer.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import condition, meta
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.servicelb")
Obj = dict[str, Any]
SERVICES = Resource("", "v1", "services")
NODES = Resource("", "v1", "nodes", namespaced=False)
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
FIELD_MANAGER = "service-lb-controller"


def is_ours(svc: Obj) -> bool:
    """A LoadBalancer Service this controller implements (no other loadBalancerClass)."""
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def node_is_ready(node: Obj) -> bool:
    ready = condition(node, "Ready")
    return bool(ready and ready.get("status") == "True")


def node_lb_addresses(node: Obj) -> list[str]:
    """A node's ExternalIPs when it has any, else its InternalIPs (k3s's choice)."""
    addresses = (node.get("status") or {}).get("addresses") or []
    by_type: dict[str, list[str]] = {}
    for a in addresses:
        if a.get("address"):
            by_type.setdefault(str(a.get("type")), []).append(str(a["address"]))
    return by_type.get("ExternalIP") or by_type.get("InternalIP") or []


def _families(svc: Obj) -> set[int]:
    spec = svc.get("spec") or {}
    families = spec.get("ipFamilies") or []
    out = {6 if f == "IPv6" else 4 for f in families}
    return out or {4, 6}


def ingress_for(svc: Obj, nodes: list[Obj]) -> list[Obj]:
    """``status.loadBalancer.ingress`` for ``svc`` served by ``nodes``."""
    wanted = _families(svc)
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for node in nodes:
        if not node_is_ready(node) or EXCLUDE_LABEL in (meta(node).get("labels") or {}):
            continue
        for raw in node_lb_addresses(node):
            try:
                ip = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if ip.version in wanted:
                ips.add(ip)
    ordered = sorted(ips, key=lambda ip: (ip.version, int(ip)))
    return [{"ip": str(ip), "ipMode": "VIP"} for ip in ordered]


def _node_view(node: Obj | None) -> Any:
    if node is None:
        return None
    return (node_is_ready(node), node_lb_addresses(node), EXCLUDE_LABEL in (meta(node).get("labels") or {}))


class ServiceLBController:
    def __init__(self, client: Client, services: Informer, nodes: Informer) -> None:
        self.client = client
        self.services = services
        self.nodes = nodes
        self.ctrl = Controller("service-lb", self.reconcile, workers=1)
        services.add_handler(self._on_service)
        nodes.add_handler(self._on_node)

    def _on_service(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.ctrl.queue.add(key)

    def _on_node(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if _node_view(old) == _node_view(new):
            return
        for svc in self.services.list():
            if is_ours(svc):
                self.ctrl.queue.add(f"{meta(svc)['namespace']}/{meta(svc)['name']}")

    async def start(self) -> None:
        for key in list(self.services.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def reconcile(self, key: str) -> float | None:
        svc = self.services.get(key)
        if svc is None:
            return None
        current = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if is_ours(svc):
            wanted: list[Obj] | None = ingress_for(svc, self.nodes.list())
        elif (svc.get("spec") or {}).get("type") != "LoadBalancer":
            wanted = [] if current else None  # no longer a LoadBalancer: clear what is there
        else:
            wanted = None  # another load balancer implementation's Service
        if wanted is None or wanted == current:
            return None
        namespace, _, name = key.partition("/")
        patch = {"status": {"loadBalancer": {"ingress": wanted or None}}}
        try:
            await self.client.patch(
                SERVICES,
                namespace,
                name,
                patch,
                subresource="status",
                field_manager=FIELD_MANAGER,
            )
        except errors.NotFound:
            return None
        log.info("load balancer ingress set service=%s ingress=%s", key, [i["ip"] for i in wanted])
        return None


def new(ctx: Any) -> ServiceLBController:
    return ServiceLBController(ctx.client, ctx.informers.get(SERVICES), ctx.informers.get(NODES))
