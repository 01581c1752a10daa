"""The SQLite writer thread's own machinery: commit delay and its newest-row cache.

Neither may change what a client observes (revisions, preconditions, events): the
commit delay only lets more writes share one durable commit, and the cache of each
key's newest log row must be dropped whenever the log could differ from it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kubelite.store import open_store
from kubelite.store import sqlite as sqlite_module
from kubelite.store.sqlite import SqliteStore
from kubelite.store.types import KeyNotFoundError, RevisionMismatchError, StoreError


def record_commits(store: SqliteStore) -> list[list[str]]:
    """The keys of each committed batch, as the store publishes them."""
    commits: list[list[str]] = []
    store.listen("", lambda events: commits.append([event.kv.key for event in events]))
    return commits


async def test_commit_delay_lets_later_writes_share_the_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", commit_delay_s=0.5)
    await store.start()
    commits = record_commits(store)
    await store.create("/warm", b"0")  # writes arrive steadily from here on
    first = asyncio.create_task(store.create("/a", b"1"))
    await asyncio.sleep(0.05)  # the writer already holds /a and waits for company
    second = asyncio.create_task(store.create("/b", b"2"))
    revisions = await asyncio.gather(first, second)
    assert list(revisions) == [2, 3] and commits == [["/warm"], ["/a", "/b"]]  # one commit
    await store.close()
    reopened = SqliteStore(tmp_path / "state.db")
    await reopened.start()
    assert [kv.key for kv in (await reopened.list("/")).items] == ["/a", "/b", "/warm"]
    await reopened.close()


async def test_commit_delay_skips_a_lone_write_after_a_quiet_spell(tmp_path: Path) -> None:
    """Like PostgreSQL's commit_siblings: on an idle store a write does not wait for company."""
    store = SqliteStore(tmp_path / "state.db", commit_delay_s=5.0)
    await store.start()
    await store.create("/a", b"1")  # the first write after start: no steady stream yet
    await asyncio.sleep(0.1)  # longer than STEADY_GAP_S
    await asyncio.wait_for(store.create("/b", b"2"), 2.0)  # far less than the 5 s delay
    await store.close()


async def test_by_default_a_lone_write_commits_at_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    commits = record_commits(store)
    first = asyncio.create_task(store.create("/a", b"1"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(store.create("/b", b"2"))
    await asyncio.gather(first, second)
    assert commits == [["/a"], ["/b"]]
    await store.close()


async def test_preconditions_hold_when_the_row_cache_overflows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "LATEST_CACHE_SIZE", 2)
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    revs = {f"/k{i}": await store.create(f"/k{i}", b"0") for i in range(5)}
    for round_ in range(3):
        for key, rev in revs.items():
            with pytest.raises(RevisionMismatchError):
                await store.update(key, b"stale", rev - 1)
            revs[key] = (await store.update(key, str(round_).encode(), rev)).mod_revision
    for key, rev in revs.items():
        kv = await store.get(key)
        assert kv is not None and kv.mod_revision == rev and kv.value == b"2"
    await store.close()


async def test_recreate_after_delete_and_compaction(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    rev = await store.create("/k", b"1")
    await store.delete("/k", rev)
    with pytest.raises(KeyNotFoundError):
        await store.update("/k", b"2", rev)
    await store.compact(store.revision)  # the tombstone (the key's newest row) goes
    again = await store.create("/k", b"3")
    updated = await store.update("/k", b"4", again)
    assert (updated.create_revision, updated.value) == (again, b"4")
    await store.close()


async def test_a_rolled_back_batch_drops_the_row_cache(tmp_path: Path) -> None:
    """A row written behind the writer's back makes its next insert fail (the id is
    taken); after that rollback the writer must read the key again, not trust what it
    remembered, so the stale precondition is refused."""
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    rev = await store.create("/k", b"1")
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute(
        "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)"
        " VALUES (?, '/k', 0, 0, ?, ?, x'00')",
        (rev + 1, rev, rev),
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError):
        await store.update("/k", b"2", rev)  # id rev + 1 is taken: the batch rolls back
    with pytest.raises(RevisionMismatchError):
        await store.update("/k", b"2", rev)  # the log's newest row for /k is rev + 1 now
    await store.close()


async def test_open_store_passes_the_commit_delay(tmp_path: Path) -> None:
    for url in (f"sqlite://{tmp_path}/state.db", "memory://"):
        store = open_store(url, commit_delay_s=0.5)
        await store.start()
        commits = record_commits(store)
        await store.create("/warm", b"0")  # a steady stream of writes from here on
        first = asyncio.create_task(store.create("/a", b"1"))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, store.create("/b", b"2"))
        assert commits == [["/warm"], ["/a", "/b"]]
        await store.close()
