"""Node lifecycle (heartbeats, Unknown, taints), taint eviction and default tolerations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from kubelite.apiserver.admission import add_default_tolerations
from kubelite.client.base import Client
from kubelite.controllers import nodelifecycle, tainteviction
from kubelite.controllers.nodelifecycle import reconcile_taints, unknown_conditions
from kubelite.controllers.tainteviction import FOREVER, min_toleration_seconds
from tests.unit.lifecycle_api import (
    EVENTS,
    LEASES,
    NODES,
    PODS,
    api_server,
    eventually,
    pod,
    running,
    set_pod_status,
)

Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_default_tolerations_added_once() -> None:
    p: Obj = {"spec": {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]}}
    add_default_tolerations(p, 7)
    assert p["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7},
    ]
    add_default_tolerations(p, 7)
    assert len(p["spec"]["tolerations"]) == 2


def test_min_toleration_seconds() -> None:
    taints = [{"key": UNREACHABLE, "effect": "NoExecute"}]
    assert min_toleration_seconds({"spec": {}}, taints) is None
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert min_toleration_seconds(forever, taints) == FOREVER
    two = {
        "spec": {
            "tolerations": [
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
                {"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 10},
            ]
        }
    }
    assert min_toleration_seconds(two, taints) == 10


def test_taints_follow_ready_condition() -> None:
    node: Obj = {
        "spec": {
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
            "unschedulable": True,
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    node["status"]["conditions"] = unknown_conditions(node, "T")
    ready = node["status"]["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    taints = reconcile_taints(node, UNREACHABLE, "T")
    assert {(t["key"], t["effect"]) for t in taints} == {
        ("dedicated", "NoSchedule"),
        (UNREACHABLE, "NoSchedule"),
        (UNREACHABLE, "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    }
    node["spec"]["taints"] = taints
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    node["spec"]["unschedulable"] = False
    assert reconcile_taints(node, None, "T2") == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    ]


async def _node(c: Client, name: str, zone: str) -> None:
    now = _now()
    n = await c.create(
        NODES,
        "",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        },
    )
    n["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ]
    }
    await c.update(NODES, "", n, subresource="status")
    await _renew(c, name)


async def _renew(c: Client, name: str) -> None:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": _now()},
    }
    try:
        cur = await c.get(LEASES, "kube-node-lease", name)
    except Exception:
        await c.create(LEASES, "kube-node-lease", body)
        return
    cur["spec"]["renewTime"] = _now()
    await c.update(LEASES, "kube-node-lease", cur)


async def test_dead_node_is_tainted_and_its_pods_evicted(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        await _node(c, "alive", "a")
        await _node(c, "dead", "b")
        # the API server adds the default tolerations (2 s here, as --default-toleration-seconds 2)
        api.ctx.extra["create_hooks"][("", "Pod")] = _hook(1)
        await c.create(PODS, "default", pod("victim", {"app": "x"}, node="dead"))
        await set_pod_status(c, "default", "victim", "10.0.0.1")
        forever = pod("stays", {"app": "x"}, node="dead")
        forever["spec"]["tolerations"] = [{"operator": "Exists"}]
        await c.create(PODS, "default", forever)
        await set_pod_status(c, "default", "stays", "10.0.0.2")
        victim = await c.get(PODS, "default", "victim")
        assert {t["key"] for t in victim["spec"]["tolerations"]} == {
            "node.kubernetes.io/not-ready",
            UNREACHABLE,
        }
        options = {"node_monitor_grace_period": 0.6}
        async with running(c, [nodelifecycle.new, tainteviction.new], options):
            for _ in range(6):  # "alive" keeps heartbeating, "dead" does not
                await _renew(c, "alive")
                await _sleep(0.2)

            async def dead_tainted() -> Obj:
                node: Obj = await c.get(NODES, "", "dead")
                ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
                assert ready["status"] == "Unknown"
                keys = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
                assert keys == {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
                return node

            await eventually(dead_tainted, timeout=3)
            alive = await c.get(NODES, "", "alive")
            assert not (alive.get("spec") or {}).get("taints")

            async def evicted() -> bool:
                p = await c.get(PODS, "default", "victim")
                assert p["metadata"].get("deletionTimestamp")
                conds = {x["type"]: x for x in p["status"]["conditions"]}
                assert conds["Ready"]["status"] == "False"
                assert conds["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
                return True

            await eventually(evicted, timeout=4)
            stays = await c.get(PODS, "default", "stays")
            assert not stays["metadata"].get("deletionTimestamp")
            reasons = {e["reason"] for e in (await c.list(EVENTS, "default"))["items"]}
            assert {"NodeNotReady", "TaintManagerEviction"} <= reasons

            # the kubelet comes back: Ready again, taints go
            await _renew(c, "dead")
            node = await c.get(NODES, "", "dead")
            node["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastHeartbeatTime": _now()}]
            await c.update(NODES, "", node, subresource="status")

            async def untainted() -> bool:
                n = await c.get(NODES, "", "dead")
                return not (n.get("spec") or {}).get("taints")

            await eventually(untainted, timeout=3)


def _hook(seconds: int) -> Any:
    from kubelite.apiserver.admission import default_toleration_seconds_hook

    return default_toleration_seconds_hook(seconds)


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)
