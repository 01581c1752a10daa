"""The raw limit: how fast can SQLite durably take pod-sized rows on this machine?

Serialises N pod-like objects with orjson and appends them to a kine-like log table
(WAL, synchronous=FULL) two ways: in batches of ``--batch`` rows per transaction,
and with one transaction (one fsync) per row.  Prints one JSON line.

    python bench/store_raw.py --count 20000 --batch 500 --single 2000
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time

import orjson
from _pods import machine, pod

SCHEMA = """
CREATE TABLE kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created INTEGER NOT NULL,
    deleted INTEGER NOT NULL, create_revision INTEGER NOT NULL, prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL, old_value BLOB);
CREATE INDEX kv_name_id ON kv (name, id);
"""
INSERT = (
    "INSERT INTO kv (name, created, deleted, create_revision, prev_revision, value) VALUES (?, 1, 0, 0, 0, ?)"
)


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    return conn


def rows(start: int, count: int) -> list[tuple[str, bytes]]:
    return [
        (f"/registry/pods/default/bench-{i:07d}", orjson.dumps(pod(i))) for i in range(start, start + count)
    ]


def batched(conn: sqlite3.Connection, count: int, batch: int) -> float:
    """Objects/s serialising and inserting ``count`` rows, ``batch`` per transaction."""
    began = time.perf_counter()
    for start in range(0, count, batch):
        chunk = rows(start, min(batch, count - start))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, chunk)
        conn.execute("COMMIT")
    return count / (time.perf_counter() - began)


def one_per_commit(conn: sqlite3.Connection, count: int, offset: int) -> float:
    """Objects/s with one transaction (one fsync of the WAL) per row."""
    began = time.perf_counter()
    for i in range(offset, offset + count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, rows(i, 1)[0])
        conn.execute("COMMIT")
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="objects for the batched run")
    parser.add_argument("--batch", type=int, default=500, help="objects per transaction")
    parser.add_argument("--single", type=int, default=2_000, help="objects for the one-commit-each run")
    parser.add_argument("--dir", default=None, help="directory for the database (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        conn = open_db(os.path.join(directory, "raw.db"))
        serialise_began = time.perf_counter()
        rows(0, args.count)
        serialise = args.count / (time.perf_counter() - serialise_began)
        result = {
            "bench": "store_raw",
            "object_bytes": len(orjson.dumps(pod(0))),
            "serialise_objects_per_s": round(serialise),
            "batched_objects_per_s": round(batched(conn, args.count, args.batch)),
            "batch": args.batch,
            "single_commit_objects_per_s": round(one_per_commit(conn, args.single, args.count)),
            "machine": machine(),
        }
        conn.close()
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
