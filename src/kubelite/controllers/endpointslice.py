"""EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices per Service with a selector.

Mirrors ``pkg/controller/endpointslice`` (and its reconciler in
``staging/src/k8s.io/endpointslice``): every selected pod with an IP — terminating ones
included — is one endpoint with conditions ``ready`` / ``serving`` / ``terminating``,
``nodeName``, ``zone`` (the node's ``topology.kubernetes.io/zone``), ``targetRef`` and
``hostname`` (a pod whose ``spec.subdomain`` is the Service's name).  Ports resolve per pod
(named targetPorts through its container and sidecar ports); a pod resolving none is still
listed, in a slice without ports.  ExternalName Services get no slices.  Changes are
written as soon as the informers deliver them (no batching period).  Endpoints with the
same resolved ports share slices of at most 100
endpoints; existing slices keep their endpoints where possible to limit churn; a Service
with no endpoints keeps one empty placeholder slice.  Slices are labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`` and owned by the Service (garbage collected with it).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import is_pod_ready, is_terminating, meta, namespace_index, pod_ip
from kubelite.client.base import Client, Resource
from kubelite.machinery import serviceendpoints as se
from kubelite.machinery.controller_utils import PendingWrites
from kubelite.machinery.informer import Informer, object_key
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.endpointslice")
Obj = dict[str, Any]
SERVICES = Resource("", "v1", "services")
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS = 100


def ports_key(ports: list[Obj]) -> str:
    return repr(
        sorted((p.get("name", ""), p.get("port"), p.get("protocol"), p.get("appProtocol")) for p in ports)
    )


def slice_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """Resolved ports of ``pod`` (every port carries a name, ``""`` when unnamed).

    As ``getEndpointPorts``: a Service port whose targetPort the pod lacks is left out;
    a pod resolving none of them is still an endpoint, in a slice without ports.
    """
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        number = se.find_port(pod, sp)
        if number is not None:
            port = se.endpoint_port(sp, number)
            port.setdefault("name", "")
            out.append(port)
    return out


def to_endpoint(svc: Obj, pod: Obj, nodes: Informer | None) -> Obj:
    publish = se.publish_not_ready(svc)
    serving = publish or is_pod_ready(pod)
    terminating = is_terminating(pod)
    ep: Obj = {
        "addresses": [pod_ip(pod)],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
        "targetRef": se.target_ref(pod),
    }
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
        node = nodes.get(node_name) if nodes is not None else None
        zone = (meta(node).get("labels") or {}).get(ZONE_LABEL) if node else None
        if zone:
            ep["zone"] = zone
    hostname = se.pod_hostname(pod, svc)
    if hostname:
        ep["hostname"] = hostname
    return ep


def desired_endpoints(
    svc: Obj, pods: list[Obj], nodes: Informer | None
) -> dict[str, tuple[list[Obj], dict[str, Obj]]]:
    """port key -> (ports, address -> endpoint)."""
    out: dict[str, tuple[list[Obj], dict[str, Obj]]] = {}
    for pod in pods:
        if not se.should_pod_be_in_endpoints(pod, include_terminating=True) or ":" in pod_ip(pod):
            continue
        ports = slice_ports(svc, pod)
        _, eps = out.setdefault(ports_key(ports), (ports, {}))
        eps[pod_ip(pod)] = to_endpoint(svc, pod, nodes)
    return out


@dataclass
class Plan:
    create: list[tuple[list[Obj], list[Obj]]] = field(default_factory=list)  # (ports, endpoints)
    update: list[tuple[Obj, list[Obj], list[Obj]]] = field(default_factory=list)  # (slice, ports, eps)
    delete: list[Obj] = field(default_factory=list)


def _address(ep: Obj) -> str:
    return str((ep.get("addresses") or [""])[0])


def plan_slices(
    existing: list[Obj],
    desired: dict[str, tuple[list[Obj], dict[str, Obj]]],
    max_endpoints: int = MAX_ENDPOINTS,
) -> Plan:
    """Keep endpoints in the slice they are in, fill slices with room, then open new ones."""
    plan = Plan()
    by_key: dict[str, list[Obj]] = {}
    for sl in sorted(existing, key=lambda s: meta(s).get("name", "")):
        by_key.setdefault(ports_key(sl.get("ports") or []), []).append(sl)
    spare: list[Obj] = [s for k, slices in by_key.items() if k not in desired for s in slices]
    if not desired:
        return _placeholder_plan(existing)
    for key, (ports, wanted) in desired.items():
        remaining = dict(wanted)
        kept: list[tuple[Obj, list[Obj]]] = []
        for sl in by_key.get(key, []):
            eps = [
                remaining.pop(a) for a in (_address(e) for e in sl.get("endpoints") or []) if a in remaining
            ]
            kept.append((sl, eps))
        for _, eps in kept:
            while remaining and len(eps) < max_endpoints:
                eps.append(remaining.pop(next(iter(remaining))))
        fresh = list(remaining.values())
        for sl, eps in kept:
            if eps:
                plan.update.append((sl, ports, eps))
            else:
                spare.append(sl)
        for i in range(0, len(fresh), max_endpoints):
            chunk = fresh[i : i + max_endpoints]
            if spare:
                plan.update.append((spare.pop(0), ports, chunk))
            else:
                plan.create.append((ports, chunk))
    plan.delete.extend(spare)
    return plan


def _placeholder_plan(existing: list[Obj]) -> Plan:
    plan = Plan()
    if not existing:
        plan.create.append(([], []))
        return plan
    first, *rest = sorted(existing, key=lambda s: (bool(s.get("endpoints")), meta(s).get("name", "")))
    plan.update.append((first, [], []))
    plan.delete.extend(rest)
    return plan


def _slice_labels(svc: Obj) -> dict[str, str]:
    labels = se.service_labels(svc)
    labels[se.SERVICE_NAME_LABEL] = meta(svc)["name"]
    labels[MANAGED_BY] = CONTROLLER_NAME
    return labels


def _owner(svc: Obj) -> Obj:
    m = meta(svc)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": m["name"],
        "uid": m.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_slice(svc: Obj, ports: list[Obj], eps: list[Obj], current: Obj | None) -> Obj:
    m = meta(svc)
    metadata: Obj = {
        "namespace": m["namespace"],
        "labels": _slice_labels(svc),
        "ownerReferences": [_owner(svc)],
    }
    if current is None:
        metadata["generateName"] = f"{m['name']}-"
    else:
        cm = meta(current)
        metadata.update(name=cm["name"], resourceVersion=cm.get("resourceVersion", ""))
        if cm.get("annotations"):
            metadata["annotations"] = cm["annotations"]
    body: Obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": "IPv4",
        "endpoints": sorted(eps, key=_address),
    }
    if ports:
        body["ports"] = ports
    return body


def _unchanged(current: Obj, body: Obj) -> bool:
    cm = meta(current)
    return bool(
        (current.get("endpoints") or []) == body["endpoints"]
        and ports_key(current.get("ports") or []) == ports_key(body.get("ports") or [])
        and (cm.get("labels") or {}) == body["metadata"]["labels"]
        and (cm.get("ownerReferences") or []) == body["metadata"]["ownerReferences"]
    )


def _service_name_index(sl: Obj) -> list[str]:
    labels = meta(sl).get("labels") or {}
    if labels.get(MANAGED_BY) != CONTROLLER_NAME or not labels.get(se.SERVICE_NAME_LABEL):
        return []
    return [f"{meta(sl).get('namespace', '')}/{labels[se.SERVICE_NAME_LABEL]}"]


class EndpointSliceController:
    def __init__(
        self, client: Client, services: Informer, pods: Informer, slices: Informer, nodes: Informer
    ) -> None:
        self.client = client
        self.services = services
        self.pods = pods
        self.slices = slices
        self.nodes = nodes
        self.pending = PendingWrites(slices)
        self.ctrl = Controller("endpointslice", self.reconcile, workers=2)
        services.add_indexer("namespace", namespace_index)
        pods.add_indexer("namespace", namespace_index)
        slices.add_indexer("endpointslice/service", _service_name_index)
        services.add_handler(lambda key, old, new: self.ctrl.queue.add(key))
        pods.add_handler(self._on_pod)
        slices.add_handler(self._on_slice)

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if not se.pod_change_matters(old, new):
            return
        keys: set[str] = set()
        for pod in (old, new):
            if pod is not None:
                keys.update(se.services_for_pod(self.services, pod))
        for k in keys:
            self.ctrl.queue.add(k)

    def _on_slice(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for sl in (old, new):
            if sl is not None:
                for svc_key in _service_name_index(sl):
                    self.ctrl.queue.add(svc_key)

    async def start(self) -> None:
        for key in list(self.services.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def reconcile(self, key: str) -> float | None:
        namespace = key.partition("/")[0]
        if self.pending.behind(key):
            return 0.05
        svc = self.services.get(key)
        existing = self.slices.by_index("endpointslice/service", key)
        if svc is None or not se.has_selector(svc) or se.is_external_name(svc):
            for sl in existing:  # the garbage collector would too; be prompt
                with contextlib.suppress(errors.NotFound):
                    await self.client.delete(SLICES, namespace, meta(sl)["name"])
            return None
        desired = desired_endpoints(svc, se.pods_for_service(self.pods, svc), self.nodes)
        await self._apply(key, svc, plan_slices(existing, desired))
        return None

    async def _apply(self, key: str, svc: Obj, plan: Plan) -> None:
        namespace = meta(svc)["namespace"]
        for sl, ports, eps in plan.update:
            body = build_slice(svc, ports, eps, sl)
            if not _unchanged(sl, body):
                await self.client.update(SLICES, namespace, body)
        for ports, eps in plan.create:
            out = await self.client.create(SLICES, namespace, build_slice(svc, ports, eps, None))
            self.pending.created(key, meta(out)["name"])
        for sl in plan.delete:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(SLICES, namespace, meta(sl)["name"])
                self.pending.deleted(key, meta(sl)["name"])
        log.debug(
            "endpoint slices synced service=%s created=%d deleted=%d",
            object_key(svc),
            len(plan.create),
            len(plan.delete),
        )


def new(ctx: Any) -> EndpointSliceController:
    inf = ctx.informers
    return EndpointSliceController(
        ctx.client, inf.get(SERVICES), inf.get(PODS), inf.get(SLICES), inf.get(NODES)
    )
