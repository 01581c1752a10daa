"""The agent's startup/idle optimisations keep behaviour: exit events instead of polling, shared
image lookups, background events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent import podworker
from kubelite.agent.agent import BackgroundRecorder, SharedImageLookups, Turns
from kubelite.agent.podworker import PodWorker
from kubelite.agent.runtime.base import ContainerState, ContainerStatus, PulledImage

from .fakes import FakeAgent, FakeImages, FakeRuntime, make_pod


class WaitingRuntime(FakeRuntime):
    """wait_container returns only once the test makes the container exit (like runc's pidfd)."""

    def __init__(self) -> None:
        super().__init__()
        self.exited: dict[str, asyncio.Event] = {}
        self.waits = 0

    def exit(self, cid: str, code: int, oom: bool = False) -> None:
        super().exit(cid, code, oom)
        self.exited.setdefault(cid, asyncio.Event()).set()

    async def wait_container(self, container_id: str) -> ContainerStatus:
        self.waits += 1
        await self.exited.setdefault(container_id, asyncio.Event()).wait()
        return self.containers[container_id]


def test_steady_pod_waits_for_exit_events_not_polls(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)
        agent.runtime = WaitingRuntime()
        pod = make_pod([{"name": "app", "image": "img:1"}])
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        w.start()
        rt = agent.runtime
        for _ in range(100):
            if rt.started and w.exit_watches:
                break
            await asyncio.sleep(0.01)
        assert w._resync_period() == podworker.IDLE_RESYNC
        assert rt.waits == 1
        rt.exit(rt.started[0], 3)  # the exit event alone triggers the restart
        for _ in range(100):
            if len(rt.started) == 2:
                break
            await asyncio.sleep(0.01)
        assert rt.started[-1].endswith("-app-1")
        await w.stop()
        assert not w.exit_watches

    asyncio.run(main())


def test_runtime_that_cannot_wait_falls_back_to_polling(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)  # FakeRuntime.wait_container returns at once
        pod = make_pod([{"name": "app", "image": "img:1"}])
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        await w.sync()
        await asyncio.sleep(0.01)
        assert not w.exits_reported and w._resync_period() == podworker.RESYNC
        w._stop_exit_watches()

    asyncio.run(main())


class CountingImages(FakeImages):
    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        super().__init__(missing)
        self.gets = 0

    async def get(self, ref: str) -> PulledImage | None:
        self.gets += 1
        await asyncio.sleep(0.01)
        if ref == "bad":
            raise ValueError("invalid reference")
        return await super().get(ref)


def test_shared_image_lookups() -> None:
    async def main() -> None:
        inner = CountingImages(missing=("gone:1",))
        images = SharedImageLookups(inner)
        found = await asyncio.gather(*(images.get("img:1") for _ in range(20)))
        assert inner.gets == 1 and all(f is not None and f.ref == "img:1" for f in found)
        assert await images.get("img:1") is not None and inner.gets == 1  # remembered
        images.forget()
        await images.get("img:1")
        assert inner.gets == 2
        assert await images.get("gone:1") is None and await images.get("gone:1") is None
        assert inner.gets == 4  # absence is never remembered
        with pytest.raises(ValueError):
            await asyncio.gather(images.get("bad"), images.get("bad"))
        await images.pull("img:1")
        assert inner.pulls == [("img:1", "IfNotPresent")]

    asyncio.run(main())


class SlowClient:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def create(self, res: Any, namespace: str, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.005)
        self.created.append(obj["reason"])
        self.in_flight -= 1
        return obj


def test_background_recorder_sends_in_order_a_few_at_a_time() -> None:
    async def main() -> None:
        client = SlowClient()
        rec = BackgroundRecorder(client, "kubelet", "node-a")  # type: ignore[arg-type]
        pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "d", "uid": "u"}}
        for i in range(10):
            rec.event(pod, "Normal", f"R{i}", f"message {i}")
        assert client.created == []  # nothing is sent before the caller yields
        await rec.flush()
        assert client.created == [f"R{i}" for i in range(10)]
        assert client.max_in_flight <= BackgroundRecorder.PARALLEL

    asyncio.run(main())


def test_events_wait_while_pods_start_then_follow_in_order() -> None:
    async def main() -> None:
        client = SlowClient()
        starting = [True]
        rec = BackgroundRecorder(client, "kubelet", "node-a", busy=lambda: starting[0])  # type: ignore[arg-type]
        rec.POLL = 0.01
        pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "d", "uid": "u"}}
        for i in range(6):
            rec.event(pod, "Normal", f"R{i}", f"message {i}")
        await asyncio.sleep(0.15)
        assert client.created == []  # held back while pods are starting
        starting[0] = False
        await asyncio.sleep(0.15)
        assert client.created == [f"R{i}" for i in range(6)]

    asyncio.run(main())


def test_events_are_held_back_at_most_max_delay() -> None:
    async def main() -> None:
        client = SlowClient()
        rec = BackgroundRecorder(client, "kubelet", "node-a", busy=lambda: True)  # type: ignore[arg-type]
        rec.POLL, rec.MAX_DELAY = 0.01, 0.1
        pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "d", "uid": "u"}}
        rec.event(pod, "Warning", "BackOff", "back-off")
        await asyncio.sleep(0.03)
        assert client.created == []
        await asyncio.sleep(0.3)
        assert client.created == ["BackOff"]  # sent although starts never went quiet
        rec.event(pod, "Normal", "Killing", "stop")
        await rec.flush()  # shutting down: nothing waits any more
        assert client.created == ["BackOff", "Killing"]

    asyncio.run(main())


def test_turns_are_busy_while_a_pod_holds_or_waits_for_one() -> None:
    async def main() -> None:
        turns = Turns(1)
        assert not turns.busy
        order: list[str] = []
        release = asyncio.Event()

        async def pod(name: str) -> None:
            async with turns:
                order.append(name)
                await release.wait()

        tasks = [asyncio.create_task(pod(n)) for n in ("a", "b")]
        await asyncio.sleep(0.01)
        assert turns.busy and turns.wanted == 2 and order == ["a"]
        tasks[1].cancel()  # a pod gone while waiting gives its place up
        await asyncio.sleep(0.01)
        assert turns.wanted == 1
        release.set()
        await tasks[0]
        assert not turns.busy and order == ["a"]

    asyncio.run(main())


def test_status_is_not_rewritten_for_a_steady_pod(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)
        pod = make_pod([{"name": "app", "image": "img:1"}])
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        await w.sync()
        writes = len(agent.client.patches)
        status = agent.client.patches[-1][1]["status"]
        assert status["phase"] == "Running"
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        for _ in range(3):
            await w.sync()
        assert len(agent.client.patches) == writes == 1  # Running and Ready in one write
        assert w.latest("app") is not None and w.latest("app").state == ContainerState.RUNNING  # type: ignore[union-attr]
        w._stop_exit_watches()

    asyncio.run(main())


class SlowStartRuntime(WaitingRuntime):
    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.max_active = 0

    async def start_container(self, sandbox: Any, config: Any) -> ContainerStatus:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(0.02)
        self.active -= 1
        return await super().start_container(sandbox, config)


def test_burst_starts_take_turns_first_come_first_served(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)
        agent.runtime = SlowStartRuntime()
        agent.start_slots = asyncio.Semaphore(2)  # type: ignore[attr-defined]
        agent.sandbox_slots = asyncio.Semaphore(2)  # type: ignore[attr-defined]
        workers = []
        for _ in range(8):
            pod = make_pod([{"name": "app", "image": "img:1"}])
            agent.pods[pod["metadata"]["uid"]] = pod
            workers.append(PodWorker(agent, pod["metadata"]["uid"]))  # type: ignore[arg-type]
        await asyncio.gather(*(w.sync() for w in workers))
        rt = agent.runtime
        assert rt.max_active == 2
        assert [c.removesuffix("-app-0") for c in rt.started] == [w.uid[:12] for w in workers]
        assert len(set(rt.started)) == 8
        for w in workers:
            w._stop_exit_watches()

    asyncio.run(main())


class BacklogRuntime(SlowStartRuntime):
    """Counts pods that have a sandbox but no started container yet (the start backlog)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting_to_start = 0
        self.max_waiting_to_start = 0

    async def create_sandbox(self, config: Any) -> Any:
        sb = await super().create_sandbox(config)
        self.waiting_to_start += 1
        self.max_waiting_to_start = max(self.max_waiting_to_start, self.waiting_to_start)
        return sb

    async def start_container(self, sandbox: Any, config: Any) -> ContainerStatus:
        st = await super().start_container(sandbox, config)
        self.waiting_to_start -= 1
        return st


def test_burst_sandboxes_are_made_only_a_little_ahead_of_the_starts(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)
        agent.runtime = BacklogRuntime()
        agent.start_slots = Turns(2)  # type: ignore[attr-defined]
        agent.sandbox_slots = Turns(2)  # type: ignore[attr-defined]
        agent.start_backlog = 3  # type: ignore[attr-defined]
        workers = []
        for _ in range(12):
            pod = make_pod([{"name": "app", "image": "img:1"}])
            agent.pods[pod["metadata"]["uid"]] = pod
            workers.append(PodWorker(agent, pod["metadata"]["uid"]))  # type: ignore[arg-type]
        await asyncio.gather(*(w.sync() for w in workers))
        rt = agent.runtime
        assert len(set(rt.started)) == 12 and rt.max_active == 2
        # first come, first served: two sandboxes are made at a time and either may finish
        # first, so a pod starts at most one place away from its arrival
        order = [c.removesuffix("-app-0") for c in rt.started]
        assert sorted(order) == sorted(w.uid[:12] for w in workers)
        assert all(abs(order.index(w.uid[:12]) - i) <= 1 for i, w in enumerate(workers)), order
        # without the backlog limit all 12 sandboxes would exist before the third start
        assert rt.max_waiting_to_start <= 3 + 2
        for w in workers:
            w._stop_exit_watches()

    asyncio.run(main())


def test_turns_below_waits_for_a_short_queue() -> None:
    async def main() -> None:
        turns = Turns(1)
        release = asyncio.Event()

        async def hold() -> None:
            async with turns:
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(3)]
        await asyncio.sleep(0.01)
        below = asyncio.create_task(turns.below(2))
        await asyncio.sleep(0.01)
        assert not below.done()  # 3 pods hold or wait
        release.set()
        await asyncio.wait_for(below, 1)
        assert turns.wanted < 2
        await asyncio.gather(*holders)
        await asyncio.wait_for(turns.below(1), 1)  # nobody left: at once

    asyncio.run(main())


def test_status_echo_from_the_watch_does_not_wake_the_worker() -> None:
    from kubelite.agent.agent import Agent

    class Worker:
        def __init__(self) -> None:
            self.last_status = {"phase": "Running", "podIP": "10.0.0.9"}
            self.kicks = 0

        def kick(self) -> None:
            self.kicks += 1

    agent = Agent.__new__(Agent)  # only the informer handler's state
    w = Worker()
    agent.workers = {"u1": w}  # type: ignore[dict-item]
    agent._started = True
    old = {"metadata": {"uid": "u1", "labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"phase": "Pending"}}
    echo = {**old, "status": {"phase": "Running", "podIP": "10.0.0.9"}}
    agent._on_pod("d/p", old, echo)
    assert w.kicks == 0
    changes = [
        {**echo, "status": {"phase": "Failed", "podIP": "10.0.0.9"}},  # someone else's status
        {**echo, "metadata": {"uid": "u1", "labels": {"a": "2"}}},  # labels (downward API)
        {**echo, "spec": {"x": 2}},
        {**echo, "metadata": {**old["metadata"], "deletionTimestamp": "now"}},
    ]
    for new in changes:
        before = w.kicks
        agent._on_pod("d/p", old, new)
        assert w.kicks > before


def test_a_pod_still_waiting_is_polled_as_before(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path, FakeImages(missing=("gone:1",)))
        agent.runtime = WaitingRuntime()
        pod = make_pod([{"name": "ok", "image": "img:1"}, {"name": "bad", "image": "gone:1"}])
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        await w.sync()
        assert w.waiting["bad"][0] == "ErrImagePull"
        assert w._resync_period() == podworker.RESYNC  # ImagePullBackOff shows on the next sync
        w._stop_exit_watches()

    asyncio.run(main())
