"""Watch streams: chunked JSON lines of ``{"type": ..., "object": ...}`` events.

Semantics as kube-apiserver: events strictly after ``resourceVersion``; with no (or "0")
resourceVersion the current objects come first as ADDED; selectors apply to both the
new and the previous state (an object leaving the selector is DELETED for the watcher);
a compacted start gets an ERROR event with a 410 Status; the stream ends at
``timeoutSeconds``; BOOKMARK events when asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import JSON, Request, Send, start_stream, stream_chunk
from kubelite.apiserver.negotiation import object_representation
from kubelite.apiserver.rest import Target, converter, list_filter
from kubelite.apiserver.tableconv import partial_metadata
from kubelite.apiserver.watchcast import Broadcaster, Connection, EncodedEventCache, Stream
from kubelite.store.fanout import HubWatcher
from kubelite.store.types import StoreClosed, Watcher, WatcherOverflow

Obj = dict[str, Any]
BOOKMARK_INTERVAL = 30.0
# pacing of busy watch streams: about one fan-out round (the cost of one write to every
# stream, ~40 us each), between 2 and 50 ms
PACING_PER_STREAM = 40e-6
PACING_RANGE = (0.002, 0.05)
DEFAULT_TIMEOUT_RANGE = (1800, 3600)  # kube-apiserver's --min-request-timeout, randomised


def _cache(ctx: ServerContext) -> EncodedEventCache:
    c = ctx.extra.get("event_cache")
    if c is None:
        c = ctx.extra["event_cache"] = EncodedEventCache()
    assert isinstance(c, EncodedEventCache)
    return c


def _broadcaster(ctx: ServerContext) -> Broadcaster:
    b = ctx.extra.get("watch_broadcaster")
    if b is None:
        b = ctx.extra["watch_broadcaster"] = Broadcaster(_cache(ctx))
    assert isinstance(b, Broadcaster)
    return b


class _Encoder:
    def __init__(self, ctx: ServerContext, req: Request, t: Target) -> None:
        self.ctx = ctx
        self.rep = object_representation(req.headers.get("accept", ""))
        self.include = req.q("includeObject", "Metadata")
        self.conv = converter(ctx, t.info) if self.rep == "Table" else None
        self.first_table = True

    def line(self, typ: str, obj: Obj) -> bytes:
        if self.conv is not None:
            table = self.conv.table(
                [obj],
                self.ctx.clock(),
                self.include,
                {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                with_columns=self.first_table,
            )
            self.first_table = False
            return orjson.dumps({"type": typ, "object": table}) + b"\n"
        if self.rep:
            return orjson.dumps({"type": typ, "object": partial_metadata(obj)}) + b"\n"
        return orjson.dumps({"type": typ, "object": obj}) + b"\n"


def _classify(typ: str, obj: Obj, prev: Obj | None, match: Any) -> str:
    if match is None:
        return typ
    now_in = typ != "DELETED" and match(obj)
    was_in = prev is not None and match(prev)
    if typ == "DELETED":
        return "DELETED" if (was_in or match(obj)) else ""
    if now_in:
        return "MODIFIED" if was_in else "ADDED"
    return "DELETED" if was_in else ""


async def _disconnected(req: Request) -> None:
    while True:
        msg = await req.receive()
        if msg["type"] == "http.disconnect":
            return


async def watch(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    match = list_filter(req, t.info)
    if t.name:
        name = t.name
        inner = match

        def match(o: Obj) -> bool:
            return bool(o["metadata"].get("name") == name and (inner is None or inner(o)))

    timeout = req.q_int("timeoutSeconds", 0) or random.randint(*DEFAULT_TIMEOUT_RANGE)
    bookmarks = req.q_bool("allowWatchBookmarks")
    enc = _Encoder(ctx, req, t)
    rv_raw = req.q("resourceVersion")
    await start_stream(send, JSON, req.warnings)
    disconnect = asyncio.ensure_future(_disconnected(req))
    try:
        await asyncio.wait_for(_run(ctx, send, t, match, enc, rv_raw, bookmarks, disconnect), timeout)
    except TimeoutError:
        pass
    finally:
        disconnect.cancel()
    with contextlib.suppress(Exception):
        await stream_chunk(send, b"", more=False)


async def _initial(ctx: ServerContext, send: Send, t: Target, match: Any, enc: _Encoder) -> int:
    page = await ctx.objects.list(t.info, t.namespace, match=match)
    for obj in page.items:
        await stream_chunk(send, enc.line("ADDED", obj))
    return page.revision


async def _run(
    ctx: ServerContext,
    send: Send,
    t: Target,
    match: Any,
    enc: _Encoder,
    rv_raw: str,
    bookmarks: bool,
    disconnect: asyncio.Future[None],
) -> None:
    if rv_raw in ("", "0"):
        start = await _initial(ctx, send, t, match, enc)
    else:
        try:
            start = int(rv_raw)
        except ValueError:
            await _send_error(send, errors.BadRequest(f'invalid resourceVersion "{rv_raw}"'))
            return
    try:
        watcher = ctx.objects.open_watch(t.info, t.namespace, start)
    except errors.Gone as e:
        await _send_error(send, e)
        return
    disconnect.add_done_callback(lambda _: watcher.close())
    ticker = _Bookmarks(watcher) if bookmarks else None
    try:
        await _stream(ctx, send, t, match, enc, watcher, start, ticker)
    except (WatcherOverflow, StoreClosed):
        return
    finally:
        watcher.close()
        if ticker is not None:
            ticker.cancel()


async def _stream(
    ctx: ServerContext,
    send: Send,
    t: Target,
    match: Any,
    enc: _Encoder,
    watcher: Watcher,
    last: int,
    ticker: _Bookmarks | None,
) -> None:
    """Write batches as they come; a stream that wrote less than a pacing interval ago waits
    for the next shared tick first, so bursts reach each watcher in one write."""
    pacer = _pacer(ctx)
    with pacer.stream():
        await _pump(ctx, send, t, match, enc, watcher, last, ticker, pacer)


def _direct(send: Send, enc: _Encoder, match: Any, watcher: Watcher) -> Connection | None:
    """The connection a plain stream can be served on by the broadcaster, if any."""
    if enc.rep or match is not None or not isinstance(watcher, HubWatcher):
        return None
    return Connection.of(send)


async def _pump(
    ctx: ServerContext,
    send: Send,
    t: Target,
    match: Any,
    enc: _Encoder,
    watcher: Watcher,
    last: int,
    ticker: _Bookmarks | None,
    pacer: Pacer,
) -> None:
    plain = enc.rep == "" and match is None
    cache = _cache(ctx)
    loop = asyncio.get_running_loop()
    quiet_after = 0.0
    conn = _direct(send, enc, match, watcher)
    while True:
        if conn is not None and not watcher.pending():
            assert isinstance(watcher, HubWatcher)
            stream = Stream(watcher, conn, ticker.mark_sent if ticker is not None else None)
            await _broadcaster(ctx).run(stream)
            last = max(last, stream.last)
        try:
            batch = await watcher.next_batch()
            if batch and loop.time() < quiet_after:
                await pacer.wait()
                if watcher.pending():
                    batch = batch + await watcher.next_batch()
        except StopAsyncIteration:
            return
        if not batch:  # poked by the bookmark ticker
            if ticker is not None and ticker.idle():
                await stream_chunk(send, _bookmark(t, max(last, ctx.objects.revision)))
            continue
        quiet_after = loop.time() + pacer.interval
        out: list[bytes] = []
        for ev in batch:
            last = ev.revision
            if plain:
                out.append(cache.line(ev))
                continue
            typ, obj, prev, _ = cache.get(ev)
            kind = _classify(typ, obj, prev, match)
            if kind:
                out.append(enc.line(kind, obj))
        if out:
            await stream_chunk(send, b"".join(out))
            if ticker is not None:
                ticker.sent = True


class _Bookmarks:
    """Pokes a watcher every BOOKMARK_INTERVAL; a bookmark goes out when nothing else did."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.sent = False
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(BOOKMARK_INTERVAL, self._fire)

    def _fire(self) -> None:
        self.watcher.poke()
        self._handle = self._loop.call_later(BOOKMARK_INTERVAL, self._fire)

    def mark_sent(self) -> None:
        self.sent = True

    def idle(self) -> bool:
        """True when no event went out since the last poke (and resets that)."""
        idle = not self.sent
        self.sent = False
        return idle

    def cancel(self) -> None:
        self._handle.cancel()


class Pacer:
    """A shared tick for watch streams that wrote recently: events arriving meanwhile reach
    each watcher in one write (one TLS record, one socket write and one wakeup per watcher per
    tick instead of per event; those dominate the cost of fan-out).  A stream that has been
    quiet for an interval writes at once.  The interval follows the number of open streams
    (about the time one round of writes to all of them takes), so a few watchers get their
    events within milliseconds and a thousand share the loop fairly."""

    def __init__(self) -> None:
        self.streams = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def interval(self) -> float:
        low, high = PACING_RANGE
        return min(high, max(low, self.streams * PACING_PER_STREAM))

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        """Count one open stream while the block runs."""
        self.streams += 1
        try:
            yield
        finally:
            self.streams -= 1

    def wait(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if not self._waiters:
            loop.call_later(self.interval, self._fire)
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        return fut

    def _fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


def _pacer(ctx: ServerContext) -> Pacer:
    p = ctx.extra.get("watch_pacer")
    if p is None:
        p = ctx.extra["watch_pacer"] = Pacer()
    assert isinstance(p, Pacer)
    return p


def _bookmark(t: Target, rev: int) -> bytes:
    obj = {
        "kind": t.info.kind,
        "apiVersion": t.info.group_version,
        "metadata": {"resourceVersion": str(rev), "creationTimestamp": None},
    }
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def _send_error(send: Send, err: errors.APIError) -> None:
    await stream_chunk(send, orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n")
