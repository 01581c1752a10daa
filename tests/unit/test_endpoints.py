"""Endpoints and EndpointSlice controllers against a real in-process API server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kubelite.api import errors
from kubelite.controllers import endpoints, endpointslice, endpointslicemirroring
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
# the controller's slices (the API server writes default/kubernetes itself)
MANAGED = "endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io"


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
            return not (await c.list(SLICES, "default", label_selector=MANAGED))["items"]

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
            items = (await api.client.list(SLICES, "default", label_selector=MANAGED))["items"]
            assert len(items) == 1 and not items[0].get("endpoints") and not items[0].get("ports")
            ep = await api.client.get(ENDPOINTS, "default", "empty")
            return not ep.get("subsets")

        await eventually(placeholder)


# ------------------------------------------------------------------ networking correctness


class _Nodes:
    """The part of a node informer the slice builder reads (zones)."""

    def __init__(self, zones: dict[str, str]) -> None:
        self.zones = zones

    def get(self, name: str) -> Obj | None:
        if name not in self.zones:
            return None
        return {"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": self.zones[name]}}}


def _one_group(svc: Obj, pods: list[Obj], nodes: Any = None) -> dict[str, Obj]:
    desired = desired_endpoints(svc, pods, nodes)
    ((_, eps),) = desired.values()
    return eps


def test_publish_not_ready_addresses_makes_every_slice_endpoint_ready() -> None:
    svc = _svc(publishNotReadyAddresses=True)
    svc["metadata"]["namespace"] = "default"
    eps = _one_group(svc, [_pod_obj("a", "10.0.0.1", ready=False), _pod_obj("d", "10.0.0.4", deleting=True)])
    assert eps["10.0.0.1"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["10.0.0.4"]["conditions"] == {"ready": True, "serving": True, "terminating": True}


def test_slice_conditions_for_not_ready_and_terminating_not_ready_pods() -> None:
    svc = _svc()
    svc["metadata"]["namespace"] = "default"
    eps = _one_group(
        svc,
        [_pod_obj("a", "10.0.0.1", ready=False), _pod_obj("t", "10.0.0.2", ready=False, deleting=True)],
    )
    assert eps["10.0.0.1"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert eps["10.0.0.2"]["conditions"] == {"ready": False, "serving": False, "terminating": True}


def test_slice_endpoint_identity_fields() -> None:
    svc = _svc("db")
    svc["metadata"]["namespace"] = "default"
    member = _pod_obj("db-0", "10.0.0.1")
    member["spec"].update(hostname="db-0", subdomain="db")
    other = _pod_obj("x", "10.0.0.2")
    other["spec"].update(hostname="x", subdomain="elsewhere")
    other["spec"]["nodeName"] = "n2"
    eps = _one_group(svc, [member, other], _Nodes({"n1": "zone-a"}))
    assert eps["10.0.0.1"] == {
        "addresses": ["10.0.0.1"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "db-0", "uid": "uid-db-0"},
        "nodeName": "n1",
        "zone": "zone-a",
        "hostname": "db-0",
    }
    assert "hostname" not in eps["10.0.0.2"] and "zone" not in eps["10.0.0.2"]
    assert eps["10.0.0.2"]["nodeName"] == "n2"
    ep_addr = compute_subsets(svc, [member])[0]["addresses"][0]
    assert ep_addr["hostname"] == "db-0" and ep_addr["nodeName"] == "n1"


def test_pods_without_ip_or_finished_are_skipped() -> None:
    svc = _svc()
    svc["metadata"]["namespace"] = "default"
    done = _pod_obj("done", "10.0.0.3")
    done["status"]["phase"] = "Succeeded"
    no_ip = _pod_obj("pending", "")
    assert set(_one_group(svc, [_pod_obj("a", "10.0.0.1"), done, no_ip])) == {"10.0.0.1"}
    assert [
        a["ip"] for a in compute_subsets(svc, [done, no_ip, _pod_obj("a", "10.0.0.1")])[0]["addresses"]
    ] == ["10.0.0.1"]


def test_named_target_ports_resolve_per_pod_including_sidecars() -> None:
    svc = _svc(
        ports=[
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        ]
    )
    svc["metadata"]["namespace"] = "default"
    sidecar = _pod_obj("side", "10.0.0.3")
    sidecar["spec"]["containers"][0]["ports"] = []
    sidecar["spec"]["initContainers"] = [
        {
            "name": "proxy",
            "image": "envoy",
            "restartPolicy": "Always",
            "ports": [{"name": "http", "containerPort": 15001}],
        }
    ]
    lacking = _pod_obj("bare", "10.0.0.4")
    lacking["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080, "protocol": "UDP"}]
    pods = [_pod_obj("a", "10.0.0.1"), _pod_obj("b", "10.0.0.2", port=9090), sidecar, lacking]
    desired = desired_endpoints(svc, pods, None)
    by_addresses = {tuple(sorted(eps)): ports for ports, eps in desired.values()}
    dns = {"name": "dns", "port": 53, "protocol": "UDP"}
    assert by_addresses == {
        ("10.0.0.1",): [{"port": 8080, "protocol": "TCP", "name": "http"}, dns],
        ("10.0.0.2",): [{"port": 9090, "protocol": "TCP", "name": "http"}, dns],
        ("10.0.0.3",): [{"port": 15001, "protocol": "TCP", "name": "http"}, dns],
        ("10.0.0.4",): [dns],  # a protocol mismatch does not resolve the named port
    }
    subsets = compute_subsets(svc, pods)
    assert sorted(a["ip"] for s in subsets for a in s["addresses"]) == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.4",
    ]


def test_slice_keeps_pods_resolving_no_port_endpoints_drop_them() -> None:
    svc = _svc()
    svc["metadata"]["namespace"] = "default"
    bare = _pod_obj("bare", "10.0.0.9")
    bare["spec"]["containers"][0]["ports"] = []
    desired = desired_endpoints(svc, [bare], None)
    assert [(ports, sorted(eps)) for ports, eps in desired.values()] == [([], ["10.0.0.9"])]
    assert compute_subsets(svc, [bare]) == []


def test_services_without_ports_list_addresses_only_when_headless() -> None:
    headless = _svc("h", clusterIP="None", ports=[])
    headless["metadata"]["namespace"] = "default"
    assert compute_subsets(headless, [_pod_obj("a", "10.0.0.1")]) == [
        {"addresses": [compute_subsets(headless, [_pod_obj("a", "10.0.0.1")])[0]["addresses"][0]]}
    ]
    plain = _svc("p", ports=[])
    plain["metadata"]["namespace"] = "default"
    assert compute_subsets(plain, [_pod_obj("a", "10.0.0.1")]) == []


async def test_slices_follow_readiness_within_a_fraction_of_a_second(tmp_path: Path) -> None:
    async with (
        api_server(tmp_path) as api,
        running(api.client, [endpoints.new, endpointslice.new]),
    ):
        c = api.client
        await c.create(SERVICES, "default", _svc())
        await c.create(
            PODS,
            "default",
            pod("a", {"app": "web"}, node="n1", ports=[{"name": "http", "containerPort": 8080}]),
        )
        await set_pod_status(c, "default", "a", "10.1.0.1", ready=False)

        async def slice_ready_is(value: bool) -> bool:
            items = (await c.list(SLICES, "default", label_selector="kubernetes.io/service-name=web"))[
                "items"
            ]
            eps = [e for sl in items for e in sl.get("endpoints") or []]
            return len(eps) == 1 and eps[0]["conditions"]["ready"] is value

        await eventually(lambda: slice_ready_is(False))
        for ready in (True, False, True):
            started = time.monotonic()
            await set_pod_status(c, "default", "a", "10.1.0.1", ready=ready)
            await eventually(lambda: slice_ready_is(ready), timeout=2.0, interval=0.005)  # noqa: B023
            assert time.monotonic() - started < 0.5


async def test_external_name_services_get_no_slices(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [endpoints.new, endpointslice.new]):
        c = api.client
        await c.create(SERVICES, "default", _svc("plain"))
        ext = _svc("ext", type="ExternalName", externalName="example.com")
        await c.create(SERVICES, "default", ext)

        async def only_plain() -> bool:
            items = (await c.list(SLICES, "default"))["items"]
            names = {sl["metadata"]["labels"]["kubernetes.io/service-name"] for sl in items}
            return names == {"plain", "kubernetes"}

        await eventually(only_plain)

        async def plain_endpoints() -> bool:
            try:
                return bool(await c.get(ENDPOINTS, "default", "plain"))
            except errors.NotFound:
                return False

        await eventually(plain_endpoints)
        with pytest.raises(errors.NotFound):
            await c.get(ENDPOINTS, "default", "ext")


MIRRORED = "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io"


def test_mirroring_converts_subsets_by_family_and_ports() -> None:
    ep = {
        "metadata": {"name": "db", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "192.0.2.1", "hostname": "one", "nodeName": "n1"}, {"ip": "fd00::1"}],
                "notReadyAddresses": [{"ip": "192.0.2.2"}],
                "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}],
            },
            {"addresses": [{"ip": "not-an-ip"}, {"ip": "192.0.2.3"}], "ports": [{"port": 80}]},
        ],
    }
    by_family = endpointslicemirroring.desired_by_family(ep)
    v4 = {tuple(p["port"] for p in ports): eps for ports, eps in by_family["IPv4"].values()}
    assert v4[(5432,)]["192.0.2.1"] == {
        "addresses": ["192.0.2.1"],
        "conditions": {"ready": True},
        "hostname": "one",
        "nodeName": "n1",
    }
    assert v4[(5432,)]["192.0.2.2"]["conditions"] == {"ready": False}
    assert list(v4[(80,)]) == ["192.0.2.3"]
    ((ports, v6),) = by_family["IPv6"].values()
    assert list(v6) == ["fd00::1"] and ports == [{"name": "sql", "port": 5432, "protocol": "TCP"}]


async def test_selectorless_service_endpoints_are_mirrored(tmp_path: Path) -> None:
    async with (
        api_server(tmp_path) as api,
        running(api.client, [endpoints.new, endpointslice.new, endpointslicemirroring.new]),
    ):
        c = api.client
        await c.create(SERVICES, "default", _svc("db", selector=None, ports=[{"name": "sql", "port": 5432}]))
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "db", "labels": {"team": "data"}},
            "subsets": [
                {
                    "addresses": [{"ip": "192.0.2.10"}],
                    "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}],
                }
            ],
        }
        await c.create(ENDPOINTS, "default", body)

        async def mirrored(ips: list[str]) -> Obj | None:
            items = (await c.list(SLICES, "default", label_selector=MIRRORED))["items"]
            got = sorted(e["addresses"][0] for sl in items for e in sl.get("endpoints") or [])
            assert got == ips, got
            return items[0] if items else None

        sl = await eventually(lambda: mirrored(["192.0.2.10"]))
        assert sl["metadata"]["labels"] == {
            "team": "data",
            "kubernetes.io/service-name": "db",
            "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
        }
        assert sl["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
        assert sl["ports"] == [{"name": "sql", "port": 5432, "protocol": "TCP"}]

        ep = await c.get(ENDPOINTS, "default", "db")
        ep["subsets"][0]["addresses"].append({"ip": "192.0.2.11"})
        await c.update(ENDPOINTS, "default", ep)
        await eventually(lambda: mirrored(["192.0.2.10", "192.0.2.11"]))

        ep = await c.get(ENDPOINTS, "default", "db")
        ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] = "true"
        await c.update(ENDPOINTS, "default", ep)

        async def none_mirrored() -> bool:
            return not (await c.list(SLICES, "default", label_selector=MIRRORED))["items"]

        await eventually(none_mirrored)
        # the API server's kubernetes Endpoints are never mirrored (skip-mirror)
        assert [sl["metadata"]["name"] for sl in (await c.list(SLICES, "default"))["items"]] == ["kubernetes"]
