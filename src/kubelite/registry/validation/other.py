"""Validation of the remaining built-in kinds (a solid basic set of Kubernetes' rules).

HorizontalPodAutoscaler, PodDisruptionBudget, PriorityClass, Lease, EndpointSlice, Ingress,
IngressClass, NetworkPolicy, RBAC (Role, ClusterRole, RoleBinding, ClusterRoleBinding),
StorageClass and CustomResourceDefinition, mirroring their ``pkg/apis/*/validation``
packages and the apiextensions validation.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kubelite.registry.validation.apps import validate_positive_int_or_percent
from kubelite.registry.validation.common import (
    as_dict,
    as_int,
    as_list,
    as_str,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_path_segment_name,
    is_percent,
    is_port_num,
    is_qualified_name,
    name_is_dns_subdomain,
    name_is_path_segment,
    validate_dns1123_label,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.registry.validation.field import (
    Errs,
    Raw,
    forbidden,
    immutable,
    invalid,
    nonnegative,
    not_supported,
    required,
    too_long,
)
from kubelite.registry.validation.pods import PORT_PROTOCOLS, validate_port_num_or_name

Obj = dict[str, Any]


def _spec(obj: Obj) -> dict[str, Any]:
    return as_dict(obj.get("spec"))


def _meta(obj: Obj, old: Obj | None, namespaced: bool, name_fn: Any = name_is_dns_subdomain) -> Errs:
    if old is None:
        return validate_object_meta(obj.get("metadata"), namespaced, name_fn)
    return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


# --- autoscaling ------------------------------------------------------------------------------------


def validate_hpa(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, True)
    spec = _spec(obj)
    min_r, max_r = as_int(spec.get("minReplicas")), as_int(spec.get("maxReplicas")) or 0
    if min_r is not None and min_r < 1:
        errs.append(invalid("spec.minReplicas", min_r, "must be greater than or equal to 1"))
    if max_r < 1:
        errs.append(invalid("spec.maxReplicas", max_r, "must be greater than 0"))
    if min_r is not None and max_r < min_r:
        errs.append(invalid("spec.maxReplicas", max_r, "must be greater than or equal to `minReplicas`"))
    ref = as_dict(spec.get("scaleTargetRef"))
    for key in ("kind", "name"):
        value = as_str(ref.get(key))
        if not value:
            errs.append(required(f"spec.scaleTargetRef.{key}"))
        else:
            errs.extend(invalid(f"spec.scaleTargetRef.{key}", value, m) for m in is_path_segment_name(value))
    target = spec.get("targetCPUUtilizationPercentage")
    if isinstance(target, int) and target < 1:
        errs.append(invalid("spec.targetCPUUtilizationPercentage", target, "must be greater than 0"))
    metric_types = ("ContainerResource", "External", "Object", "Pods", "Resource")
    for i, metric in enumerate(as_list(spec.get("metrics"))):
        mtype = as_dict(metric).get("type")
        if not mtype:
            errs.append(required(f"spec.metrics[{i}].type", "must specify a metric source type"))
        elif mtype not in metric_types:
            errs.append(not_supported(f"spec.metrics[{i}].type", mtype, metric_types))
    return errs


# --- policy -----------------------------------------------------------------------------------------


def validate_pdb(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, True)
    spec = _spec(obj)
    min_a, max_u = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_a is not None and max_u is not None:
        errs.append(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key, value in (("minAvailable", min_a), ("maxUnavailable", max_u)):
        if value is None:
            continue
        errs.extend(validate_positive_int_or_percent(value, f"spec.{key}"))
        if isinstance(value, str) and not is_percent(value) and int(value[:-1]) > 100:
            errs.append(invalid(f"spec.{key}", Raw(value), "must not be greater than 100%"))
    errs.extend(validate_label_selector(spec.get("selector"), "spec.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(
            not_supported("spec.unhealthyPodEvictionPolicy", policy, ("AlwaysAllow", "IfHealthyBudget"))
        )
    return errs


# --- scheduling / coordination ----------------------------------------------------------------------

_SYSTEM_PRIORITY_CLASSES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
HIGHEST_USER_PRIORITY = 1000000000


def validate_priority_class(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, False)
    name = as_str(as_dict(obj.get("metadata")).get("name"))
    value = as_int(obj.get("value")) or 0
    if name.startswith("system-"):
        if _SYSTEM_PRIORITY_CLASSES.get(name) != value:
            errs.append(
                forbidden(
                    "metadata.name",
                    "priority class names with 'system-' prefix are reserved for "
                    f"system use only. error: {name!s} is not a known system priority class",
                )
            )
    elif value > HIGHEST_USER_PRIORITY:
        errs.append(
            forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")
        )
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported("preemptionPolicy", policy, ("PreemptLowerPriority", "Never")))
    if old is not None:
        if obj.get("value") != old.get("value"):
            errs.append(forbidden("value", "may not be changed in an update."))
        errs.extend(immutable("preemptionPolicy", obj.get("preemptionPolicy"), old.get("preemptionPolicy")))
    return errs


def validate_lease(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, True)
    spec = _spec(obj)
    duration = as_int(spec.get("leaseDurationSeconds"))
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    errs.extend(nonnegative("spec.leaseTransitions", spec.get("leaseTransitions")))
    return errs


# --- discovery and networking -----------------------------------------------------------------------

_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def validate_endpoint_slice(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, True)
    address_type = obj.get("addressType")
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in _ADDRESS_TYPES:
        errs.append(not_supported("addressType", address_type, _ADDRESS_TYPES))
    for i, ep in enumerate(as_list(obj.get("endpoints"))):
        addresses = as_list(as_dict(ep).get("addresses"))
        if not addresses:
            errs.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
        for j, addr in enumerate(addresses):
            errs.extend(_slice_address(as_str(addr), address_type, f"endpoints[{i}].addresses[{j}]"))
    for i, port in enumerate(as_list(obj.get("ports"))):
        p, pp = as_dict(port), f"ports[{i}]"
        name = as_str(p.get("name"))
        if name:
            errs.extend(validate_dns1123_label(name, pp + ".name"))
        proto = p.get("protocol")
        if proto is not None and proto not in PORT_PROTOCOLS:
            errs.append(not_supported(pp + ".protocol", proto, PORT_PROTOCOLS))
        number = as_int(p.get("port"))
        if number is not None:
            errs.extend(invalid(pp + ".port", number, m) for m in is_port_num(number))
    if old is not None:
        errs.extend(immutable("addressType", address_type, old.get("addressType")))
    return errs


def _slice_address(addr: str, address_type: Any, path: str) -> Errs:
    if address_type == "FQDN":
        return [invalid(path, addr, m) for m in is_dns1123_subdomain(addr)]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return [invalid(path, addr, "must be a valid IP address")]
    if address_type == "IPv4" and ip.version != 4:
        return [invalid(path, addr, "must be an IPv4 address")]
    if address_type == "IPv6" and ip.version != 6:
        return [invalid(path, addr, "must be an IPv6 address")]
    return []


_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def validate_ingress(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, True)
    spec = _spec(obj)
    cls = spec.get("ingressClassName")
    if cls is not None:
        errs.extend(invalid("spec.ingressClassName", cls, m) for m in is_dns1123_subdomain(as_str(cls)))
    if spec.get("defaultBackend") is not None:
        errs.extend(_ingress_backend(as_dict(spec["defaultBackend"]), "spec.defaultBackend"))
    elif not as_list(spec.get("rules")):
        errs.append(
            invalid(
                "spec.rules",
                as_list(spec.get("rules")),
                "either `defaultBackend` or `rules` must be specified",
            )
        )
    for i, rule in enumerate(as_list(spec.get("rules"))):
        errs.extend(_ingress_rule(as_dict(rule), f"spec.rules[{i}]"))
    for i, tls in enumerate(as_list(spec.get("tls"))):
        for j, host in enumerate(as_list(as_dict(tls).get("hosts"))):
            errs.extend(_ingress_host(as_str(host), f"spec.tls[{i}].hosts[{j}]"))
    return errs


def _ingress_host(host: str, path: str) -> Errs:
    try:
        ipaddress.ip_address(host)
        return [invalid(path, host, "must be a DNS name, not an IP address")]
    except ValueError:
        pass
    if host.startswith("*."):
        msgs = is_dns1123_subdomain(host[2:])
        if msgs:
            return [
                invalid(
                    path,
                    host,
                    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                    "subdomain, which must consist of lower case alphanumeric characters, '-' or "
                    "'.' and end with an alphanumeric character (e.g. '*.example.com', regex used "
                    "for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                    "[a-z0-9])?)*')",
                )
            ]
        return []
    return [invalid(path, host, m) for m in is_dns1123_subdomain(host)]


def _ingress_rule(rule: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    host = as_str(rule.get("host"))
    if host:
        errs.extend(_ingress_host(host, path + ".host"))
    http = rule.get("http")
    if http is None:
        return errs
    paths = as_list(as_dict(http).get("paths"))
    if not paths:
        errs.append(required(path + ".http.paths"))
    for j, p in enumerate(paths):
        hp, pp = as_dict(p), f"{path}.http.paths[{j}]"
        ptype = hp.get("pathType")
        if not ptype:
            errs.append(required(pp + ".pathType", "pathType must be specified"))
        elif ptype not in _PATH_TYPES:
            errs.append(not_supported(pp + ".pathType", ptype, _PATH_TYPES))
        value = as_str(hp.get("path"))
        if ptype in ("Exact", "Prefix") and not value.startswith("/"):
            errs.append(invalid(pp + ".path", value, "must be an absolute path"))
        errs.extend(_ingress_backend(as_dict(hp.get("backend")), pp + ".backend"))
    return errs


def _ingress_backend(backend: dict[str, Any], path: str) -> Errs:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [invalid(path, backend, "cannot set both resource and service backends")]
    if resource is not None:
        r = as_dict(resource)
        return [required(path + ".resource.kind")] if not as_str(r.get("kind")) else []
    if service is None:
        return [invalid(path, backend, "resource or service backend is required")]
    svc = as_dict(service)
    name = as_str(svc.get("name"))
    errs: Errs = (
        [required(path + ".service.name")]
        if not name
        else [invalid(path + ".service.name", name, m) for m in is_dns1035_label(name)]
    )
    port = as_dict(svc.get("port"))
    if port.get("name") and port.get("number"):
        errs.append(invalid(path + ".service.port", port, "cannot set both port name & port number"))
    elif port.get("name"):
        errs.extend(validate_port_num_or_name(port["name"], path + ".service.port.name"))
    elif port.get("number") is not None:
        errs.extend(validate_port_num_or_name(port["number"], path + ".service.port.number"))
    else:
        errs.append(required(path + ".service.port", "port name or number is required"))
    return errs


def validate_ingress_class(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, False)
    controller = as_str(_spec(obj).get("controller"))
    if not controller:
        errs.append(required("spec.controller"))
    elif len(controller) > 250:
        errs.append(too_long("spec.controller", 250))
    elif "/" not in controller or not controller.split("/", 1)[0] or not controller.split("/", 1)[1]:
        errs.append(
            invalid("spec.controller", controller, 'must be a domain-prefixed path (such as "acme.io/foo")')
        )
    if old is not None:
        errs.extend(immutable("spec.controller", _spec(obj).get("controller"), _spec(old).get("controller")))
    return errs


def validate_network_policy(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, True)
    spec = _spec(obj)
    errs.extend(validate_label_selector(spec.get("podSelector"), "spec.podSelector"))
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            r, rp = as_dict(rule), f"spec.{direction}[{i}]"
            for j, port in enumerate(as_list(r.get("ports"))):
                errs.extend(_np_port(as_dict(port), f"{rp}.ports[{j}]"))
            for j, peer in enumerate(as_list(r.get(peer_key))):
                errs.extend(_np_peer(as_dict(peer), f"{rp}.{peer_key}[{j}]"))
    types = as_list(spec.get("policyTypes"))
    for i, ptype in enumerate(types):
        if ptype not in ("Ingress", "Egress"):
            errs.append(not_supported(f"spec.policyTypes[{i}]", ptype, ("Ingress", "Egress")))
    if len(types) > 2:
        errs.append(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
    return errs


def _np_port(port: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    proto = port.get("protocol")
    if proto is not None and proto not in PORT_PROTOCOLS:
        errs.append(not_supported(path + ".protocol", proto, PORT_PROTOCOLS))
    if port.get("port") is not None:
        errs.extend(validate_port_num_or_name(port["port"], path + ".port"))
    end = port.get("endPort")
    if end is not None:
        if not isinstance(port.get("port"), int):
            errs.append(required(path + ".port", "must be specified when endPort is specified"))
        elif isinstance(end, int) and end < port["port"]:
            errs.append(invalid(path + ".endPort", end, "must be greater than or equal to `port`"))
    return errs


def _np_peer(peer: dict[str, Any], path: str) -> Errs:
    selectors = [k for k in ("podSelector", "namespaceSelector") if peer.get(k) is not None]
    errs: Errs = []
    for key in selectors:
        errs.extend(validate_label_selector(peer[key], f"{path}.{key}"))
    block = peer.get("ipBlock")
    if block is not None:
        if selectors:
            errs.append(forbidden(path, "may not specify both podSelector/namespaceSelector and ipBlock"))
        cidr = as_str(as_dict(block).get("cidr"))
        if not cidr:
            errs.append(required(path + ".ipBlock.cidr"))
        else:
            errs.extend(_cidr(cidr, path + ".ipBlock.cidr"))
    elif not selectors:
        errs.append(required(path, "must specify a peer"))
    return errs


def _cidr(value: str, path: str) -> Errs:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


# --- RBAC -------------------------------------------------------------------------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"


def validate_role(obj: Obj, old: Obj | None, namespaced: bool = True) -> Errs:
    errs = _meta(obj, old, namespaced, name_is_path_segment)
    for i, rule in enumerate(as_list(obj.get("rules"))):
        errs.extend(_policy_rule(as_dict(rule), f"rules[{i}]", namespaced))
    aggregation = obj.get("aggregationRule")
    if not namespaced and isinstance(aggregation, dict):
        selectors = as_list(aggregation.get("clusterRoleSelectors"))
        if not selectors:
            errs.append(
                required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        for i, sel in enumerate(selectors):
            errs.extend(validate_label_selector(sel, f"aggregationRule.clusterRoleSelectors[{i}]"))
    return errs


def validate_cluster_role(obj: Obj, old: Obj | None) -> Errs:
    return validate_role(obj, old, namespaced=False)


def _policy_rule(rule: dict[str, Any], path: str, namespaced: bool) -> Errs:
    errs: Errs = []
    if not as_list(rule.get("verbs")):
        errs.append(required(path + ".verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.append(
                invalid(path + ".nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
            )
        if (
            as_list(rule.get("apiGroups"))
            or as_list(rule.get("resources"))
            or as_list(rule.get("resourceNames"))
        ):
            errs.append(
                invalid(
                    path + ".nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(required(path + ".apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(required(path + ".resources", "resource rules must supply at least one resource"))
    return errs


def validate_role_binding(obj: Obj, old: Obj | None, namespaced: bool = True) -> Errs:
    errs = _meta(obj, old, namespaced, name_is_path_segment)
    ref = as_dict(obj.get("roleRef"))
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (RBAC_GROUP,)))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = as_str(ref.get("name"))
    if not name:
        errs.append(required("roleRef.name"))
    else:
        errs.extend(invalid("roleRef.name", name, m) for m in is_path_segment_name(name))
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        errs.extend(_subject(as_dict(subject), f"subjects[{i}]", namespaced))
    if old is not None and obj.get("roleRef") != old.get("roleRef"):
        errs.append(invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    return errs


def validate_cluster_role_binding(obj: Obj, old: Obj | None) -> Errs:
    return validate_role_binding(obj, old, namespaced=False)


def _subject(subject: dict[str, Any], path: str, namespaced: bool) -> Errs:
    errs: Errs = []
    name, kind, group = as_str(subject.get("name")), subject.get("kind"), as_str(subject.get("apiGroup"))
    if not name:
        errs.append(required(path + ".name"))
    if kind == "ServiceAccount":
        if name:
            errs.extend(invalid(path + ".name", name, m) for m in name_is_dns_subdomain(name, False))
        if group:
            errs.append(not_supported(path + ".apiGroup", group, ("",)))
        if not namespaced and not as_str(subject.get("namespace")):
            errs.append(required(path + ".namespace"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errs.append(not_supported(path + ".apiGroup", group, (RBAC_GROUP,)))
    else:
        errs.append(not_supported(path + ".kind", kind or "", ("ServiceAccount", "User", "Group")))
    return errs


# --- storage ----------------------------------------------------------------------------------------


def validate_storage_class(obj: Obj, old: Obj | None) -> Errs:
    errs = _meta(obj, old, False)
    provisioner = as_str(obj.get("provisioner"))
    if not provisioner:
        errs.append(required("provisioner"))
    elif len(provisioner) > 63:
        errs.append(too_long("provisioner", 63))
    else:
        errs.extend(invalid("provisioner", provisioner, m) for m in is_qualified_name(provisioner.lower()))
    policy = obj.get("reclaimPolicy")
    if policy is not None and policy not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", policy, ("Delete", "Retain")))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(required("volumeBindingMode"))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
    if old is not None:
        for key in ("parameters", "provisioner", "reclaimPolicy"):
            if obj.get(key) != old.get(key):
                errs.append(forbidden(key, f"updates to {key} are forbidden."))
        errs.extend(
            immutable("volumeBindingMode", obj.get("volumeBindingMode"), old.get("volumeBindingMode"))
        )
    return errs


# --- apiextensions ----------------------------------------------------------------------------------


def validate_crd(obj: Obj, old: Obj | None) -> Errs:
    """Names, group, scope and versions of a CustomResourceDefinition (``apiextensions/v1``)."""
    errs = _meta(obj, old, False)
    spec = _spec(obj)
    names = as_dict(spec.get("names"))
    group, plural = as_str(spec.get("group")), as_str(names.get("plural"))
    name = as_str(as_dict(obj.get("metadata")).get("name"))
    if name != f"{plural}.{group}":
        errs.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(required("spec.group"))
    else:
        errs.extend(invalid("spec.group", group, m) for m in is_dns1123_subdomain(group))
        if "." not in group:
            errs.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope")
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    errs.extend(_crd_names(names))
    errs.extend(_crd_versions(as_list(spec.get("versions"))))
    if old is not None:
        errs.extend(immutable("spec.scope", scope, _spec(old).get("scope")))
    return errs


def _crd_names(names: dict[str, Any]) -> Errs:
    errs: Errs = []
    for key in ("plural", "singular"):
        value = as_str(names.get(key))
        if value or key == "plural":
            if not value:
                errs.append(required("spec.names.plural"))
            errs.extend(invalid(f"spec.names.{key}", value, m) for m in is_dns1123_label(value) if value)
    for key in ("kind", "listKind"):
        value = as_str(names.get(key))
        if not value and key == "kind":
            errs.append(required("spec.names.kind"))
        elif value:
            errs.extend(invalid(f"spec.names.{key}", value, m) for m in is_dns1035_label(value.lower()))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(
            invalid("spec.names.listKind", names.get("listKind"), "kind and listKind may not be the same")
        )
    return errs


def _crd_versions(versions: list[Any]) -> Errs:
    errs: Errs = []
    if not versions:
        return [invalid("spec.versions", versions, "must have exactly one version marked as storage version")]
    storage = 0
    seen: set[str] = set()
    for i, version in enumerate(versions):
        v, p = as_dict(version), f"spec.versions[{i}]"
        vname = as_str(v.get("name"))
        errs.extend(invalid(p + ".name", vname, m) for m in is_dns1035_label(vname))
        if vname in seen:
            errs.append(invalid("spec.versions", versions, "must contain unique version names"))
        seen.add(vname)
        storage += 1 if v.get("storage") is True else 0
        if as_dict(v.get("schema")).get("openAPIV3Schema") is None:
            errs.append(required(p + ".schema.openAPIV3Schema", "schemas are required"))
    if storage != 1:
        errs.append(
            invalid("spec.versions", versions, "must have exactly one version marked as storage version")
        )
    if not any(as_dict(v).get("served") is True for v in versions):
        errs.append(invalid("spec.versions", versions, "must have at least one version marked as served"))
    return errs
