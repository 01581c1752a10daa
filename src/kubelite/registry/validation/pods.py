"""Pod spec validation, as ``ValidatePodSpec`` in ``pkg/apis/core/validation`` does it.

Covers what users hit: containers (names, images, ports, env, mounts, probes, resources,
pull policy), volumes (names, exactly one source, the common sources' required fields),
restart/DNS policies, scheduling (nodeSelector, affinity, tolerations, spread constraints)
and the pod update rules (only images, activeDeadlineSeconds, tolerations additions...).
Exotic volume plugins and Windows/seccomp/AppArmor details are not checked.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson

from kubelite.registry.validation import quantity
from kubelite.registry.validation.common import (
    as_dict,
    as_int,
    as_list,
    as_str,
    inclusive_range_error,
    is_config_map_key,
    is_dns1123_subdomain,
    is_http_header_name,
    is_label_value,
    is_port_name,
    is_port_num,
    is_qualified_name,
    is_relaxed_env_var_name,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_label_name,
    validate_label_selector,
    validate_labels,
    validate_qualified_name,
)
from kubelite.registry.validation.field import (
    Errs,
    duplicate,
    forbidden,
    invalid,
    nonnegative,
    not_found,
    not_supported,
    required,
)

MAX_INT32 = 2**31 - 1
PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_MATCH_ALL_MSG = 'operator must be Exists when `key` is empty, which means "match all values and all keys"'
_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_HANDLER_TYPES = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")
_PROBE_HANDLER_TYPES = ("exec", "httpGet", "tcpSocket", "grpc")
VOLUME_SOURCES = (  # in the order validateVolumeSource checks them
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
    "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte",
    "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk",
    "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO", "csi", "ephemeral", "image",
)  # fmt: skip
_ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)  # fmt: skip
_VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
_RESOURCE_FIELD_REFS = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
_UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


# --- pod spec ---------------------------------------------------------------------------------------


def validate_pod_spec(spec: Any, path: str, pod_name: str = "", is_pod: bool = False) -> Errs:
    """``ValidatePodSpec``; ``is_pod`` adds the checks only made for Pods (not templates)."""
    s = as_dict(spec)
    errs: Errs = []
    if s.get("terminationGracePeriodSeconds") is None:
        errs.append(required(path + ".terminationGracePeriodSeconds"))
    grace = as_int(s.get("terminationGracePeriodSeconds"))
    volumes = _validate_volumes(as_list(s.get("volumes")), path + ".volumes", pod_name)
    errs.extend(volumes[1])
    vols = volumes[0]
    containers = as_list(s.get("containers"))
    errs.extend(_validate_containers(containers, vols, grace, path + ".containers", s))
    errs.extend(
        _validate_init_containers(
            as_list(s.get("initContainers")), containers, vols, grace, path + ".initContainers", s
        )
    )
    errs.extend(_validate_host_network(s, path, is_pod))
    errs.extend(_enum(s.get("restartPolicy"), RESTART_POLICIES, path + ".restartPolicy"))
    errs.extend(_enum(s.get("dnsPolicy"), DNS_POLICIES, path + ".dnsPolicy"))
    if s.get("nodeSelector"):
        errs.extend(validate_labels(s["nodeSelector"], path + ".nodeSelector"))
    errs.extend(_validate_pod_security_context(as_dict(s.get("securityContext")), path + ".securityContext"))
    for i, ref in enumerate(as_list(s.get("imagePullSecrets"))):
        if isinstance(ref, dict) and set(ref) - {"name"}:
            errs.append(invalid(f"{path}.imagePullSecrets[{i}]", ref, "only name may be set"))
    if s.get("affinity"):
        errs.extend(_validate_affinity(as_dict(s["affinity"]), path + ".affinity"))
    errs.extend(_validate_dns_config(s.get("dnsConfig"), s.get("dnsPolicy"), path + ".dnsConfig"))
    errs.extend(_validate_scheduling_fields(s, path))
    errs.extend(_validate_identity_fields(s, path))
    if s.get("overhead"):
        errs.extend(_validate_resource_list(as_dict(s["overhead"]), path + ".overhead.limits"))
    return errs


def _enum(value: Any, allowed: tuple[str, ...], path: str) -> Errs:
    if value in allowed:
        return []
    if value is None or value == "":
        return [required(path)]
    return [not_supported(path, value, allowed)]


def _validate_identity_fields(s: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for key, fn in (
        ("serviceAccountName", name_is_dns_subdomain),
        ("nodeName", name_is_dns_subdomain),
        ("priorityClassName", name_is_dns_subdomain),
    ):
        value = as_str(s.get(key))
        if value:
            errs.extend(invalid(f"{path}.{key}", value, m) for m in fn(value, False))
    ads = s.get("activeDeadlineSeconds")
    if isinstance(ads, int) and not 1 <= ads <= MAX_INT32:
        errs.append(invalid(path + ".activeDeadlineSeconds", ads, inclusive_range_error(1, MAX_INT32)))
    for key in ("hostname", "subdomain"):
        value = as_str(s.get(key))
        if value:
            errs.extend(validate_dns1123_label(value, f"{path}.{key}"))
    if s.get("runtimeClassName") is not None:
        rc = as_str(s.get("runtimeClassName"))
        errs.extend(invalid(path + ".runtimeClassName", rc, m) for m in name_is_dns_subdomain(rc, False))
    if s.get("preemptionPolicy") is not None:
        errs.extend(
            _enum(s.get("preemptionPolicy"), ("PreemptLowerPriority", "Never"), path + ".preemptionPolicy")
        )
    os_name = as_dict(s.get("os")).get("name")
    if s.get("os") is not None and os_name not in ("linux", "windows"):
        errs.append(
            not_supported(path + ".os.name", os_name or "", ("linux", "windows"))
            if os_name
            else required(path + ".os.name")
        )
    return errs


def _validate_scheduling_fields(s: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for i, gate in enumerate(as_list(s.get("readinessGates"))):
        errs.extend(
            validate_qualified_name(
                as_str(as_dict(gate).get("conditionType")), f"{path}.readinessGates[{i}].conditionType"
            )
        )
    seen: set[str] = set()
    for i, gate in enumerate(as_list(s.get("schedulingGates"))):
        name = as_str(as_dict(gate).get("name"))
        errs.extend(validate_qualified_name(name, f"{path}.schedulingGates[{i}]"))
        if name in seen:
            errs.append(duplicate(f"{path}.schedulingGates[{i}]", name))
        seen.add(name)
    errs.extend(
        _validate_spread_constraints(
            as_list(s.get("topologySpreadConstraints")), path + ".topologySpreadConstraints"
        )
    )
    if s.get("tolerations"):
        errs.extend(validate_tolerations(as_list(s["tolerations"]), path + ".tolerations"))
    for i, alias in enumerate(as_list(s.get("hostAliases"))):
        a = as_dict(alias)
        errs.extend(_validate_ip(as_str(a.get("ip")), f"{path}.hostAliases[{i}].ip"))
        for j, hostname in enumerate(as_list(a.get("hostnames"))):
            errs.extend(
                validate_dns1123_subdomain(as_str(hostname), f"{path}.hostAliases[{i}].hostnames[{j}]")
            )
    return errs


def _validate_ip(value: str, path: str) -> Errs:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def _validate_host_network(s: dict[str, Any], path: str, is_pod: bool) -> Errs:
    if not s.get("hostNetwork"):
        return []
    errs: Errs = []
    for i, c in enumerate(as_list(s.get("containers"))):
        for j, port in enumerate(as_list(as_dict(c).get("ports"))):
            p = as_dict(port)
            hp, cp = p.get("hostPort") or 0, p.get("containerPort") or 0
            if (is_pod or hp != 0) and hp != cp:
                errs.append(
                    invalid(
                        f"{path}.containers[{i}].ports[{j}].hostPort",
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    )
                )
    return errs


def _validate_pod_security_context(sc: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        value = sc.get(key)
        if isinstance(value, int) and not 0 <= value <= MAX_INT32:
            errs.append(invalid(f"{path}.{key}", value, inclusive_range_error(0, MAX_INT32)))
    for i, gid in enumerate(as_list(sc.get("supplementalGroups"))):
        if isinstance(gid, int) and not 0 <= gid <= MAX_INT32:
            errs.append(invalid(f"{path}.supplementalGroups[{i}]", gid, inclusive_range_error(0, MAX_INT32)))
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errs.append(not_supported(path + ".fsGroupChangePolicy", policy, ("Always", "OnRootMismatch")))
    return errs


def _validate_dns_config(config: Any, policy: Any, path: str) -> Errs:
    if policy == "None":
        if config is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(as_dict(config).get("nameservers")):
            return [
                required(
                    path + ".nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            ]
    if not isinstance(config, dict):
        return []
    errs: Errs = []
    nameservers = as_list(config.get("nameservers"))
    if len(nameservers) > 3:
        errs.append(invalid(path + ".nameservers", nameservers, "must not have more than 3 nameservers"))
    for i, ns in enumerate(nameservers):
        errs.extend(_validate_ip(as_str(ns), f"{path}.nameservers[{i}]"))
    searches = [as_str(x) for x in as_list(config.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid(path + ".searches", searches, "must not have more than 32 search paths"))
    for i, search in enumerate(searches):
        if search != ".":
            errs.extend(validate_dns1123_subdomain(search.removesuffix("."), f"{path}.searches[{i}]"))
    for i, opt in enumerate(as_list(config.get("options"))):
        if not as_str(as_dict(opt).get("name")):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))
    return errs


# --- tolerations, affinity, spread constraints -----------------------------------------------------


def validate_tolerations(tolerations: list[Any], path: str) -> Errs:
    errs: Errs = []
    for i, tol in enumerate(tolerations):
        t, p = as_dict(tol), f"{path}[{i}]"
        key, op, value, effect = (
            as_str(t.get("key")),
            as_str(t.get("operator")),
            t.get("value") or "",
            t.get("effect") or "",
        )
        if key:
            errs.extend(validate_label_name(key, p + ".key"))
        if not key and op != "Exists":
            errs.append(
                invalid(
                    p + ".operator",
                    op,
                    _MATCH_ALL_MSG,
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(
                invalid(p + ".effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
            )
        if op in ("Equal", ""):
            msgs = is_label_value(as_str(value))
            if msgs:
                errs.append(invalid(p + ".operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(p + ".operator", value, "value must be empty when `operator` is 'Exists'")
                )
        else:
            errs.append(not_supported(p + ".operator", op, ("Equal", "Exists")))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(p + ".effect", effect, TAINT_EFFECTS))
    return errs


def _validate_affinity(aff: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    node = aff.get("nodeAffinity")
    if isinstance(node, dict):
        np = path + ".nodeAffinity"
        req = node.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(req, dict):
            terms = as_list(req.get("nodeSelectorTerms"))
            tp = np + ".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            if not terms:
                errs.append(required(tp, "must have at least one node selector term"))
            for i, term in enumerate(terms):
                errs.extend(_validate_node_selector_term(as_dict(term), f"{tp}[{i}]"))
        for i, pref in enumerate(as_list(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            pp = f"{np}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            errs.extend(_validate_weight(as_dict(pref).get("weight"), pp + ".weight"))
            errs.extend(
                _validate_node_selector_term(as_dict(as_dict(pref).get("preference")), pp + ".preference")
            )
    for kind in ("podAffinity", "podAntiAffinity"):
        pod_aff = aff.get(kind)
        if isinstance(pod_aff, dict):
            errs.extend(_validate_pod_affinity(pod_aff, f"{path}.{kind}"))
    return errs


def _validate_weight(weight: Any, path: str) -> Errs:
    if not isinstance(weight, int) or not 1 <= weight <= 100:
        return [invalid(path, weight if weight is not None else 0, "must be in the range 1-100")]
    return []


def _validate_node_selector_term(term: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for j, req in enumerate(as_list(term.get("matchExpressions"))):
        r, p = as_dict(req), f"{path}.matchExpressions[{j}]"
        op, values = r.get("operator"), as_list(r.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(p + ".values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        p + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        elif op in ("Gt", "Lt"):
            if len(values) != 1:
                errs.append(
                    required(p + ".values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
                )
        else:
            errs.append(invalid(p + ".operator", op or "", "not a valid selector operator"))
        errs.extend(validate_label_name(as_str(r.get("key")), p + ".key"))
    for j, req in enumerate(as_list(term.get("matchFields"))):
        r, p = as_dict(req), f"{path}.matchFields[{j}]"
        if r.get("operator") in ("In", "NotIn"):
            if len(as_list(r.get("values"))) != 1:
                errs.append(
                    required(
                        p + ".values",
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            errs.append(invalid(p + ".operator", r.get("operator") or "", "not a valid selector operator"))
        if r.get("key") != "metadata.name":
            errs.append(invalid(p + ".key", as_str(r.get("key")), "not a valid field selector key"))
    return errs


def _validate_pod_affinity(pod_aff: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    req_path = path + ".requiredDuringSchedulingIgnoredDuringExecution"
    for i, term in enumerate(as_list(pod_aff.get("requiredDuringSchedulingIgnoredDuringExecution"))):
        errs.extend(_validate_pod_affinity_term(as_dict(term), f"{req_path}[{i}]"))
    pref_path = path + ".preferredDuringSchedulingIgnoredDuringExecution"
    for i, wterm in enumerate(as_list(pod_aff.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        w = as_dict(wterm)
        errs.extend(_validate_weight(w.get("weight"), f"{pref_path}[{i}].weight"))
        errs.extend(
            _validate_pod_affinity_term(
                as_dict(w.get("podAffinityTerm")), f"{pref_path}[{i}].podAffinityTerm"
            )
        )
    return errs


def _validate_pod_affinity_term(term: dict[str, Any], path: str) -> Errs:
    errs = validate_label_selector(term.get("labelSelector"), path + ".labelSelector")
    errs.extend(validate_label_selector(term.get("namespaceSelector"), path + ".namespaceSelector"))
    for ns in as_list(term.get("namespaces")):
        errs.extend(invalid(path + ".namespace", ns, m) for m in name_is_dns_label(as_str(ns), False))
    key = as_str(term.get("topologyKey"))
    if not key:
        errs.append(required(path + ".topologyKey", "can not be empty"))
    errs.extend(validate_label_name(key, path + ".topologyKey"))
    return errs


def _validate_spread_constraints(constraints: list[Any], path: str) -> Errs:
    errs: Errs = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints):
        d, p = as_dict(c), f"{path}[{i}]"
        skew = d.get("maxSkew")
        if not isinstance(skew, int) or skew <= 0:
            errs.append(invalid(p + ".maxSkew", skew if skew is not None else 0, "must be greater than zero"))
        key = as_str(d.get("topologyKey"))
        if not key:
            errs.append(required(p + ".topologyKey", "can not be empty"))
        action = d.get("whenUnsatisfiable") or ""
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(p + ".whenUnsatisfiable", action, ("DoNotSchedule", "ScheduleAnyway")))
        if (key, action) in seen:
            errs.append(duplicate(p + ".{topologyKey, whenUnsatisfiable}", f"{{{key}, {action}}}"))
        seen.add((key, action))
        errs.extend(validate_label_selector(d.get("labelSelector"), p + ".labelSelector"))
    return errs


# --- volumes ----------------------------------------------------------------------------------------


def _validate_volumes(volumes: list[Any], path: str, pod_name: str) -> tuple[dict[str, dict[str, Any]], Errs]:
    errs: Errs = []
    vols: dict[str, dict[str, Any]] = {}
    for i, vol in enumerate(volumes):
        v, p = as_dict(vol), f"{path}[{i}]"
        name = as_str(v.get("name"))
        el = _validate_volume_source(v, p, name, pod_name)
        if not name:
            el.append(required(p + ".name"))
        else:
            el.extend(validate_dns1123_label(name, p + ".name"))
        if name in vols:
            el.append(duplicate(p + ".name", name))
        if el:
            errs.extend(el)
        else:
            vols[name] = v
    return vols, errs


def _validate_volume_source(v: dict[str, Any], path: str, name: str, pod_name: str) -> Errs:
    errs: Errs = []
    count = 0
    for key in VOLUME_SOURCES:
        src = v.get(key)
        if src is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{key}", "may not specify more than 1 volume type"))
            continue
        count += 1
        errs.extend(_validate_one_source(key, as_dict(src), f"{path}.{key}"))
        if key == "ephemeral" and pod_name and name:
            pvc = f"{pod_name}-{name}"
            errs.extend(
                invalid(path + ".name", name, f'PVC name "{pvc}": {m}') for m in is_dns1123_subdomain(pvc)
            )
    if count == 0:
        errs.append(required(path, "must specify a volume type"))
    return errs


def _validate_one_source(key: str, src: dict[str, Any], path: str) -> Errs:
    checker = _SOURCE_CHECKS.get(key)
    return checker(src, path) if checker else []


def _mode_errs(mode: Any, path: str) -> Errs:
    if isinstance(mode, int) and not 0 <= mode <= 0o777:
        return [invalid(path, mode, _FILE_MODE_MSG)]
    return []


def _key_to_paths(items: Any, path: str) -> Errs:
    errs: Errs = []
    for i, item in enumerate(as_list(items)):
        it, p = as_dict(item), f"{path}[{i}]"
        if not as_str(it.get("key")):
            errs.append(required(p + ".key"))
        if not as_str(it.get("path")):
            errs.append(required(p + ".path"))
        errs.extend(_local_non_reserved_path(as_str(it.get("path")), p + ".path"))
        errs.extend(_mode_errs(it.get("mode"), p + ".mode"))
    return errs


def _local_descending_path(target: str, path: str) -> Errs:
    errs: Errs = []
    if target.startswith("/"):
        errs.append(invalid(path, target, "must be a relative path"))
    if ".." in target.split("/"):
        errs.append(invalid(path, target, "must not contain '..'"))
    return errs


def _local_non_reserved_path(target: str, path: str) -> Errs:
    errs = _local_descending_path(target, path)
    if target.startswith(".."):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def _check_secret(src: dict[str, Any], path: str) -> Errs:
    errs = [required(path + ".secretName")] if not as_str(src.get("secretName")) else []
    return (
        errs
        + _mode_errs(src.get("defaultMode"), path + ".defaultMode")
        + _key_to_paths(src.get("items"), path + ".items")
    )


def _check_config_map(src: dict[str, Any], path: str) -> Errs:
    errs = [required(path + ".name")] if not as_str(src.get("name")) else []
    return (
        errs
        + _mode_errs(src.get("defaultMode"), path + ".defaultMode")
        + _key_to_paths(src.get("items"), path + ".items")
    )


def _check_host_path(src: dict[str, Any], path: str) -> Errs:
    target = as_str(src.get("path"))
    if not target:
        return [required(path + ".path")]
    errs: Errs = []
    if ".." in target.split("/"):
        errs.append(invalid(path + ".path", target, "must not contain '..'"))
    types = (
        "",
        "BlockDevice",
        "CharDevice",
        "Directory",
        "DirectoryOrCreate",
        "File",
        "FileOrCreate",
        "Socket",
    )
    htype = src.get("type")
    if htype is not None and htype not in types:
        errs.append(not_supported(path + ".type", htype, types))
    return errs


def _check_pvc(src: dict[str, Any], path: str) -> Errs:
    return [required(path + ".claimName")] if not as_str(src.get("claimName")) else []


def _check_nfs(src: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    if not as_str(src.get("server")):
        errs.append(required(path + ".server"))
    target = as_str(src.get("path"))
    if not target:
        errs.append(required(path + ".path"))
    if not target.startswith("/"):
        errs.append(invalid(path + ".path", target, "must be an absolute path"))
    return errs


def _check_empty_dir(src: dict[str, Any], path: str) -> Errs:
    limit = src.get("sizeLimit")
    if limit is not None:
        value = quantity.value_of(limit)
        if value is not None and value < 0:
            return [forbidden(path + ".sizeLimit", "SizeLimit field must be a valid resource quantity")]
    return []


def _check_downward_api(src: dict[str, Any], path: str) -> Errs:
    errs = _mode_errs(src.get("defaultMode"), path + ".defaultMode")
    for i, item in enumerate(as_list(src.get("items"))):
        it, p = as_dict(item), f"{path}.items[{i}]"
        target = as_str(it.get("path"))
        if not target:
            errs.append(required(p + ".path"))
        errs.extend(_local_non_reserved_path(target, p + ".path"))
        errs.extend(_mode_errs(it.get("mode"), p + ".mode"))
        if it.get("fieldRef") is not None:
            errs.extend(_validate_field_ref(as_dict(it["fieldRef"]), p + ".fieldRef", _VOLUME_FIELD_PATHS))
    return errs


def _check_projected(src: dict[str, Any], path: str) -> Errs:
    errs = _mode_errs(src.get("defaultMode"), path + ".defaultMode")
    for i, source in enumerate(as_list(src.get("sources"))):
        s, p = as_dict(source), f"{path}.sources[{i}]"
        present = [
            k
            for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
            if s.get(k) is not None
        ]
        if not present:
            errs.append(
                required(
                    p,
                    "must specify exactly one of: `secret`, `configMap`, `downwardAPI`, "
                    "`serviceAccountToken` or `clusterTrustBundle`",
                )
            )
        for k in present[1:]:
            errs.append(forbidden(f"{p}.{k}", "may not specify more than 1 volume type per source"))
        if "secret" in present:
            errs.extend(_key_to_paths(as_dict(s["secret"]).get("items"), p + ".secret.items"))
        if "configMap" in present:
            errs.extend(_key_to_paths(as_dict(s["configMap"]).get("items"), p + ".configMap.items"))
        if "serviceAccountToken" in present:
            token = as_dict(s["serviceAccountToken"])
            if not as_str(token.get("path")):
                errs.append(required(p + ".serviceAccountToken.path"))
            seconds = token.get("expirationSeconds")
            if isinstance(seconds, int) and seconds < 600:
                errs.append(
                    invalid(
                        p + ".serviceAccountToken.expirationSeconds",
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                )
    return errs


def _check_csi(src: dict[str, Any], path: str) -> Errs:
    return [required(path + ".driver")] if not as_str(src.get("driver")) else []


def _check_image(src: dict[str, Any], path: str) -> Errs:
    errs = [required(path + ".reference")] if not as_str(src.get("reference")) else []
    policy = src.get("pullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        errs.append(not_supported(path + ".pullPolicy", policy, PULL_POLICIES))
    return errs


def _check_ephemeral(src: dict[str, Any], path: str) -> Errs:
    if src.get("volumeClaimTemplate") is None:
        return [required(path + ".volumeClaimTemplate")]
    return []


_SOURCE_CHECKS = {
    "secret": _check_secret, "configMap": _check_config_map, "hostPath": _check_host_path,
    "persistentVolumeClaim": _check_pvc, "nfs": _check_nfs, "emptyDir": _check_empty_dir,
    "downwardAPI": _check_downward_api, "projected": _check_projected, "csi": _check_csi,
    "image": _check_image, "ephemeral": _check_ephemeral,
}  # fmt: skip


# --- containers -------------------------------------------------------------------------------------


def _validate_containers(
    containers: list[Any], vols: dict[str, dict[str, Any]], grace: int | None, path: str, spec: dict[str, Any]
) -> Errs:
    if not containers:
        return [required(path)]
    errs: Errs = []
    names: set[str] = set()
    for i, ctr in enumerate(containers):
        c, p = as_dict(ctr), f"{path}[{i}]"
        errs.extend(_validate_container_common(c, vols, p, spec))
        name = as_str(c.get("name"))
        if name in names:
            errs.append(duplicate(p + ".name", name))
        names.add(name)
        errs.extend(_validate_lifecycle_and_probes(c, grace, p))
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(p + ".restartPolicy", "may not be set for non-init containers"))
    errs.extend(_host_port_conflicts(containers, path))
    return errs


def _validate_init_containers(
    inits: list[Any],
    regular: list[Any],
    vols: dict[str, dict[str, Any]],
    grace: int | None,
    path: str,
    spec: dict[str, Any],
) -> Errs:
    errs: Errs = []
    names = {as_str(as_dict(c).get("name")) for c in regular}
    for i, ctr in enumerate(inits):
        c, p = as_dict(ctr), f"{path}[{i}]"
        errs.extend(_validate_container_common(c, vols, p, spec))
        restart = c.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(not_supported(p + ".restartPolicy", restart, ("Always",)))
        name = as_str(c.get("name"))
        if name in names:
            errs.append(duplicate(p + ".name", name))
        elif name:
            names.add(name)
        errs.extend(_host_port_conflicts([c], path))
        if restart == "Always":
            errs.extend(_validate_lifecycle_and_probes(c, grace, p))
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.append(
                        forbidden(
                            f"{p}.{key}", "may not be set for init containers without restartPolicy=Always"
                        )
                    )
    return errs


def _validate_container_common(
    c: dict[str, Any], vols: dict[str, dict[str, Any]], path: str, spec: dict[str, Any]
) -> Errs:
    errs: Errs = []
    name = as_str(c.get("name"))
    if not name:
        errs.append(required(path + ".name"))
    else:
        errs.extend(validate_dns1123_label(name, path + ".name"))
    if not as_str(c.get("image")):
        errs.append(required(path + ".image"))
    errs.extend(
        _enum(
            c.get("terminationMessagePolicy"),
            TERMINATION_MESSAGE_POLICIES,
            path + ".terminationMessagePolicy",
        )
    )
    if c.get("ports"):
        errs.extend(_validate_container_ports(as_list(c["ports"]), path + ".ports"))
    if c.get("env"):
        errs.extend(_validate_env(as_list(c["env"]), path + ".env"))
    if c.get("envFrom"):
        errs.extend(_validate_env_from(as_list(c["envFrom"]), path + ".envFrom"))
    if c.get("volumeMounts"):
        errs.extend(_validate_volume_mounts(as_list(c["volumeMounts"]), vols, path + ".volumeMounts"))
    errs.extend(_enum(c.get("imagePullPolicy"), PULL_POLICIES, path + ".imagePullPolicy"))
    if c.get("resources"):
        errs.extend(validate_resource_requirements(as_dict(c["resources"]), path + ".resources"))
    if c.get("securityContext"):
        errs.extend(_validate_security_context(as_dict(c["securityContext"]), path + ".securityContext"))
    return errs


def _validate_security_context(sc: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for key in ("runAsUser", "runAsGroup"):
        value = sc.get(key)
        if isinstance(value, int) and not 0 <= value <= MAX_INT32:
            errs.append(invalid(f"{path}.{key}", value, inclusive_range_error(0, MAX_INT32)))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        errs.append(
            invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
        )
    return errs


def _validate_container_ports(ports: list[Any], path: str) -> Errs:
    errs: Errs = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        pt, p = as_dict(port), f"{path}[{i}]"
        name = as_str(pt.get("name"))
        if name:
            msgs = is_port_name(name)
            if msgs:
                errs.extend(invalid(p + ".name", name, m) for m in msgs)
            elif name in names:
                errs.append(duplicate(p + ".name", name))
            else:
                names.add(name)
        cport = pt.get("containerPort")
        if not cport:
            errs.append(required(p + ".containerPort"))
        elif isinstance(cport, int):
            errs.extend(invalid(p + ".containerPort", cport, m) for m in is_port_num(cport))
        hport = pt.get("hostPort")
        if isinstance(hport, int) and hport != 0:
            errs.extend(invalid(p + ".hostPort", hport, m) for m in is_port_num(hport))
        proto = pt.get("protocol")
        if not proto:
            errs.append(required(p + ".protocol"))
        elif proto not in PORT_PROTOCOLS:
            errs.append(not_supported(p + ".protocol", proto, PORT_PROTOCOLS))
    return errs


def _host_port_conflicts(containers: list[Any], path: str) -> Errs:
    errs: Errs = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(as_list(as_dict(ctr).get("ports"))):
            pt = as_dict(port)
            hp = pt.get("hostPort")
            if not hp:
                continue
            key = f"{pt.get('protocol', '')}/{pt.get('hostIP', '')}/{hp}"
            if key in seen:
                errs.append(duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return errs


def _validate_env(env: list[Any], path: str) -> Errs:
    errs: Errs = []
    for i, var in enumerate(env):
        v, p = as_dict(var), f"{path}[{i}]"
        name = as_str(v.get("name"))
        if not name:
            errs.append(required(p + ".name"))
        else:
            errs.extend(invalid(p + ".name", name, m) for m in is_relaxed_env_var_name(name))
        if v.get("valueFrom") is not None:
            errs.extend(_validate_env_value_from(v, p + ".valueFrom"))
    return errs


def _validate_env_value_from(var: dict[str, Any], path: str) -> Errs:
    vf = as_dict(var.get("valueFrom"))
    errs: Errs = []
    present = [
        k
        for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
        if vf.get(k) is not None
    ]
    if "fieldRef" in present:
        errs.extend(_validate_field_ref(as_dict(vf["fieldRef"]), path + ".fieldRef", _ENV_FIELD_PATHS))
    if "resourceFieldRef" in present:
        resource = as_str(as_dict(vf["resourceFieldRef"]).get("resource"))
        if not resource:
            errs.append(required(path + ".resourceFieldRef.resource"))
        elif resource not in _RESOURCE_FIELD_REFS and not resource.startswith(
            ("requests.hugepages-", "limits.hugepages-")
        ):
            errs.append(not_supported(path + ".resourceFieldRef.resource", resource, _RESOURCE_FIELD_REFS))
    for key in ("configMapKeyRef", "secretKeyRef"):
        if key in present:
            errs.extend(_validate_key_selector(as_dict(vf[key]), f"{path}.{key}"))
    if not present:
        errs.append(
            invalid(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )
        )
    elif len(present) > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    if present and var.get("value"):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    return errs


def _validate_key_selector(sel: dict[str, Any], path: str) -> Errs:
    name = as_str(sel.get("name"))
    errs: Errs = [invalid(path + ".name", name, m) for m in name_is_dns_subdomain(name, False)]
    key = as_str(sel.get("key"))
    if not key:
        errs.append(required(path + ".key"))
    else:
        errs.extend(invalid(path + ".key", key, m) for m in is_config_map_key(key))
    return errs


def _validate_field_ref(ref: dict[str, Any], path: str, allowed: tuple[str, ...]) -> Errs:
    if not as_str(ref.get("apiVersion")):
        return [required(path + ".apiVersion")]
    field_path = as_str(ref.get("fieldPath"))
    if not field_path:
        return [required(path + ".fieldPath")]
    if field_path.endswith("']") and "['" in field_path:
        base, _, subscript = field_path[:-2].partition("['")
        if base == "metadata.annotations":
            return [invalid(path, subscript.lower(), m) for m in is_qualified_name(subscript.lower())]
        if base == "metadata.labels":
            return [invalid(path, subscript, m) for m in is_qualified_name(subscript)]
        return [invalid(path, base, "does not support subscript")]
    if field_path not in allowed:
        return [not_supported(path + ".fieldPath", field_path, sorted(allowed))]
    return []


def _validate_env_from(sources: list[Any], path: str) -> Errs:
    errs: Errs = []
    for i, src in enumerate(sources):
        s, p = as_dict(src), f"{path}[{i}]"
        prefix = as_str(s.get("prefix"))
        if prefix:
            errs.extend(invalid(p + ".prefix", prefix, m) for m in is_relaxed_env_var_name(prefix))
        present = [k for k in ("configMapRef", "secretRef") if s.get(k) is not None]
        for key in present:
            name = as_str(as_dict(s[key]).get("name"))
            if not name:
                errs.append(required(f"{p}.{key}.name"))
            else:
                errs.extend(invalid(f"{p}.{key}.name", name, m) for m in name_is_dns_subdomain(name, True))
        if not present:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(present) > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _validate_volume_mounts(mounts: list[Any], vols: dict[str, dict[str, Any]], path: str) -> Errs:
    errs: Errs = []
    mount_points: set[str] = set()
    for i, mnt in enumerate(mounts):
        m, p = as_dict(mnt), f"{path}[{i}]"
        name, mount_path = as_str(m.get("name")), as_str(m.get("mountPath"))
        if not name:
            errs.append(required(p + ".name"))
        if name not in vols:
            errs.append(not_found(p + ".name", name))
        if not mount_path:
            errs.append(required(p + ".mountPath"))
        if mount_path in mount_points:
            errs.append(invalid(p + ".mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
        sub_path, sub_expr = as_str(m.get("subPath")), as_str(m.get("subPathExpr"))
        if sub_path:
            errs.extend(_local_descending_path(sub_path, path + ".subPath"))
        if sub_expr:
            if sub_path:
                errs.append(
                    invalid(p + ".subPathExpr", sub_expr, "subPathExpr and subPath are mutually exclusive")
                )
            errs.extend(_local_descending_path(sub_expr, path + ".subPathExpr"))
        prop = m.get("mountPropagation")
        if prop is not None and prop not in ("None", "HostToContainer", "Bidirectional"):
            errs.append(
                not_supported(path + ".mountPropagation", prop, ("Bidirectional", "HostToContainer", "None"))
            )
    return errs


# --- probes and lifecycle hooks ---------------------------------------------------------------------


def _validate_lifecycle_and_probes(c: dict[str, Any], grace: int | None, path: str) -> Errs:
    errs: Errs = []
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                errs.extend(
                    _validate_handler(
                        as_dict(lifecycle[hook]), _HANDLER_TYPES, grace, f"{path}.lifecycle.{hook}"
                    )
                )
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(kind)
        if probe is not None:
            errs.extend(_validate_probe(as_dict(probe), kind, grace, f"{path}.{kind}"))
    return errs


def _validate_probe(probe: dict[str, Any], kind: str, grace: int | None, path: str) -> Errs:
    errs = _validate_handler(probe, _PROBE_HANDLER_TYPES, grace, path)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.extend(nonnegative(f"{path}.{key}", probe.get(key)))
    tgps = probe.get("terminationGracePeriodSeconds")
    if isinstance(tgps, int) and tgps <= 0:
        errs.append(invalid(path + ".terminationGracePeriodSeconds", tgps, "must be greater than 0"))
    if kind in ("livenessProbe", "startupProbe") and probe.get("successThreshold", 1) != 1:
        errs.append(invalid(path + ".successThreshold", probe.get("successThreshold"), "must be 1"))
    if kind == "readinessProbe" and tgps is not None:
        errs.append(
            invalid(path + ".terminationGracePeriodSeconds", tgps, "must not be set for readinessProbes")
        )
    return errs


def _validate_handler(handler: dict[str, Any], types: tuple[str, ...], grace: int | None, path: str) -> Errs:
    errs: Errs = []
    count = 0
    for key in types:
        action = handler.get(key)
        if action is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{key}", "may not specify more than 1 handler type"))
            continue
        count += 1
        errs.extend(_validate_action(key, as_dict(action), grace, f"{path}.{key}"))
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_action(key: str, action: dict[str, Any], grace: int | None, path: str) -> Errs:
    if key == "exec":
        return [] if as_list(action.get("command")) else [required(path + ".command")]
    if key == "httpGet":
        errs: Errs = [] if as_str(action.get("path")) else [required(path + ".path")]
        errs.extend(validate_port_num_or_name(action.get("port"), path + ".port"))
        scheme = action.get("scheme") or ""
        if scheme not in ("HTTP", "HTTPS"):
            errs.append(not_supported(path + ".scheme", scheme, ("HTTP", "HTTPS")))
        for header in as_list(action.get("httpHeaders")):
            hname = as_str(as_dict(header).get("name"))
            errs.extend(invalid(path + ".httpHeaders", hname, m) for m in is_http_header_name(hname))
        return errs
    if key == "tcpSocket":
        return validate_port_num_or_name(action.get("port"), path + ".port")
    if key == "grpc":
        return validate_port_num_or_name(action.get("port", 0), path + ".port")
    seconds = action.get("seconds", 0)
    if grace is not None and isinstance(seconds, int) and not 0 <= seconds <= grace:
        return [
            invalid(
                path, seconds, f"must be non-negative and less than terminationGracePeriodSeconds ({grace})"
            )
        ]
    return []


def validate_port_num_or_name(port: Any, path: str) -> Errs:
    """``ValidatePortNumOrName`` for an int-or-string port."""
    if isinstance(port, bool):
        return [invalid(path, port, inclusive_range_error(1, 65535))]
    if isinstance(port, int):
        return [invalid(path, port, m) for m in is_port_num(port)]
    if isinstance(port, str):
        return [invalid(path, port, m) for m in is_port_name(port)]
    return [invalid(path, 0, inclusive_range_error(1, 65535))]


# --- resources --------------------------------------------------------------------------------------

_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_extended(name: str) -> bool:
    if _is_native(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def _validate_resource_name(name: str, path: str) -> Errs:
    msgs = is_qualified_name(name)
    if msgs:
        return [invalid(path, name, m) for m in msgs]
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            return [invalid(path, name, "must be a standard resource for containers")]
    elif not _is_native(name) and not _is_extended(name):
        return [invalid(path, name, "doesn't follow extended resource name standard")]
    return []


def _validate_resource_list(resources: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for name in sorted(resources):
        p = f"{path}[{name}]"
        errs.extend(_validate_resource_name(name, p))
        errs.extend(_validate_quantity_value(name, resources[name], p))
    return errs


def _validate_quantity_value(name: str, raw: Any, path: str) -> Errs:
    value = quantity.value_of(raw)
    if value is None:
        return [invalid(path, raw if isinstance(raw, str) else str(raw), quantity.QUANTITY_REGEX_MESSAGE)]
    if value < 0:
        return [invalid(path, quantity.canonical(raw), "must be greater than or equal to 0")]
    if not _is_native(name) and value.denominator != 1:
        return [invalid(path, quantity.canonical(raw), "must be an integer")]
    return []


def validate_resource_requirements(res: dict[str, Any], path: str) -> Errs:
    """Names, non-negative quantities, requests <= limits (== for non-overcommittable resources)."""
    limits, requests = as_dict(res.get("limits")), as_dict(res.get("requests"))
    errs = _validate_resource_list(limits, path + ".limits")
    errs.extend(_validate_resource_list(requests, path + ".requests"))
    for name in sorted(requests):
        overcommit = _is_native(name) and not name.startswith("hugepages-")
        req = quantity.value_of(requests[name])
        if name in limits:
            lim = quantity.value_of(limits[name])
            if req is None or lim is None:
                continue
            lim_text = quantity.canonical(limits[name])
            if req != lim and not overcommit:
                errs.append(
                    invalid(
                        path + ".requests",
                        quantity.canonical(requests[name]),
                        f"must be equal to {name} limit of {lim_text}",
                    )
                )
            elif req > lim:
                errs.append(
                    invalid(
                        path + ".requests",
                        quantity.canonical(requests[name]),
                        f"must be less than or equal to {name} limit of {lim_text}",
                    )
                )
        elif not overcommit:
            errs.append(required(path + ".limits", "Limit must be set for non overcommitable resources"))
    has_huge = any(n.startswith("hugepages-") for n in (*limits, *requests))
    if has_huge and not any(n in ("cpu", "memory") for n in (*limits, *requests)):
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs


# --- pods -------------------------------------------------------------------------------------------


# Serialized pod specs (of pods without ephemeral volumes) that passed validate_pod_create_spec.
# The check is a pure function of the spec there, and the pods of one controller share one spec,
# so a repeated spec is accepted without walking it again (kube-apiserver walks it each time; the
# outcome is the same).  Bounded: cleared when full.  Hand-written: functools caches need a
# hashable argument, and the key (the serialized spec) is built here anyway.
_CLEAN_SPECS: set[bytes] = set()
_CLEAN_SPECS_MAX = 1024


def _spec_key(spec: dict[str, Any]) -> bytes | None:
    """The cache key of a spec, or None when its outcome depends on more (ephemeral volumes name
    their claims after the pod), it does not serialize (integers beyond 64 bits) or it holds a
    null (orjson writes NaN and infinities, which a YAML body can carry, as null too)."""
    if any(isinstance(v, dict) and "ephemeral" in v for v in as_list(spec.get("volumes"))):
        return None
    try:
        key = orjson.dumps(spec)
    except TypeError:
        return None
    return None if b"null" in key else key


def validate_pod_create_spec(obj: dict[str, Any]) -> Errs:
    """The spec part of ``ValidatePodCreate``."""
    spec = as_dict(obj.get("spec"))
    key = _spec_key(spec)
    if key is not None and key in _CLEAN_SPECS:
        return []
    errs = _validate_pod_create_spec(spec, as_str(as_dict(obj.get("metadata")).get("name")))
    if key is not None and not errs:
        if len(_CLEAN_SPECS) >= _CLEAN_SPECS_MAX:
            _CLEAN_SPECS.clear()
        _CLEAN_SPECS.add(key)
    return errs


def _validate_pod_create_spec(spec: dict[str, Any], name: str) -> Errs:
    errs = validate_pod_spec(spec, "spec", pod_name=name, is_pod=True)
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(as_list(spec.get(key))):
            image = as_str(as_dict(ctr).get("image"))
            if image != image.strip():
                errs.append(
                    invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")
                )
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errs


def validate_pod_spec_update(new_spec: dict[str, Any], old_spec: dict[str, Any]) -> Errs:
    """``ValidatePodUpdate``'s spec rules: only images, deadlines, toleration additions, gate removals."""
    errs: Errs = []
    for key in ("containers", "initContainers"):
        new_c, old_c = as_list(new_spec.get(key)), as_list(old_spec.get(key))
        if len(new_c) != len(old_c):
            return [forbidden(f"spec.{key}", "pod updates may not add or remove containers")]
    errs.extend(
        _active_deadline_update(new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds"))
    )
    errs.extend(
        _tolerations_update(as_list(new_spec.get("tolerations")), as_list(old_spec.get("tolerations")))
    )
    old_gates = {as_str(as_dict(g).get("name")) for g in as_list(old_spec.get("schedulingGates"))}
    for i, gate in enumerate(as_list(new_spec.get("schedulingGates"))):
        gname = as_str(as_dict(gate).get("name"))
        if gname not in old_gates:
            errs.append(
                forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{gname}'",
                )
            )
    if _munged(new_spec, old_spec) != old_spec:
        errs.append(
            forbidden("spec", f"pod updates may not change fields other than {_UPDATABLE_POD_FIELDS}")
        )
    return errs


def _active_deadline_update(new: Any, old: Any) -> Errs:
    if new is not None:
        if isinstance(new, int) and not 0 <= new <= MAX_INT32:
            return [invalid("spec.activeDeadlineSeconds", new, inclusive_range_error(0, MAX_INT32))]
        if isinstance(old, int) and isinstance(new, int) and old < new:
            return [
                invalid("spec.activeDeadlineSeconds", new, "must be less than or equal to previous value")
            ]
    elif old is not None:
        return [
            invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        ]
    return []


def _tolerations_update(new: list[Any], old: list[Any]) -> Errs:
    def strip(t: Any) -> dict[str, Any]:
        return {k: v for k, v in as_dict(t).items() if k != "tolerationSeconds" and v not in ("", None)}

    stripped_new = [strip(t) for t in new]
    for t in old:
        if strip(t) not in stripped_new:
            return [
                forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return validate_tolerations(new, "spec.tolerations")


def _munged(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """The new spec with its updatable fields replaced by the old values."""
    munged = dict(new)
    for key in ("containers", "initContainers"):
        if key in new:
            old_list = as_list(old.get(key))
            munged[key] = [
                {**as_dict(c), "image": as_dict(old_list[i]).get("image")}
                if "image" in as_dict(old_list[i])
                else {k: v for k, v in as_dict(c).items() if k != "image"}
                for i, c in enumerate(as_list(new[key]))
            ]
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(key, None)
        if key in old:
            munged[key] = old[key]
    old_tgps, new_tgps = old.get("terminationGracePeriodSeconds"), new.get("terminationGracePeriodSeconds")
    if isinstance(old_tgps, int) and old_tgps < 0 and new_tgps == 1:
        munged["terminationGracePeriodSeconds"] = old_tgps
    return munged
