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
from collections import OrderedDict
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import JSON, Request, Send, start_stream, stream_chunk
from kubelite.apiserver.negotiation import object_representation
from kubelite.apiserver.objects import event_object
from kubelite.apiserver.rest import Target, converter, list_filter
from kubelite.apiserver.tableconv import partial_metadata
from kubelite.store.types import Event, StoreClosed, WatcherOverflow

Obj = dict[str, Any]
BOOKMARK_INTERVAL = 30.0
DEFAULT_TIMEOUT_RANGE = (1800, 3600)  # kube-apiserver's --min-request-timeout, randomised


class EncodedEventCache:
    """Decode and encode each stored event once for every plain watcher (bounded FIFO)."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._d: OrderedDict[tuple[str, int], tuple[str, Obj, Obj | None, bytes]] = OrderedDict()

    def get(self, ev: Event) -> tuple[str, Obj, Obj | None, bytes]:
        key = (ev.kv.key, ev.kv.mod_revision)
        hit = self._d.get(key)
        if hit is None:
            typ, obj, prev = event_object(ev)
            line = orjson.dumps({"type": typ, "object": obj}) + b"\n"
            hit = (typ, obj, prev, line)
            self._d[key] = hit
            if len(self._d) > self.size:
                self._d.popitem(last=False)
        return hit


def _cache(ctx: ServerContext) -> EncodedEventCache:
    c = ctx.extra.get("event_cache")
    if c is None:
        c = ctx.extra["event_cache"] = EncodedEventCache()
    assert isinstance(c, EncodedEventCache)
    return c


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
    plain = enc.rep == "" and match is None
    cache = _cache(ctx)
    last = start
    try:
        stream = ctx.objects.watch_events(t.info, t.namespace, start)
        it = stream.__aiter__()
        nxt: asyncio.Future[list[Event]] | None = None
        try:
            while not disconnect.done():
                if nxt is None:
                    nxt = asyncio.ensure_future(it.__anext__())
                waiting: set[asyncio.Future[Any]] = {nxt, disconnect}
                done, _ = await asyncio.wait(
                    waiting, timeout=BOOKMARK_INTERVAL, return_when=asyncio.FIRST_COMPLETED
                )
                if nxt not in done:
                    if disconnect.done():
                        return
                    if bookmarks:
                        await stream_chunk(send, _bookmark(t, max(last, ctx.objects.revision)))
                    continue
                try:
                    batch = nxt.result()
                except StopAsyncIteration:
                    return
                nxt = None
                out: list[bytes] = []
                for ev in batch:
                    typ, obj, prev, line = cache.get(ev)
                    last = ev.revision
                    if plain:
                        out.append(line)
                        continue
                    kind = _classify(typ, obj, prev, match)
                    if kind:
                        out.append(enc.line(kind, obj))
                if out:
                    await stream_chunk(send, b"".join(out))
        finally:
            if nxt is not None:
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
            with contextlib.suppress(RuntimeError):
                await stream.aclose()
    except errors.Gone as e:
        await _send_error(send, e)
    except (WatcherOverflow, StoreClosed):
        return


def _bookmark(t: Target, rev: int) -> bytes:
    obj = {
        "kind": t.info.kind,
        "apiVersion": t.info.group_version,
        "metadata": {"resourceVersion": str(rev), "creationTimestamp": None},
    }
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def _send_error(send: Send, err: errors.APIError) -> None:
    await stream_chunk(send, orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n")
