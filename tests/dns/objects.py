"""Service, EndpointSlice and Namespace objects for the DNS tests (API shapes, v1)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(
    name: str,
    ns: str = "default",
    ips: list[str] | None = None,
    ports: list[Obj] | None = None,
    *,
    external: str = "",
) -> Obj:
    """A Service: ClusterIP with ``ips``, headless with ``ips=["None"]``, or ExternalName."""
    spec: Obj = {"ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if external:
        spec = {"type": "ExternalName", "externalName": external}
    else:
        ips = ips or []
        spec.update(type="ClusterIP", clusterIP=ips[0] if ips else "", clusterIPs=ips)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint(ip: str, hostname: str = "", ready: bool | None = True) -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(
    name: str,
    svc: str,
    ns: str = "default",
    endpoints: list[Obj] | None = None,
    ports: list[Obj] | None = None,
) -> Obj:
    first = ((endpoints or [{}])[0].get("addresses") or ["0.0.0.0"])[0]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc},
        },
        "addressType": "IPv6" if ":" in first else "IPv4",
        "endpoints": endpoints or [],
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
