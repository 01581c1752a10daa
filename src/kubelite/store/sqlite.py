"""SQLite backend of the revisioned store (the log table is in :mod:`.sqlite_log`).

Writes go through one writer thread that owns the write connection and does group
commit: it drains every queued operation into one ``BEGIN IMMEDIATE … COMMIT``
transaction (WAL, ``synchronous=FULL``), checks each operation's precondition inside
that transaction, and only after the commit is durable resolves the callers'
futures and publishes the batch's events, in revision order, on the event loop.
Reads never look past the announced revision, so nobody sees an object whose event
was not published yet.  Point reads and replay chunks run on the event loop (WAL
readers do not wait for the writer); lists and counts, whose cost grows with the
data, run on reader threads with their own connections so the loop never stalls.
A caller cancelled while its write is queued does not undo it (as with etcd, the
outcome of an abandoned request is unknown to it; the log decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import queue
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from kubelite.store import sqlite_log as log
from kubelite.store.fanout import DEFAULT_QUEUE_SIZE, FanoutHub, HubWatcher
from kubelite.store.types import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    RevisionMismatchError,
    StoreClosed,
    StoreError,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 1_000
# With a commit delay (opt-in), group commit waits that long for company, but only while
# writes arrive steadily (the last batch ended less than STEADY_GAP_S ago), like PostgreSQL's
# commit_delay, which applies only with commit_siblings active: a lone write on an idle server
# commits at once.  At ~500 Lease renewals/s 2 ms cut store CPU per write by ~28 %
# (bench/store_bench.py), but it is off by default: closed-loop clients wait out the delay on
# every commit (8 wrk connections creating pods: 1,409/s with 2 ms against ~2,400/s without),
# and the idle 5,000-node control plane met its target without it (22-23 % of a core).
DEFAULT_COMMIT_DELAY_S = 0.0
STEADY_GAP_S = 0.02
# Newest log rows the writer remembers, so an update or delete of a recently written
# key (a Lease renewal, a pod bind) skips the LATEST query (~10 us of a lone write's
# ~250 us writer CPU here).  Emptied when full, on rollback and on compaction.
LATEST_CACHE_SIZE = 16_384
COMPACT_CHUNK = 10_000

READER_THREADS = 2
_Events = list[Event]  # SqliteStore has a method named ``list``
_T = TypeVar("_T")


class _OpKind(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(slots=True)
class _WriteOp:
    kind: _OpKind
    key: str
    value: bytes
    expected: int
    future: asyncio.Future[Event]


@dataclass(slots=True)
class _CompactOp:
    after: int
    until: int
    future: asyncio.Future[int]


_Op = _WriteOp | _CompactOp
# A key's newest log row as log.LATEST returns it: (id, deleted, create_revision, value).
_Latest = tuple[int, int, int, bytes]
Outcome = Event | BaseException
CommitCallback = Callable[[list[tuple[_WriteOp, Outcome]]], None]


class _Writer:
    """The thread that owns the write connection and group-commits queued writes."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        on_commit: CommitCallback,
        max_batch: int,
        commit_delay_s: float = DEFAULT_COMMIT_DELAY_S,
    ) -> None:
        self._conn = conn
        self._loop = loop
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._commit_delay_s = commit_delay_s
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._next_id = log.read_sequence(self._conn) + 1
        self._latest: dict[str, _Latest] = {}  # only this thread writes the log
        self._last_batch_end = 0.0  # monotonic time the previous batch was done
        self._thread = threading.Thread(target=self._run, name="kubelite-store-writer", daemon=True)

    @property
    def last_revision(self) -> int:
        """The newest revision assigned (only meaningful before start or between batches)."""
        return self._next_id - 1

    def start(self) -> None:
        self._thread.start()

    def submit(self, op: _Op) -> None:
        self._queue.put(op)

    def stop(self) -> None:
        """Finish everything queued so far, then end the thread (blocking)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        running = True
        while running:
            ops, running = self._drain()
            try:
                self._process(ops)
            except BaseException as exc:  # a bug must fail the callers, not hang them
                logger.exception("store writer failed")
                self._fail_all(ops, exc)
            self._last_batch_end = time.monotonic()

    def _drain(self) -> tuple[list[_Op], bool]:
        """The next batch: the first queued op, everything queued behind it (up to
        ``max_batch``) and, with a commit delay while writes arrive steadily, what arrives
        within that delay."""
        first = self._queue.get()
        if first is None:
            return [], False
        ops: list[_Op] = [first]
        running = self._take_queued(ops)
        if running and self._commit_delay_s > 0 and time.monotonic() - self._last_batch_end < STEADY_GAP_S:
            running = self._gather(ops)
        return ops, running

    def _take_queued(self, ops: list[_Op]) -> bool:
        """Move already queued ops into ``ops``; False once the stop marker is seen."""
        # SimpleQueue.empty() is exact here: this thread is the only consumer.
        pending, take = self._queue, self._queue.get_nowait
        while len(ops) < self._max_batch and not pending.empty():
            op = take()
            if op is None:
                return False
            ops.append(op)
        return True

    def _gather(self, ops: list[_Op]) -> bool:
        """Sleep ``commit_delay_s``, then take what arrived meanwhile (PostgreSQL's
        ``commit_delay``): at low write rates this trades a little latency for fewer
        commits (fsyncs) and hand-offs.  One sleep, not a wake-up per arriving write."""
        if len(ops) < self._max_batch:
            time.sleep(self._commit_delay_s)
        return self._take_queued(ops)

    def _process(self, ops: list[_Op]) -> None:
        writes: list[_WriteOp] = []
        for op in ops:
            if isinstance(op, _WriteOp):
                writes.append(op)
                continue
            self._commit_writes(writes)
            writes = []
            self._compact(op)
        self._commit_writes(writes)

    def _commit_writes(self, ops: list[_WriteOp]) -> None:
        if not ops:
            return
        outcomes: list[Outcome]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            outcomes = [self._apply(op) for op in ops]
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            error = StoreError(f"write failed: {exc}")
            error.__cause__ = exc
            outcomes = [error] * len(ops)
        self._call_loop(self._on_commit, list(zip(ops, outcomes, strict=True)))

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._next_id = log.read_sequence(self._conn) + 1
        self._latest.clear()

    def _read_latest(self, key: str) -> _Latest | None:
        """``key``'s newest log row, from the cache or the log."""
        latest = self._latest.get(key)
        if latest is None:
            latest = self._conn.execute(log.LATEST, (key,)).fetchone()
        return latest

    def _remember(self, key: str, latest: _Latest) -> None:
        if len(self._latest) >= LATEST_CACHE_SIZE:
            self._latest.clear()
        self._latest[key] = latest

    def _apply(self, op: _WriteOp) -> Outcome:
        latest = self._read_latest(op.key)
        if op.kind is _OpKind.CREATE:
            if latest is not None and not latest[1]:
                return KeyExistsError(f"key {op.key} already exists")
            return self._insert_create(op, prev_id=latest[0] if latest else 0)
        if latest is None or latest[1]:
            return KeyNotFoundError(f"key {op.key} not found")
        current = KeyValue(op.key, latest[3], latest[2], latest[0])
        if (op.kind is _OpKind.UPDATE or op.expected) and op.expected != current.mod_revision:
            return RevisionMismatchError(op.key, current)
        if op.kind is _OpKind.UPDATE:
            return self._insert_change(EventType.PUT, current, op.value)
        return self._insert_change(EventType.DELETE, current, current.value)

    def _take_id(self) -> int:
        rev = self._next_id
        self._next_id += 1
        return rev

    def _insert_create(self, op: _WriteOp, prev_id: int) -> Event:
        rev = self._take_id()
        self._conn.execute(log.INSERT, (rev, op.key, 1, 0, rev, prev_id, op.value, None))
        self._remember(op.key, (rev, 0, rev, op.value))
        return Event(EventType.PUT, KeyValue(op.key, op.value, rev, rev), None)

    def _insert_change(self, kind: EventType, current: KeyValue, value: bytes) -> Event:
        rev = self._take_id()
        deleted = 1 if kind is EventType.DELETE else 0
        row = (rev, current.key, 0, deleted, current.create_revision, current.mod_revision)
        self._conn.execute(log.INSERT, (*row, value, current.value))
        self._remember(current.key, (rev, deleted, current.create_revision, value))
        return Event(kind, KeyValue(current.key, value, current.create_revision, rev), current)

    def _compact(self, op: _CompactOp) -> None:
        self._latest.clear()  # compaction removes tombstones that may be a key's newest row
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            removed = self._conn.execute(log.COMPACT, (op.after, op.until)).rowcount
            self._conn.execute(log.SET_COMPACT, (op.until,))
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._call_loop(_settle, op.future, StoreError(f"compaction failed: {exc}"))
            return
        self._call_loop(_settle, op.future, removed)

    def _fail_all(self, ops: Sequence[_Op], exc: BaseException) -> None:
        with contextlib.suppress(BaseException):
            self._rollback()
        error = StoreError(f"store writer failed: {exc!r}")
        for op in ops:
            self._call_loop(_settle, op.future, error)

    def _call_loop(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[Any], outcome: object) -> None:
    """Resolve ``future`` with a result or an exception unless the caller gave up."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class _ReaderPool:
    """Read connections: one used on the event loop (point reads, replay chunks) and
    one per reader thread (lists and counts, whose cost grows with the data)."""

    def __init__(self, path: str, *, durable: bool, threads: int = READER_THREADS) -> None:
        self._path = path
        self._durable = durable
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="kubelite-store-reader")
        self.inline = self._open()

    def _open(self) -> log.LogReader:
        conn = log.connect(self._path, durable=self._durable)
        conn.execute("PRAGMA query_only=1")
        with self._lock:
            self._opened.append(conn)
        return log.LogReader(conn)

    def _thread_reader(self) -> log.LogReader:
        reader: log.LogReader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self._open()
        return reader

    async def run(self, read: Callable[[log.LogReader], _T]) -> _T:
        """``read`` on a reader thread with that thread's connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: read(self._thread_reader()))

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


class SqliteStore:
    """The :class:`~kubelite.store.types.Store` contract on one SQLite file.

    ``durable=False`` turns fsync off (tests, ``memory://``); ``watch_queue_size``
    bounds each watcher's backlog; ``max_batch`` caps a group commit;
    ``commit_delay_s`` (default 0: commit at once) lets the writer wait that long after
    a batch's first write for more writes to share its commit (fewer fsyncs and
    thread hand-offs per write at low rates, e.g. node Lease renewals, for that much
    latency).  A write is still acknowledged only after its commit is durable.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        watch_queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = DEFAULT_MAX_BATCH,
        commit_delay_s: float = DEFAULT_COMMIT_DELAY_S,
    ) -> None:
        self.path = os.fspath(path)
        self._durable = durable
        self._watch_queue_size = watch_queue_size
        self._max_batch = max_batch
        self._commit_delay_s = commit_delay_s
        self._revision = 0
        self._compact_revision = 0
        self._readers: _ReaderPool | None = None
        self._writer: _Writer | None = None
        self._hub: FanoutHub | None = None
        self._auto_compaction: asyncio.Task[None] | None = None
        self._closed = False
        self._cleanup_dir: str | None = None

    @classmethod
    def temporary(
        cls,
        *,
        watch_queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = DEFAULT_MAX_BATCH,
        commit_delay_s: float = DEFAULT_COMMIT_DELAY_S,
    ) -> SqliteStore:
        """A throw-away store in a fresh temp directory, removed on close (no fsync)."""
        directory = tempfile.mkdtemp(prefix="kubelite-store-")
        path = os.path.join(directory, "state.db")
        store = cls(
            path,
            durable=False,
            watch_queue_size=watch_queue_size,
            max_batch=max_batch,
            commit_delay_s=commit_delay_s,
        )
        store._cleanup_dir = directory
        return store

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open (creating if needed) the database and start the writer thread."""
        if self._writer is not None or self._closed:
            raise StoreError("store already started or closed")
        write_conn = log.connect(self.path, durable=self._durable)
        write_conn.executescript(log.SCHEMA)
        self._readers = _ReaderPool(self.path, durable=self._durable)
        loop = asyncio.get_running_loop()
        writer = _Writer(write_conn, loop, self._on_commit, self._max_batch, self._commit_delay_s)
        self._revision = writer.last_revision
        self._compact_revision = log.read_compact_revision(write_conn)
        self._hub = FanoutHub(self, revision=self._revision, queue_size=self._watch_queue_size)
        self._writer = writer
        writer.start()

    async def close(self) -> None:
        """Finish queued writes, end watchers with StoreClosed, close the files."""
        if self._closed:
            return
        self._closed = True
        if self._auto_compaction is not None:
            self._auto_compaction.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._auto_compaction
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer._conn.close()
        if self._hub is not None:
            self._hub.close()
        if self._readers is not None:
            await self._readers.close()
        if self._cleanup_dir is not None:
            shutil.rmtree(self._cleanup_dir, ignore_errors=True)

    def _on_commit(self, results: list[tuple[_WriteOp, Outcome]]) -> None:
        """On the loop: announce the committed revision, publish, then answer callers."""
        events = [outcome for _, outcome in results if isinstance(outcome, Event)]
        if events and self._hub is not None:
            self._revision = events[-1].revision
            self._hub.publish(events)
        for op, outcome in results:
            _settle(op.future, outcome)

    # -- reads -------------------------------------------------------------------

    def _reader_pool(self) -> _ReaderPool:
        if self._closed or self._readers is None:
            raise StoreClosed("store is closed")
        return self._readers

    def _read_revision(self, revision: int) -> int:
        """The revision a read runs at: ``revision`` checked, or the announced one for 0."""
        if revision == 0:
            return self._revision
        if revision > self._revision:
            raise FutureRevisionError(f"revision {revision} is newer than {self._revision}")
        if revision < self._compact_revision:
            raise CompactedError(revision, self._compact_revision)
        return revision

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        return self._reader_pool().inline.get(key, self._read_revision(revision))

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        readers = self._reader_pool()
        rev = self._read_revision(revision)
        return await readers.run(lambda reader: reader.list(prefix, rev, limit, start_after))

    async def count(self, prefix: str) -> int:
        readers = self._reader_pool()
        rev = self._revision
        return await readers.run(lambda reader: reader.count(prefix, rev))

    async def history(self, prefix: str, after: int, until: int, limit: int) -> _Events:
        """Log rows under ``prefix`` with ``after < id <= until`` as events (watch replay)."""
        readers = self._reader_pool()
        if after < self._compact_revision:
            raise CompactedError(after, self._compact_revision)
        return readers.inline.history(prefix, after, until, limit)

    # -- writes ------------------------------------------------------------------

    async def _submit_write(self, kind: _OpKind, key: str, value: bytes, expected: int) -> Event:
        writer = self._live_writer()
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        writer.submit(_WriteOp(kind, key, value, expected, future))
        return await future

    def _live_writer(self) -> _Writer:
        if self._closed or self._writer is None:
            raise StoreClosed("store is closed")
        return self._writer

    async def create(self, key: str, value: bytes) -> int:
        event = await self._submit_write(_OpKind.CREATE, key, value, 0)
        return event.revision

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        event = await self._submit_write(_OpKind.UPDATE, key, value, expected_mod_revision)
        return event.kv

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        event = await self._submit_write(_OpKind.DELETE, key, b"", expected_mod_revision)
        return event.kv

    # -- watch and compaction ----------------------------------------------------

    def watch(self, prefix: str, from_revision: int) -> HubWatcher:
        """Events under ``prefix`` after ``from_revision`` (replayed, then live).

        Watching "from now" means passing :attr:`revision`.
        """
        if self._closed or self._hub is None:
            raise StoreClosed("store is closed")
        if from_revision < self._compact_revision:
            raise CompactedError(from_revision, self._compact_revision)
        return self._hub.watch(prefix, from_revision)

    def listen(self, prefix: str, callback: Callable[[_Events], None]) -> Callable[[], None]:
        """``callback(events)`` with each committed batch's events under ``prefix``, on the
        loop, before any reader can see the revision (see FanoutHub.listen)."""
        if self._closed or self._hub is None:
            raise StoreClosed("store is closed")
        return self._hub.listen(prefix, callback)

    async def compact(self, revision: int) -> int:
        """Drop history superseded at or before ``revision`` (in chunks, between writes).

        The compact revision is raised before any row goes, so a read or replay that
        starts afterwards gets CompactedError instead of a partial history.
        """
        writer = self._live_writer()
        if revision > self._revision:
            raise FutureRevisionError(f"revision {revision} is newer than {self._revision}")
        start = self._compact_revision
        if revision <= start:
            return start
        self._compact_revision = revision
        loop = asyncio.get_running_loop()
        removed = 0
        for after in range(start, revision, COMPACT_CHUNK):
            future: asyncio.Future[int] = loop.create_future()
            writer.submit(_CompactOp(after, min(after + COMPACT_CHUNK, revision), future))
            removed += await future
        logger.info("store compacted revision=%d removed_rows=%d", revision, removed)
        return revision

    def start_auto_compaction(self, interval_s: float = 300.0, keep_revisions: int = 10_000) -> None:
        """Every ``interval_s`` seconds, compact all but the last ``keep_revisions``."""
        if self._auto_compaction is None:
            coro = self._auto_compact(interval_s, keep_revisions)
            self._auto_compaction = asyncio.get_running_loop().create_task(coro)

    async def _auto_compact(self, interval_s: float, keep_revisions: int) -> None:
        while True:
            await asyncio.sleep(interval_s)
            target = self._revision - keep_revisions
            if target <= self._compact_revision:
                continue
            try:
                await self.compact(target)
            except StoreClosed:
                return
            except StoreError:
                logger.exception("auto compaction failed target=%d", target)
