"""Endpoints controller: a core/v1 Endpoints object per Service with a selector.

Mirrors ``pkg/controller/endpoint``: pods selected by the Service with an IP are listed
in ``subsets``; ready pods (or every pod when ``publishNotReadyAddresses``) under
``addresses``, the others under ``notReadyAddresses``; terminating pods are left out
unless not-ready addresses are published.  Named ``targetPort`` s resolve per pod through
its container (and sidecar) ports (a pod without the named port is left out of that port,
and out of the Endpoints when no port resolves); a Service without ports lists addresses
only when headless.  Addresses with the same ports are packed into one subset, sorted.
Services without a selector (like ``kubernetes``) are not touched: their Endpoints belong
to someone else (the mirroring controller copies them into EndpointSlices).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import is_pod_ready, meta, namespace_index, pod_ip
from kubelite.client.base import Client, Resource
from kubelite.machinery import serviceendpoints as se
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.endpoints")
Obj = dict[str, Any]
SERVICES = Resource("", "v1", "services")
PODS = Resource("", "v1", "pods")
ENDPOINTS = Resource("", "v1", "endpoints")
MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def _address(pod: Obj, svc: Obj) -> Obj:
    addr: Obj = {"ip": pod_ip(pod), "targetRef": se.target_ref(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    hostname = se.pod_hostname(pod, svc)
    if hostname:
        addr["hostname"] = hostname
    return addr


def _pod_ports(pod: Obj, svc: Obj) -> list[Obj] | None:
    """The endpoint ports of ``pod``; None when it is not listed: the Service has ports and
    none resolves, or it has none and is not headless (only headless Services list
    addresses without ports)."""
    service_ports = (svc.get("spec") or {}).get("ports") or []
    if not service_ports:
        return [] if se.is_headless(svc) else None
    out = []
    for sp in service_ports:
        number = se.find_port(pod, sp)
        if number is not None:
            out.append(se.endpoint_port(sp, number))
    return out or None


def compute_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """The repacked, sorted ``subsets`` for ``svc`` backed by ``pods``."""
    tolerate = se.publish_not_ready(svc)
    groups: dict[str, tuple[list[Obj], dict[str, Obj], dict[str, Obj]]] = {}
    for pod in pods:
        if not se.should_pod_be_in_endpoints(pod, include_terminating=tolerate):
            continue
        ports = _pod_ports(pod, svc)
        if ports is None:
            continue
        ports = sorted(ports, key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        key = repr([(p.get("name", ""), p["port"], p["protocol"]) for p in ports])
        _, ready, not_ready = groups.setdefault(key, (ports, {}, {}))
        addr = _address(pod, svc)
        if tolerate or is_pod_ready(pod):
            ready[addr["ip"]] = addr
            not_ready.pop(addr["ip"], None)
        elif addr["ip"] not in ready:
            not_ready[addr["ip"]] = addr
    subsets = []
    for key in sorted(groups):
        ports, ready, not_ready = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = [ready[ip] for ip in sorted(ready)]
        if not_ready:
            subset["notReadyAddresses"] = [not_ready[ip] for ip in sorted(not_ready)]
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def _truncate(subsets: list[Obj]) -> tuple[list[Obj], bool]:
    """At most 1000 addresses, ready ones first (``endpoints.kubernetes.io/over-capacity``)."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= MAX_CAPACITY:
        return subsets, False
    budget = MAX_CAPACITY
    out = []
    for field in ("addresses", "notReadyAddresses"):
        for s in subsets:
            items = s.get(field) or []
            take = items[:budget]
            budget -= len(take)
            if take:
                out.append({field: take, **({"ports": s["ports"]} if s.get("ports") else {})})
    return out, True


class EndpointsController:
    def __init__(self, client: Client, services: Informer, pods: Informer, endpoints: Informer) -> None:
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints
        self.ctrl = Controller("endpoints", self.reconcile, workers=2)
        services.add_indexer("namespace", namespace_index)
        pods.add_indexer("namespace", namespace_index)
        services.add_handler(self._on_service)
        pods.add_handler(self._on_pod)
        endpoints.add_handler(self._on_endpoints)

    def _on_service(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.ctrl.queue.add(key)

    def _on_endpoints(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.ctrl.queue.add(key)  # level-triggered: a hand edit or a deletion is repaired

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if not se.pod_change_matters(old, new):
            return
        keys: set[str] = set()
        for pod in (old, new):
            if pod is not None:
                keys.update(se.services_for_pod(self.services, pod))
        for k in keys:
            self.ctrl.queue.add(k)

    async def start(self) -> None:
        for key in list(self.services.cache):
            self.ctrl.queue.add(key)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None and not self._foreign(current):
                with contextlib.suppress(errors.NotFound):
                    await self.client.delete(ENDPOINTS, namespace, name)
            return None
        if not se.has_selector(svc) or se.is_external_name(svc):
            return None
        subsets, truncated = _truncate(compute_subsets(svc, se.pods_for_service(self.pods, svc)))
        await self._write(svc, current, subsets, truncated)
        return None

    @staticmethod
    def _foreign(ep: Obj) -> bool:
        """Endpoints the API server owns (``kubernetes``) are never deleted here."""
        labels = meta(ep).get("labels") or {}
        return labels.get("endpointslice.kubernetes.io/skip-mirror") == "true"

    async def _write(self, svc: Obj, current: Obj | None, subsets: list[Obj], truncated: bool) -> None:
        m = meta(svc)
        labels = se.service_labels(svc)
        annotations = dict(meta(current).get("annotations") or {}) if current else {}
        if truncated:
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        if current is not None:
            cm = meta(current)
            same = (current.get("subsets") or []) == subsets
            if same and (cm.get("labels") or {}) == labels and (cm.get("annotations") or {}) == annotations:
                return
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "labels": labels},
            "subsets": subsets,
        }
        if annotations:
            body["metadata"]["annotations"] = annotations
        if current is None:
            await self.client.create(ENDPOINTS, m["namespace"], body)
        else:
            body["metadata"]["resourceVersion"] = meta(current)["resourceVersion"]
            await self.client.update(ENDPOINTS, m["namespace"], body)


def new(ctx: Any) -> EndpointsController:
    return EndpointsController(
        ctx.client, ctx.informers.get(SERVICES), ctx.informers.get(PODS), ctx.informers.get(ENDPOINTS)
    )
