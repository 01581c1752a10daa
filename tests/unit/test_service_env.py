"""Service environment variables of containers, as the kubelet's envvars package makes them."""

from __future__ import annotations

import asyncio
from typing import Any

from kubelite.agent import env

Obj = dict[str, Any]


def _svc(name: str, ns: str, ip: str, ports: list[Obj]) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


class _Sources:
    def __init__(self, services: list[Obj]) -> None:
        self._services = services
        self.asked: list[str] = []

    async def configmap(self, namespace: str, name: str) -> Obj | None:
        return None

    async def secret(self, namespace: str, name: str) -> Obj | None:
        return None

    async def services(self, namespace: str) -> list[Obj]:
        self.asked.append(namespace)
        return [s for s in self._services if s["metadata"]["namespace"] == namespace]


KUBERNETES = _svc("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])
CLUSTER = [
    KUBERNETES,
    _svc("other", "default", "10.96.0.20", [{"port": 81}]),
    _svc(
        "redis-primary",
        "app",
        "10.96.0.11",
        [
            {"name": "redis", "port": 6379, "protocol": "TCP"},
            {"name": "metrics-udp", "port": 9121, "protocol": "UDP"},
        ],
    ),
    _svc("headless", "app", "None", [{"port": 1}]),
    {
        "metadata": {"name": "ext", "namespace": "app"},
        "spec": {"type": "ExternalName", "externalName": "a.b"},
    },
]


def _env_of(namespace: str, links: bool | None = None, services: list[Obj] = CLUSTER) -> dict[str, str]:
    pod: Obj = {"metadata": {"name": "p", "namespace": namespace}, "spec": {"containers": [{"name": "c"}]}}
    if links is not None:
        pod["spec"]["enableServiceLinks"] = links
    out = asyncio.run(
        env.container_env(pod, pod["spec"]["containers"][0], _Sources(services), env.PodFacts())
    )
    return dict(out)


def test_service_variables_match_the_kubelet() -> None:
    out = _env_of("app")
    assert {k: v for k, v in out.items() if k.startswith("REDIS_PRIMARY")} == {
        "REDIS_PRIMARY_SERVICE_HOST": "10.96.0.11",
        "REDIS_PRIMARY_SERVICE_PORT": "6379",
        "REDIS_PRIMARY_SERVICE_PORT_REDIS": "6379",
        "REDIS_PRIMARY_SERVICE_PORT_METRICS_UDP": "9121",
        "REDIS_PRIMARY_PORT": "tcp://10.96.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP": "tcp://10.96.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_PRIMARY_PORT_6379_TCP_PORT": "6379",
        "REDIS_PRIMARY_PORT_6379_TCP_ADDR": "10.96.0.11",
        "REDIS_PRIMARY_PORT_9121_UDP": "udp://10.96.0.11:9121",
        "REDIS_PRIMARY_PORT_9121_UDP_PROTO": "udp",
        "REDIS_PRIMARY_PORT_9121_UDP_PORT": "9121",
        "REDIS_PRIMARY_PORT_9121_UDP_ADDR": "10.96.0.11",
    }
    assert out["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and out["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert out["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    # other namespaces' Services, headless and ExternalName ones give nothing
    assert not any(k.startswith(("OTHER_", "HEADLESS_", "EXT_")) for k in out)


def test_unnamed_single_port_has_no_named_variable() -> None:
    out = _env_of("default")
    assert out["OTHER_SERVICE_PORT"] == "81" and out["OTHER_PORT"] == "tcp://10.96.0.20:81"
    assert not any(k.startswith("OTHER_SERVICE_PORT_") for k in out)


def test_disabled_service_links_keep_only_the_master_service() -> None:
    for ns in ("app", "default"):
        out = _env_of(ns, links=False)
        assert {k.split("_")[0] for k in out} == {"KUBERNETES"}, ns
    assert "KUBERNETES_SERVICE_HOST" in _env_of("default", links=True)


def test_a_namespace_service_named_kubernetes_shadows_the_master() -> None:
    own = _svc("kubernetes", "app", "10.96.0.77", [{"port": 8080}])
    assert _env_of("app", services=[*CLUSTER, own])["KUBERNETES_SERVICE_HOST"] == "10.96.0.77"
    assert _env_of("app", links=False, services=[*CLUSTER, own])["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


def test_ipv6_link_addresses_are_bracketed() -> None:
    out = env.service_env([_svc("v6", "app", "fd00::a", [{"port": 80}])])
    assert out["V6_PORT"] == "tcp://[fd00::a]:80" and out["V6_PORT_80_TCP_ADDR"] == "fd00::a"


def test_service_variables_expand_in_declared_values_and_lose_to_them() -> None:
    pod: Obj = {"metadata": {"name": "p", "namespace": "app"}, "spec": {}}
    ctr: Obj = {
        "name": "c",
        "env": [
            {"name": "URL", "value": "http://$(REDIS_PRIMARY_SERVICE_HOST):$(REDIS_PRIMARY_SERVICE_PORT)"},
            {"name": "KUBERNETES_SERVICE_HOST", "value": "override"},
        ],
    }
    out = dict(asyncio.run(env.container_env(pod, ctr, _Sources(CLUSTER), env.PodFacts())))
    assert out["URL"] == "http://10.96.0.11:6379" and out["KUBERNETES_SERVICE_HOST"] == "override"
