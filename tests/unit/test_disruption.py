"""Disruption controller (PDB status) and the eviction API's budget check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from kubelite.api import errors
from kubelite.apiserver.eviction import check_and_decrement
from kubelite.controllers import disruption
from kubelite.controllers.disruption import ExpectedCountError, scaled_value
from tests.unit.lifecycle_api import PDBS, PODS, Api, api_server, eventually, pod, running, set_pod_status

Obj = dict[str, Any]
RS = disruption.REPLICASETS


def test_scaled_value_rounds_percentages() -> None:
    assert scaled_value(2, 10, True) == 2
    assert scaled_value("50%", 3, True) == 2
    assert scaled_value("50%", 3, False) == 1
    with pytest.raises(ExpectedCountError):
        scaled_value("2", 3, True)


def test_check_and_decrement() -> None:
    pdb = {
        "metadata": {"name": "x", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "disruptionsAllowed": 1,
            "desiredHealthy": 2,
            "currentHealthy": 3,
        },
    }
    out = check_and_decrement(pdb, "p1", "2024-01-01T00:00:00Z")
    assert out["status"]["disruptionsAllowed"] == 0
    assert out["status"]["disruptedPods"] == {"p1": "2024-01-01T00:00:00Z"}
    assert out["status"]["conditions"][0]["reason"] == "InsufficientPods"
    with pytest.raises(errors.TooManyRequests) as exc:
        check_and_decrement(out | {"status": out["status"] | {"currentHealthy": 2}}, "p2", "t")
    assert exc.value.to_status()["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget x needs 2 healthy pods and has 2 currently",
        }
    ]
    stale = {"metadata": {"name": "x", "generation": 2}, "status": {"observedGeneration": 1}}
    with pytest.raises(errors.TooManyRequests, match="disruption budget"):
        check_and_decrement(stale, "p", "t")


async def _replicaset(api: Api, replicas: int) -> Obj:
    rs = await api.client.create(
        RS,
        "default",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": rs["metadata"]["uid"],
        "controller": True,
    }
    for i in range(replicas):
        await api.client.create(PODS, "default", pod(f"web-{i}", {"app": "web"}, node="n1", owner=owner))
        await set_pod_status(api.client, "default", f"web-{i}", f"10.0.0.{i + 1}")
    return rs


def _pdb(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


async def _evict(api: Api, name: str) -> tuple[int, Obj]:
    body = orjson.dumps(
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    )
    status, raw = await api.client.transport.request(
        "POST",
        PODS.path("default", name, "eviction"),
        body,
        {"content-type": "application/json", "accept": "application/json"},
    )
    return status, orjson.loads(raw)


async def _status_is(api: Api, name: str, **want: Any) -> Obj:
    async def check() -> Obj:
        st: Obj = (await api.client.get(PDBS, "default", name)).get("status") or {}
        for k, v in want.items():
            assert st.get(k) == v, (k, st)
        return st

    out: Obj = await eventually(check)
    return out


async def test_pdb_status_and_eviction(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [disruption.new]):
        await _replicaset(api, 3)
        await api.client.create(PDBS, "default", _pdb("web", minAvailable=2))
        st = await _status_is(
            api, "web", currentHealthy=3, desiredHealthy=2, disruptionsAllowed=1, expectedPods=3
        )
        assert st["observedGeneration"] == 1
        cond = st["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"]) == (
            "DisruptionAllowed",
            "True",
            "SufficientPods",
        )

        code, _ = await _evict(api, "web-0")
        assert code == 201
        evicted = await api.client.get(PODS, "default", "web-0")
        assert evicted["metadata"]["deletionTimestamp"]
        assert any(c["type"] == "DisruptionTarget" for c in evicted["status"]["conditions"])

        # the budget's status catches up with the eviction (the 429 message quotes it)
        await _status_is(api, "web", currentHealthy=2, disruptionsAllowed=0)
        code, status = await _evict(api, "web-1")
        assert code == 429
        assert status["reason"] == "TooManyRequests"
        assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert status["details"]["causes"] == [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
            }
        ]
        await _status_is(api, "web", currentHealthy=2, disruptionsAllowed=0)


async def test_max_unavailable_percent_uses_controller_scale(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [disruption.new]):
        await _replicaset(api, 4)
        await api.client.create(PDBS, "default", _pdb("web", maxUnavailable="25%"))
        await _status_is(api, "web", expectedPods=4, desiredHealthy=3, currentHealthy=4, disruptionsAllowed=1)
        await set_pod_status(api.client, "default", "web-3", "10.0.0.4", ready=False)
        st = await _status_is(api, "web", currentHealthy=3, disruptionsAllowed=0)
        assert st["conditions"][0]["reason"] == "InsufficientPods"
        # an unready pod may go while the budget is met (IfHealthyBudget) without consuming it
        code, _ = await _evict(api, "web-3")
        assert code == 201
        code, _ = await _evict(api, "web-0")
        assert code == 429


async def test_unmanaged_pods_and_multiple_budgets(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [disruption.new]):
        await api.client.create(PODS, "default", pod("solo", {"app": "web"}, node="n1"))
        await set_pod_status(api.client, "default", "solo", "10.0.0.9")
        await api.client.create(PDBS, "default", _pdb("a", minAvailable="50%"))
        await _status_is(api, "a", expectedPods=0, disruptionsAllowed=0)
        await api.client.create(PDBS, "default", _pdb("b", minAvailable=0))
        await _status_is(api, "b", expectedPods=1, currentHealthy=1, disruptionsAllowed=1)
        code, status = await _evict(api, "solo")
        assert code == 500
        assert "more than one PodDisruptionBudget" in status["message"]
