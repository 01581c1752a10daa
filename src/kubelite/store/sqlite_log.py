"""The SQLite log table (kine's schema) and the queries that read it.

Every write appends a row whose autoincrement id is the new global revision (the
API's ``resourceVersion``); the state of a key at revision R is its newest row with
id <= R, a tombstone row (``deleted = 1``) meaning "absent".  Rows keep the value
they replaced (``old_value``), so a watch replay can hand out the previous object
even after compaction removed the superseded row.  The compact revision lives in a
small ``meta`` table, written in the same transaction as the compaction itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from kubelite.store.types import CompactedError, Event, EventType, KeyValue, ListResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS kv_name_id_deleted ON kv (name, id, deleted);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

ROW_COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
INSERT = f"INSERT INTO kv ({ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
LATEST = "SELECT id, deleted, create_revision, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1"
SEQUENCE = "SELECT seq FROM sqlite_sequence WHERE name = 'kv'"
SET_COMPACT = "INSERT OR REPLACE INTO meta (key, value) VALUES ('compact_revision', ?)"
# Rows superseded inside (after, until] are the ones a newer row there points at
# with prev_revision; tombstones in that range go too (absent either way).
COMPACT = """
DELETE FROM kv WHERE id IN (
    SELECT prev_revision FROM kv WHERE id > ?1 AND id <= ?2 AND prev_revision > 0
    UNION ALL
    SELECT id FROM kv WHERE id > ?1 AND id <= ?2 AND deleted = 1
)
"""
_COMPACT_META = "SELECT value FROM meta WHERE key = 'compact_revision'"
_GET_AT = (
    "SELECT id, deleted, create_revision, value FROM kv WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1"
)

Row = tuple[int, str, int, int, int, int, bytes, bytes | None]
Events = list[Event]  # LogReader has a method named ``list``


def connect(path: str, *, durable: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), WAL, fsync per commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
    return conn


def event_from_row(row: Row) -> Event:
    """Rebuild the watch event a log row stands for."""
    rev, name, created, deleted, create_rev, prev_rev, value, old_value = row
    kv = KeyValue(name, value, create_rev, rev)
    if created:
        return Event(EventType.PUT, kv, None)
    prev = KeyValue(name, old_value if old_value is not None else b"", create_rev, prev_rev)
    return Event(EventType.DELETE if deleted else EventType.PUT, kv, prev)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            bumped = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
            return prefix[:-1] + chr(bumped)
        prefix = prefix[:-1]
    return None


def name_range(prefix: str, start_after: str = "") -> tuple[str, list[str]]:
    """SQL condition and parameters selecting names under ``prefix`` after ``start_after``."""
    if start_after and start_after >= prefix:
        clauses, params = ["name > ?"], [start_after]
    else:
        clauses, params = ["name >= ?"], [prefix]
    upper = prefix_upper_bound(prefix)
    if upper is not None:
        clauses.append("name < ?")
        params.append(upper)
    return " AND ".join(clauses), params


def live_at(columns: str, where: str) -> str:
    """SELECT of the rows that are the live state of their key at a revision.

    A row is live at R when it is not a tombstone, its id is <= R and no newer row
    of the same key is <= R.  Parameters: the name range, then R twice.
    """
    return (
        f"SELECT {columns} FROM kv AS a WHERE {where} AND id <= ? AND deleted = 0"
        " AND NOT EXISTS (SELECT 1 FROM kv AS b WHERE b.name = a.name AND b.id > a.id AND b.id <= ?)"
    )


def read_compact_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute(_COMPACT_META).fetchone()
    return int(row[0]) if row else 0


def read_sequence(conn: sqlite3.Connection) -> int:
    """The newest revision ever assigned (survives compaction of the newest row)."""
    row = conn.execute(SEQUENCE).fetchone()
    return int(row[0]) if row else 0


class LogReader:
    """Reads of the log through one connection, each in one consistent snapshot.

    Every read runs in a read transaction that first checks the compact revision
    stored in the same snapshot, so a compaction committing concurrently can never
    hand out a half-compacted history: the read either sees the rows or raises
    :class:`CompactedError`.  Callers pass the revision to read at (never above the
    announced one).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextmanager
    def _snapshot(self, revision: int) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN")
        try:
            compacted = read_compact_revision(self.conn)
            if revision < compacted:
                raise CompactedError(revision, compacted)
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def get(self, key: str, revision: int) -> KeyValue | None:
        """The key at ``revision``, in one statement (its own snapshot).

        Unlike the other reads this does not re-check the stored compact revision: the
        caller checked ``revision`` against the in-memory compact revision on the same
        thread just before, and that is raised before any compaction starts.  Compaction
        only removes rows superseded at or below it, so the row live at ``revision`` stays
        (and a tombstone goes in the same statement as the row it deleted).
        """
        row = self.conn.execute(_GET_AT, (key, revision)).fetchone()
        if row is None or row[1]:
            return None
        return KeyValue(key, row[3], row[2], row[0])

    def list(self, prefix: str, revision: int, limit: int, start_after: str) -> ListResult:
        where, params = name_range(prefix, start_after)
        sql = live_at("name, id, create_revision, value", where) + " ORDER BY name LIMIT ?"
        with self._snapshot(revision) as conn:
            rows = conn.execute(sql, (*params, revision, revision, limit + 1 if limit > 0 else -1)).fetchall()
            items = [KeyValue(name, value, create_rev, mod) for name, mod, create_rev, value in rows]
            if limit <= 0 or len(items) <= limit:
                return ListResult(items, revision, False, 0)
            del items[limit:]
            remaining = self._count(prefix, revision, items[-1].key)
        return ListResult(items, revision, True, remaining)

    def count(self, prefix: str, revision: int) -> int:
        with self._snapshot(revision):
            return self._count(prefix, revision, "")

    def _count(self, prefix: str, revision: int, start_after: str) -> int:
        where, params = name_range(prefix, start_after)
        sql = f"SELECT COUNT(*) FROM ({live_at('1', where)})"
        return int(self.conn.execute(sql, (*params, revision, revision)).fetchone()[0])

    def history(self, prefix: str, after: int, until: int, limit: int) -> Events:
        """Log rows under ``prefix`` with ``after < id <= until``, as events, oldest first."""
        where, params = name_range(prefix)
        sql = f"SELECT {ROW_COLUMNS} FROM kv WHERE id > ? AND id <= ? AND {where} ORDER BY id LIMIT ?"
        with self._snapshot(after) as conn:
            rows = conn.execute(sql, (after, until, *params, limit)).fetchall()
        return [event_from_row(row) for row in rows]
