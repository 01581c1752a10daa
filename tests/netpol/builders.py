"""Builders for NetworkPolicy, Pod and Namespace objects as the API returns them."""

from __future__ import annotations

from typing import Any

from kubelite.netpol.compiler import Cluster, compile_ruleset
from kubelite.netpol.model import PodInfo, namespace_labels, parse_pod, parse_policy
from kubelite.netpol.ruleset import Ruleset

Obj = dict[str, Any]
NODE = "node-a"


def netpol(
    name: str,
    namespace: str = "default",
    selector: Obj | None = None,
    ingress: list[Obj] | None = None,
    egress: list[Obj] | None = None,
    types: list[str] | None = None,
) -> Obj:
    spec: Obj = {"podSelector": selector if selector is not None else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def pod(
    name: str,
    ip: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    node: str = NODE,
    ports: list[Obj] | None = None,
    **spec: Any,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports or []}], **spec},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}] if ip else []},
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def labels(**kv: str) -> Obj:
    return {"matchLabels": dict(kv)}


def cluster_of(pods: list[Obj], namespaces: list[Obj] | None = None) -> Cluster:
    infos: dict[str, PodInfo] = {}
    for p in pods:
        info = parse_pod(p)
        if info is not None:
            infos[info.key] = info
    ns = {n["metadata"]["name"]: namespace_labels(n) for n in namespaces or []}
    return Cluster(infos, ns)


def compile_objs(
    policies: list[Obj],
    pods: list[Obj],
    namespaces: list[Obj] | None = None,
    node_addrs: tuple[str, ...] = ("192.0.2.10", "10.244.0.1"),
) -> Ruleset:
    return compile_ruleset(
        [parse_policy(p) for p in policies], cluster_of(pods, namespaces), NODE, node_addrs
    )
