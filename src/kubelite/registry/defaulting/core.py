"""Defaults of the core (``v1``) kinds other than pods.

Mirrors ``pkg/apis/core/v1/defaults.go`` plus the normalisation the core strategies do
before validation: Secret ``stringData`` folded into ``data``, Service ``clusterIP`` /
``clusterIPs`` kept in sync and the IP family fields a single-stack IPv4 cluster assigns,
Namespace ``spec.finalizers``.
"""

from __future__ import annotations

import base64
from typing import Any

from kubelite.registry.defaulting.pods import default_template

Obj = dict[str, Any]


def _dict(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def default_service(svc: Obj) -> None:
    """``SetDefaults_Service`` and the IP-family fields of the service REST allocator."""
    spec = _dict(svc, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port", 0)
    stype = spec["type"]
    if (stype in ("NodePort", "LoadBalancer") or spec.get("externalIPs")) and not spec.get(
        "externalTrafficPolicy"
    ):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    _normalize_cluster_ips(spec)
    _init_ip_families(spec)


def _normalize_cluster_ips(spec: Obj) -> None:
    """The strategy's ``normalizeClusterIPs``: ``clusterIP`` and ``clusterIPs[0]`` agree."""
    if spec.get("type") == "ExternalName":
        return
    ip, ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if ip and not ips:
        spec["clusterIPs"] = [ip]
    elif ips and isinstance(ips, list) and not ip:
        spec["clusterIP"] = ips[0]


def _init_ip_families(spec: Obj) -> None:
    """``initIPFamilyFields`` for a single-stack IPv4 cluster (an IPv6 clusterIP gives IPv6)."""
    if spec.get("type") == "ExternalName":
        return
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
    families = spec.get("ipFamilies")
    if not isinstance(families, list):
        families = []
    for i, ip in enumerate(spec.get("clusterIPs") or []):
        if ip == "None" or not isinstance(ip, str):
            break
        if i >= len(families):
            families.append("IPv6" if ":" in ip else "IPv4")
    if not families:
        families = ["IPv4"]
    if headless_selectorless and len(families) < 2 and spec["ipFamilyPolicy"] != "SingleStack":
        families.append("IPv6" if families[0] == "IPv4" else "IPv4")
    spec["ipFamilies"] = families


def normalize_secret(secret: Obj) -> None:
    """Fold ``stringData`` into ``data`` (base64), as the Secret strategy does before validation."""
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(secret, "data")
        for key, value in string_data.items():
            text = value if isinstance(value, str) else str(value)
            data[key] = base64.b64encode(text.encode()).decode()


def default_secret(secret: Obj) -> None:
    normalize_secret(secret)
    if not secret.get("type"):
        secret["type"] = "Opaque"


def default_namespace(ns: Obj) -> None:
    """``SetDefaults_Namespace`` (name label), status Active, the ``kubernetes`` finalizer."""
    meta = _dict(ns, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        labels = _dict(meta, "labels")
        labels["kubernetes.io/metadata.name"] = name
    spec = _dict(ns, "spec")
    if not spec.get("finalizers"):
        spec["finalizers"] = ["kubernetes"]
    status = _dict(ns, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def default_pvc_spec(spec: Obj) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def default_pvc(pvc: Obj) -> None:
    default_pvc_spec(_dict(pvc, "spec"))
    status = _dict(pvc, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def default_pv(pv: Obj) -> None:
    spec = _dict(pv, "spec")
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    status = _dict(pv, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def default_replication_controller(rc: Obj) -> None:
    """Selector and labels from the template's labels, replicas 1, template pod defaults."""
    spec = _dict(rc, "spec")
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _dict(rc, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_template(template)


def default_pod_template(pt: Obj) -> None:
    default_template(pt.get("template"))


def default_endpoints(ep: Obj) -> None:
    for subset in _dicts(ep.get("subsets")):
        for port in _dicts(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def default_limit_range(lr: Obj) -> None:
    """``SetDefaults_LimitRangeItem``: Container limits default from max, requests from default/min."""
    for item in _dicts(_dict(lr, "spec").get("limits")):
        if item.get("type") != "Container":
            continue
        default: Obj = dict(item["default"]) if isinstance(item.get("default"), dict) else {}
        request: Obj = dict(item["defaultRequest"]) if isinstance(item.get("defaultRequest"), dict) else {}
        maxes: Obj = item["max"] if isinstance(item.get("max"), dict) else {}
        mins: Obj = item["min"] if isinstance(item.get("min"), dict) else {}
        for key, value in maxes.items():
            default.setdefault(key, value)
        for key, value in default.items():
            request.setdefault(key, value)
        for key, value in mins.items():
            request.setdefault(key, value)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def default_node(node: Obj) -> None:
    """``SetDefaults_NodeStatus``: allocatable defaults to capacity."""
    status = node.get("status")
    if (
        isinstance(status, dict)
        and status.get("allocatable") is None
        and isinstance(status.get("capacity"), dict)
    ):
        status["allocatable"] = dict(status["capacity"])
