"""Watch fan-out: one hub per store that committed event batches are published to.

This mirrors what the etcd watch stream (and kine's broadcaster) gives the
Kubernetes API server: a watch on a key prefix from a revision first replays the
history after that revision, then continues with live events, in revision order,
with no gap and no duplicate.  Writers never wait for watchers: each watcher has a
bounded queue, and one that falls too far behind is closed with
:class:`WatcherOverflow` (the client must re-list, like a "too old resource
version" from the API server).

The hub is backend-independent: a backend publishes each committed batch (on the
event-loop thread, in revision order) and supplies a :class:`HistoryReader` for
replays.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from kubelite.store.types import Event, StoreClosed, StoreError, WatcherOverflow

logger = logging.getLogger(__name__)
Listener = Callable[[list[Event]], None]

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_REPLAY_CHUNK = 1_000


class HistoryReader(Protocol):
    """Where a hub reads the history it replays (the backend's log)."""

    async def history(self, prefix: str, after: int, until: int, limit: int) -> list[Event]:
        """Events under ``prefix`` with ``after < revision <= until`` in revision
        order, at most ``limit``.  Raises CompactedError when ``after`` is older than
        the compact revision."""
        ...


def filter_prefix(events: Sequence[Event], prefix: str) -> list[Event]:
    """The events whose key starts with ``prefix`` (all of them for "")."""
    if not prefix:
        return list(events)
    return [event for event in events if event.kv.key.startswith(prefix)]


class HubWatcher:
    """One watch: an async iterator of event batches (lists, in revision order)."""

    def __init__(self, hub: FanoutHub, prefix: str, from_revision: int, replay_until: int) -> None:
        self._hub = hub
        self.prefix = prefix
        self._position = from_revision  # the newest revision handed out (or skipped)
        self._replay_until = replay_until  # history to read from the log first
        self._pending: deque[list[Event]] = deque()
        self._pending_count = 0
        self._waiter: asyncio.Future[None] | None = None  # set while the consumer sleeps
        self._poked = False
        self._error: StoreError | None = None
        self._closed = False
        # called (synchronously, on the loop) whenever the consumer would be woken (events,
        # poke, close, failure): how a consumer that does not await next_batch learns of it
        self.notify: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed or self._error is not None

    @property
    def hub(self) -> FanoutHub:
        return self._hub

    @property
    def position(self) -> int:
        """The revision of the newest event handed out (or skipped)."""
        return self._position

    def needs_consumer(self) -> bool:
        """True when only :meth:`next_batch` can go on: poked, closed, failed, or history to
        replay (queued live events alone do not count)."""
        return self._poked or self.closed or self._position < self._replay_until

    def park(self) -> None:
        """Stop queueing live events here: a caught-up watcher whose consumer reads the
        hub's batches itself (through :meth:`FanoutHub.listen`).  Closing and failing still
        reach it (``notify``)."""
        if self._pending or self.needs_consumer():
            raise RuntimeError("only a caught-up watcher can be parked")
        self._hub._park(self)

    def unpark(self, position: int, missed: Sequence[Event]) -> None:
        """Queue live events again, from ``position`` (what the consumer handed out while
        parked); ``missed`` are the batches' events published since, in order (older ones
        are skipped)."""
        self._position = max(self._position, position)
        if self._hub._unpark(self) and missed:
            self._offer(list(missed))

    def close(self) -> None:
        """End iteration (the iterator stops; it does not raise)."""
        if not self.closed:
            self._closed = True
            self._drop()

    def __aiter__(self) -> HubWatcher:
        return self

    async def __anext__(self) -> list[Event]:
        while True:
            batch = await self.next_batch()
            if batch:
                return batch

    async def next_batch(self) -> list[Event]:
        """The next non-empty batch, or an empty one when :meth:`poke` woke the consumer.

        Raises StopAsyncIteration once closed, the watcher's error once failed.
        """
        while True:
            self._raise_if_done()
            if self._position < self._replay_until:
                replayed = await self._replay_chunk()
                if replayed:
                    return replayed
                continue
            live = self._take_pending()
            if live:
                return live
            if self._poked:
                self._poked = False
                return []
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def pending(self) -> bool:
        """True when :meth:`next_batch` would return without waiting."""
        return bool(self._pending) or self._poked or self.closed or self._position < self._replay_until

    def poke(self) -> None:
        """Wake the consumer: :meth:`next_batch` returns an empty batch if nothing is queued."""
        self._poked = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        notify = self.notify
        if notify is not None:
            notify()

    async def _replay_chunk(self) -> list[Event]:
        limit = self._hub.replay_chunk
        events = await self._hub.history.history(self.prefix, self._position, self._replay_until, limit)
        self._raise_if_done()
        if len(events) < limit:
            self._position = self._replay_until
        if events:
            self._position = max(self._position, events[-1].revision)
        return events

    def _take_pending(self) -> list[Event]:
        """All queued live events newer than what was already handed out."""
        events: list[Event] = []
        while self._pending:
            events.extend(self._pending.popleft())
        self._pending_count = 0
        fresh = [event for event in events if event.revision > self._position]
        if fresh:
            self._position = fresh[-1].revision
        return fresh

    def _raise_if_done(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StopAsyncIteration

    def _offer(self, events: list[Event]) -> None:
        """Queue a (prefix-filtered) live batch; overflow closes this watcher only."""
        if self._pending_count + len(events) > self._hub.queue_size:
            self._fail(WatcherOverflow(f"watcher on {self.prefix!r} fell behind and was closed"))
            return
        self._pending.append(events)
        self._pending_count += len(events)
        self._wake()

    def _fail(self, error: StoreError) -> None:
        if not self.closed:
            self._error = error
            self._drop()

    def _drop(self) -> None:
        self._pending.clear()
        self._pending_count = 0
        self._hub._remove(self)
        self._wake()


class FanoutHub:
    """Publishes committed batches to every watcher whose prefix matches.

    ``publish`` must be called on the event-loop thread, batch after batch in
    revision order; it never blocks.
    """

    def __init__(
        self,
        history: HistoryReader,
        *,
        revision: int = 0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        replay_chunk: int = DEFAULT_REPLAY_CHUNK,
    ) -> None:
        self.history = history
        self.queue_size = queue_size
        self.replay_chunk = replay_chunk
        self._revision = revision
        self._by_prefix: dict[str, dict[HubWatcher, None]] = {}
        self._parked: dict[HubWatcher, None] = {}
        self._listeners: dict[int, tuple[str, Listener]] = {}
        self._next_listener = 0
        self._closed = False

    @property
    def revision(self) -> int:
        """The newest published revision."""
        return self._revision

    @property
    def watcher_count(self) -> int:
        return sum(len(watchers) for watchers in self._by_prefix.values()) + len(self._parked)

    def watch(self, prefix: str, from_revision: int) -> HubWatcher:
        """A watcher for events under ``prefix`` with revision > ``from_revision``.

        Events already published are replayed from the history reader; events
        published from now on are queued meanwhile, so nothing is lost or repeated.
        The caller checks ``from_revision`` against the compact revision.
        """
        if self._closed:
            raise StoreClosed("store is closed")
        replay_until = self._revision if from_revision < self._revision else from_revision
        watcher = HubWatcher(self, prefix, from_revision, replay_until)
        self._by_prefix.setdefault(prefix, {})[watcher] = None
        return watcher

    def listen(self, prefix: str, callback: Listener) -> Callable[[], None]:
        """Call ``callback(events)`` synchronously with every published batch's events under
        ``prefix`` (for caches that must be exactly as fresh as reads).  Returns the
        function that stops it.  A callback must be quick and must not raise."""
        token = self._next_listener
        self._next_listener += 1
        self._listeners[token] = (prefix, callback)

        def stop() -> None:
            self._listeners.pop(token, None)

        return stop

    def publish(self, events: Sequence[Event]) -> None:
        """Hand one committed batch (in revision order) to the listeners and matching watchers."""
        if not events:
            return
        self._revision = events[-1].revision
        for prefix, callback in list(self._listeners.values()):
            matching = filter_prefix(events, prefix)
            if matching:
                try:
                    callback(matching)
                except Exception:  # a broken listener must not stop the fan-out
                    logger.exception("store listener failed prefix=%s", prefix)
        for prefix, watchers in list(self._by_prefix.items()):
            matching = filter_prefix(events, prefix)
            if matching:
                for watcher in list(watchers):
                    watcher._offer(matching)

    def close(self) -> None:
        """Close every watcher with StoreClosed; later watch() calls raise it too."""
        self._closed = True
        for watchers in [*self._by_prefix.values(), self._parked]:
            for watcher in list(watchers):
                watcher._fail(StoreClosed("store is closed"))
        self._by_prefix.clear()
        self._parked.clear()

    def _park(self, watcher: HubWatcher) -> None:
        watchers = self._by_prefix.get(watcher.prefix)
        if watchers is not None and watcher in watchers:
            self._remove(watcher)
            self._parked[watcher] = None

    def _unpark(self, watcher: HubWatcher) -> bool:
        """Back to per-watcher queueing; False when the watcher was closed meanwhile."""
        if watcher not in self._parked:
            return False
        del self._parked[watcher]
        if watcher.closed:
            return False
        self._by_prefix.setdefault(watcher.prefix, {})[watcher] = None
        return True

    def _remove(self, watcher: HubWatcher) -> None:
        self._parked.pop(watcher, None)
        watchers = self._by_prefix.get(watcher.prefix)
        if watchers is not None:
            watchers.pop(watcher, None)
            if not watchers:
                del self._by_prefix[watcher.prefix]
