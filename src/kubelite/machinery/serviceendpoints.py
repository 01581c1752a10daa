"""Pure helpers shared by the Endpoints and EndpointSlice controllers.

They mirror ``pkg/controller/util/endpoint`` and ``pkg/api/v1/pod`` in Kubernetes:
which pods back a Service, and how a Service port's ``targetPort`` resolves on a pod.
"""

from __future__ import annotations

from typing import Any

from kubelite.api.podhealth import is_terminal, is_terminating, meta, pod_ip
from kubelite.api.selectors import selector_from_set
from kubelite.machinery.informer import Informer, object_key

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


def has_selector(svc: Obj) -> bool:
    """Only Services with a selector get controller-managed endpoints."""
    return bool((svc.get("spec") or {}).get("selector"))


def selector_labels(svc: Obj) -> dict[str, str]:
    sel: dict[str, str] = (svc.get("spec") or {}).get("selector") or {}
    return sel


def publish_not_ready(svc: Obj) -> bool:
    return bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))


def is_external_name(svc: Obj) -> bool:
    """ExternalName Services get no endpoints even with a selector (kubernetes#105986)."""
    return (svc.get("spec") or {}).get("type") == "ExternalName"


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``: no terminal pods, no pods without IP, terminating only on request."""
    if is_terminal(pod) or not pod_ip(pod):
        return False
    return include_terminating or not is_terminating(pod)


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """``podutil.FindPort``: a numeric targetPort as is, a named one looked up in the
    containers' ports (same name and protocol), then in the sidecars' (init containers with
    ``restartPolicy: Always``)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in (spec.get("containers") or []) + sidecars:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                value = port.get("containerPort")
                return int(value) if value is not None else None
    return None


def endpoint_port(service_port: Obj, number: int) -> Obj:
    out: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        out["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        out["appProtocol"] = service_port["appProtocol"]
    return out


def target_ref(pod: Obj) -> Obj:
    m = meta(pod)
    return {
        "kind": "Pod",
        "namespace": m.get("namespace", ""),
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
    }


def pod_hostname(pod: Obj, svc: Obj) -> str:
    """A pod's hostname is published when its subdomain is the Service's name."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == meta(svc).get("name"):
        return str(spec["hostname"])
    return ""


def service_labels(svc: Obj) -> dict[str, str]:
    """Endpoints carry the Service's labels plus the headless marker."""
    labels = dict(meta(svc).get("labels") or {})
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


def services_for_pod(services: Informer, pod: Obj) -> list[str]:
    """Keys of the Services (with a selector) in the pod's namespace that select it."""
    labels = meta(pod).get("labels") or {}
    out = []
    for svc in services.by_index("namespace", str(meta(pod).get("namespace", ""))):
        if has_selector(svc) and selector_from_set(selector_labels(svc)).matches(labels):
            out.append(object_key(svc))
    return out


def pods_for_service(pods: Informer, svc: Obj) -> list[Obj]:
    sel = selector_from_set(selector_labels(svc))
    ns = str(meta(svc).get("namespace", ""))
    return [p for p in pods.by_index("namespace", ns) if sel.matches(meta(p).get("labels") or {})]


def pod_change_matters(old: Obj | None, new: Obj | None) -> bool:
    """Endpoints depend on labels, IP, readiness, deletion, node, hostname and ports only."""
    if old is None or new is None:
        return True

    def view(p: Obj) -> Any:
        m, spec, status = meta(p), p.get("spec") or {}, p.get("status") or {}
        ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        ports = [c.get("ports") for c in spec.get("containers") or []]
        return (
            m.get("labels"),
            m.get("deletionTimestamp"),
            status.get("podIP"),
            status.get("podIPs"),
            status.get("phase"),
            ready,
            spec.get("nodeName"),
            spec.get("hostname"),
            spec.get("subdomain"),
            ports,
        )

    return bool(view(old) != view(new))
