"""EndpointSlice mirroring controller: hand-written Endpoints become EndpointSlices.

Mirrors ``pkg/controller/endpointslicemirroring``: a Service *without* a selector whose
Endpoints someone wrote (an external database, a manually run backend) reaches the
proxies and the DNS server, which read EndpointSlices only.  Endpoints are mirrored when
their Service exists without a selector, they are not labelled
``endpointslice.kubernetes.io/skip-mirror: "true"`` (the API server's own ``kubernetes``
Endpoints are) and carry no leader-election annotation.  Each subset's ``addresses``
become endpoints with ``ready: true``, its ``notReadyAddresses`` ``ready: false`` (with
``hostname``, ``nodeName``, ``targetRef``); endpoints with the same ports and address type
share slices of at most 1000, and at most 1000 addresses of a subset are mirrored.
Slices carry the Endpoints' labels and annotations (without the last-applied and
trigger-time ones), ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/
managed-by: endpointslicemirroring-controller.k8s.io``, and are owned by the Endpoints.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import meta
from kubelite.client.base import Client, Resource
from kubelite.controllers.endpointslice import MANAGED_BY, Plan, plan_slices, ports_key
from kubelite.machinery import serviceendpoints as se
from kubelite.machinery.controller_utils import PendingWrites
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.endpointslicemirroring")
Obj = dict[str, Any]
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
DROPPED_ANNOTATIONS = (
    "endpoints.kubernetes.io/last-change-trigger-time",
    "kubectl.kubernetes.io/last-applied-configuration",
)
MAX_PER_SUBSET = 1000
MAX_PER_SLICE = 1000
FAMILIES = ("IPv4", "IPv6")
Desired = dict[str, tuple[list[Obj], dict[str, Obj]]]


def should_mirror(svc: Obj | None, ep: Obj | None) -> bool:
    if svc is None or ep is None or (svc.get("spec") or {}).get("selector"):
        return False
    m = meta(ep)
    return (m.get("labels") or {}).get(SKIP_MIRROR) != "true" and LEADER_ANNOTATION not in (
        m.get("annotations") or {}
    )


def _to_endpoint(address: Obj, ready: bool) -> tuple[str, Obj] | None:
    """(address type, endpoint) of one Endpoints address; None when it is no IP."""
    try:
        ip = ipaddress.ip_address(str(address.get("ip", "")))
    except ValueError:
        return None
    ep: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    for field in ("hostname", "nodeName", "targetRef"):
        if address.get(field):
            ep[field] = address[field]
    return ("IPv6" if ip.version == 6 else "IPv4"), ep


def _slice_ports(ports: list[Obj]) -> list[Obj]:
    out = []
    for p in ports:
        port: Obj = {"name": p.get("name", ""), "port": p.get("port"), "protocol": p.get("protocol") or "TCP"}
        if p.get("appProtocol"):
            port["appProtocol"] = p["appProtocol"]
        out.append(port)
    return out


def desired_by_family(ep: Obj) -> dict[str, Desired]:
    """address type -> ports key -> (ports, address -> endpoint)."""
    out: dict[str, Desired] = {f: {} for f in FAMILIES}
    for subset in ep.get("subsets") or []:
        ports = _slice_ports(subset.get("ports") or [])
        key = ports_key(ports)
        listed = [(a, True) for a in subset.get("addresses") or []]
        listed += [(a, False) for a in subset.get("notReadyAddresses") or []]
        for address, ready in listed[:MAX_PER_SUBSET]:
            converted = _to_endpoint(address, ready)
            if converted is None:
                continue
            family, endpoint = converted
            _, eps = out[family].setdefault(key, (ports, {}))
            eps.setdefault(endpoint["addresses"][0], endpoint)
    return out


def _owner(ep: Obj) -> Obj:
    m = meta(ep)
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "name": m["name"],
        "uid": m.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_slice(ep: Obj, family: str, ports: list[Obj], eps: list[Obj], current: Obj | None) -> Obj:
    m = meta(ep)
    labels = dict(m.get("labels") or {})
    labels[se.SERVICE_NAME_LABEL] = m["name"]
    labels[MANAGED_BY] = CONTROLLER_NAME
    annotations = {k: v for k, v in (m.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    metadata: Obj = {"namespace": m["namespace"], "labels": labels, "ownerReferences": [_owner(ep)]}
    if annotations:
        metadata["annotations"] = annotations
    if current is None:
        metadata["generateName"] = f"{m['name']}-"
    else:
        metadata.update(name=meta(current)["name"], resourceVersion=meta(current).get("resourceVersion", ""))
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": family,
        "endpoints": sorted(eps, key=lambda e: str(e["addresses"][0])),
        "ports": ports,
    }


def _same(current: Obj, body: Obj) -> bool:
    cm, bm = meta(current), body["metadata"]
    return bool(
        (current.get("endpoints") or []) == body["endpoints"]
        and ports_key(current.get("ports") or []) == ports_key(body["ports"])
        and (cm.get("labels") or {}) == bm["labels"]
        and (cm.get("annotations") or {}) == bm.get("annotations", {})
        and (cm.get("ownerReferences") or []) == bm["ownerReferences"]
    )


def _mirrored_index(sl: Obj) -> list[str]:
    labels = meta(sl).get("labels") or {}
    if labels.get(MANAGED_BY) != CONTROLLER_NAME or not labels.get(se.SERVICE_NAME_LABEL):
        return []
    return [f"{meta(sl).get('namespace', '')}/{labels[se.SERVICE_NAME_LABEL]}"]


class EndpointSliceMirroringController:
    def __init__(self, client: Client, services: Informer, endpoints: Informer, slices: Informer) -> None:
        self.client = client
        self.services = services
        self.endpoints = endpoints
        self.slices = slices
        self.pending = PendingWrites(slices)
        self.ctrl = Controller("endpointslicemirroring", self.reconcile, workers=2)
        slices.add_indexer("endpointslicemirroring/service", _mirrored_index)
        services.add_handler(lambda key, old, new: self.ctrl.queue.add(key))
        endpoints.add_handler(lambda key, old, new: self.ctrl.queue.add(key))
        slices.add_handler(self._on_slice)

    def _on_slice(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for sl in (old, new):
            if sl is not None:
                for k in _mirrored_index(sl):
                    self.ctrl.queue.add(k)

    async def start(self) -> None:
        for key in list(self.endpoints.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def reconcile(self, key: str) -> float | None:
        if self.pending.behind(key):
            return 0.05
        namespace = key.partition("/")[0]
        existing = self.slices.by_index("endpointslicemirroring/service", key)
        ep = self.endpoints.get(key)
        if ep is None or not should_mirror(self.services.get(key), ep):
            await self._delete(key, namespace, existing)
            return None
        for family, desired in desired_by_family(ep).items():
            mine = [s for s in existing if s.get("addressType", "IPv4") == family]
            if not desired:
                await self._delete(key, namespace, mine)
                continue
            await self._apply(key, ep, family, plan_slices(mine, desired, MAX_PER_SLICE))
        return None

    async def _delete(self, key: str, namespace: str, slices: list[Obj]) -> None:
        for sl in slices:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(SLICES, namespace, meta(sl)["name"])
                self.pending.deleted(key, meta(sl)["name"])

    async def _apply(self, key: str, ep: Obj, family: str, plan: Plan) -> None:
        namespace = meta(ep)["namespace"]
        for sl, ports, eps in plan.update:
            body = build_slice(ep, family, ports, eps, sl)
            if not _same(sl, body):
                await self.client.update(SLICES, namespace, body)
        for ports, eps in plan.create:
            out = await self.client.create(SLICES, namespace, build_slice(ep, family, ports, eps, None))
            self.pending.created(key, meta(out)["name"])
        await self._delete(key, namespace, plan.delete)


def new(ctx: Any) -> EndpointSliceMirroringController:
    inf = ctx.informers
    return EndpointSliceMirroringController(
        ctx.client, inf.get(SERVICES), inf.get(ENDPOINTS), inf.get(SLICES)
    )
