"""A container's argv and environment, resolved from the pod spec as the kubelet does.

* argv (``kuberuntime`` + ``expansion``): ``command`` replaces the image ENTRYPOINT (and then the
  image CMD is dropped), ``args`` replace the image CMD; ``$(VAR)`` references are expanded with
  the container's environment (``$$`` escapes a ``$``; an undefined ``$(VAR)`` stays as written).
* env (``kubelet_pods.go`` ``makeEnvironmentVariables``): the service environment variables first
  (``<SVC>_SERVICE_HOST`` / ``_PORT`` and the docker-link ones), then ``envFrom`` (with
  ``prefix``), then ``env`` entries in order, each value expanded against what came before.
  ``valueFrom`` supports configMapKeyRef, secretKeyRef (both with ``optional``), fieldRef and
  resourceFieldRef (``divisor``; a missing limit reads as the node's allocatable).  The image's
  own ENV is the base under everything (the runtime merges it like containerd does).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from kubelite.api.quantity import parse_quantity

Obj = dict[str, Any]
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """A container cannot be configured (``CreateContainerConfigError``); str() is the message."""


class Sources(Protocol):
    """Where configMaps, secrets and services come from (the agent reads them through the API)."""

    async def configmap(self, namespace: str, name: str) -> Obj | None: ...

    async def secret(self, namespace: str, name: str) -> Obj | None: ...

    async def services(self, namespace: str) -> list[Obj]: ...


@dataclass(frozen=True)
class PodFacts:
    """Runtime facts fieldRefs may name that the pod object may not carry yet."""

    pod_ip: str = ""
    host_ip: str = ""
    node_allocatable: Mapping[str, str] | None = None


# ------------------------------------------------------------------------------------ expansion
def expand(text: str, lookup: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` gives ``$``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(lookup.get(name, f"$({name})"))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def container_argv(
    container: Obj, entrypoint: tuple[str, ...], cmd: tuple[str, ...], env: Mapping[str, str]
) -> list[str]:
    """The full argv: ``command``/``args`` merged with the image's ENTRYPOINT/CMD, then expanded."""
    command = [expand(str(c), env) for c in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    if command:
        return command + args
    return list(entrypoint) + (args if container.get("args") else list(cmd))


# ------------------------------------------------------------------------------------ services
MASTER_SERVICES = frozenset({"kubernetes"})  # always visible from the default namespace


def _svc_prefix(name: str) -> str:
    """``makeEnvVariableName``: upper case, ``-`` becomes ``_``."""
    return name.upper().replace("-", "_")


def _host_port(ip: str, port: object) -> str:
    """``net.JoinHostPort``: IPv6 addresses in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _has_cluster_ip(svc: Obj) -> bool:
    """``IsServiceIPSet``: a ClusterIP that is neither empty nor ``None``."""
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _link_env(prefix: str, ip: str, ports: list[Obj]) -> dict[str, str]:
    """Docker-link variables: ``FOO_PORT`` for the first port, ``FOO_PORT_<n>_<PROTO>*`` each."""
    env: dict[str, str] = {}
    for i, p in enumerate(ports):
        proto = str(p.get("protocol") or "TCP")
        url = f"{proto.lower()}://{_host_port(ip, p.get('port'))}"
        if i == 0:
            env[f"{prefix}_PORT"] = url
        base = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
        env[base] = url
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(p.get("port"))
        env[f"{base}_ADDR"] = ip
    return env


def service_env(services: list[Obj]) -> dict[str, str]:
    """The kubelet's ``envvars.FromServices``: ``FOO_SERVICE_HOST``, ``FOO_SERVICE_PORT``
    (first port), ``FOO_SERVICE_PORT_<NAME>`` (named ports) and the docker-link variables,
    for every Service with a ClusterIP."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: str((s.get("metadata") or {}).get("name", ""))):
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        if not _has_cluster_ip(svc) or not ports:
            continue
        ip = str(spec["clusterIP"])
        prefix = _svc_prefix(str(svc["metadata"]["name"]))
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_svc_prefix(str(p['name']))}"] = str(p.get("port"))
        env.update(_link_env(prefix, ip, ports))
    return env


async def _services_for(pod: Obj, sources: Sources) -> list[Obj]:
    """``getServiceEnvVarMap``: the master services of ``default`` (``kubernetes``) always;
    with ``enableServiceLinks`` (the default) every Service of the pod's namespace too, one
    of which shadows a master service of the same name."""
    ns = str(pod["metadata"].get("namespace") or "default")
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    by_name: dict[str, Obj] = {}
    default = await sources.services("default")
    for svc in default:
        name = str((svc.get("metadata") or {}).get("name", ""))
        if name in MASTER_SERVICES and _has_cluster_ip(svc):
            by_name[name] = svc
    if links:
        for svc in default if ns == "default" else await sources.services(ns):
            if _has_cluster_ip(svc):
                by_name[str((svc.get("metadata") or {}).get("name", ""))] = svc
    return list(by_name.values())


# ------------------------------------------------------------------------------------ valueFrom
def _secret_value(raw: str) -> str:
    try:
        return base64.b64decode(raw).decode(errors="replace")
    except ValueError:
        return raw


async def _key_ref(kind: str, ref: Obj, namespace: str, sources: Sources) -> str | None:
    name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
    optional = bool(ref.get("optional"))
    obj = await (
        sources.configmap(namespace, name) if kind == "ConfigMap" else sources.secret(namespace, name)
    )
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    if kind == "ConfigMap":
        data = obj.get("data") or {}
        if key in data:
            return str(data[key])
        binary = obj.get("binaryData") or {}
        if key in binary:
            return _secret_value(str(binary[key]))
    else:
        if key in (obj.get("data") or {}):
            return _secret_value(str(obj["data"][key]))
        if key in (obj.get("stringData") or {}):
            return str(obj["stringData"][key])
    if optional:
        return None
    raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")


_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: Obj, path: str, facts: PodFacts) -> str:
    """The value of a downward-API ``fieldRef`` for ``pod``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = _LABEL_REF.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    pod_ip = facts.pod_ip or str(status.get("podIP") or "")
    host_ip = facts.host_ip or str(status.get("hostIP") or "")
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
        "status.podIPs": pod_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def resource_field_ref(pod: Obj, container_name: str, ref: Obj, facts: PodFacts) -> str:
    """``resourceFieldRef``: limits/requests of a container divided by ``divisor``, rounded up."""
    resource = str(ref.get("resource") or "")
    name = str(ref.get("containerName") or container_name)
    spec = pod.get("spec") or {}
    ctr = next(
        (
            c
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
            if c.get("name") == name
        ),
        None,
    )
    if ctr is None:
        raise ConfigError(f"resourceFieldRef: container {name!r} not found")
    kind, _, res = resource.partition(".")
    if kind not in ("limits", "requests") or not res:
        raise ConfigError(f"unsupported resourceFieldRef resource {resource!r}")
    value = ((ctr.get("resources") or {}).get(kind) or {}).get(res)
    if value is None and kind == "limits":
        value = (facts.node_allocatable or {}).get(res)
    amount = parse_quantity(value) if value is not None else Decimal(0)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        divisor = Decimal(1)
    return str(math.ceil(amount / divisor))


async def _value_from(pod: Obj, container: Obj, vf: Obj, sources: Sources, facts: PodFacts) -> str | None:
    ns = str(pod["metadata"].get("namespace") or "default")
    if vf.get("configMapKeyRef"):
        return await _key_ref("ConfigMap", vf["configMapKeyRef"], ns, sources)
    if vf.get("secretKeyRef"):
        return await _key_ref("Secret", vf["secretKeyRef"], ns, sources)
    if vf.get("fieldRef"):
        return field_ref(pod, str(vf["fieldRef"].get("fieldPath", "")), facts)
    if vf.get("resourceFieldRef"):
        return resource_field_ref(pod, str(container.get("name")), vf["resourceFieldRef"], facts)
    raise ConfigError("env valueFrom has no source")


async def _env_from(pod: Obj, source: Obj, sources: Sources) -> dict[str, str]:
    ns = str(pod["metadata"].get("namespace") or "default")
    prefix = str(source.get("prefix") or "")
    kind, ref = (
        ("ConfigMap", source.get("configMapRef"))
        if source.get("configMapRef")
        else ("Secret", source.get("secretRef"))
    )
    if not ref:
        return {}
    name = str(ref.get("name") or "")
    obj = await (sources.configmap(ns, name) if kind == "ConfigMap" else sources.secret(ns, name))
    if obj is None:
        if ref.get("optional"):
            return {}
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    out: dict[str, str] = {}
    if kind == "ConfigMap":
        out = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    else:
        out = {k: _secret_value(str(v)) for k, v in (obj.get("data") or {}).items()}
    # invalid variable names are skipped (the kubelet records an InvalidEnvironmentVariableNames event)
    return {prefix + k: v for k, v in out.items() if _ENV_NAME.match(prefix + k)}


async def container_env(
    pod: Obj, container: Obj, sources: Sources, facts: PodFacts, image_env: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """The container's environment in order (image ENV, services, envFrom, env)."""
    env: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        env[k] = v
    env.update(service_env(await _services_for(pod, sources)))
    for source in container.get("envFrom") or []:
        env.update(await _env_from(pod, source, sources))
    for item in container.get("env") or []:
        name = str(item.get("name"))
        if item.get("valueFrom"):
            value = await _value_from(pod, container, item["valueFrom"], sources, facts)
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(item.get("value") or ""), env)
    return list(env.items())
