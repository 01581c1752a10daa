"""Shared fan-out of plain watch streams: one loop writes every caught-up stream's events.

kube-apiserver serves many watchers of one resource from its watch cache and encodes each
event once per encoding (``cachingObject``), however many watchers get it.  Here the
encoding is shared too (:class:`EncodedEventCache`), and so is the work around it: a stream
of plain JSON events (no selector, no Table) that has caught up with the store does not
keep a task that wakes for every event, nor a queue: it is *attached* to the
:class:`Broadcaster` and its store watcher parked.  The broadcaster listens to the hub once
per prefix (a :class:`Channel`) and, in rounds, writes to each stream of a channel that got
events what it has not sent yet: the HTTP chunk is built once for all streams at the same
revision and written straight to each connection's transport.  After a round the next
one waits as long as the round took of CPU (2-50 ms): a few watchers get their events almost at
once; with many streams (long rounds, or a busy machine) a round carries everything that
arrived meanwhile, so a burst costs one write per watcher instead of one per event, and
the loop keeps time for requests.

A stream goes back to its own task (which awaits ``next_batch`` and ``send`` as usual)
whenever something needs more than a write: a bookmark poke, the watcher closed or
failed, history to replay, or a connection that stopped reading (its transport paused
writing) -- that one then waits in ``send`` and, if it stays behind, its queue overflows
and the watch is closed as before.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from kubelite.apiserver.objects import encode_with_revision, event_object
from kubelite.store.fanout import FanoutHub, HubWatcher
from kubelite.store.types import Event, EventType

Obj = dict[str, Any]
EncodedEvent = tuple[str, Obj, Obj | None, bytes]
# the pause between the end of a round and the next is as long as the round's CPU time (so
# writing to watchers takes at most about half the loop's time; CPU rather than wall time, so
# that a busy machine does not stretch the pause), within these bounds (seconds)
TICK_RANGE = (0.002, 0.05)
ROUND_SLICE = 128  # streams flushed per loop iteration


class EncodedEventCache:
    """Decode and encode each stored event once for every watcher (bounded FIFOs).

    Plain watchers (no selector) need only the event's line: :meth:`line` builds it from the
    stored bytes without decoding (as a LIST does, :func:`encode_with_revision`); watchers
    that filter need the objects too (:meth:`get`)."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._d: OrderedDict[tuple[str, int], EncodedEvent] = OrderedDict()
        self._lines: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, ev: Event) -> EncodedEvent:
        """(type, object, previous object, ``{"type":..,"object":..}\\n`` line)."""
        key = (ev.kv.key, ev.kv.mod_revision)
        hit = self._d.get(key)
        if hit is None:
            typ, obj, prev = event_object(ev)
            hit = (typ, obj, prev, self.line(ev))
            self._d[key] = hit
            if len(self._d) > self.size:
                self._d.popitem(last=False)
        return hit

    def line(self, ev: Event) -> bytes:
        """The event's ``{"type":..,"object":..}\\n`` line."""
        key = (ev.kv.key, ev.kv.mod_revision)
        hit = self._lines.get(key)
        if hit is None:
            hit = self._lines[key] = b'{"type":"%s","object":%s}\n' % (
                _event_type(ev),
                encode_with_revision(ev.kv),
            )
            if len(self._lines) > self.size:
                self._lines.popitem(last=False)
        return hit


def _event_type(ev: Event) -> bytes:
    """What :func:`event_object` names the event, without decoding it."""
    if ev.type is EventType.DELETE:
        return b"DELETED"
    return b"ADDED" if ev.prev is None else b"MODIFIED"


class Connection:
    """The HTTP/1.1 response a stream writes to, reached from uvicorn's ASGI ``send``
    (its ``RequestResponseCycle``): the transport, chunked framing and flow control."""

    __slots__ = ("_cycle", "_flush", "_transport")

    def __init__(self, cycle: Any, transport: Any, flush: Callable[[], None] | None = None) -> None:
        self._cycle = cycle
        self._transport = transport
        self._flush = flush

    @classmethod
    def of(cls, send: Any) -> Connection | None:
        """The connection behind ``send``, or None when it is not a started chunked uvicorn
        response (in-process clients, HTTP/1.0, tests): those keep the task path."""
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        flow = getattr(cycle, "flow", None)
        if transport is None or getattr(cycle, "chunked_encoding", None) is not True:
            return None
        if not getattr(cycle, "response_started", False) or not hasattr(flow, "write_paused"):
            return None
        # the server's coalescing proxy: before each direct write, send what it holds (the
        # response head, chunks the stream's task wrote), so the bytes stay in order
        flush = getattr(transport, "flush", None)
        inner = getattr(transport, "_transport", None)
        if callable(flush) and inner is not None:
            return cls(cycle, inner, flush)
        return cls(cycle, transport)

    def writable(self) -> bool:
        cycle = self._cycle
        return not (cycle.disconnected or cycle.flow.write_paused or self._transport.is_closing())

    def write(self, chunk: bytes) -> None:
        if self._flush is not None:
            self._flush()
        self._transport.write(chunk)


def chunk_of(body: bytes) -> bytes:
    """One HTTP/1.1 chunk (``transfer-encoding: chunked``)."""
    return b"%x\r\n%b\r\n" % (len(body), body)


class Stream:
    """One attached watch stream."""

    __slots__ = ("channel", "conn", "done", "last", "on_write", "watcher")

    def __init__(self, watcher: HubWatcher, conn: Connection, on_write: Callable[[], None] | None) -> None:
        self.watcher = watcher
        self.conn = conn
        self.last = watcher.position  # revision of the newest event handed out
        self.on_write = on_write
        self.done: asyncio.Future[None] | None = None
        self.channel: Channel | None = None  # while attached


class Channel:
    """The attached streams of one store prefix, and the events published under it that some
    of them have not been sent yet (one hub listener instead of one queue per watcher)."""

    def __init__(self, caster: Broadcaster, hub: FanoutHub, prefix: str) -> None:
        self.caster = caster
        self.streams: dict[Stream, None] = {}
        self.log: list[Event] = []
        self._revisions: list[int] = []
        hub.listen(prefix, self._on_events)

    def _on_events(self, events: list[Event]) -> None:
        if self.streams:
            self.log.extend(events)
            self._revisions.extend([ev.revision for ev in events])
            self.caster.mark(self)

    def after(self, revision: int) -> list[Event]:
        """The logged events newer than ``revision``."""
        return self.log[bisect.bisect_right(self._revisions, revision) :]

    def trim(self) -> None:
        """Forget what every attached stream has been sent."""
        keep = bisect.bisect_right(self._revisions, min((s.last for s in self.streams), default=1 << 62))
        del self.log[:keep]
        del self._revisions[:keep]


Chunks = dict[tuple[Channel, int, int], tuple[bytes, int]]


class Broadcaster:
    """Writes the events of attached streams on shared ticks (see the module doc)."""

    def __init__(self, cache: EncodedEventCache) -> None:
        self.cache = cache
        self.attached = 0
        self._channels: dict[tuple[FanoutHub, str], Channel] = {}
        self._dirty: dict[Channel, None] = {}
        self._round: list[Stream] = []  # streams of the current round not flushed yet
        self._round_channels: list[Channel] = []
        self._chunks: Chunks = {}  # built in this round
        self._handle: asyncio.Handle | None = None
        self._round_cpu = 0.0  # CPU seconds the slices of the current round took so far
        self._round_end = -1.0  # loop time at the end of the previous one
        self._round_took = 0.0  # CPU seconds the previous round took

    @property
    def interval(self) -> float:
        """The pause after a round before the next one starts."""
        low, high = TICK_RANGE
        return min(high, max(low, self._round_took))

    async def run(self, stream: Stream) -> None:
        """Serve ``stream`` (its watcher caught up: nothing pending) until its task must
        take over (see the module doc)."""
        watcher = stream.watcher
        key = (watcher.hub, watcher.prefix)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = Channel(self, watcher.hub, watcher.prefix)
        stream.done = asyncio.get_running_loop().create_future()
        stream.last = watcher.position
        watcher.park()
        watcher.notify = lambda: self._release(stream)  # poked, closed or failed
        stream.channel = channel
        channel.streams[stream] = None
        self.attached += 1
        try:
            await stream.done
        finally:
            self.attached -= 1
            self._release(stream)

    def _release(self, stream: Stream) -> None:
        """Hand the stream back to its task, with what it was not sent yet queued again."""
        channel = stream.channel
        if channel is None:
            return
        stream.channel = None
        del channel.streams[stream]
        stream.watcher.notify = None
        stream.watcher.unpark(stream.last, channel.after(stream.last))
        if not channel.streams:
            channel.trim()
        done = stream.done
        if done is not None and not done.done():
            done.set_result(None)

    def mark(self, channel: Channel) -> None:
        """New events for ``channel``: its streams are written at the next tick."""
        self._dirty[channel] = None
        if self._handle is None and not self._round:
            self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        due = self._round_end + self.interval
        if due > loop.time():
            self._handle = loop.call_at(due, self._tick)
        else:
            self._handle = loop.call_soon(self._tick)

    def _tick(self) -> None:
        """Start a round over the streams of the channels that got events since the last."""
        self._handle = None
        self._round_cpu = 0.0
        self._round_channels = list(self._dirty)
        self._dirty = {}
        self._round = [stream for channel in self._round_channels for stream in channel.streams]
        self._chunks = {}
        self._slice()

    def _slice(self) -> None:
        """Flush the next ROUND_SLICE streams of the round; the rest after the loop has
        polled for I/O, so requests are not held up by a whole round of writes."""
        started = time.thread_time()
        todo = self._round
        now, self._round = todo[:ROUND_SLICE], todo[ROUND_SLICE:]
        for stream in now:
            self._flush(stream)
        self._round_cpu += time.thread_time() - started  # the slices only, not what ran between
        if self._round:
            self._handle = asyncio.get_running_loop().call_soon(self._slice)
            return
        self._handle = None
        self._round_end = asyncio.get_running_loop().time()
        self._round_took = self._round_cpu
        self._chunks = {}
        for channel in self._round_channels:
            channel.trim()
        self._round_channels = []
        if self._dirty:
            self._schedule()

    def _flush(self, stream: Stream) -> None:
        channel = stream.channel
        if channel is None:  # released while the round ran
            return
        if not stream.conn.writable():
            self._release(stream)
            return
        # streams at the same revision get the same bytes (the log only grows in a round)
        key = (channel, stream.last, len(channel.log))
        hit = self._chunks.get(key)
        if hit is None:
            events = channel.after(stream.last)
            if not events:
                return
            line = self.cache.line
            hit = self._chunks[key] = (chunk_of(b"".join([line(ev) for ev in events])), events[-1].revision)
        chunk, stream.last = hit
        stream.conn.write(chunk)
        if stream.on_write is not None:
            stream.on_write()
