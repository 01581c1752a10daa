"""The store contract suite: every backend (SQLite now, etcd next) must pass it.

Use it by subclassing :class:`StoreContract` in a ``test_*.py`` module and giving
the subclass a ``factory`` fixture that returns a :class:`StoreFactory`.  The
behaviour checked is what the Kubernetes API server needs from etcd: CAS writes on
mod revision, consistent paginated lists at one revision, watches that replay
history and continue live with no gap or duplicate, compaction, and slow watchers
being dropped without slowing writers.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Protocol

import pytest

from kubelite.store.types import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    Store,
    StoreClosed,
    Watcher,
    WatcherOverflow,
)

TIMEOUT = 10.0


class StoreFactory(Protocol):
    """Makes (not yet started) stores of one backend."""

    @property
    def supports_reopen(self) -> bool:
        """True when make() after close() opens the same data again (persistent)."""
        ...

    def make(self, *, watch_queue_size: int = 10_000) -> Store:
        """A store over this factory's storage (the same storage on every call)."""
        ...


async def next_batch(watcher: Watcher) -> list[Event]:
    """The next batch from ``watcher`` (fails the test on timeout)."""
    iterator = aiter(watcher)
    return await asyncio.wait_for(anext(iterator), TIMEOUT)


async def collect(watcher: Watcher, count: int) -> list[Event]:
    """At least ``count`` events from ``watcher``, in the order they came."""
    events: list[Event] = []
    while len(events) < count:
        events.extend(await next_batch(watcher))
    return events


async def drain_until(watcher: Watcher, revision: int) -> list[Event]:
    """Events until one at ``revision`` (or later) arrives."""
    events: list[Event] = []
    while not events or events[-1].revision < revision:
        events.extend(await next_batch(watcher))
    return events


def keys(items: list[KeyValue]) -> list[str]:
    return [kv.key for kv in items]


class StoreContract:
    """The contract tests; subclasses provide the ``factory`` fixture."""

    @pytest.fixture
    def factory(self) -> StoreFactory:
        raise NotImplementedError("subclasses provide a store factory")

    @pytest.fixture
    async def store(self, factory: StoreFactory) -> AsyncIterator[Store]:
        store = factory.make()
        await store.start()
        yield store
        await store.close()

    # -- single-key writes ----------------------------------------------------------

    async def test_create_then_get(self, store: Store) -> None:
        before = store.revision
        rev = await store.create("/pods/default/a", b"one")
        assert rev > before
        assert store.revision == rev
        assert await store.get("/pods/default/a") == KeyValue("/pods/default/a", b"one", rev, rev)
        assert await store.get("/pods/default/missing") is None

    async def test_create_twice_raises_key_exists(self, store: Store) -> None:
        await store.create("/k", b"1")
        with pytest.raises(KeyExistsError):
            await store.create("/k", b"2")
        kv = await store.get("/k")
        assert kv is not None and kv.value == b"1"

    async def test_update_with_matching_revision(self, store: Store) -> None:
        created = await store.create("/k", b"1")
        updated = await store.update("/k", b"2", created)
        assert updated.value == b"2"
        assert updated.create_revision == created
        assert updated.mod_revision > created
        assert updated.mod_revision == store.revision
        assert await store.get("/k") == updated

    async def test_update_mismatch_carries_current_value(self, store: Store) -> None:
        created = await store.create("/k", b"1")
        current = await store.update("/k", b"2", created)
        with pytest.raises(RevisionMismatchError) as info:
            await store.update("/k", b"3", created)
        assert info.value.key == "/k"
        assert info.value.current == current
        assert await store.get("/k") == current

    async def test_update_missing_or_deleted_raises_not_found(self, store: Store) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.update("/missing", b"x", 1)
        rev = await store.create("/k", b"1")
        deleted = await store.delete("/k", rev)
        with pytest.raises(KeyNotFoundError):
            await store.update("/k", b"2", deleted.mod_revision)

    async def test_delete_returns_last_value_at_delete_revision(self, store: Store) -> None:
        created = await store.create("/k", b"1")
        updated = await store.update("/k", b"2", created)
        deleted = await store.delete("/k")
        assert deleted.key == "/k"
        assert deleted.value == b"2"
        assert deleted.create_revision == created
        assert deleted.mod_revision > updated.mod_revision
        assert deleted.mod_revision == store.revision
        assert await store.get("/k") is None

    async def test_delete_cas_and_missing(self, store: Store) -> None:
        created = await store.create("/k", b"1")
        updated = await store.update("/k", b"2", created)
        with pytest.raises(RevisionMismatchError) as info:
            await store.delete("/k", created)
        assert info.value.current == updated
        await store.delete("/k", updated.mod_revision)
        with pytest.raises(KeyNotFoundError):
            await store.delete("/k")
        with pytest.raises(KeyNotFoundError):
            await store.delete("/never")

    async def test_create_after_delete_gets_new_create_revision(self, store: Store) -> None:
        first = await store.create("/k", b"1")
        await store.delete("/k")
        second = await store.create("/k", b"again")
        assert second > first
        assert await store.get("/k") == KeyValue("/k", b"again", second, second)

    async def test_revisions_strictly_increase(self, store: Store) -> None:
        revs = [await store.create(f"/k{i}", b"v") for i in range(5)]
        kv = await store.update("/k0", b"w", revs[0])
        gone = await store.delete("/k1")
        revs += [kv.mod_revision, gone.mod_revision]
        assert revs == sorted(set(revs))

    async def test_concurrent_creates_of_one_key_exactly_one_wins(self, store: Store) -> None:
        results = await asyncio.gather(
            *(store.create("/race", str(i).encode()) for i in range(20)), return_exceptions=True
        )
        wins = [r for r in results if isinstance(r, int)]
        assert len(wins) == 1
        assert all(isinstance(r, KeyExistsError) for r in results if not isinstance(r, int))

    async def test_concurrent_cas_updates_exactly_one_wins(self, store: Store) -> None:
        rev = await store.create("/cas", b"0")
        results = await asyncio.gather(
            *(store.update("/cas", str(i).encode(), rev) for i in range(20)), return_exceptions=True
        )
        wins = [r for r in results if isinstance(r, KeyValue)]
        assert len(wins) == 1
        losers = [r for r in results if isinstance(r, RevisionMismatchError)]
        assert len(losers) == 19
        assert all(loser.current == wins[0] for loser in losers)

    # -- reads --------------------------------------------------------------------

    async def test_list_by_prefix_sorted(self, store: Store) -> None:
        for key in ["/pods/b/2", "/pods/a/1", "/podsx/z", "/pods/b/1", "/pod", "/services/a"]:
            await store.create(key, key.encode())
        await store.delete("/pods/b/1")
        result = await store.list("/pods/")
        assert keys(result.items) == ["/pods/a/1", "/pods/b/2"]
        assert [kv.value for kv in result.items] == [b"/pods/a/1", b"/pods/b/2"]
        assert result.revision == store.revision
        assert not result.more and result.remaining == 0
        everything = await store.list("")
        assert keys(everything.items) == ["/pod", "/pods/a/1", "/pods/b/2", "/podsx/z", "/services/a"]

    async def test_count(self, store: Store) -> None:
        for i in range(7):
            await store.create(f"/pods/p{i}", b"v")
        await store.create("/podsx", b"v")
        await store.delete("/pods/p3")
        assert await store.count("/pods/") == 6
        assert await store.count("") == 7
        assert await store.count("/nothing/") == 0

    async def test_pagination_is_consistent_at_one_revision(self, store: Store) -> None:
        for i in range(10):
            await store.create(f"/pods/p{i}", f"v{i}".encode())
        snapshot = await store.list("/pods/")
        first = await store.list("/pods/", limit=4)
        assert keys(first.items) == [f"/pods/p{i}" for i in range(4)]
        assert first.more and first.remaining == 6
        # writes between pages must not show up in later pages
        await store.delete("/pods/p5")
        await store.create("/pods/p45", b"new")
        p7 = await store.get("/pods/p7")
        assert p7 is not None
        await store.update("/pods/p7", b"changed", p7.mod_revision)
        pages = [first]
        while pages[-1].more:
            page = await store.list(
                "/pods/", revision=first.revision, limit=4, start_after=pages[-1].items[-1].key
            )
            assert page.revision == first.revision
            pages.append(page)
        assert [page.remaining for page in pages] == [6, 2, 0]
        assert [kv for page in pages for kv in page.items] == snapshot.items
        now = await store.list("/pods/")
        assert "/pods/p45" in keys(now.items) and "/pods/p5" not in keys(now.items)

    async def test_list_and_get_at_old_revision(self, store: Store) -> None:
        a = await store.create("/k/a", b"a1")
        await store.create("/k/b", b"b1")
        old = store.revision
        await store.update("/k/a", b"a2", a)
        await store.delete("/k/b")
        await store.create("/k/c", b"c1")
        then = await store.list("/k/", revision=old)
        assert then.revision == old
        assert [(kv.key, kv.value) for kv in then.items] == [("/k/a", b"a1"), ("/k/b", b"b1")]
        now = await store.list("/k/")
        assert [(kv.key, kv.value) for kv in now.items] == [("/k/a", b"a2"), ("/k/c", b"c1")]
        assert await store.get("/k/a", revision=old) == KeyValue("/k/a", b"a1", a, a)
        assert await store.get("/k/c", revision=old) is None

    async def test_read_at_future_revision_raises(self, store: Store) -> None:
        await store.create("/k", b"v")
        with pytest.raises(FutureRevisionError):
            await store.list("/", revision=store.revision + 1)
        with pytest.raises(FutureRevisionError):
            await store.get("/k", revision=store.revision + 1)

    # -- watch --------------------------------------------------------------------

    async def test_watch_from_current_sees_new_events_in_order(self, store: Store) -> None:
        await store.create("/before", b"x")
        watcher = store.watch("/", store.revision)
        created = await store.create("/k", b"1")
        updated = await store.update("/k", b"2", created)
        deleted = await store.delete("/k")
        events = await collect(watcher, 3)
        watcher.close()
        assert [e.type for e in events] == [EventType.PUT, EventType.PUT, EventType.DELETE]
        assert [e.revision for e in events] == [created, updated.mod_revision, deleted.mod_revision]
        assert events[0].is_create and events[0].prev is None
        assert events[0].kv == KeyValue("/k", b"1", created, created)
        assert not events[1].is_create
        assert events[1].kv == updated
        assert events[1].prev == KeyValue("/k", b"1", created, created)
        assert events[2].kv == deleted
        assert events[2].prev == updated

    async def test_watch_replays_then_continues_without_gap_or_duplicate(self, store: Store) -> None:
        revs = [await store.create(f"/pods/p{i}", b"v") for i in range(150)]
        start = revs[49]

        async def write_more() -> list[int]:
            more = []
            for i in range(150):
                more.append(await store.create(f"/pods/q{i}", b"w"))
                if i % 10 == 0:
                    await asyncio.sleep(0)
            return more

        watcher = store.watch("/pods/", start)
        # published after watch() but before the replay is read: in history and live
        early = [await store.create(f"/pods/e{i}", b"v") for i in range(5)]
        writer = asyncio.create_task(write_more())
        await asyncio.sleep(0)
        first = await next_batch(watcher)  # replay runs while the writer is going
        more = await writer
        rest = await drain_until(watcher, more[-1])
        watcher.close()
        got = [e.revision for e in first + rest]
        assert got == revs[50:] + early + more
        assert all(e.is_create for e in first + rest)

    async def test_watch_replay_carries_prev_values(self, store: Store) -> None:
        start = store.revision
        created = await store.create("/k", b"1")
        updated = await store.update("/k", b"2", created)
        deleted = await store.delete("/k")
        again = await store.create("/k", b"3")
        watcher = store.watch("/k", start)
        events = await collect(watcher, 4)
        watcher.close()
        assert [e.type for e in events] == [EventType.PUT, EventType.PUT, EventType.DELETE, EventType.PUT]
        assert events[0].prev is None and events[3].prev is None
        assert events[1].prev == KeyValue("/k", b"1", created, created)
        assert events[2].kv == deleted and events[2].prev == updated
        assert events[3].kv == KeyValue("/k", b"3", again, again)

    async def test_watch_filters_by_prefix(self, store: Store) -> None:
        start = store.revision
        await store.create("/pods/a", b"1")
        watcher = store.watch("/pods/", start)
        await store.create("/podsx/b", b"2")
        await store.create("/services/c", b"3")
        last = await store.create("/pods/d", b"4")
        events = await drain_until(watcher, last)
        watcher.close()
        assert [e.kv.key for e in events] == ["/pods/a", "/pods/d"]

    async def test_watch_close_ends_iteration(self, store: Store) -> None:
        watcher = store.watch("/", store.revision)

        async def consume() -> int:
            seen = 0
            async for batch in watcher:
                seen += len(batch)
            return seen

        task = asyncio.create_task(consume())
        await store.create("/k", b"v")
        await asyncio.sleep(0.05)
        watcher.close()
        assert await asyncio.wait_for(task, TIMEOUT) == 1

    async def test_store_close_raises_store_closed_in_watchers(self, factory: StoreFactory) -> None:
        store = factory.make()
        await store.start()
        watcher = store.watch("/", store.revision)
        task = asyncio.create_task(next_batch(watcher))
        await asyncio.sleep(0.01)
        await store.close()
        with pytest.raises(StoreClosed):
            await task
        with pytest.raises(StoreClosed):
            await store.create("/k", b"v")

    async def test_slow_watcher_overflows_alone(self, factory: StoreFactory) -> None:
        store = factory.make(watch_queue_size=50)
        await store.start()
        try:
            slow = store.watch("/", store.revision)
            fast = store.watch("/", store.revision)

            async def writer(n: int) -> list[int]:
                return [await store.create(f"/w{n}/{i}", b"v") for i in range(100)]

            tasks = [asyncio.create_task(writer(n)) for n in range(4)]
            events: list[Event] = []
            while not all(task.done() for task in tasks) or len(events) < 400:
                events.extend(await next_batch(fast))
            written = sorted(rev for task in tasks for rev in task.result())
            assert [e.revision for e in events] == written
            with pytest.raises(WatcherOverflow):
                await next_batch(slow)
            fast.close()
        finally:
            await store.close()

    # -- compaction -----------------------------------------------------------------

    async def test_compaction(self, store: Store) -> None:
        a = await store.create("/k/a", b"a1")
        await store.create("/k/b", b"b1")
        early = store.revision
        a2 = await store.update("/k/a", b"a2", a)
        await store.delete("/k/b")
        await store.create("/k/c", b"c1")
        mid = store.revision
        at_mid = await store.list("/k/", revision=mid)
        await store.update("/k/a", b"a3", a2.mod_revision)
        last = await store.create("/k/d", b"d1")

        assert await store.compact(mid) == mid
        assert store.compact_revision == mid
        with pytest.raises(CompactedError):
            await store.list("/k/", revision=early)
        with pytest.raises(CompactedError):
            await store.get("/k/a", revision=early)
        with pytest.raises(CompactedError):
            store.watch("/k/", early)
        assert (await store.list("/k/", revision=mid)).items == at_mid.items
        assert keys((await store.list("/k/")).items) == ["/k/a", "/k/c", "/k/d"]
        watcher = store.watch("/k/", mid)
        events = await drain_until(watcher, last)
        watcher.close()
        assert [(e.kv.key, e.kv.value) for e in events] == [("/k/a", b"a3"), ("/k/d", b"d1")]
        assert events[0].prev == a2
        assert await store.compact(early) == mid  # compacting backwards is a no-op

    async def test_replay_stopped_by_compaction(self, store: Store) -> None:
        for i in range(5):
            await store.create(f"/k{i}", b"v")
        watcher = store.watch("/", 1)
        await store.compact(store.revision)
        with pytest.raises(CompactedError):
            await next_batch(watcher)

    # -- model check ------------------------------------------------------------------

    @pytest.mark.parametrize("seed", range(3))
    async def test_random_operations_match_a_model(self, store: Store, seed: int) -> None:
        """Random writes checked against a dict; then every past revision is listed
        and the whole history is replayed through a watch."""
        rng = random.Random(seed)
        names = [f"/{group}/{i}" for group in ("a", "b") for i in range(4)]
        model: dict[str, KeyValue] = {}
        snapshots: dict[int, dict[str, KeyValue]] = {}  # revision 0 would mean "newest"
        start = store.revision
        for step in range(200):
            await self._random_write(store, rng, rng.choice(names), model, step)
            if store.revision:
                snapshots[store.revision] = dict(model)
        for rev, state in snapshots.items():
            for prefix in ("", "/a/", "/b/"):
                listed = await store.list(prefix, revision=rev)
                assert listed.items == sorted(
                    (kv for key, kv in state.items() if key.startswith(prefix)), key=lambda kv: kv.key
                ), (rev, prefix)
        assert await store.count("/a/") == sum(key.startswith("/a/") for key in model)
        replayed: dict[str, KeyValue] = {}
        watcher = store.watch("", start)
        for event in await drain_until(watcher, store.revision):
            assert event.prev == replayed.get(event.kv.key)
            if event.type is EventType.DELETE:
                del replayed[event.kv.key]
            else:
                replayed[event.kv.key] = event.kv
        watcher.close()
        assert replayed == model

    @staticmethod
    async def _random_write(
        store: Store, rng: random.Random, key: str, model: dict[str, KeyValue], step: int
    ) -> None:
        current = model.get(key)
        value = f"{key}@{step}".encode()
        stale = rng.random() < 0.2
        expected = (current.mod_revision if current else 1) - (1 if stale else 0)
        action = rng.choice(["create", "update", "delete"])
        if action == "create":
            if current is not None:
                with pytest.raises(KeyExistsError):
                    await store.create(key, value)
                return
            rev = await store.create(key, value)
            model[key] = KeyValue(key, value, rev, rev)
        elif current is None:
            with pytest.raises(KeyNotFoundError):
                await (store.update(key, value, expected) if action == "update" else store.delete(key))
        elif stale:
            with pytest.raises(RevisionMismatchError) as info:
                await (
                    store.update(key, value, expected) if action == "update" else store.delete(key, expected)
                )
            assert info.value.current == current
        elif action == "update":
            model[key] = await store.update(key, value, expected)
            assert model[key] == KeyValue(key, value, current.create_revision, store.revision)
        else:
            gone = await store.delete(key, expected)
            assert gone == KeyValue(key, current.value, current.create_revision, store.revision)
            del model[key]

    # -- persistence ------------------------------------------------------------------

    async def test_revision_survives_reopen(self, factory: StoreFactory) -> None:
        if not factory.supports_reopen:
            return
        store = factory.make()
        await store.start()
        rev = await store.create("/k", b"v")
        await store.create("/tmp", b"x")
        gone = await store.delete("/tmp")  # the newest row is a tombstone...
        await store.compact(gone.mod_revision)  # ...which compaction removes
        await store.close()

        again = factory.make()
        await again.start()
        try:
            assert again.revision == gone.mod_revision
            assert again.compact_revision == gone.mod_revision
            assert await again.get("/k") == KeyValue("/k", b"v", rev, rev)
            assert await again.get("/tmp") is None
            assert await again.create("/new", b"n") > gone.mod_revision
        finally:
            await again.close()
