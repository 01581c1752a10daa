"""The scheduling queue: priority order, exponential back-off, event-driven requeueing."""

from __future__ import annotations

import asyncio

from kubelite.scheduler.queue import QueuedPod, SchedulingQueue
from tests.unit.scheduler_builders import pinfo, pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pop(q: SchedulingQueue) -> QueuedPod:
    qp = asyncio.run(asyncio.wait_for(q.pop(), 1))
    assert qp is not None
    return qp


def test_higher_priority_first_then_fifo() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pinfo(pod("low-1", priority=0)))
    clock.now += 1
    q.add(pinfo(pod("high", priority=100)))
    clock.now += 1
    q.add(pinfo(pod("low-2", priority=0)))
    assert [_pop(q).pod.name for _ in range(3)] == ["high", "low-1", "low-2"]


def test_backoff_doubles_up_to_ten_seconds() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pinfo(pod("p")))
    delays = []
    for _ in range(6):
        qp = _pop(q)
        q.requeue_failed(qp, ["NodeResourcesFit"], error=True)
        assert qp.where == "backoff"
        delays.append(q.backoff_expiry(qp) - clock.now)
        clock.now += 60
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_unschedulable_pod_moves_only_on_relevant_events() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pinfo(pod("p")))
    qp = _pop(q)
    q.requeue_failed(qp, ["NodeResourcesFit"])
    assert qp.where == "unschedulable"
    interest = {
        "NodeAdd": {"NodeResourcesFit", "TaintToleration"},
        "PersistentVolumeChange": {"VolumeBinding"},
    }
    assert q.on_event("PersistentVolumeChange", lambda e: interest.get(e, set())) == 0
    assert qp.where == "unschedulable"
    # back-off (1 s) not expired yet: the pod waits in backoffQ, then becomes active
    assert q.on_event("NodeAdd", lambda e: interest.get(e, set())) == 1
    assert qp.where == "backoff"
    clock.now += 1.5
    q.flush_backoff()
    assert qp.where == "active"


def test_event_during_cycle_sends_pod_to_backoff_not_parking() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pinfo(pod("p")))
    qp = _pop(q)
    q.on_event("NodeAdd", lambda e: set())  # arrives while the pod is being scheduled
    q.requeue_failed(qp, ["NodeResourcesFit"])
    assert qp.where == "backoff"


def test_update_while_parked_reactivates_and_delete_forgets() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pinfo(pod("p")))
    qp = _pop(q)
    q.requeue_failed(qp, ["NodeAffinity"])
    clock.now += 30
    q.update(pinfo(pod("p", nodeSelector={"a": "b"})))
    assert qp.where == "active"
    q.delete("default/p")
    assert len(q) == 0
    assert asyncio.run(_pop_or_none(q)) is None


async def _pop_or_none(q: SchedulingQueue) -> QueuedPod | None:
    try:
        return await asyncio.wait_for(q.pop(), 0.05)
    except TimeoutError:
        return None


def test_parked_pods_are_retried_after_five_minutes() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pinfo(pod("p")))
    qp = _pop(q)
    q.requeue_failed(qp, ["NodeAffinity"])
    q.flush_unschedulable()
    assert qp.where == "unschedulable"
    clock.now += 301
    q.flush_unschedulable()
    assert qp.where == "active"
