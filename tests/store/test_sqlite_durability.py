"""Durability: a write acknowledged by the SQLite store survives SIGKILL.

The Kubernetes API server answers a create only after etcd committed it; kubelite's
group commit must keep that promise (WAL + synchronous=FULL, futures resolved only
after COMMIT).  SIGKILL checks the process side; power loss is up to fsync.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from kubelite.store.sqlite import SqliteStore

CHILD = Path(__file__).with_name("durability_child.py")
TOTAL = 1_000
KILL_AFTER = 300


def run_and_kill(path: Path) -> tuple[list[str], str]:
    """Run the child, SIGKILL it after KILL_AFTER acks; every line it got out."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(TOTAL)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    # a one-page pipe keeps the child at most ~120 acks ahead of us: the kill lands mid-burst
    fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    lines: list[str] = []
    for line in child.stdout:
        lines.append(line.strip())
        if len(lines) >= KILL_AFTER:
            os.kill(child.pid, signal.SIGKILL)
            break
    lines += [line.strip() for line in child.stdout]  # acks flushed before the kill
    child.wait(timeout=10)
    return lines, child.stderr.read()


async def test_acknowledged_creates_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    lines, stderr = run_and_kill(path)
    assert len(lines) >= KILL_AFTER, stderr
    assert "DONE" not in lines, "the child finished before the kill; the test proves nothing"
    acked = set(lines)

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()

    store = SqliteStore(path)
    await store.start()
    try:
        stored = await store.list("/registry/pods/")
        missing = acked - {kv.key for kv in stored.items}
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:3]}"
        assert store.revision == len(stored.items) >= len(acked)
        rev = await store.create("/registry/pods/default/after", b"{}")
        assert rev == store.revision > len(stored.items)
    finally:
        await store.close()
