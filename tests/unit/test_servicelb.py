"""ServiceLB controller: LoadBalancer ingress from the Ready nodes, against a real API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelite.client.base import Client
from kubelite.controllers import servicelb
from kubelite.controllers.manager import FACTORIES
from kubelite.controllers.servicelb import ingress_for, is_ours
from tests.unit.lifecycle_api import NODES, SERVICES, api_server, eventually, running

Obj = dict[str, Any]


def _node_obj(name: str, ready: bool = True, internal: str = "", external: str = "") -> Obj:
    addresses = [{"type": "Hostname", "address": name}]
    if internal:
        addresses.append({"type": "InternalIP", "address": internal})
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "addresses": addresses,
        },
    }


def _lb(name: str = "web", **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
    }
    body["spec"].update(spec)
    return body


def test_ingress_is_sorted_ready_node_addresses_preferring_external() -> None:
    nodes = [
        _node_obj("n1", internal="10.0.0.9"),
        _node_obj("n2", internal="10.0.0.10"),
        _node_obj("n3", internal="10.0.0.11", external="192.0.2.5"),
        _node_obj("down", ready=False, internal="10.0.0.1"),
        _node_obj("v6", internal="fd00::1"),
    ]
    excluded = _node_obj("ex", internal="10.0.0.2")
    excluded["metadata"]["labels"] = {servicelb.EXCLUDE_LABEL: ""}
    nodes.append(excluded)
    svc = _lb(ipFamilies=["IPv4"])
    assert ingress_for(svc, nodes) == [
        {"ip": "10.0.0.9", "ipMode": "VIP"},
        {"ip": "10.0.0.10", "ipMode": "VIP"},
        {"ip": "192.0.2.5", "ipMode": "VIP"},
    ]


def test_only_classless_load_balancers_are_ours() -> None:
    assert is_ours(_lb())
    assert not is_ours(_lb(loadBalancerClass="example.com/metallb"))
    assert not is_ours(_lb(type="NodePort"))
    assert FACTORIES["service-lb-controller"] == "kubelite.controllers.servicelb:new"


async def _add_node(c: Client, body: Obj) -> None:
    created = await c.create(NODES, "", {k: v for k, v in body.items() if k != "status"})
    created["status"] = body["status"]
    await c.update(NODES, "", created, subresource="status")


async def _set_ready(c: Client, name: str, ready: bool) -> None:
    node = await c.get(NODES, "", name)
    node["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    await c.update(NODES, "", node, subresource="status")


async def _ingress(c: Client, name: str) -> list[str]:
    svc = await c.get(SERVICES, "default", name)
    return [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


async def test_ingress_follows_nodes_and_service_type(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [servicelb.new]):
        c = api.client
        await _add_node(c, _node_obj("n1", internal="10.0.0.2"))
        await c.create(SERVICES, "default", _lb())
        await c.create(SERVICES, "default", _lb("other", loadBalancerClass="example.com/lb"))

        async def ingress_is(name: str, ips: list[str]) -> Any:
            async def check() -> bool:
                got = await _ingress(c, name)
                assert got == ips, got
                return True

            return await eventually(check)

        await ingress_is("web", ["10.0.0.2"])
        svc = await c.get(SERVICES, "default", "web")
        assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.2", "ipMode": "VIP"}]

        await _add_node(c, _node_obj("n2", internal="10.0.0.1"))
        await ingress_is("web", ["10.0.0.1", "10.0.0.2"])
        await _set_ready(c, "n1", False)
        await ingress_is("web", ["10.0.0.1"])
        await _set_ready(c, "n1", True)
        await ingress_is("web", ["10.0.0.1", "10.0.0.2"])
        await c.delete(NODES, "", "n2")
        await ingress_is("web", ["10.0.0.2"])
        assert await _ingress(c, "other") == []  # another implementation's Service

        svc = await c.get(SERVICES, "default", "web")
        svc["spec"]["type"] = "ClusterIP"
        for p in svc["spec"]["ports"]:
            p.pop("nodePort", None)
        svc["spec"].pop("externalTrafficPolicy", None)
        svc["spec"].pop("allocateLoadBalancerNodePorts", None)
        await c.update(SERVICES, "default", svc)
        await ingress_is("web", [])
