"""The node simulator: pure builders, the heartbeat wheel, IPs, metrics, and the whole
simulator against a real in-process API server (memory store)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api import errors
from kubelite.apiserver.app import App
from kubelite.apiserver.server import ServerConfig, build_context
from kubelite.client.base import Client, Resource
from kubelite.client.inprocess import ASGITransport
from kubelite.simulator import Simulator, component
from kubelite.simulator.config import SimConfig, parse_duration, parse_taint
from kubelite.simulator.heartbeat import Wheel
from kubelite.simulator.ipam import PodIPs
from kubelite.simulator.metrics import MetricsRegistry, active, container_usage
from kubelite.simulator.nodeobj import build_node, healthy_conditions, node_index, pod_cidr
from kubelite.simulator.pods import is_job_pod, run_duration
from kubelite.simulator.podstatus import (
    finished_status,
    image_id,
    normalize_image,
    refresh_ready,
    restarted_status,
    running_status,
)
from kubelite.store import open_store

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")

# ---------------------------------------------------------------------- pure parts


def test_parse_taint_and_duration() -> None:
    t = parse_taint("dedicated=gpu:NoSchedule")
    assert t.to_obj() == {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    assert parse_taint("spot:PreferNoSchedule").to_obj() == {"key": "spot", "effect": "PreferNoSchedule"}
    with pytest.raises(errors.BadRequest, match="Effect"):
        parse_taint("a=b:Sometimes")
    assert parse_duration("2s") == 2.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m") == 60.0
    assert parse_duration("1.5") == 1.5
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_config_from_args_validates_quantities() -> None:
    args = SimpleNamespace(simulated_nodes=2, simulated_node_cpu="lots")
    with pytest.raises(errors.BadRequest, match="simulated-node-cpu"):
        SimConfig.from_args(args)
    cfg = SimConfig.from_args(SimpleNamespace(simulated_nodes=2, simulated_node_cpu="8"))
    assert cfg.nodes == 2 and cfg.cpu == "8" and cfg.memory == "16Gi"


async def test_component_is_none_without_nodes() -> None:
    assert await component(None, SimpleNamespace(simulated_nodes=0)) is None  # type: ignore[arg-type]


def test_build_node_labels_capacity_taints() -> None:
    cfg = SimConfig(nodes=5, cpu="8", memory="32Gi", pods=50, zones=2, taints=[parse_taint("x=y:NoSchedule")])
    cfg.tainted_nodes = 1
    n0, n3 = build_node(cfg, 0, "2025-01-01T00:00:00Z"), build_node(cfg, 3, "2025-01-01T00:00:00Z")
    assert n3["metadata"]["name"] == "sim-node-3"
    labels = n3["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "zone-1"
    assert labels["kubernetes.io/hostname"] == "sim-node-3"
    assert labels["kubelite.io/simulated"] == "true"
    assert n3["status"]["capacity"] == {
        "cpu": "8",
        "memory": "32Gi",
        "pods": "50",
        "ephemeral-storage": "100Gi",
    }
    assert n3["status"]["allocatable"] == n3["status"]["capacity"]
    assert n3["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0"
    assert {c["type"]: c["status"] for c in n3["status"]["conditions"]} == {
        "Ready": "True",
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
    }
    assert n0["spec"]["taints"] == [{"key": "x", "value": "y", "effect": "NoSchedule"}]
    assert "taints" not in n3["spec"]
    assert n3["spec"]["podCIDR"] == "10.244.3.0/24"
    assert node_index("sim-node-12", "sim-node-") == 12
    assert node_index("other", "sim-node-") is None


def test_healthy_conditions_keep_transition_times_and_foreign_conditions() -> None:
    node = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "Unknown", "lastTransitionTime": "T0"},
                {"type": "MemoryPressure", "status": "False", "lastTransitionTime": "T0"},
                {"type": "NetworkUnavailable", "status": "False", "lastTransitionTime": "T0"},
            ]
        }
    }
    out = {c["type"]: c for c in healthy_conditions(node, "T1")}
    assert out["Ready"]["status"] == "True" and out["Ready"]["lastTransitionTime"] == "T1"
    assert out["MemoryPressure"]["lastTransitionTime"] == "T0"
    assert out["MemoryPressure"]["lastHeartbeatTime"] == "T1"
    assert out["NetworkUnavailable"]["status"] == "False"


@given(st.integers(1, 3000), st.floats(0.1, 20.0))
@settings(max_examples=40, deadline=None)
def test_wheel_spreads_nodes_evenly_and_visits_each_once(n: int, period: float) -> None:
    w = Wheel(period)
    for i in range(n):
        w.add(f"n{i}")
    sizes = [len(s) for s in w.slots]
    assert max(sizes) - min(sizes) <= 1
    seen: list[str] = []
    for _ in range(len(w.slots)):
        seen.extend(w.advance())
    assert sorted(seen) == sorted(f"n{i}" for i in range(n))
    w.remove("n0")
    assert len(w) == n - 1 and "n0" not in {x for s in w.slots for x in s}


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3), st.booleans()), max_size=200))
def test_pod_ips_unique_per_node(ops: list[tuple[int, int, bool]]) -> None:
    ips = PodIPs()
    held: dict[str, str] = {}
    for pod, node, release in ops:
        key = f"ns/p{pod}"
        if release:
            ips.release(key)
            held.pop(key, None)
        else:
            ip = ips.allocate(key, node)
            if key in held and held[key].startswith(pod_cidr(node)[:-4]):
                assert ip == held[key]  # stable while held on the same node
            held[key] = ip
            assert ip.startswith(pod_cidr(node).rsplit(".", 1)[0] + ".")
    assert len(set(held.values())) == len(held)


def _pod(**extra: Any) -> Obj:
    meta: Obj = {"name": "p", "namespace": "ns", "uid": "u1"}
    meta.update(extra.pop("meta", {}))
    spec: Obj = {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis:7"}]}
    spec.update(extra)
    return {"metadata": meta, "spec": spec, "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def test_running_and_finished_status_shapes() -> None:
    p = _pod(initContainers=[{"name": "init", "image": "busybox"}])
    p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"}]
    s = running_status(p, "10.240.0.1", "10.244.0.5", "T1")
    assert s["phase"] == "Running" and s["podIP"] == "10.244.0.5" and s["hostIP"] == "10.240.0.1"
    assert s["podIPs"] == [{"ip": "10.244.0.5"}] and s["startTime"] == "T1" and s["qosClass"] == "BestEffort"
    conds = {c["type"]: c for c in s["conditions"]}
    assert {t: c["status"] for t, c in conds.items()} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    assert conds["PodScheduled"]["lastTransitionTime"] == "T0"
    cs = s["containerStatuses"]
    assert [c["name"] for c in cs] == ["a", "b"]
    assert all(c["ready"] and c["started"] and c["restartCount"] == 0 for c in cs)
    assert cs[0]["containerID"].startswith("simulated://")
    assert cs[1]["image"] == "docker.io/library/redis:7"
    assert cs[1]["imageID"].startswith("docker.io/library/redis@sha256:")
    assert cs[0]["state"] == {"running": {"startedAt": "T1"}}
    assert s["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"

    p["status"] = s
    f = finished_status(p, "10.240.0.1", "10.244.0.5", "T2", 3)
    assert f["phase"] == "Failed"
    fconds = {c["type"]: c for c in f["conditions"]}
    assert fconds["Ready"]["status"] == "False" and fconds["Ready"]["reason"] == "PodCompleted"
    term = f["containerStatuses"][0]["state"]["terminated"]
    assert term == {
        "exitCode": 3,
        "reason": "Error",
        "startedAt": "T1",
        "finishedAt": "T2",
        "containerID": f["containerStatuses"][0]["containerID"],
    }
    assert finished_status(p, "h", "i", "T2", 0)["phase"] == "Succeeded"


def test_image_names_as_a_cri_reports_them() -> None:
    assert normalize_image("nginx") == "docker.io/library/nginx:latest"
    assert normalize_image("nginx:1.27") == "docker.io/library/nginx:1.27"
    assert normalize_image("bitnami/redis:7") == "docker.io/bitnami/redis:7"
    assert normalize_image("registry.k8s.io/pause:3.10") == "registry.k8s.io/pause:3.10"
    assert normalize_image("localhost:5000/app") == "localhost:5000/app:latest"
    assert image_id("localhost:5000/app:v1").startswith("localhost:5000/app@sha256:")
    digest = "busybox@sha256:" + "a" * 64
    assert normalize_image(digest) == "docker.io/library/" + digest


def test_readiness_gates_hold_ready_until_true() -> None:
    p = _pod(readinessGates=[{"conditionType": "example.com/lb"}])
    mount = {"name": "tok", "mountPath": "/var/run/tok", "readOnly": True}
    p["spec"]["containers"][0]["volumeMounts"] = [mount]
    s = running_status(p, "h", "i", "T1")
    ready = next(c for c in s["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    missing = 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    assert ready["message"] == missing
    assert s["containerStatuses"][0]["volumeMounts"] == [
        {"name": "tok", "mountPath": "/var/run/tok", "readOnly": True, "recursiveReadOnly": "Disabled"}
    ]
    p["status"] = s
    assert refresh_ready(p, "T2") is None  # unchanged
    s["conditions"].append({"type": "example.com/lb", "status": "False"})
    msg = next(c for c in refresh_ready(p, "T2")["conditions"] if c["type"] == "Ready")["message"]  # type: ignore[index]
    assert msg == 'the status of pod readiness gate "example.com/lb" is not "True", but False'
    s["conditions"][-1]["status"] = "True"
    out = refresh_ready(p, "T3")
    assert out is not None
    ready = next(c for c in out["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "T3"
    assert [c["type"] for c in out["conditions"]] == [c["type"] for c in s["conditions"]]


def test_restarted_status_counts_restarts() -> None:
    p = _pod()
    p["status"] = running_status(p, "h", "i", "T1")
    r = restarted_status(p, "T2", 1)
    cs = r["containerStatuses"][0]
    assert cs["restartCount"] == 1 and cs["state"] == {"running": {"startedAt": "T2"}}
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["startedAt"] == "T1"
    p["status"] = r
    assert restarted_status(p, "T3", 1)["containerStatuses"][0]["restartCount"] == 2


def test_config_flags_for_taints_and_prefix() -> None:
    args = SimpleNamespace(
        simulated_nodes=3,
        simulated_node_taint=["gpu=yes:NoSchedule"],
        simulated_tainted_nodes=1,
        simulated_node_prefix="kw-",
        simulated_cleanup=True,
    )
    cfg = SimConfig.from_args(args)
    assert cfg.prefix == "kw-" and cfg.cleanup and cfg.tainted_nodes == 1
    assert build_node(cfg, 0)["spec"]["taints"] == [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]
    assert "taints" not in build_node(cfg, 1)["spec"]


def test_which_pods_finish() -> None:
    owned = _pod(restartPolicy="Never", meta={"ownerReferences": [{"kind": "Job", "name": "j"}]})
    labelled = _pod(restartPolicy="OnFailure", meta={"labels": {"batch.kubernetes.io/job-name": "j"}})
    assert is_job_pod(owned) and is_job_pod(labelled)
    assert run_duration(owned, 1.0) == 1.0
    assert run_duration(_pod(restartPolicy="Never"), 1.0) is None  # runs until deleted
    annotated = _pod(restartPolicy="Never", meta={"annotations": {"kubelite.io/simulate-duration": "2s"}})
    assert run_duration(annotated, 1.0) == 2.0
    always = _pod(meta={"annotations": {"kubelite.io/simulate-duration": "2s"}})
    assert run_duration(always, 1.0) is None


def test_metrics_from_annotations_and_requests() -> None:
    p = _pod(nodeName="n0", meta={"annotations": {"kubelite.io/simulate-cpu": "300m"}})
    p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "200m", "memory": "100Mi"}}
    p["spec"]["containers"][1]["resources"] = {"requests": {"cpu": "100m"}}
    usage = container_usage(p, 0.1)
    assert [(n, float(c)) for n, c, _ in usage] == [("a", 0.2), ("b", 0.1)]
    assert usage[0][2] == 100 * 2**20 // 10 + (100 * 2**20) % 10 / 10  # 10 % of the request

    nodes = [{"metadata": {"name": n, "labels": {"zone": n}}} for n in ("n0", "n1")]
    reg = MetricsRegistry(lambda: [p], lambda: nodes, 0.1)
    (pm,) = reg.pod_metrics("ns")
    assert pm["kind"] == "PodMetrics" and pm["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert pm["metadata"]["name"] == "p" and pm["window"]
    assert pm["containers"][0] == {"name": "a", "usage": {"cpu": "200m", "memory": "10Mi"}}
    assert reg.pod_metrics("other") == []
    by_name = {n["metadata"]["name"]: n for n in reg.node_metrics()}
    assert by_name["n0"]["usage"]["cpu"] == "300m"
    assert by_name["n0"]["metadata"]["labels"] == {"zone": "n0"}
    assert by_name["n1"]["usage"] == {"cpu": "0", "memory": "0"}


# ---------------------------------------------------------------------- with an API server


@asynccontextmanager
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    store = open_store("memory://")
    await store.start()
    try:
        ctx, crds = await build_context(store, ServerConfig(data_dir=tmp_path), {"t0ken": "admin"})
        try:
            yield Client(ASGITransport(App(ctx), "t0ken"), user_agent="simulator-test/v1.32.0")
        finally:
            await crds.stop()
    finally:
        await store.close()


@asynccontextmanager
async def simulator(client: Client, **cfg: Any) -> AsyncIterator[Simulator]:
    opts: dict[str, Any] = {"nodes": 3, "heartbeat": 0.5, "pod_start_delay": 0.05, "job_duration": 0.2}
    opts.update(cfg)
    sim = Simulator(client, SimConfig(**opts))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out; last value {last!r}")


def bound_pod(name: str, node: str, **extra: Any) -> Obj:
    meta: Obj = {"name": name}
    meta.update(extra.pop("meta", {}))
    spec: Obj = {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


async def phase(client: Client, name: str) -> str:
    try:
        return str((await client.get(PODS, "default", name))["status"].get("phase", ""))
    except errors.NotFound:
        return "<gone>"


async def test_registers_nodes_and_leases(tmp_path: Path) -> None:
    async with api(tmp_path) as client, simulator(client, nodes=4) as sim:
        nodes = (await client.list(NODES))["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == [f"sim-node-{i}" for i in range(4)]
        assert all(n["status"]["conditions"][-1]["status"] == "True" for n in nodes)
        assert active() is sim.metrics

        async def leases() -> list[Obj]:
            items: list[Obj] = (await client.list(LEASES, "kube-node-lease"))["items"]
            return items if len(items) == 4 else []

        items = await eventually(leases)
        lease = next(x for x in items if x["metadata"]["name"] == "sim-node-1")
        assert lease["spec"]["holderIdentity"] == "sim-node-1"
        assert lease["spec"]["leaseDurationSeconds"] == 40
        assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
        first = lease["spec"]["renewTime"]

        async def renewed() -> bool:
            cur = await client.get(LEASES, "kube-node-lease", "sim-node-1")
            return bool(cur["spec"]["renewTime"] != first)

        await eventually(renewed, 2)
    assert active() is None


async def test_restart_adopts_existing_nodes(tmp_path: Path) -> None:
    async with api(tmp_path) as client:
        async with simulator(client, nodes=2):
            pass
        async with simulator(client, nodes=3) as sim:
            assert sorted(sim.nodes.index) == ["sim-node-0", "sim-node-1", "sim-node-2"]
            assert sim.nodes.index["sim-node-2"] == 2


async def test_pod_lifecycle_run_finish_delete(tmp_path: Path) -> None:
    async with api(tmp_path) as client, simulator(client) as sim:
        await client.create(PODS, "default", bound_pod("web", "sim-node-0"))
        job_meta = {"labels": {"batch.kubernetes.io/job-name": "j"}}
        await client.create(
            PODS, "default", bound_pod("job", "sim-node-1", restartPolicy="Never", meta=job_meta)
        )
        await client.create(PODS, "default", bound_pod("elsewhere", "real-node"))
        await eventually(lambda: _is(client, "web", "Running"))
        await eventually(lambda: _is(client, "job", "Succeeded"))
        web = await client.get(PODS, "default", "web")
        assert web["status"]["podIP"].startswith("10.244.0.")
        assert await phase(client, "elsewhere") == "Pending"
        await eventually(lambda: _true(len(sim.metrics.pod_metrics("default")) == 1))

        await client.delete(PODS, "default", "web", grace_period_seconds=30)
        await eventually(lambda: _is(client, "web", "<gone>"))
        await eventually(lambda: _true(sim.metrics.pod_metrics("default") == []))


async def test_pod_marked_not_ready_by_node_lifecycle_recovers(tmp_path: Path) -> None:
    """The node-lifecycle controller sets Ready=False on pods of a node whose heartbeats were
    late; the simulated kubelet (still running) reports them Ready again, as kubelet does."""
    async with api(tmp_path) as client, simulator(client):
        await client.create(PODS, "default", bound_pod("web", "sim-node-0"))
        await eventually(lambda: _is(client, "web", "Running"))
        pod = await client.get(PODS, "default", "web")
        for c in pod["status"]["conditions"]:
            if c["type"] == "Ready":
                c["status"] = "False"
        await client.update(PODS, "default", pod, subresource="status")
        await eventually(lambda: _pod_ready(client, "web"))


async def _pod_ready(client: Client, name: str) -> bool:
    pod = await client.get(PODS, "default", name)
    conds = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


async def _is(client: Client, name: str, want: str) -> bool:
    return await phase(client, name) == want


async def test_stopped_node_is_left_alone_until_restarted(tmp_path: Path) -> None:
    async with api(tmp_path) as client, simulator(client) as sim:
        await eventually(lambda: _lease(client, "sim-node-2"))
        await client.patch(
            NODES, "", "sim-node-2", {"metadata": {"annotations": {"kubelite.io/simulate-stopped": "true"}}}
        )
        await eventually(lambda: _true(not sim.nodes.is_running("sim-node-2")))
        before = sim.nodes.heartbeats.renewals
        lease = await eventually(lambda: _lease(client, "sim-node-2"))
        await client.create(PODS, "default", bound_pod("stuck", "sim-node-2"))
        await asyncio.sleep(0.7)
        assert sim.nodes.heartbeats.renewals > before  # the others keep renewing
        assert (await client.get(LEASES, "kube-node-lease", "sim-node-2"))["spec"]["renewTime"] == lease
        assert await phase(client, "stuck") == "Pending"
        assert {m["metadata"]["name"] for m in sim.metrics.node_metrics()} == {"sim-node-0", "sim-node-1"}

        # the node-lifecycle controller would mark it Unknown; restarting heals it
        node = await client.get(NODES, "", "sim-node-2")
        for c in node["status"]["conditions"]:
            if c["type"] == "Ready":
                c["status"] = "Unknown"
        await client.update(NODES, "", node, subresource="status")
        await client.patch(
            NODES, "", "sim-node-2", {"metadata": {"annotations": {"kubelite.io/simulate-stopped": None}}}
        )
        await eventually(lambda: _is(client, "stuck", "Running"))
        await eventually(lambda: _ready(client, "sim-node-2"))


async def _true(v: bool) -> bool:
    return v


async def _lease(client: Client, name: str) -> str:
    try:
        return str((await client.get(LEASES, "kube-node-lease", name))["spec"]["renewTime"])
    except errors.NotFound:
        return ""


async def _ready(client: Client, name: str) -> bool:
    node = await client.get(NODES, "", name)
    conds = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


async def test_adopts_a_labelled_node_created_by_hand(tmp_path: Path) -> None:
    async with api(tmp_path) as client, simulator(client, nodes=1) as sim:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "extra", "labels": {"kubelite.io/simulated": "true"}},
        }
        await client.create(NODES, "", body)
        await eventually(lambda: _ready(client, "extra"))
        node = await client.get(NODES, "", "extra")
        assert node["status"]["allocatable"]["cpu"] == "4"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "extra"
        assert sim.nodes.index["extra"] == 1
        await client.create(PODS, "default", bound_pod("p", "extra"))
        await eventually(lambda: _is(client, "p", "Running"))
        assert (await client.get(PODS, "default", "p"))["status"]["podIP"].startswith("10.244.1.")


async def test_on_failure_pod_restarts_in_place(tmp_path: Path) -> None:
    async with api(tmp_path) as client, simulator(client, nodes=1, job_duration=0.1):
        meta = {
            "labels": {"batch.kubernetes.io/job-name": "j"},
            "annotations": {"kubelite.io/simulate-exit-code": "1"},
        }
        await client.create(
            PODS, "default", bound_pod("crashy", "sim-node-0", restartPolicy="OnFailure", meta=meta)
        )

        async def restarts() -> bool:
            p = await client.get(PODS, "default", "crashy")
            statuses = p["status"].get("containerStatuses") or [{}]
            return int(statuses[0].get("restartCount") or 0) >= 2 and p["status"]["phase"] == "Running"

        await eventually(restarts)


async def test_cleanup_deletes_nodes_and_leases(tmp_path: Path) -> None:
    async with api(tmp_path) as client:
        async with simulator(client, nodes=2, cleanup=True, heartbeat=0.2):
            await eventually(lambda: _lease(client, "sim-node-1"))
        assert (await client.list(NODES))["items"] == []
        assert (await client.list(LEASES, "kube-node-lease"))["items"] == []


async def test_adopted_nodes_get_distinct_indexes() -> None:
    from kubelite.simulator.nodes import NodeManager

    mgr = NodeManager(None, SimConfig(nodes=3))  # type: ignore[arg-type]
    for name in ("sim-node-0", "sim-node-5", "x", "sim-node-3", "y", "sim-node-4"):
        mgr._adopt({"metadata": {"name": name, "uid": name}})
    assert mgr.index["sim-node-0"] == 0 and mgr.index["sim-node-5"] == 5
    assert len(set(mgr.index.values())) == len(mgr.index) == 6
    mgr._forget("x")
    mgr._adopt({"metadata": {"name": "z", "uid": "z"}})
    assert len(set(mgr.index.values())) == len(mgr.index) == 6


async def test_node_status_is_reposted_periodically(tmp_path: Path) -> None:
    async with api(tmp_path) as client, simulator(client, nodes=1, status_report=0.6):

        async def beat() -> str:
            node = await client.get(NODES, "", "sim-node-0")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            return str(ready["lastHeartbeatTime"]) + "|" + str(ready["lastTransitionTime"])

        first = await beat()
        later = await eventually(lambda: _changed(beat, first), 4)
        # the heartbeat time moves, the transition time does not
        assert later.split("|")[1] == first.split("|")[1]


async def _changed(fn: Callable[[], Awaitable[str]], old: str) -> str:
    new = await fn()
    return new if new.split("|")[0] != old.split("|")[0] else ""


def test_first_status_reports_are_spread_over_the_whole_period() -> None:
    """5,000 nodes registered together: their first periodic reports fall evenly over one
    ``nodeStatusReportFrequency`` (each tenth of it gets about a tenth of the nodes)."""
    from kubelite.simulator.nodes import first_report_fraction

    shares = [first_report_fraction(f"sim-node-{i}") for i in range(5000)]
    assert all(0 < s <= 1 for s in shares)
    per_tenth = [0] * 10
    for s in shares:
        per_tenth[min(9, int(s * 10))] += 1
    assert all(400 <= n <= 600 for n in per_tenth), per_tenth


async def test_lease_renewal_is_conditional_like_kubelets(tmp_path: Path) -> None:
    """Renewals PUT the Lease with the resourceVersion last seen (Leases refuse
    unconditional updates in Kubernetes); after someone else wrote it, the conflict makes
    the simulator read it again and renew that version."""
    import orjson

    from kubelite.simulator.heartbeat import Heartbeats

    async with api(tmp_path) as client:
        puts: list[Obj] = []
        inner = client.transport

        class Recording:
            async def request(
                self, method: str, path: str, body: bytes | None, headers: dict[str, str]
            ) -> tuple[int, bytes]:
                if method == "PUT" and body:
                    puts.append(orjson.loads(body))
                return await inner.request(method, path, body, headers)

        hb = Heartbeats(Client(Recording()), 10, lambda n: "", lambda n: True)  # type: ignore[arg-type]
        await hb._renew("n1")  # first: created
        await hb._renew("n1")
        created = await client.get(LEASES, "kube-node-lease", "n1")
        assert puts[-1]["metadata"]["resourceVersion"] != ""
        assert puts[-1]["spec"]["renewTime"] == created["spec"]["renewTime"]
        created["spec"]["leaseDurationSeconds"] = 41  # another writer moves the Lease on
        moved = await client.update(LEASES, "kube-node-lease", created)
        await hb._renew("n1")
        assert hb.renewals == 3
        stale, fresh = puts[-2:]
        assert stale["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert fresh["metadata"]["resourceVersion"] == moved["metadata"]["resourceVersion"]
        now = await client.get(LEASES, "kube-node-lease", "n1")
        assert now["spec"]["renewTime"] == fresh["spec"]["renewTime"]
