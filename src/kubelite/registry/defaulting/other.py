"""Defaults of the remaining built-in groups (autoscaling, scheduling, storage, networking,
discovery, rbac, apiextensions, admissionregistration), as their ``v1``/``v2`` ``defaults.go``.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]

_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _dict(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def default_hpa(hpa: Obj, version: str) -> None:
    """minReplicas 1; v2: a CPU-80% metric when none is given and behavior rules filled in."""
    spec = _dict(hpa, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if version == "v1":
        return
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for key, defaults in (("scaleUp", _SCALE_UP), ("scaleDown", _SCALE_DOWN)):
            rules = behavior.get(key)
            merged = copy.deepcopy(defaults)
            if isinstance(rules, dict):
                merged.update({k: v for k, v in rules.items() if v is not None})
            behavior[key] = merged


def default_priority_class(pc: Obj) -> None:
    if not pc.get("preemptionPolicy"):
        pc["preemptionPolicy"] = "PreemptLowerPriority"


def default_storage_class(sc: Obj) -> None:
    if not sc.get("reclaimPolicy"):
        sc["reclaimPolicy"] = "Delete"
    if not sc.get("volumeBindingMode"):
        sc["volumeBindingMode"] = "Immediate"


def default_csi_driver(driver: Obj) -> None:
    spec = _dict(driver, "spec")
    for key, value in (
        ("attachRequired", True),
        ("podInfoOnMount", False),
        ("requiresRepublish", False),
        ("storageCapacity", False),
        ("fsGroupPolicy", "ReadWriteOnceWithFSType"),
        ("seLinuxMount", False),
    ):
        if spec.get(key) is None:
            spec[key] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


def default_network_policy(np: Obj) -> None:
    """Ports default to TCP; policyTypes to Ingress (plus Egress when egress rules exist)."""
    spec = _dict(np, "spec")
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def default_endpoint_slice(es: Obj) -> None:
    for port in _dicts(es.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def default_role_binding(rb: Obj) -> None:
    """roleRef.apiGroup and User/Group subjects' apiGroup default to rbac.authorization.k8s.io."""
    ref = _dict(rb, "roleRef")
    if not ref.get("apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for subject in _dicts(rb.get("subjects")):
        if not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = "rbac.authorization.k8s.io"
            elif subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""


def default_crd(crd: Obj) -> None:
    """singular = lower(kind), listKind = kind+"List", conversion strategy None."""
    spec = _dict(crd, "spec")
    names = _dict(spec, "names")
    kind = names.get("kind")
    if isinstance(kind, str) and kind:
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind"):
            names["listKind"] = kind + "List"
    conversion = _dict(spec, "conversion")
    if not conversion.get("strategy"):
        conversion["strategy"] = "None"


def default_webhook_configuration(cfg: Obj, mutating: bool) -> None:
    """failurePolicy Fail, matchPolicy Equivalent, empty selectors, timeout 10s, scope '*'."""
    for hook in _dicts(cfg.get("webhooks")):
        for key, value in (("failurePolicy", "Fail"), ("matchPolicy", "Equivalent"), ("timeoutSeconds", 10)):
            if hook.get(key) is None:
                hook[key] = value
        for key in ("namespaceSelector", "objectSelector"):
            if hook.get(key) is None:
                hook[key] = {}
        if mutating and hook.get("reinvocationPolicy") is None:
            hook["reinvocationPolicy"] = "Never"
        for rule in _dicts(hook.get("rules")):
            if rule.get("scope") is None:
                rule["scope"] = "*"
        client = hook.get("clientConfig")
        service = client.get("service") if isinstance(client, dict) else None
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443
