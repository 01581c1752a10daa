"""Tables for core/v1 resources other than pods and events.

Mirrors the core ``print<Kind>`` functions of ``pkg/printers/internalversion``:
services (TYPE, CLUSTER-IP, EXTERNAL-IP with ``<none>``/``<pending>``, PORT(S) like
``80:30080/TCP``), nodes (``Ready,SchedulingDisabled``, roles from
``node-role.kubernetes.io/*`` labels), namespaces, config maps, secrets, service
accounts, endpoints, persistent volumes and claims, resource quotas, pod templates and
replication controllers. Limit ranges have no printer in Kubernetes and use the default
table (see :mod:`kubelite.registry.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._base import (
    NONE,
    UNKNOWN,
    UNSET,
    Obj,
    Printer,
    age,
    age_col,
    col,
    containers_cols,
    dicts,
    dig,
    doc,
    format_labels,
    layout_container_cells,
    list_with_more,
    lst,
    mp,
    name_col,
    name_of,
    num,
    quantity,
    txt,
)

LOAD_BALANCER_WIDTH = 16
NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
NODE_ROLE_LABEL = "kubernetes.io/role"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"

# ---------------------------------------------------------------- pod templates, RCs


def _pod_template_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = layout_container_cells(lst(obj, "template", "spec", "containers"))
    return [name_of(obj), names, images, format_labels(mp(obj, "template", "metadata", "labels"))]


POD_TEMPLATE = Printer(
    (
        name_col(),
        *containers_cols(priority=0),
        col("Pod Labels", "string", "The labels for the pod template."),
    ),
    _pod_template_cells,
)


def _rc_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = layout_container_cells(lst(obj, "spec", "template", "spec", "containers"))
    return [
        name_of(obj),
        num(obj, "spec", "replicas", default=1),
        num(obj, "status", "replicas"),
        num(obj, "status", "readyReplicas"),
        age(obj, now),
        names,
        images,
        format_labels(mp(obj, "spec", "selector")),
    ]


REPLICATION_CONTROLLER = Printer(
    (
        name_col(),
        col("Desired", "integer", doc("core.v1.ReplicationControllerSpec", "replicas")),
        col("Current", "integer", doc("core.v1.ReplicationControllerStatus", "replicas")),
        col("Ready", "integer", doc("core.v1.ReplicationControllerStatus", "readyReplicas")),
        age_col(),
        *containers_cols(),
        col("Selector", "string", doc("core.v1.ReplicationControllerSpec", "selector"), 1),
    ),
    _rc_cells,
)

# ---------------------------------------------------------------- services


def load_balancer_status(status: Mapping[str, Any], wide: bool = True) -> str:
    """``loadBalancerStatusStringer``: sorted unique IPs/hostnames; clipped to 16 chars unless wide."""
    found = set()
    for ing in dicts(status, "ingress"):
        value = txt(ing, "ip") or txt(ing, "hostname")
        if value:
            found.add(value)
    text = ",".join(sorted(found))
    if not wide and len(text) > LOAD_BALANCER_WIDTH:
        text = text[: LOAD_BALANCER_WIDTH - 3] + "..."
    return text


def _external_ip(svc: Obj, svc_type: str) -> str:
    external = [x for x in lst(svc, "spec", "externalIPs") if isinstance(x, str)]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if svc_type == "LoadBalancer":
        lb = load_balancer_status(mp(svc, "status", "loadBalancer"))
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return txt(svc, "spec", "externalName")
    return UNKNOWN


def port_string(ports: list[Mapping[str, Any]]) -> str:
    """``makePortString``: ``80/TCP`` or ``80:30080/TCP``, comma-joined."""
    pieces = []
    for port in ports:
        proto = txt(port, "protocol") or "TCP"
        node_port = num(port, "nodePort")
        if node_port > 0:
            pieces.append(f"{num(port, 'port')}:{node_port}/{proto}")
        else:
            pieces.append(f"{num(port, 'port')}/{proto}")
    return ",".join(pieces)


def _cluster_ip(svc: Obj) -> str:
    ips = [x for x in lst(svc, "spec", "clusterIPs") if isinstance(x, str)]
    if ips:
        return ips[0]
    return txt(svc, "spec", "clusterIP") or NONE


def _service_cells(svc: Obj, now: datetime) -> list[Any]:
    svc_type = txt(svc, "spec", "type") or "ClusterIP"
    return [
        name_of(svc),
        svc_type,
        _cluster_ip(svc),
        _external_ip(svc, svc_type),
        port_string(dicts(svc, "spec", "ports")) or NONE,
        age(svc, now),
        format_labels(mp(svc, "spec", "selector")),
    ]


SERVICE = Printer(
    (
        name_col(),
        col("Type", "string", doc("core.v1.ServiceSpec", "type")),
        col("Cluster-IP", "string", doc("core.v1.ServiceSpec", "clusterIP")),
        col("External-IP", "string", doc("core.v1.ServiceSpec", "externalIPs")),
        col("Port(s)", "string", doc("core.v1.ServiceSpec", "ports")),
        age_col(),
        col("Selector", "string", doc("core.v1.ServiceSpec", "selector"), 1),
    ),
    _service_cells,
)

# ---------------------------------------------------------------- endpoints


def format_endpoints(obj: Obj) -> str:
    """``formatEndpoints``: up to 3 ``ip:port`` (or bare IPs for port-less subsets)."""
    subsets = dicts(obj, "subsets")
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for ss in subsets:
        ips = [txt(a, "ip") for a in dicts(ss, "addresses")]
        ports = dicts(ss, "ports")
        if not ports:
            total += len(ips)
            shown.extend(ips)
            continue
        for port in ports:
            total += len(ips)
            shown.extend(_host_port(ip, num(port, "port")) for ip in ips)
    return list_with_more(shown, total, 3, "")


def _host_port(ip: str, port: int) -> str:
    """``net.JoinHostPort``: IPv6 addresses are bracketed."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


ENDPOINTS = Printer(
    (name_col(), col("Endpoints", "string", doc("core.v1.Endpoints", "subsets")), age_col()),
    lambda obj, now: [name_of(obj), format_endpoints(obj), age(obj, now)],
)

# ---------------------------------------------------------------- nodes


def node_status(node: Obj) -> str:
    """``Ready`` / ``NotReady`` / ``Unknown``, plus ``SchedulingDisabled`` when cordoned."""
    status = []
    ready = next((c for c in dicts(node, "status", "conditions") if txt(c, "type") == "Ready"), None)
    if ready is not None:
        status.append("Ready" if txt(ready, "status") == "True" else "NotReady")
    else:
        status.append("Unknown")
    if dig(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(node: Obj) -> str:
    """``findNodeRoles``: ``node-role.kubernetes.io/<role>`` keys and ``kubernetes.io/role`` values."""
    roles = set()
    for key, value in mp(node, "metadata", "labels").items():
        if key.startswith(NODE_ROLE_PREFIX) and key[len(NODE_ROLE_PREFIX) :]:
            roles.add(key[len(NODE_ROLE_PREFIX) :])
        elif key == NODE_ROLE_LABEL and isinstance(value, str) and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def _node_address(node: Obj, kind: str) -> str:
    for addr in dicts(node, "status", "addresses"):
        if txt(addr, "type") == kind:
            return txt(addr, "address")
    return NONE


def _node_cells(node: Obj, now: datetime) -> list[Any]:
    info = mp(node, "status", "nodeInfo")
    return [
        name_of(node),
        node_status(node),
        node_roles(node),
        age(node, now),
        txt(info, "kubeletVersion"),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        txt(info, "osImage") or UNKNOWN,
        txt(info, "kernelVersion") or UNKNOWN,
        txt(info, "containerRuntimeVersion") or UNKNOWN,
    ]


NODE = Printer(
    (
        name_col(),
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        age_col(),
        col("Version", "string", doc("core.v1.NodeSystemInfo", "kubeletVersion")),
        col("Internal-IP", "string", doc("core.v1.NodeStatus", "addresses"), 1),
        col("External-IP", "string", doc("core.v1.NodeStatus", "addresses"), 1),
        col("OS-Image", "string", doc("core.v1.NodeSystemInfo", "osImage"), 1),
        col("Kernel-Version", "string", doc("core.v1.NodeSystemInfo", "kernelVersion"), 1),
        col("Container-Runtime", "string", doc("core.v1.NodeSystemInfo", "containerRuntimeVersion"), 1),
    ),
    _node_cells,
)

# ---------------------------------------------------------------- small kinds

NAMESPACE = Printer(
    (name_col(), col("Status", "string", "The status of the namespace"), age_col()),
    lambda obj, now: [name_of(obj), txt(obj, "status", "phase"), age(obj, now)],
)

SECRET = Printer(
    (
        name_col(),
        col("Type", "string", doc("core.v1.Secret", "type")),
        col("Data", "string", doc("core.v1.Secret", "data")),
        age_col(),
    ),
    lambda obj, now: [name_of(obj), txt(obj, "type"), len(mp(obj, "data")), age(obj, now)],
)

SERVICE_ACCOUNT = Printer(
    (name_col(), col("Secrets", "string", doc("core.v1.ServiceAccount", "secrets")), age_col()),
    lambda obj, now: [name_of(obj), len(lst(obj, "secrets")), age(obj, now)],
)

CONFIG_MAP = Printer(
    (name_col(), col("Data", "string", doc("core.v1.ConfigMap", "data")), age_col()),
    lambda obj, now: [
        name_of(obj),
        len(mp(obj, "data")) + len(mp(obj, "binaryData")),
        age(obj, now),
    ],
)

# ---------------------------------------------------------------- volumes

_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes(modes: list[Any]) -> str:
    """``GetAccessModesAsString``: ``RWO,ROX,RWX,RWOP`` in that fixed order."""
    return ",".join(short for mode, short in _ACCESS_MODES if mode in modes)


def _pv_class(obj: Obj) -> str:
    annotation = dig(obj, "metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION)
    if isinstance(annotation, str):
        return annotation
    return txt(obj, "spec", "storageClassName")


def _claim_ref(pv: Obj) -> str:
    ref = dig(pv, "spec", "claimRef")
    if not isinstance(ref, Mapping):
        return ""
    return f"{txt(ref, 'namespace')}/{txt(ref, 'name')}"


def _pv_cells(pv: Obj, now: datetime) -> list[Any]:
    phase = "Terminating" if dig(pv, "metadata", "deletionTimestamp") else txt(pv, "status", "phase")
    return [
        name_of(pv),
        quantity(dig(pv, "spec", "capacity", "storage")),
        access_modes(lst(pv, "spec", "accessModes")),
        txt(pv, "spec", "persistentVolumeReclaimPolicy"),
        phase,
        _claim_ref(pv),
        _pv_class(pv),
        txt(pv, "spec", "volumeAttributesClassName") or UNSET,
        txt(pv, "status", "reason"),
        age(pv, now),
        txt(pv, "spec", "volumeMode") or UNSET,
    ]


PERSISTENT_VOLUME = Printer(
    (
        name_col(),
        col("Capacity", "string", doc("core.v1.PersistentVolumeSpec", "capacity")),
        col("Access Modes", "string", doc("core.v1.PersistentVolumeSpec", "accessModes")),
        col("Reclaim Policy", "string", doc("core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
        col("Status", "string", doc("core.v1.PersistentVolumeStatus", "phase")),
        col("Claim", "string", doc("core.v1.PersistentVolumeSpec", "claimRef")),
        col("StorageClass", "string", "StorageClass of the pv"),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        col("Reason", "string", doc("core.v1.PersistentVolumeStatus", "reason")),
        age_col(),
        col("VolumeMode", "string", doc("core.v1.PersistentVolumeSpec", "volumeMode"), 1),
    ),
    _pv_cells,
)


def _pvc_cells(pvc: Obj, now: datetime) -> list[Any]:
    phase = "Terminating" if dig(pvc, "metadata", "deletionTimestamp") else txt(pvc, "status", "phase")
    volume = txt(pvc, "spec", "volumeName")
    capacity = quantity(dig(pvc, "status", "capacity", "storage")) if volume else ""
    modes = access_modes(lst(pvc, "status", "accessModes")) if volume else ""
    return [
        name_of(pvc),
        phase,
        volume,
        capacity,
        modes,
        _pv_class(pvc),
        txt(pvc, "spec", "volumeAttributesClassName") or UNSET,
        age(pvc, now),
        txt(pvc, "spec", "volumeMode") or UNSET,
    ]


PERSISTENT_VOLUME_CLAIM = Printer(
    (
        name_col(),
        col("Status", "string", doc("core.v1.PersistentVolumeClaimStatus", "phase")),
        col("Volume", "string", doc("core.v1.PersistentVolumeClaimSpec", "volumeName")),
        col("Capacity", "string", doc("core.v1.PersistentVolumeClaimStatus", "capacity")),
        col("Access Modes", "string", doc("core.v1.PersistentVolumeClaimStatus", "accessModes")),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        age_col(),
        col("VolumeMode", "string", doc("core.v1.PersistentVolumeClaimSpec", "volumeMode"), 1),
    ),
    _pvc_cells,
)

# ---------------------------------------------------------------- quotas


def _quota_columns(obj: Obj) -> tuple[str, str]:
    """REQUEST and LIMIT: ``name: used/hard`` for each hard limit, ``limits.*`` in LIMIT."""
    hard, used = mp(obj, "status", "hard"), mp(obj, "status", "used")
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        text = f"{resource}: {quantity(used.get(resource))}/{quantity(hard[resource])}"
        pieces = resource.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(text)
    return ", ".join(requests), ", ".join(limits)


def _quota_cells(obj: Obj, now: datetime) -> list[Any]:
    request, limit = _quota_columns(obj)
    return [name_of(obj), request, limit, age(obj, now)]


RESOURCE_QUOTA = Printer(
    (
        name_col(),
        col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of "
            "contention on the node.",
        ),
        age_col(),
    ),
    _quota_cells,
)

PRINTERS = {
    ("", "podtemplates"): POD_TEMPLATE,
    ("", "replicationcontrollers"): REPLICATION_CONTROLLER,
    ("", "services"): SERVICE,
    ("", "endpoints"): ENDPOINTS,
    ("", "nodes"): NODE,
    ("", "namespaces"): NAMESPACE,
    ("", "secrets"): SECRET,
    ("", "serviceaccounts"): SERVICE_ACCOUNT,
    ("", "configmaps"): CONFIG_MAP,
    ("", "persistentvolumes"): PERSISTENT_VOLUME,
    ("", "persistentvolumeclaims"): PERSISTENT_VOLUME_CLAIM,
    ("", "resourcequotas"): RESOURCE_QUOTA,
}
