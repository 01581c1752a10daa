"""The shared watch broadcaster: every stream gets every event once, in order, in valid
HTTP chunks; streams go back to their task (and come back) without losing anything."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from kubelite.apiserver import watchcast
from kubelite.apiserver.watchcast import Broadcaster, EncodedEventCache, Stream
from kubelite.store.fanout import FanoutHub, HubWatcher
from kubelite.store.types import Event, EventType, KeyValue, StoreClosed


class Log:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def history(self, prefix: str, after: int, until: int, limit: int) -> list[Event]:
        await asyncio.sleep(0)
        found = [e for e in self.events if after < e.revision <= until and e.kv.key.startswith(prefix)]
        return found[:limit]


class Backend:
    def __init__(self) -> None:
        self.log = Log()
        self.hub = FanoutHub(self.log)

    def write(self, *names: str) -> None:
        rev = self.hub.revision
        batch = []
        for i, name in enumerate(names):
            value = orjson.dumps({"kind": "Pod", "metadata": {"name": name}})
            batch.append(
                Event(EventType.PUT, KeyValue(f"/pods/{name}", value, rev + i + 1, rev + i + 1), None)
            )
        self.log.events += batch
        self.hub.publish(batch)


class FakeConn:
    """Collects written chunks; ``open`` False makes it unwritable (a paused transport)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.open = True

    def writable(self) -> bool:
        return self.open

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def revisions(self) -> list[int]:
        out = []
        for chunk in self.chunks:
            size, _, rest = chunk.partition(b"\r\n")
            body = rest[:-2]
            assert rest.endswith(b"\r\n") and len(body) == int(size, 16)
            for line in body.splitlines():
                out.append(int(orjson.loads(line)["object"]["metadata"]["resourceVersion"]))
        return out


async def consume(caster: Broadcaster, watcher: HubWatcher, conn: FakeConn, task_sent: list[int]) -> None:
    """What watch._pump does: attached while caught up, else the task writes itself."""
    while True:
        if not watcher.pending():
            await caster.run(Stream(watcher, conn, None))  # type: ignore[arg-type]
        try:
            batch = await watcher.next_batch()
        except StopAsyncIteration:
            return
        task_sent += [ev.revision for ev in batch]
        conn.chunks.append(watchcast.chunk_of(b"".join(caster.cache.get(ev)[3] for ev in batch)))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.06)


@pytest.mark.parametrize("seed", range(4))
async def test_every_stream_gets_every_event_once_in_order(seed: int) -> None:
    rnd = random.Random(seed)
    backend = Backend()
    caster = Broadcaster(EncodedEventCache())
    conns = [FakeConn() for _ in range(300)]  # more than one slice per round
    sent: list[int] = []
    watchers = [backend.hub.watch("/pods/", 0) for _ in conns]
    tasks = [asyncio.ensure_future(consume(caster, w, c, sent)) for w, c in zip(watchers, conns, strict=True)]
    n = 0
    for _ in range(30):
        names = [f"p{n + i}" for i in range(rnd.randint(1, 4))]
        n += len(names)
        backend.write(*names)
        if rnd.random() < 0.2:  # a stream stops reading for a while, then resumes
            conns[rnd.randrange(len(conns))].open = False
        if rnd.random() < 0.2:
            watchers[rnd.randrange(len(watchers))].poke()
        if rnd.random() < 0.3:
            for c in conns:
                c.open = True
        await asyncio.sleep(rnd.choice([0, 0.001, 0.01]))
    for c in conns:
        c.open = True
    backend.write("last")
    await settle()
    for conn in conns:
        assert conn.revisions() == list(range(1, n + 2))
    assert caster.attached == len(conns)
    for w in watchers:
        w.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert caster.attached == 0
    assert backend.hub.watcher_count == 0


async def test_same_position_streams_share_one_chunk() -> None:
    backend = Backend()
    caster = Broadcaster(EncodedEventCache())
    conns = [FakeConn() for _ in range(3)]
    watchers = [backend.hub.watch("/pods/", 0) for _ in conns]
    tasks = [asyncio.ensure_future(consume(caster, w, c, [])) for w, c in zip(watchers, conns, strict=True)]
    await asyncio.sleep(0)
    backend.write("a", "b")
    await settle()
    assert conns[0].chunks[0] is conns[1].chunks[0] is conns[2].chunks[0]
    backend.hub.close()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert all(isinstance(r, StoreClosed) for r in results)
    assert caster.attached == 0


async def test_parked_watcher_close_releases_and_ends() -> None:
    backend = Backend()
    caster = Broadcaster(EncodedEventCache())
    conn = FakeConn()
    watcher = backend.hub.watch("/pods/", 0)
    task = asyncio.ensure_future(consume(caster, watcher, conn, []))
    await asyncio.sleep(0)
    assert caster.attached == 1 and backend.hub.watcher_count == 1
    watcher.close()
    await asyncio.wait_for(task, 5)
    assert caster.attached == 0 and backend.hub.watcher_count == 0
