"""The store contract suite on the SQLite backend, plus SQLite-specific checks."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kubelite.store import open_store
from kubelite.store.sqlite import SqliteStore
from kubelite.store.sqlite_log import prefix_upper_bound
from kubelite.store.types import Store

from .contract import StoreContract, StoreFactory


class SqliteFactory:
    """SQLite stores over one file in a test's temp directory."""

    supports_reopen = True

    def __init__(self, path: Path) -> None:
        self.path = path

    def make(self, *, watch_queue_size: int = 10_000) -> Store:
        return SqliteStore(self.path, watch_queue_size=watch_queue_size)


class TestSqliteContract(StoreContract):
    @pytest.fixture
    def factory(self, tmp_path: Path) -> StoreFactory:
        return SqliteFactory(tmp_path / "state.db")


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("/pods/") == "/pods0"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\ud7ff") == "\ue000"


async def test_open_store_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/state.db")
    assert isinstance(store, SqliteStore) and store.path == f"{tmp_path}/state.db"
    memory = open_store("memory://")
    await memory.start()
    await memory.create("/k", b"v")
    directory = Path(memory.path).parent
    assert directory.exists()
    await memory.close()
    assert not directory.exists()


async def test_schema_is_a_log_with_compact_revision_in_meta(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    rev = await store.create("/k", b"1")
    kv = await store.update("/k", b"2", rev)
    await store.create("/gone", b"x")
    await store.delete("/gone")
    await store.compact(store.revision)
    await store.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rows = conn.execute(
        "SELECT id, name, created, deleted, prev_revision, value, old_value FROM kv"
    ).fetchall()
    assert rows == [(kv.mod_revision, "/k", 0, 0, rev, b"2", b"1")]  # superseded rows and tombstones go
    assert conn.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone() == (4,)
    conn.close()


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    batches: list[int] = []
    watcher = store.watch("", 0)
    revs = await asyncio.gather(*(store.create(f"/k{i}", b"v") for i in range(200)))
    while sum(batches) < 200:
        batches.append(len(await anext(aiter(watcher))))
    await store.close()
    assert sorted(revs) == list(range(1, 201))
    assert len(batches) < 50  # many writes share one commit (and one published batch)


async def test_auto_compaction(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    rev = await store.create("/k", b"0")
    for i in range(20):
        rev = (await store.update("/k", str(i).encode(), rev)).mod_revision
    store.start_auto_compaction(interval_s=0.01, keep_revisions=5)
    for _ in range(100):
        if store.compact_revision:
            break
        await asyncio.sleep(0.01)
    assert store.compact_revision == store.revision - 5
    await store.close()


async def test_reads_never_pass_the_announced_revision(tmp_path: Path) -> None:
    """A row committed but not yet announced (here: written behind the store's
    back) must stay invisible to get, list and count until its event is published."""
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    rev = await store.create("/k/a", b"a")
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute(
        "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)"
        " VALUES (?, '/k/b', 1, 0, ?, 0, x'00')",
        (rev + 1, rev + 1),
    )
    conn.commit()
    conn.close()
    assert store.revision == rev
    assert await store.get("/k/b") is None
    assert [kv.key for kv in (await store.list("/k/")).items] == ["/k/a"]
    assert await store.count("/k/") == 1
    await store.close()
