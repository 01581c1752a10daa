"""The scheduler end to end over a fake client: binding, FailedScheduling, requeue, preemption."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from kubelite.client.base import Client
from kubelite.scheduler import Scheduler
from tests.unit.scheduler_builders import node, pod
from tests.unit.scheduler_fake_client import FakeClient

Obj = dict[str, Any]


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeClient, Scheduler]]:
    fake = FakeClient()
    sched = Scheduler(cast(Client, fake), seed=7)
    sched.queue.initial_backoff = 0.05
    sched.queue.max_backoff = 0.1
    await sched.start()
    yield fake, sched
    await sched.stop()


def node_of(fake: FakeClient, name: str) -> str:
    p = fake.get_obj("pods", "default", name)
    return str((p or {}).get("spec", {}).get("nodeName") or "")


def events(fake: FakeClient, reason: str) -> list[str]:
    return [o["message"] for (p, _, _), o in fake.objects.items() if p == "events" and o["reason"] == reason]


async def test_binds_pods_and_records_scheduled(env: tuple[FakeClient, Scheduler]) -> None:
    fake, _ = env
    fake.put("nodes", node("n1"))
    fake.put("pods", pod("web-1"))
    await until(lambda: node_of(fake, "web-1") == "n1")
    await until(lambda: events(fake, "Scheduled") == ["Successfully assigned default/web-1 to n1"])


async def test_unschedulable_pod_gets_condition_event_then_fits_new_node(
    env: tuple[FakeClient, Scheduler],
) -> None:
    fake, _ = env
    fake.put("nodes", node("small", cpu="1"))
    fake.put("pods", pod("big", cpu="2"))
    want = (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )
    await until(lambda: want in events(fake, "FailedScheduling"))

    def condition() -> Obj:
        p = fake.get_obj("pods", "default", "big") or {}
        return next((c for c in p["status"].get("conditions") or [] if c["type"] == "PodScheduled"), {})

    await until(lambda: condition().get("reason") == "Unschedulable")
    assert condition()["status"] == "False" and condition()["message"] == want
    fake.put("nodes", node("large", cpu="4"))
    await until(lambda: node_of(fake, "big") == "large")


async def test_other_scheduler_names_are_ignored(env: tuple[FakeClient, Scheduler]) -> None:
    fake, sched = env
    fake.put("nodes", node("n1"))
    fake.put("pods", pod("mine-not", schedulerName="my-scheduler"))
    fake.put("pods", pod("mine"))
    await until(lambda: node_of(fake, "mine") == "n1")
    await asyncio.sleep(0.1)
    assert node_of(fake, "mine-not") == ""
    assert "default/mine-not" not in sched.queue.pods


async def test_binding_failure_forgets_and_retries(env: tuple[FakeClient, Scheduler]) -> None:
    fake, sched = env
    fake.fail_bindings = 1
    fake.put("nodes", node("n1", cpu="1"))
    fake.put("pods", pod("p", cpu="800m"))
    await until(lambda: node_of(fake, "p") == "n1")
    assert any(m.startswith("Binding rejected:") for m in events(fake, "FailedScheduling"))
    assert not sched.cache.assumed


async def test_preemption_evicts_lower_priority_and_nominates(env: tuple[FakeClient, Scheduler]) -> None:
    fake, _ = env
    fake.put("nodes", node("n1", cpu="1"))
    fake.put("priorityclasses", {"metadata": {"name": "high"}, "value": 1000})
    fake.put("pods", pod("low", cpu="800m"))
    await until(lambda: node_of(fake, "low") == "n1")
    fake.put("pods", pod("urgent", cpu="800m", priorityClassName="high"))
    await until(lambda: "low" in fake.deleted)
    await until(lambda: node_of(fake, "urgent") == "n1")
    urgent = fake.get_obj("pods", "default", "urgent") or {}
    assert urgent["status"].get("nominatedNodeName") == "n1"
    preempted = events(fake, "Preempted")
    assert preempted == ["Preempted by pod uid-urgent on node n1"]


async def test_terminal_pods_free_their_node(env: tuple[FakeClient, Scheduler]) -> None:
    fake, _ = env
    fake.put("nodes", node("n1", cpu="1"))
    fake.put("pods", pod("job", cpu="800m"))
    await until(lambda: node_of(fake, "job") == "n1")
    fake.put("pods", pod("next", cpu="800m"))
    await asyncio.sleep(0.1)
    assert node_of(fake, "next") == ""
    done = fake.get_obj("pods", "default", "job") or {}
    fake.put("pods", {**done, "status": {"phase": "Succeeded"}})
    await until(lambda: node_of(fake, "next") == "n1")


async def test_binding_confirms_the_assumed_pod_once(env: tuple[FakeClient, Scheduler]) -> None:
    fake, sched = env
    fake.put("nodes", node("n1", cpu="2"))
    fake.put("pods", pod("a", cpu="500m"))
    await until(lambda: node_of(fake, "a") == "n1" and not sched.cache.assumed)
    cached = sched.cache.pods["default/a"]
    assert cached.obj["spec"]["nodeName"] == "n1"  # the API's object, not the pending one
    assert sched.cache.infos["n1"].requested.cpu == 500
    # a later change the scheduler reads (a label) is parsed again, still counted once
    bound = fake.get_obj("pods", "default", "a") or {}
    fake.put("pods", {**bound, "metadata": {**bound["metadata"], "labels": {"tier": "web"}}})
    await until(lambda: sched.cache.pods["default/a"].labels == {"tier": "web"})
    assert sched.cache.infos["n1"].requested.cpu == 500


async def test_global_default_priority_follows_class_changes(env: tuple[FakeClient, Scheduler]) -> None:
    fake, sched = env
    assert sched.priorities.resolve(pod("p")) == 0
    fake.put("priorityclasses", {"metadata": {"name": "base"}, "value": 50, "globalDefault": True})
    await until(lambda: sched.priorities.resolve(pod("p")) == 50)
    fake.put("priorityclasses", {"metadata": {"name": "lower"}, "value": 10, "globalDefault": True})
    await until(lambda: sched.priorities.resolve(pod("p")) == 10)
    fake.remove("priorityclasses", "", "lower")
    await until(lambda: sched.priorities.resolve(pod("p")) == 50)


async def test_standalone_scheduler_tunes_the_collector_and_up_does_not() -> None:
    import argparse
    import gc

    from kubelite.gctuning import THRESHOLDS
    from kubelite.scheduler import LeaderElectedScheduler, component

    before = gc.get_threshold()
    try:
        inside_up = await component(cast(Client, FakeClient()), argparse.Namespace(command="up"))
        assert isinstance(inside_up, Scheduler) and gc.get_threshold() == before
        alone = await component(cast(Client, FakeClient()), argparse.Namespace(command="scheduler"))
        assert isinstance(alone, LeaderElectedScheduler) and gc.get_threshold() == THRESHOLDS
    finally:
        gc.set_threshold(*before)
