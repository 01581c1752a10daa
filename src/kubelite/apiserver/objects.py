"""Objects over the revisioned store: keys, resourceVersion, CAS retries, paging, watch.

This is the generic storage every resource shares (kube-apiserver's ``genericregistry.Store``
plus its etcd3 storage layer).  Objects are stored without ``resourceVersion``; it is the
store's mod revision and is put back on every read.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.registry.resources import ResourceInfo
from kubelite.store.types import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    Store,
    Watcher,
)

Obj = dict[str, Any]
MAX_CAS_RETRIES = 16


def object_key(info: ResourceInfo, namespace: str, name: str) -> str:
    if info.namespaced:
        return f"{info.storage_prefix}{namespace}/{name}"
    return f"{info.storage_prefix}{name}"


def collection_prefix(info: ResourceInfo, namespace: str) -> str:
    if info.namespaced and namespace:
        return f"{info.storage_prefix}{namespace}/"
    return info.storage_prefix


def decode(kv: KeyValue) -> Obj:
    obj: Obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode(obj: Obj) -> bytes:
    meta = obj.get("metadata") or {}
    rv = meta.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            meta["resourceVersion"] = rv


_META_KEY = b'"metadata":{'


def encode_with_revision(kv: KeyValue) -> bytes:
    """``orjson.dumps(decode(kv))`` without decoding: the stored JSON with
    ``"resourceVersion"`` put first into the top-level ``metadata`` (byte splicing).

    ``"metadata":{`` can only match a real key (inside a JSON string the quotes would be
    escaped); it is the top-level one when nothing before it opens an object or array.
    Anything else (metadata not an object, nested first) takes the decoding path.
    """
    value = kv.value
    at = value.find(_META_KEY)
    if at < 0 or value.count(b"{", 0, at) != 1 or b"[" in value[:at]:
        return orjson.dumps(decode(kv))
    cut = at + len(_META_KEY)
    rv = b'"resourceVersion":"%d"' % kv.mod_revision
    return value[:cut] + rv + (b"" if value[cut : cut + 1] == b"}" else b",") + value[cut:]


class Page:
    """One LIST result.  ``items`` are decoded lazily: a plain JSON list goes out as the
    stored bytes (:meth:`encoded_items`) and never pays for decoding and re-encoding."""

    def __init__(
        self,
        items: list[Obj] | None,
        revision: int,
        continue_token: str,
        remaining: int,
        *,
        raw: list[KeyValue] | None = None,
    ) -> None:
        self._items = items
        self._raw = raw if raw is not None else []
        self.revision = revision
        self.continue_token = continue_token
        self.remaining = remaining

    @property
    def items(self) -> list[Obj]:
        if self._items is None:
            self._items = [decode(kv) for kv in self._raw]
        return self._items

    def encoded_items(self) -> bytes:
        """The items as comma-separated JSON objects (what goes between ``[`` and ``]``)."""
        if self._items is not None:
            return b",".join(orjson.dumps(o) for o in self._items)
        return b",".join(encode_with_revision(kv) for kv in self._raw)


def encode_continue(revision: int, last_key: str, prefix: str) -> str:
    body = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key[len(prefix) :]})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        rv = int(data["rv"])
        start = str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
        raise errors.BadRequest(f"continue key is not valid: {e}") from e
    if rv <= 0 or ".." in start or start.startswith("/"):
        raise errors.BadRequest("continue key is not valid: invalid start key")
    return rv, prefix + start


Filter = Callable[[Obj], bool]
EventBatch = list[Event]


class _ListenedCache:
    """Latest values of keys, exactly as fresh as a store read.

    Kept current by a store listener, which the store calls with each committed batch before
    the new revision becomes readable (both on the event loop), so a cached value is what
    ``store.get`` would return at that moment.  A read that misses goes to the store; its
    answer is kept only if no write of the key landed while it was in flight.  Subclasses say
    which keys are kept (``_put``) and which writes refresh them (``_on_events``).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._reading: dict[str, bool] = {}  # key -> written meanwhile

    def _listen(self, prefix: str) -> bool:
        """Register ``_on_events`` for ``prefix``; False for a store that cannot notify."""
        listen = getattr(self.store, "listen", None)
        if listen is None:
            return False
        listen(prefix, self._on_events)
        return True

    async def _read(self, key: str) -> KeyValue | None:
        self._reading[key] = False
        try:
            kv = await self.store.get(key)
        finally:
            changed = self._reading.pop(key)
        if not changed:  # no write of the key landed while the read was in flight
            self._put(key, kv)
        return kv

    def _written(self, key: str) -> None:
        """Note a committed write of ``key`` for a read in flight."""
        if key in self._reading:
            self._reading[key] = True

    def _put(self, key: str, kv: KeyValue | None) -> None:
        raise NotImplementedError

    def _on_events(self, events: list[Event]) -> None:
        raise NotImplementedError


class _KeyCache(_ListenedCache):
    """Latest values of the keys read so far (at most 10,000; all dropped when full), one
    listener per key prefix.  (kube-apiserver's NamespaceLifecycle admission reads namespaces
    from an informer cache for the same reason: every namespaced create needs its namespace.)
    """

    MAX_KEYS = 10_000

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._values: dict[str, KeyValue | None] = {}
        self._prefixes: set[str] = set()

    async def get(self, key: str, prefix: str) -> KeyValue | None:
        if key in self._values:
            return self._values[key]
        if prefix not in self._prefixes:
            if not self._listen(prefix):
                return await self.store.get(key)
            self._prefixes.add(prefix)
        return await self._read(key)

    def _put(self, key: str, kv: KeyValue | None) -> None:
        if len(self._values) >= self.MAX_KEYS:
            self._values.clear()
        self._values[key] = kv

    def _on_events(self, events: list[Event]) -> None:
        for ev in events:
            key = ev.kv.key
            if key in self._values:
                self._values[key] = None if ev.type is EventType.DELETE else ev.kv
            else:
                self._written(key)


class _RecentCache(_ListenedCache):
    """The latest value of the most recently written or read keys: every committed write
    enters the cache, not only keys read before.

    kube-apiserver's ``GuaranteedUpdate`` starts from the watch cache's copy of the object
    instead of reading etcd (``cachedExistingObject``); this is the same saving (no SQLite
    read, which also hands the GIL to the store threads and back, per update), without its
    staleness: a compare-and-swap that loses a race meets the winner's value here already.
    Bounded: the least recently used keys go first (8,192 keys: the Leases of 5,000 nodes
    renewing every 10 s stay in, and pods going through create, bind and status writes; at
    most ~30 MB of 3-4 KB pods).
    """

    MAX_KEYS = 8192

    def __init__(self, store: Store, max_keys: int = MAX_KEYS) -> None:
        super().__init__(store)
        self.max_keys = max_keys
        # an OrderedDict, not a dict: evicting the oldest key of a plain dict scans the
        # tombstones earlier evictions left at its front (~10x the cost at 8,192 keys)
        self._values: OrderedDict[str, KeyValue | None] = OrderedDict()
        self._listening = False

    async def get(self, key: str) -> KeyValue | None:
        values = self._values
        if key in values:
            values.move_to_end(key)  # the most recently used
            return values[key]
        if not self._listening:
            if not self._listen(""):
                return await self.store.get(key)
            self._listening = True
        return await self._read(key)

    def _put(self, key: str, kv: KeyValue | None) -> None:
        values = self._values
        if key in values:
            values.move_to_end(key)
        values[key] = kv
        if len(values) > self.max_keys:
            values.popitem(last=False)

    def _on_events(self, events: list[Event]) -> None:
        for ev in events:
            key = ev.kv.key
            self._put(key, None if ev.type is EventType.DELETE else ev.kv)
            self._written(key)


class ObjectStore:
    """Typed access to objects of any resource in one revisioned store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._namespaces = _KeyCache(store)
        self._recent = _RecentCache(store)

    @property
    def revision(self) -> int:
        return self.store.revision

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        kv = await self.get_kv(info, namespace, name)
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return decode(kv)

    async def get_kv(self, info: ResourceInfo, namespace: str, name: str) -> KeyValue | None:
        key = object_key(info, namespace, name)
        if info.kind == "Namespace" and not info.group:  # read on every namespaced create
            return await self._namespaces.get(key, info.storage_prefix)
        return await self._recent.get(key)

    async def create(self, info: ResourceInfo, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = object_key(info, meta.get("namespace", ""), meta["name"])
        try:
            rev = await self.store.create(key, encode(obj))
        except KeyExistsError as e:
            raise errors.already_exists(info.plural, info.group, meta["name"]) from e
        meta["resourceVersion"] = str(rev)
        return obj

    async def guaranteed_update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        dry_run: bool = False,
    ) -> tuple[Obj, Obj]:
        """Read, ``mutate(current) -> new`` (None = delete), compare-and-swap; retry on races.

        ``mutate`` raises API errors (e.g. Conflict for a stale resourceVersion precondition).
        Returns (old, new).  An unchanged object is not written (its resourceVersion stays).
        """
        old, new = await self._guaranteed(info, namespace, name, mutate, dry_run, keep_old=True)
        assert old is not None
        return old, new

    async def update_object(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        dry_run: bool = False,
    ) -> Obj:
        """:meth:`guaranteed_update` for callers that only answer with the result (update,
        patch, status): the object as it was is not decoded a second time."""
        return (await self._guaranteed(info, namespace, name, mutate, dry_run, keep_old=False))[1]

    async def _guaranteed(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        dry_run: bool,
        keep_old: bool,
    ) -> tuple[Obj | None, Obj]:
        key = object_key(info, namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = await self._recent.get(key)
            if kv is None:
                raise errors.not_found(info.plural, info.group, name)
            old = decode(kv) if keep_old else None
            new = mutate(decode(kv))
            if new is None:
                old = old if old is not None else decode(kv)
                if dry_run:
                    return old, old
                try:
                    await self.store.delete(key, kv.mod_revision)
                except RevisionMismatchError:
                    continue
                except KeyNotFoundError as e:
                    raise errors.not_found(info.plural, info.group, name) from e
                return old, old
            new.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
            data = encode(new)
            if data == kv.value or dry_run:
                return old, new
            try:
                nkv = await self.store.update(key, data, kv.mod_revision)
            except RevisionMismatchError:
                continue
            except KeyNotFoundError as e:
                raise errors.not_found(info.plural, info.group, name) from e
            new["metadata"]["resourceVersion"] = str(nkv.mod_revision)
            return old, new
        raise errors.conflict(info.plural, info.group, name, "too many concurrent updates, try again")

    async def delete(self, info: ResourceInfo, namespace: str, name: str, expected: int) -> Obj:
        key = object_key(info, namespace, name)
        try:
            kv = await self.store.delete(key, expected)
        except KeyNotFoundError as e:
            raise errors.not_found(info.plural, info.group, name) from e
        except RevisionMismatchError as e:
            raise errors.conflict(
                info.plural,
                info.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ) from e
        return decode(kv)

    async def list(
        self,
        info: ResourceInfo,
        namespace: str,
        *,
        match: Filter | None = None,
        limit: int = 0,
        continue_token: str = "",
        revision: int = 0,
    ) -> Page:
        prefix = collection_prefix(info, namespace)
        start_after = ""
        if continue_token:
            revision, start_after = decode_continue(continue_token, prefix)
        kvs: list[KeyValue] = []
        objs: list[Obj] = []  # decoded only when a filter needs them
        page_limit = limit if limit > 0 else 0
        while True:
            try:
                res = await self.store.list(
                    prefix, revision=revision, limit=page_limit, start_after=start_after
                )
            except CompactedError as e:
                if continue_token:
                    raise errors.Gone(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter."
                    ) from e
                raise errors.gone(f"too old resource version: {revision} ({e.compacted})") from e
            except FutureRevisionError as e:
                raise errors.ServiceUnavailable(
                    f"Too large resource version: {revision}, current: {self.store.revision}"
                ) from e
            revision = res.revision
            for i, kv in enumerate(res.items):
                if match is not None:
                    obj = decode(kv)
                    if not match(obj):
                        continue
                    objs.append(obj)
                kvs.append(kv)
                if limit and len(kvs) >= limit:
                    more = res.more or i < len(res.items) - 1
                    token = encode_continue(revision, kv.key, prefix) if more else ""
                    remaining = 0
                    if more and match is None:
                        remaining = res.remaining + (len(res.items) - i - 1)
                    return Page(objs if match is not None else None, revision, token, remaining, raw=kvs)
            if not res.more or not res.items:
                return Page(objs if match is not None else None, revision, "", 0, raw=kvs)
            start_after = res.items[-1].key
            page_limit = max(page_limit, 2 * (limit - len(kvs)), 100)

    def open_watch(self, info: ResourceInfo, namespace: str, from_revision: int) -> Watcher:
        """The store watcher of a collection (410 Gone when ``from_revision`` is compacted);
        the caller closes it."""
        try:
            return self.store.watch(collection_prefix(info, namespace), from_revision)
        except CompactedError as e:
            raise errors.gone(f"too old resource version: {from_revision} ({e.compacted})") from e

    async def watch_events(
        self, info: ResourceInfo, namespace: str, from_revision: int
    ) -> AsyncGenerator[EventBatch, None]:
        watcher = self.open_watch(info, namespace, from_revision)
        try:
            async for batch in watcher:
                yield batch
        finally:
            watcher.close()


def event_object(ev: Event) -> tuple[str, Obj, Obj | None]:
    """(ADDED|MODIFIED|DELETED, object, previous object)."""
    obj = decode(ev.kv)
    prev = decode(ev.prev) if ev.prev is not None else None
    if ev.type is EventType.DELETE:
        return "DELETED", obj, prev
    return ("ADDED" if prev is None else "MODIFIED"), obj, prev
