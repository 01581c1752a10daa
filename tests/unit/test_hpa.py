"""HPA: replica calculator, behavior, and the controller against a real in-process API."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.client.base import Resource
from kubelite.controllers import hpa
from kubelite.controllers import hpa_behavior as hb
from kubelite.controllers.hpa_replicas import MetricsError, replicas_for_resource
from tests.unit.lifecycle_api import EVENTS, PODS, api_server, eventually, running

Obj = dict[str, Any]
DEPLOYMENTS = Resource("apps", "v1", "deployments")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
OLD = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
NOW = time.time()


def _pod(name: str, cpu_request: str = "100m", ready: bool = True, phase: str = "Running") -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu_request}}}]},
        "status": {
            "phase": phase,
            "startTime": OLD,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": OLD}
            ],
        },
    }


def _usage(name: str, cpu: str) -> Obj:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "timestamp": stamp,
        "window": "10s",
        "containers": [{"name": "c", "usage": {"cpu": cpu, "memory": "10Mi"}}],
    }


def test_scale_up_on_utilization() -> None:
    pods = [_pod("a"), _pod("b")]
    res = replicas_for_resource(2, 50, True, "cpu", pods, [_usage("a", "100m"), _usage("b", "100m")], NOW)
    assert (res.replicas, res.utilization, res.average) == (4, 100, 100)


def test_tolerance_keeps_current() -> None:
    pods = [_pod("a"), _pod("b")]
    res = replicas_for_resource(2, 50, True, "cpu", pods, [_usage("a", "52m"), _usage("b", "54m")], NOW)
    assert res.replicas == 2 and res.utilization == 53


def test_missing_metrics_dampen_scale_down() -> None:
    pods = [_pod("a"), _pod("b"), _pod("c"), _pod("d")]
    # two pods report 10 % of a 50 % target; the two missing ones count as 100 % on a scale-down
    res = replicas_for_resource(4, 50, True, "cpu", pods, [_usage("a", "10m"), _usage("b", "10m")], NOW)
    assert res.replicas == 4  # the recomputed ratio (110 %) flips direction: no change


def test_unready_pods_count_zero_on_scale_up() -> None:
    pods = [_pod("a"), _pod("b", phase="Pending")]
    res = replicas_for_resource(2, 50, True, "cpu", pods, [_usage("a", "100m")], NOW)
    assert res.replicas == 2  # with b at 0 %: (100 % + 0 %) / 2 = 50 %, exactly the target
    pods = [_pod("a"), _pod("b", phase="Pending")]
    res = replicas_for_resource(1, 50, True, "cpu", pods, [_usage("a", "300m")], NOW)
    assert res.replicas == 6  # 300 % of 50 % with b at 0 %: ratio 3 over 2 pods


def test_errors() -> None:
    with pytest.raises(MetricsError, match="no pods returned by selector"):
        replicas_for_resource(1, 50, True, "cpu", [], [], NOW)
    with pytest.raises(MetricsError, match="did not receive metrics"):
        replicas_for_resource(1, 50, True, "cpu", [_pod("a")], [], NOW)
    no_request = _pod("a")
    no_request["spec"]["containers"][0]["resources"] = {}
    with pytest.raises(MetricsError, match="missing request for cpu in container c of Pod a"):
        replicas_for_resource(1, 50, True, "cpu", [no_request], [_usage("a", "1")], NOW)


def test_stabilization_window_holds_scale_down() -> None:
    history = hb.History()
    assert hb.stabilize(history, None, 5, 8, 0.0) == 8
    assert hb.stabilize(history, None, 8, 2, 10.0) == 8  # 300 s down window remembers 8
    assert hb.stabilize(history, None, 8, 2, 311.0) == 2
    fast = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    assert hb.stabilize(hb.History(), fast, 8, 2, 0.0) == 2


def test_rate_limits() -> None:
    history = hb.History()
    d = hb.limit(history, None, 2, 20, 1, 50, 0.0)
    assert (d.replicas, d.reason) == (6, "ScaleUpLimit")  # max(2 + 4, 2 * 2)
    hb.record_scale(history, None, 2, 6, 0.0)
    d = hb.limit(history, None, 6, 20, 1, 50, 5.0)
    assert d.replicas == 6  # already added 4 in this 15 s period
    d = hb.limit(hb.History(), None, 6, 60, 1, 10, 0.0)
    assert (d.replicas, d.reason) == (10, "TooManyReplicas")
    d = hb.limit(hb.History(), None, 6, 0, 2, 10, 0.0)
    assert (d.replicas, d.reason) == (2, "TooFewReplicas")


@given(
    current=st.integers(1, 50),
    usage=st.lists(st.integers(0, 1000), min_size=1, max_size=20),
    target=st.integers(10, 200),
)
def test_property_direction_follows_usage(current: int, usage: list[int], target: int) -> None:
    pods = [_pod(f"p{i}") for i in range(len(usage))]
    metrics = [_usage(f"p{i}", f"{u}m") for i, u in enumerate(usage)]
    res = replicas_for_resource(current, target, True, "cpu", pods, metrics, NOW)
    utilization = sum(usage) * 100 // (100 * len(usage))
    if abs(utilization / target - 1) <= 0.1:
        assert res.replicas == current
    elif utilization > target:
        assert res.replicas >= len(usage)
    else:
        assert res.replicas <= max(current, len(usage))


class FakeMetrics:
    def __init__(self) -> None:
        self.cpu: dict[str, str] = {}

    def pod_metrics(self, namespace: str = "") -> list[Obj]:
        return [_usage(n, c) for n, c in self.cpu.items()]

    def node_metrics(self) -> list[Obj]:
        return []


async def test_controller_scales_deployment(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        metrics = FakeMetrics()
        api.ctx.extra["metrics_provider"] = metrics
        await c.create(
            DEPLOYMENTS,
            "default",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                    },
                },
            },
        )
        for name in ("a", "b"):
            p = _pod(name)
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}}}
            body["spec"] = {"containers": [{"name": "c", "image": "nginx", **p["spec"]["containers"][0]}]}
            created = await c.create(PODS, "default", body)
            created["status"] = p["status"]
            await c.update(PODS, "default", created, subresource="status")
            metrics.cpu[name] = "150m"
        async with running(c, [hpa.new], {"horizontal_pod_autoscaler_sync_period": 0.2}):
            await c.create(
                HPAS,
                "default",
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "web"},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "minReplicas": 1,
                        "maxReplicas": 5,
                        "metrics": [
                            {
                                "type": "Resource",
                                "resource": {
                                    "name": "cpu",
                                    "target": {"type": "Utilization", "averageUtilization": 50},
                                },
                            }
                        ],
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
                    },
                },
            )

            async def scaled() -> Obj:
                dep = await c.get(DEPLOYMENTS, "default", "web")
                assert dep["spec"]["replicas"] == 5, dep["spec"]["replicas"]
                h: Obj = await c.get(HPAS, "default", "web")
                assert (h.get("status") or {}).get("desiredReplicas") == 5
                return h

            h = await eventually(scaled)
            conds = {x["type"]: x for x in h["status"]["conditions"]}
            assert conds["AbleToScale"]["status"] == "True"
            assert conds["ScalingActive"]["reason"] == "ValidMetricFound"
            # 300 % of target wants 6; the max of 5 limits it
            assert conds["ScalingLimited"]["reason"] == "TooManyReplicas"
            assert h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 150
            events = (await c.list(EVENTS, "default"))["items"]
            assert any(
                e["reason"] == "SuccessfulRescale"
                and e["message"]
                == "New size: 5; reason: cpu resource utilization (percentage of request) above target"
                for e in events
            )
            metrics.cpu = {"a": "10m", "b": "10m"}

            async def down() -> bool:
                dep = await c.get(DEPLOYMENTS, "default", "web")
                return bool(dep["spec"]["replicas"] == 1)

            await eventually(down)
