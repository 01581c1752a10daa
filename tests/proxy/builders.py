"""Service and EndpointSlice bodies for the proxy tests."""

from __future__ import annotations

from typing import Any

from kubelite.proxy.render import RenderContext, render_service, service_endpoints
from kubelite.proxy.ruleset import Fragment
from kubelite.proxy.service import service_info

Obj = dict[str, Any]
CTX = RenderContext("node-a", "10.244.0.0/16", "10.96.0.0/12")


def svc(name: str = "web", ip: str = "10.96.0.20", ns: str = "default", **spec: Any) -> Obj:
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP"}])
    status = spec.pop("status", {})
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], **spec},
        "status": status,
    }


def ep(ip: str, ready: bool | None = True, node: str = "node-a") -> Obj:
    out: Obj = {"addresses": [ip], "nodeName": node}
    if ready is not None:
        out["conditions"] = {"ready": ready}
    return out


def eps_slice(service: str, endpoints: list[Obj], ns: str = "default", **port: Any) -> Obj:
    p = {"name": "http", "port": 8080, "protocol": "TCP", **port}
    return {
        "metadata": {
            "namespace": ns,
            "name": f"{service}-x",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [p],
        "endpoints": endpoints,
    }


def render(service: Obj, *slices: Obj) -> Fragment:
    info = service_info(service)
    eps = service_endpoints(info, slices) if info else {}
    return render_service(info, eps, CTX)
