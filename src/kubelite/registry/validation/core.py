"""Validation of the core (``v1``) kinds other than the pod spec itself.

Mirrors ``pkg/apis/core/validation/validation.go``: Pod, PodTemplate, ReplicationController,
Service, ConfigMap, Secret, Namespace, Node, PersistentVolume(Claim), ServiceAccount,
ResourceQuota, LimitRange, Endpoints and Event, on create and update.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from typing import Any

from kubelite.registry.validation import quantity
from kubelite.registry.validation.common import (
    as_dict,
    as_int,
    as_list,
    as_str,
    is_config_map_key,
    is_label_value,
    is_port_num,
    is_qualified_name,
    map_selector_matches,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_annotations,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_label_name,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
    validate_qualified_name,
)
from kubelite.registry.validation.field import (
    Errs,
    duplicate,
    forbidden,
    immutable,
    invalid,
    nonnegative,
    not_supported,
    required,
    too_long,
)
from kubelite.registry.validation.pods import (
    PORT_PROTOCOLS,
    TAINT_EFFECTS,
    VOLUME_SOURCES,
    validate_pod_create_spec,
    validate_pod_spec,
    validate_pod_spec_update,
    validate_port_num_or_name,
)

Obj = dict[str, Any]
MAX_SECRET_SIZE = 1024 * 1024
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_IMMUTABLE_SET = "field is immutable when `immutable` is set"


def _meta(obj: Obj) -> dict[str, Any]:
    return as_dict(obj.get("metadata"))


def _spec(obj: Obj) -> dict[str, Any]:
    return as_dict(obj.get("spec"))


# --- pods and templates -----------------------------------------------------------------------------


def validate_pod(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    errs.extend(validate_pod_create_spec(obj))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(validate_pod_spec_update(_spec(obj), _spec(old)))
    return errs


def validate_pod_template_spec(template: Any, path: str) -> Errs:
    """``ValidatePodTemplateSpec``: template labels/annotations and the pod spec."""
    t = as_dict(template)
    meta = as_dict(t.get("metadata"))
    errs = validate_labels(meta.get("labels"), path + ".metadata.labels")
    errs.extend(validate_annotations(meta.get("annotations"), path + ".metadata.annotations"))
    spec = as_dict(t.get("spec"))
    errs.extend(validate_pod_spec(spec, path + ".spec"))
    if spec.get("ephemeralContainers"):
        errs.append(
            forbidden(path + ".spec.ephemeralContainers", "ephemeral containers not allowed in pod template")
        )
    return errs


def validate_pod_template(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    errs.extend(validate_pod_template_spec(obj.get("template"), "template"))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs


def validate_template_for_controller(template: Any, path: str, kind: str, selector_ok: bool) -> Errs:
    """Template checks shared by RC/RS/Deployment/DaemonSet: spec, restartPolicy Always, no deadline."""
    errs = validate_pod_template_spec(template, path)
    spec = as_dict(as_dict(template).get("spec"))
    if spec.get("restartPolicy") != "Always":
        errs.append(not_supported(path + ".spec.restartPolicy", spec.get("restartPolicy") or "", ("Always",)))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                path + ".spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"
            )
        )
    return errs


def validate_replication_controller(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    spec = _spec(obj)
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    selector = as_dict(spec.get("selector"))
    if not selector:
        errs.append(required("spec.selector"))
    errs.extend(nonnegative("spec.replicas", spec.get("replicas")))
    template = spec.get("template")
    if template is None:
        errs.append(required("spec.template"))
        return errs
    labels = as_dict(as_dict(as_dict(template).get("metadata")).get("labels"))
    if selector and not map_selector_matches(selector, labels):
        errs.append(
            invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    errs.extend(validate_template_for_controller(template, "spec.template", "ReplicationController", True))
    return errs


# --- services ---------------------------------------------------------------------------------------


def validate_service(obj: Obj, old: Obj | None) -> Errs:
    """``ValidateService`` (+ ``ValidateServiceUpdate``); cluster IP allocation is not done here."""
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns1035_label)
    spec = _spec(obj)
    stype = spec.get("type")
    headless = as_list(spec.get("clusterIPs")) == ["None"] or spec.get("clusterIP") == "None"
    ports = as_list(spec.get("ports"))
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports"))
    errs.extend(_service_type_rules(spec, stype, headless, ports))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs.extend(_validate_service_port(as_dict(port), len(ports) > 1, names, f"spec.ports[{i}]", stype))
    errs.extend(_service_duplicate_ports(ports))
    if spec.get("selector"):
        errs.extend(validate_labels(spec["selector"], "spec.selector"))
    errs.extend(_session_affinity(spec))
    errs.extend(_cluster_ip_fields(spec, stype))
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs.extend(_ip_errs(as_str(ip), f"spec.externalIPs[{i}]"))
    if not stype:
        errs.append(required("spec.type"))
    elif stype not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, SERVICE_TYPES))
    errs.extend(_traffic_policies(spec, stype))
    if old is not None:
        errs = (
            validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
            + _service_update(spec, _spec(old))
            + errs
        )
    return errs


def _service_type_rules(spec: dict[str, Any], stype: Any, headless: bool, ports: list[Any]) -> Errs:
    errs: Errs = []
    first_ip = as_list(spec.get("clusterIPs"))[:1] or [spec.get("clusterIP", "")]
    if stype == "LoadBalancer":
        for i, port in enumerate(ports):
            if as_dict(port).get("port") == 10250:
                errs.append(
                    invalid(
                        f"spec.ports[{i}]",
                        10250,
                        "may not expose port 10250 externally since it is used by kubelet",
                    )
                )
        if headless:
            errs.append(
                invalid(
                    "spec.clusterIPs[0]", first_ip[0], "may not be set to 'None' for LoadBalancer services"
                )
            )
        if spec.get("allocateLoadBalancerNodePorts") is None:
            errs.append(required("allocateLoadBalancerNodePorts"))
    elif stype == "NodePort" and headless:
        errs.append(
            invalid("spec.clusterIPs[0]", first_ip[0], "may not be set to 'None' for NodePort services")
        )
    elif stype == "ExternalName":
        if as_list(spec.get("clusterIPs")):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if as_list(spec.get("ipFamilies")):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName")).removesuffix(".")
        if cname:
            errs.extend(validate_dns1123_subdomain(cname, "spec.externalName"))
        else:
            errs.append(required("spec.externalName"))
    if stype != "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is not None:
            errs.append(
                forbidden(
                    "spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"
                )
            )
        if spec.get("loadBalancerClass") is not None:
            errs.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
        if as_list(spec.get("loadBalancerSourceRanges")):
            errs.append(
                forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
            )
    elif spec.get("loadBalancerClass") is not None:
        errs.extend(validate_qualified_name(as_str(spec.get("loadBalancerClass")), "spec.loadBalancerClass"))
    return errs


def _validate_service_port(
    port: dict[str, Any], require_name: bool, names: set[str], path: str, stype: Any
) -> Errs:
    errs: Errs = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errs.append(required(path + ".name"))
    elif name:
        errs.extend(validate_dns1123_label(name, path + ".name"))
        if name in names:
            errs.append(duplicate(path + ".name", name))
        names.add(name)
    number = as_int(port.get("port")) or 0
    errs.extend(invalid(path + ".port", number, m) for m in is_port_num(number))
    proto = port.get("protocol")
    if not proto:
        errs.append(required(path + ".protocol"))
    elif proto not in PORT_PROTOCOLS:
        errs.append(not_supported(path + ".protocol", proto, PORT_PROTOCOLS))
    errs.extend(validate_port_num_or_name(port.get("targetPort"), path + ".targetPort"))
    if port.get("appProtocol") is not None:
        errs.extend(validate_qualified_name(as_str(port.get("appProtocol")), path + ".appProtocol"))
    node_port = as_int(port.get("nodePort")) or 0
    if node_port:
        if stype == "ClusterIP":
            errs.append(forbidden(path + ".nodePort", "may not be used when `type` is 'ClusterIP'"))
        elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
            errs.append(
                invalid(
                    path + ".nodePort",
                    node_port,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                )
            )
    return errs


def _service_duplicate_ports(ports: list[Any]) -> Errs:
    errs: Errs = []
    node_ports: set[tuple[Any, Any]] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        p = as_dict(port)
        if p.get("nodePort"):
            key = (p.get("protocol"), p.get("nodePort"))
            if key in node_ports:
                errs.append(duplicate(f"spec.ports[{i}].nodePort", p.get("nodePort")))
            node_ports.add(key)
        key = (p.get("protocol"), p.get("port"))
        if key in seen:
            errs.append(duplicate(f"spec.ports[{i}]", {"port": p.get("port"), "protocol": p.get("protocol")}))
        seen.add(key)
    return errs


def _session_affinity(spec: dict[str, Any]) -> Errs:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None":
        return (
            [forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")]
            if config
            else []
        )
    timeout = as_dict(as_dict(config).get("clientIP")).get("timeoutSeconds")
    if timeout is None:
        return [
            required(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "when session affinity type is ClientIP"
            )
        ]
    if not isinstance(timeout, int) or not 0 < timeout <= 86400:
        return [
            invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            )
        ]
    return []


def _ip_errs(value: str, path: str) -> Errs:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def _cluster_ip_fields(spec: dict[str, Any], stype: Any) -> Errs:
    if stype == "ExternalName":
        return []
    errs: Errs = []
    cluster_ip, cluster_ips = as_str(spec.get("clusterIP")), as_list(spec.get("clusterIPs"))
    if cluster_ip:
        if not cluster_ips:
            errs.append(required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errs.append(invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    elif cluster_ips:
        errs.append(
            invalid("spec.clusterIPs", cluster_ips, "must be empty when `clusterIP` is not specified")
        )
    families = as_list(spec.get("ipFamilies"))
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6")))
        if fam in families[:i]:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
    policy = spec.get("ipFamilyPolicy")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, policies))
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                errs.append(
                    invalid("spec.clusterIPs", cluster_ips, "'None' must be the first and only value")
                )
            continue
        errs.extend(_ip_errs(as_str(ip), f"spec.clusterIPs[{i}]"))
    if len(cluster_ips) > 2:
        errs.append(invalid("spec.clusterIPs", cluster_ips, "may only hold up to 2 values"))
    return errs


def _traffic_policies(spec: dict[str, Any], stype: Any) -> Errs:
    errs: Errs = []
    external = stype in ("NodePort", "LoadBalancer") or bool(as_list(spec.get("externalIPs")))
    etp = spec.get("externalTrafficPolicy")
    if not external:
        if etp:
            errs.append(
                invalid(
                    "spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"
                )
            )
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    hc = as_int(spec.get("healthCheckNodePort")) or 0
    if hc and not (stype == "LoadBalancer" and etp == "Local"):
        errs.append(
            invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        )
    itp = spec.get("internalTrafficPolicy")
    if itp is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.append(required("spec.internalTrafficPolicy"))
    elif itp is not None and itp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    td = spec.get("trafficDistribution")
    if td is not None and td != "PreferClose":
        errs.append(not_supported("spec.trafficDistribution", td, ("PreferClose",)))
    return errs


def _service_update(new: dict[str, Any], old: dict[str, Any]) -> Errs:
    """Cluster IPs may not change once set (except to/from ExternalName and headless)."""
    if new.get("type") == "ExternalName" or old.get("type") == "ExternalName":
        return []
    new_ips, old_ips = as_list(new.get("clusterIPs")), as_list(old.get("clusterIPs"))
    if new_ips == ["None"] and old_ips == ["None"]:
        return []
    errs: Errs = []
    if len(new_ips) == len(old_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            errs.append(invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    if (
        old.get("type") == "LoadBalancer"
        and new.get("type") == "LoadBalancer"
        and (new.get("loadBalancerClass") != old.get("loadBalancerClass"))
    ):
        errs.append(
            invalid("spec.loadBalancerClass", new.get("loadBalancerClass"), "may not change once set")
        )
    return errs


# --- configmaps and secrets -------------------------------------------------------------------------


def validate_config_map(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    total = 0
    for key in sorted(data):
        errs.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(key))
        if key in binary:
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(as_str(data[key]).encode())
    for key in sorted(binary):
        errs.extend(invalid(f"binaryData[{key}]", key, m) for m in is_config_map_key(key))
        total += _decoded_len(binary[key])
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("", MAX_SECRET_SIZE))
    if old is not None:
        errs = (
            validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
            + _immutable_data(obj, old)
            + errs
        )
    return errs


def _immutable_data(obj: Obj, old: Obj) -> Errs:
    if old.get("immutable") is not True:
        return []
    errs: Errs = []
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", _IMMUTABLE_SET))
    for key in ("data", "binaryData"):
        if (obj.get(key) or {}) != (old.get(key) or {}):
            errs.append(forbidden(key, _IMMUTABLE_SET))
    return errs


def _decoded_len(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    return len(value) * 3 // 4 - value[-2:].count("=")


def secret_data_error(obj: Obj) -> str | None:
    """The decode error kube-apiserver reports for a non-base64 ``data`` value, if any."""
    for key, value in as_dict(obj.get("data")).items():
        if not isinstance(value, str):
            return f"json: cannot unmarshal into Go struct field Secret.data of type []uint8 (key {key!r})"
        try:
            base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
        except (binascii.Error, ValueError):
            return f"illegal base64 data at input byte {_bad_base64_offset(value)}"
    return None


def _bad_base64_offset(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(value):
        if ch == "=":
            return i if len(value) % 4 else max(i - 1, 0)
        if ch not in alphabet:
            return i
    return len(value) - len(value) % 4


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    data = as_dict(obj.get("data"))
    total = 0
    for key in sorted(data):
        errs.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(key))
        total += _decoded_len(data[key])
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    bad = secret_data_error(obj)
    if bad is not None:
        errs.append(invalid("data", "<secret contents redacted>", bad))
    errs.extend(_secret_type_rules(obj, data))
    if old is not None:
        prefix = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        prefix.extend(immutable("type", obj.get("type"), old.get("type")))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                prefix.append(forbidden("immutable", _IMMUTABLE_SET))
            if (obj.get("data") or {}) != (old.get("data") or {}):
                prefix.append(forbidden("data", _IMMUTABLE_SET))
        errs = prefix + errs
    return errs


def _secret_type_rules(obj: Obj, data: dict[str, Any]) -> Errs:
    stype = obj.get("type")
    errs: Errs = []
    if stype == "kubernetes.io/service-account-token":
        annotations = as_dict(_meta(obj).get("annotations"))
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required("data[username]"), required("data[password]")]
    elif stype in _SECRET_REQUIRED_KEYS:
        for key in _SECRET_REQUIRED_KEYS[stype]:
            if key not in data or (stype == "kubernetes.io/ssh-auth" and not data[key]):
                errs.append(required(f"data[{key}]"))
        if stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson") and not errs:
            errs.extend(_docker_json(data, _SECRET_REQUIRED_KEYS[stype][0]))
    return errs


def _docker_json(data: dict[str, Any], key: str) -> Errs:
    try:
        raw = base64.b64decode(as_str(data[key]))
        parsed = json.loads(raw)
        if not isinstance(parsed, dict):
            raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
    except (ValueError, binascii.Error) as exc:
        return [invalid(f"data[{key}]", "<secret contents redacted>", str(exc))]
    return []


# --- namespaces, nodes, service accounts ------------------------------------------------------------


def validate_namespace(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), False, name_is_dns_label)
    for f in as_list(_spec(obj).get("finalizers")):
        value = as_str(f)
        errs.extend(invalid("spec.finalizers", value, m) for m in is_qualified_name(value))
        if "/" not in value and value != "kubernetes":
            errs.append(
                invalid(
                    "spec.finalizers",
                    value,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    if old is not None:
        return validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs


def validate_node(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), False, name_is_dns_subdomain)
    spec = _spec(obj)
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(as_list(spec.get("taints"))):
        t, p = as_dict(taint), f"spec.taints[{i}]"
        errs.extend(validate_label_name(as_str(t.get("key")), p + ".key"))
        value = as_str(t.get("value"))
        if value:
            errs.extend(invalid(p + ".value", value, m) for m in is_label_value(value))
        effect = as_str(t.get("effect"))
        if not effect:
            errs.append(required(p + ".effect"))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(p + ".effect", effect, TAINT_EFFECTS))
        key = (as_str(t.get("key")), effect)
        if key in seen:
            errs.append(duplicate(p, t))
        seen.add(key)
    for i, cidr in enumerate(as_list(spec.get("podCIDRs"))):
        errs.extend(_cidr_errs(as_str(cidr), f"spec.podCIDRs[{i}]"))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        old_cidrs = as_list(_spec(old).get("podCIDRs"))
        if old_cidrs and as_list(spec.get("podCIDRs")) != old_cidrs:
            errs.append(
                forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
            )
    return errs


def _cidr_errs(value: str, path: str) -> Errs:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


def validate_service_account(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs


# --- storage ----------------------------------------------------------------------------------------


def _access_modes(modes: list[Any], path: str, detail: str) -> Errs:
    errs: Errs = []
    if not modes:
        errs.append(required(path, detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and any(m in ACCESS_MODES and m != "ReadWriteOncePod" for m in modes):
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def validate_pvc_spec(spec: dict[str, Any], path: str) -> Errs:
    """``ValidatePersistentVolumeClaimSpec``: access modes, a positive storage request, class, mode."""
    errs = _access_modes(
        as_list(spec.get("accessModes")), path + ".accessModes", "at least 1 access mode is required"
    )
    if spec.get("selector") is not None:
        errs.extend(validate_label_selector(spec["selector"], path + ".selector"))
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    storage_path = path + ".resources[storage]"
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        value = quantity.value_of(requests["storage"])
        if value is None:
            errs.append(invalid(storage_path, str(requests["storage"]), quantity.QUANTITY_REGEX_MESSAGE))
        elif value <= 0:
            errs.append(
                invalid(storage_path, quantity.canonical(requests["storage"]), "must be greater than zero")
            )
    sc = spec.get("storageClassName")
    if isinstance(sc, str) and sc:
        errs.extend(invalid(path + ".storageClassName", sc, m) for m in name_is_dns_subdomain(sc, False))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        errs.append(not_supported(path + ".volumeMode", mode, ("Block", "Filesystem")))
    return errs


def validate_pvc(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    errs.extend(validate_pvc_spec(_spec(obj), "spec"))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(_pvc_update(obj, old))
    return errs


def _pvc_update(obj: Obj, old: Obj) -> Errs:
    new_spec, old_spec = dict(_spec(obj)), dict(_spec(old))
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec.get("volumeName")
        if old_spec["volumeName"] is None:
            old_spec.pop("volumeName")
    new_req = as_dict(as_dict(new_spec.get("resources")).get("requests"))
    old_req = as_dict(as_dict(old_spec.get("resources")).get("requests"))
    errs: Errs = []
    cmp_new = {
        **new_spec,
        "resources": {
            **as_dict(new_spec.get("resources")),
            "requests": {**new_req, "storage": old_req.get("storage")},
        },
    }
    cmp_old = {
        **old_spec,
        "resources": {
            **as_dict(old_spec.get("resources")),
            "requests": {**old_req, "storage": old_req.get("storage")},
        },
    }
    for spec in (cmp_new, cmp_old):
        spec.pop("volumeAttributesClassName", None)
    if cmp_new != cmp_old:
        errs.append(
            forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims",
            )
        )
    new_size, old_size = quantity.value_of(new_req.get("storage")), quantity.value_of(old_req.get("storage"))
    if new_size is not None and old_size is not None and new_size < old_size:
        status_size = quantity.value_of(as_dict(as_dict(old.get("status")).get("capacity")).get("storage"))
        if new_size <= (status_size or 0):
            errs.append(
                forbidden("spec.resources.requests.storage", "field can not be less than status.capacity")
            )
    return errs


def validate_pv(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), False, name_is_dns_subdomain)
    spec = _spec(obj)
    errs.extend(_access_modes(as_list(spec.get("accessModes")), "spec.accessModes", ""))
    capacity = as_dict(spec.get("capacity"))
    if not capacity:
        errs.append(required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported("spec.capacity", capacity, ("storage",)))
    for name in sorted(capacity):
        value = quantity.value_of(capacity[name])
        if value is not None and value <= 0:
            errs.append(
                invalid(
                    f"spec.capacity[{name}]", quantity.canonical(capacity[name]), "must be greater than zero"
                )
            )
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in ("Delete", "Recycle", "Retain"):
        errs.append(
            not_supported("spec.persistentVolumeReclaimPolicy", policy, ("Delete", "Recycle", "Retain"))
        )
    sources = [k for k in (*VOLUME_SOURCES, "local") if spec.get(k) is not None]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    for key in sources[1:]:
        errs.append(forbidden(f"spec.{key}", "may not specify more than 1 volume type"))
    if "hostPath" in sources and not as_str(as_dict(spec["hostPath"]).get("path")):
        errs.append(required("spec.hostPath.path"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        errs.append(not_supported("spec.volumeMode", mode, ("Block", "Filesystem")))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(immutable("volumeMode", spec.get("volumeMode"), _spec(old).get("volumeMode")))
    return errs


# --- quotas, limits, endpoints, events --------------------------------------------------------------

_QUOTA_SCOPES = (
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
)


def validate_resource_quota(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    hard = as_dict(_spec(obj).get("hard"))
    for name in sorted(hard):
        p = f"spec.hard[{name}]"
        errs.extend(invalid(p, name, m) for m in is_qualified_name(name))
        value = quantity.value_of(hard[name])
        if value is None:
            errs.append(invalid(p, str(hard[name]), quantity.QUANTITY_REGEX_MESSAGE))
        elif value < 0:
            errs.append(invalid(p, quantity.canonical(hard[name]), "must be greater than or equal to 0"))
    for i, scope in enumerate(as_list(_spec(obj).get("scopes"))):
        if scope not in _QUOTA_SCOPES:
            errs.append(not_supported(f"spec.scopes[{i}]", scope, _QUOTA_SCOPES))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs


def validate_limit_range(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    for i, item in enumerate(as_list(_spec(obj).get("limits"))):
        it, p = as_dict(item), f"spec.limits[{i}]"
        ltype = as_str(it.get("type"))
        errs.extend(invalid(p + ".type", ltype, m) for m in is_qualified_name(ltype))
        if "/" not in ltype and ltype not in ("Pod", "Container", "PersistentVolumeClaim") and ltype:
            errs.append(invalid(p + ".type", ltype, "must be a standard limit type or fully qualified"))
        mins, maxs = as_dict(it.get("min")), as_dict(it.get("max"))
        for name in sorted(set(mins) & set(maxs)):
            lo, hi = quantity.value_of(mins[name]), quantity.value_of(maxs[name])
            if lo is not None and hi is not None and lo > hi:
                errs.append(
                    invalid(
                        f"{p}.min[{name}]",
                        quantity.canonical(mins[name]),
                        f"min value {quantity.canonical(mins[name])} is greater than max value "
                        f"{quantity.canonical(maxs[name])}",
                    )
                )
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs


def validate_endpoints(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    for i, subset in enumerate(as_list(obj.get("subsets"))):
        s, p = as_dict(subset), f"subsets[{i}]"
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(as_list(s.get(key))):
                errs.extend(_ip_errs(as_str(as_dict(addr).get("ip")), f"{p}.{key}[{j}].ip"))
        for j, port in enumerate(as_list(s.get("ports"))):
            pt, pp = as_dict(port), f"{p}.ports[{j}]"
            name = as_str(pt.get("name"))
            if name:
                errs.extend(validate_dns1123_label(name, pp + ".name"))
            number = as_int(pt.get("port")) or 0
            errs.extend(invalid(pp + ".port", number, m) for m in is_port_num(number))
            proto = pt.get("protocol")
            if not proto:
                errs.append(required(pp + ".protocol"))
            elif proto not in PORT_PROTOCOLS:
                errs.append(not_supported(pp + ".protocol", proto, PORT_PROTOCOLS))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs


def validate_event(obj: Obj, old: Obj | None) -> Errs:
    """``ValidateEventCreate`` for core/v1 events: the involved object's namespace must match."""
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    ns = as_str(_meta(obj).get("namespace"))
    involved_ns = as_str(as_dict(obj.get("involvedObject")).get("namespace"))
    if (involved_ns and involved_ns != ns) or (not involved_ns and ns not in ("", "default")):
        errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
    return errs
