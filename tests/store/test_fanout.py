"""The watch fan-out hub on its own, with a slow in-memory history (no backend).

Replays here are read in small chunks with an await between them, so live events
are published while a replay is still running: the watcher must still see every
revision exactly once, in order.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from kubelite.store.fanout import FanoutHub, HubWatcher
from kubelite.store.types import (
    CompactedError,
    Event,
    EventType,
    KeyValue,
    StoreClosed,
    WatcherOverflow,
)


def put(key: str, rev: int) -> Event:
    return Event(EventType.PUT, KeyValue(key, b"v", rev, rev), None)


class SlowLog:
    """An in-memory log whose reads yield to the loop, like a real backend's."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.compacted = 0
        self.reads = 0

    async def history(self, prefix: str, after: int, until: int, limit: int) -> list[Event]:
        self.reads += 1
        await asyncio.sleep(0)
        if after < self.compacted:
            raise CompactedError(after, self.compacted)
        found = [e for e in self.events if after < e.revision <= until and e.kv.key.startswith(prefix)]
        return found[:limit]


class Backend:
    """Appends to the log, then publishes: the order a real backend commits in."""

    def __init__(self, queue_size: int = 10_000, replay_chunk: int = 7) -> None:
        self.log = SlowLog()
        self.hub = FanoutHub(self.log, queue_size=queue_size, replay_chunk=replay_chunk)

    def write(self, *keys: str) -> list[Event]:
        rev = self.hub.revision
        batch = [put(key, rev + i + 1) for i, key in enumerate(keys)]
        self.log.events += batch
        self.hub.publish(batch)
        return batch


async def take(watcher: HubWatcher, until: int) -> list[int]:
    revs: list[int] = []
    while not revs or revs[-1] < until:
        batch = await asyncio.wait_for(anext(watcher), 5)
        revs += [e.revision for e in batch]
    return revs


@pytest.mark.parametrize("seed", range(8))
async def test_replay_races_live_events_without_gap_or_duplicate(seed: int) -> None:
    rng = random.Random(seed)
    backend = Backend(replay_chunk=rng.randint(1, 10))
    for i in range(60):
        backend.write(f"/a/{i}", f"/b/{i}")
    start = rng.randint(0, 60)
    watcher = backend.hub.watch("/a/", start)

    async def writer() -> None:
        for i in range(40):
            backend.write(*[f"/{rng.choice('ab')}/x{i}.{j}" for j in range(rng.randint(1, 4))])
            await asyncio.sleep(0)
        backend.write("/a/end")

    async def reader() -> list[Event]:
        got: list[Event] = []
        while not got or got[-1].kv.key != "/a/end":
            got += await asyncio.wait_for(anext(watcher), 5)
        return got

    got, _ = await asyncio.gather(reader(), writer())
    expected = [e for e in backend.log.events if e.revision > start and e.kv.key.startswith("/a/")]
    assert got == expected
    assert backend.log.reads > 1  # the replay really was chunked


async def test_live_events_arriving_during_replay_are_buffered() -> None:
    backend = Backend(replay_chunk=2)
    backend.write("/k/1", "/k/2", "/k/3", "/k/4", "/k/5")
    watcher = backend.hub.watch("/k/", 1)
    first = await anext(watcher)  # replay chunk (2, 3]
    backend.write("/k/6")  # live, while replay is at revision 3
    rest = await take(watcher, 6)
    assert [e.revision for e in first] + rest == [2, 3, 4, 5, 6]


async def test_overflow_closes_only_the_slow_watcher() -> None:
    backend = Backend(queue_size=10)
    slow = backend.hub.watch("/", 0)
    fast = backend.hub.watch("/", 0)
    seen: list[int] = []
    for i in range(30):
        backend.write(f"/k{i}")
        seen += [e.revision for e in await anext(fast)]
    assert seen == list(range(1, 31))
    with pytest.raises(WatcherOverflow):
        await anext(slow)
    assert backend.hub.watcher_count == 1


async def test_prefix_watchers_share_one_filter_and_see_only_their_keys() -> None:
    backend = Backend()
    pods = backend.hub.watch("/pods/", 0)
    everything = backend.hub.watch("", 0)
    backend.write("/pods/a", "/podsx", "/services/b", "/pods/c")
    assert [e.kv.key for e in await anext(pods)] == ["/pods/a", "/pods/c"]
    assert len(await anext(everything)) == 4


async def test_close_ends_iteration_and_store_close_raises() -> None:
    backend = Backend()
    closed = backend.hub.watch("/", 0)
    waiting = backend.hub.watch("/", 0)
    pending = asyncio.create_task(anext(waiting))
    await asyncio.sleep(0)
    closed.close()
    with pytest.raises(StopAsyncIteration):
        await anext(closed)
    backend.hub.close()
    with pytest.raises(StoreClosed):
        await pending
    with pytest.raises(StoreClosed):
        backend.hub.watch("/", 0)


async def test_compaction_during_replay_raises() -> None:
    backend = Backend(replay_chunk=2)
    backend.write(*[f"/k{i}" for i in range(10)])
    watcher = backend.hub.watch("/", 0)
    await anext(watcher)
    backend.log.compacted = 8
    with pytest.raises(CompactedError):
        await anext(watcher)


async def test_watch_from_a_future_revision_skips_older_events() -> None:
    backend = Backend()
    backend.write("/a")
    watcher = backend.hub.watch("/", 3)
    backend.write("/b", "/c")  # revisions 2 and 3
    backend.write("/d")  # revision 4
    assert [e.revision for e in await anext(watcher)] == [4]
