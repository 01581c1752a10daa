"""SharedInformers: one factory per transport, started and stopped by reference count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kubelite.client.base import Client, Resource, WatchEvent
from kubelite.machinery.factory import SharedInformers

PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)


class IdleClient:
    """Lists nothing and watches forever (no transport attribute, like test doubles)."""

    def __init__(self) -> None:
        self.watches = 0

    async def list(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, *_: Any, **__: Any) -> AsyncIterator[WatchEvent]:
        self.watches += 1
        await asyncio.Event().wait()
        yield WatchEvent("BOOKMARK", {})  # never reached


class Transport:
    """Stands for an in-process or HTTP transport (only its identity matters here)."""


def test_of_shares_per_transport() -> None:
    t1, t2 = Transport(), Transport()
    a = Client(t1)  # type: ignore[arg-type]
    b = Client(t1, user_agent="scheduler/v1.32.0")  # type: ignore[arg-type]
    c = Client(t2)  # type: ignore[arg-type]
    assert SharedInformers.of(a) is SharedInformers.of(b)
    assert SharedInformers.of(a) is not SharedInformers.of(c)
    assert SharedInformers.of(a).get(PODS) is SharedInformers.of(b).get(PODS)
    assert SharedInformers(a) is not SharedInformers.of(a)  # a plain factory stays private
    double = IdleClient()
    assert SharedInformers.of(double) is SharedInformers.of(double)  # type: ignore[arg-type]


def test_informers_run_until_the_last_user_stops() -> None:
    async def body() -> None:
        client = IdleClient()
        shared = SharedInformers.of(client)  # type: ignore[arg-type]
        pods = shared.get(PODS)
        await shared.start()  # user 1 (e.g. the controller manager)
        nodes = shared.get(NODES)  # asked for later (e.g. by the scheduler) ...
        assert shared.peek(NODES) is nodes and shared.peek(Resource("", "v1", "secrets")) is None
        await shared.start()  # ... and started by its user's start
        assert pods.synced.is_set() and nodes.synced.is_set()
        await asyncio.sleep(0)
        assert client.watches == 2
        await shared.stop()  # one user left: still running
        assert pods._task is not None and nodes._task is not None
        await shared.stop()
        assert pods._task is None and nodes._task is None

    asyncio.run(body())


def test_a_private_factory_stops_on_its_only_stop() -> None:
    async def body() -> None:
        shared = SharedInformers(IdleClient())  # type: ignore[arg-type]
        pods = shared.get(PODS)
        await shared.start()
        await shared.stop()
        assert pods._task is None

    asyncio.run(body())
