"""Endpoints and EndpointSlice controllers against a real in-process API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelite.api import errors
from kubelite.controllers import endpoints, endpointslice
from kubelite.controllers.endpoints import compute_subsets
from kubelite.controllers.endpointslice import MAX_ENDPOINTS, desired_endpoints, plan_slices
from tests.unit.lifecycle_api import (
    ENDPOINTS,
    PODS,
    SERVICES,
    SLICES,
    api_server,
    eventually,
    pod,
    running,
    set_pod_status,
)

Obj = dict[str, Any]


def _svc(name: str = "web", **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    body["spec"].update(spec)
    return body


def _pod_obj(name: str, ip: str, ready: bool = True, deleting: bool = False, port: int = 8080) -> Obj:
    p = pod(name, {"app": "web"}, node="n1", ports=[{"name": "http", "containerPort": port}])
    p["metadata"].update(namespace="default", uid=f"uid-{name}")
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    p["status"] = {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return p


def test_subsets_split_ready_and_not_ready_and_resolve_named_ports() -> None:
    svc = _svc()
    svc["metadata"]["namespace"] = "default"
    pods = [
        _pod_obj("b", "10.0.0.2"),
        _pod_obj("a", "10.0.0.1"),
        _pod_obj("c", "10.0.0.3", ready=False),
        _pod_obj("d", "10.0.0.4", deleting=True),
        _pod_obj("e", "10.0.0.5", port=9090),
    ]
    pods.append(pod("noip", {"app": "web"}))
    subsets = compute_subsets(svc, pods)
    assert len(subsets) == 2
    by_port = {s["ports"][0]["port"]: s for s in subsets}
    main = by_port[8080]
    assert [a["ip"] for a in main["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert [a["ip"] for a in main["notReadyAddresses"]] == ["10.0.0.3"]
    assert main["ports"] == [{"port": 8080, "protocol": "TCP", "name": "http"}]
    assert main["addresses"][0]["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "a",
        "uid": "uid-a",
    }
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["10.0.0.5"]


def test_publish_not_ready_addresses_lists_everything_ready() -> None:
    svc = _svc(publishNotReadyAddresses=True)
    svc["metadata"]["namespace"] = "default"
    subsets = compute_subsets(
        svc, [_pod_obj("a", "10.0.0.1", ready=False), _pod_obj("d", "10.0.0.4", deleting=True)]
    )
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.0.0.1", "10.0.0.4"]
    assert "notReadyAddresses" not in subsets[0]


def test_slice_conditions_and_chunking() -> None:
    svc = _svc()
    svc["metadata"]["namespace"] = "default"
    pods = [_pod_obj(f"p{i}", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(250)]
    pods.append(_pod_obj("term", "10.9.0.1", deleting=True))
    desired = desired_endpoints(svc, pods, None)
    ((ports, eps),) = desired.values()
    assert ports == [{"port": 8080, "protocol": "TCP", "name": "http"}]
    assert eps["10.9.0.1"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert eps["10.0.0.1"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    plan = plan_slices([], desired)
    assert [len(e) for _, e in plan.create] == [MAX_ENDPOINTS, MAX_ENDPOINTS, 51]


def test_plan_keeps_endpoints_in_their_slice() -> None:
    svc = _svc()
    svc["metadata"]["namespace"] = "default"
    pods = [_pod_obj(f"p{i}", f"10.0.0.{i + 1}") for i in range(3)]
    desired = desired_endpoints(svc, pods, None)
    ((ports, eps),) = desired.values()
    existing = {
        "metadata": {"name": "web-abc"},
        "ports": ports,
        "endpoints": [eps["10.0.0.3"], {"addresses": ["10.0.0.99"]}],
    }
    plan = plan_slices([existing], desired)
    assert not plan.create and not plan.delete
    ((sl, _, kept),) = plan.update
    assert sl is existing
    assert kept[0]["addresses"][0] == "10.0.0.3"
    assert sorted(e["addresses"][0] for e in kept) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    empty = plan_slices([existing], {})
    assert empty.update == [(existing, [], [])] and not empty.create


async def test_controllers_follow_pods(tmp_path: Path) -> None:
    async with (
        api_server(tmp_path) as api,
        running(api.client, [endpoints.new, endpointslice.new]),
    ):
        c = api.client
        await c.create(SERVICES, "default", _svc())
        for name, ip in (("a", "10.1.0.1"), ("b", "10.1.0.2")):
            await c.create(
                PODS,
                "default",
                pod(name, {"app": "web"}, node="n1", ports=[{"name": "http", "containerPort": 8080}]),
            )
            await set_pod_status(c, "default", name, ip, ready=(name == "a"))

        async def endpoints_ready() -> bool:
            ep = await c.get(ENDPOINTS, "default", "web")
            subset = (ep.get("subsets") or [{}])[0]
            assert [a["ip"] for a in subset.get("addresses") or []] == ["10.1.0.1"]
            assert [a["ip"] for a in subset.get("notReadyAddresses") or []] == ["10.1.0.2"]
            assert ep["metadata"]["labels"] == {"tier": "front"}
            return True

        await eventually(endpoints_ready)

        async def one_slice() -> Obj:
            items = (await c.list(SLICES, "default", label_selector="kubernetes.io/service-name=web"))[
                "items"
            ]
            assert len(items) == 1
            sl: Obj = items[0]
            assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
                "endpointslice-controller.k8s.io"
            )
            assert sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
            assert sorted(e["addresses"][0] for e in sl["endpoints"]) == ["10.1.0.1", "10.1.0.2"]
            return sl

        sl = await eventually(one_slice)
        assert sl["metadata"]["name"].startswith("web-")
        assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

        await set_pod_status(c, "default", "b", "10.1.0.2", ready=True)

        async def both_ready() -> bool:
            ep = await c.get(ENDPOINTS, "default", "web")
            return [a["ip"] for a in ep["subsets"][0].get("addresses") or []] == ["10.1.0.1", "10.1.0.2"]

        await eventually(both_ready)

        await c.delete(SERVICES, "default", "web")

        async def gone() -> bool:
            try:
                await c.get(ENDPOINTS, "default", "web")
            except errors.NotFound:
                pass
            else:
                return False
            return not (await c.list(SLICES, "default"))["items"]

        await eventually(gone)
        # the API server's own Endpoints of the kubernetes Service are left alone
        kube = await c.get(ENDPOINTS, "default", "kubernetes")
        assert kube["subsets"][0]["ports"][0]["name"] == "https"


async def test_placeholder_slice_for_service_without_pods(tmp_path: Path) -> None:
    async with (
        api_server(tmp_path) as api,
        running(api.client, [endpoints.new, endpointslice.new]),
    ):
        await api.client.create(SERVICES, "default", _svc("empty"))

        async def placeholder() -> bool:
            items = (await api.client.list(SLICES, "default"))["items"]
            assert len(items) == 1 and not items[0].get("endpoints") and not items[0].get("ports")
            ep = await api.client.get(ENDPOINTS, "default", "empty")
            return not ep.get("subsets")

        await eventually(placeholder)
