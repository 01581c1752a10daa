"""Objects over the revisioned store: keys, resourceVersion, CAS retries, paging, watch.

This is the generic storage every resource shares (kube-apiserver's ``genericregistry.Store``
plus its etcd3 storage layer).  Objects are stored without ``resourceVersion``; it is the
store's mod revision and is put back on every read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
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


@dataclass
class Page:
    items: list[Obj]
    revision: int
    continue_token: str
    remaining: int


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


class ObjectStore:
    """Typed access to objects of any resource in one revisioned store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def revision(self) -> int:
        return self.store.revision

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        kv = await self.store.get(object_key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return decode(kv)

    async def get_kv(self, info: ResourceInfo, namespace: str, name: str) -> KeyValue | None:
        return await self.store.get(object_key(info, namespace, name))

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
        key = object_key(info, namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found(info.plural, info.group, name)
            old = decode(kv)
            new = mutate(decode(kv))
            if new is None:
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
        items: list[Obj] = []
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
            for kv in res.items:
                obj = decode(kv)
                if match is None or match(obj):
                    items.append(obj)
                    if limit and len(items) >= limit:
                        more = res.more or kv is not res.items[-1]
                        token = encode_continue(revision, kv.key, prefix) if more else ""
                        remaining = 0
                        if more and match is None:
                            remaining = res.remaining + (len(res.items) - res.items.index(kv) - 1)
                        return Page(items, revision, token, remaining)
            if not res.more or not res.items:
                return Page(items, revision, "", 0)
            start_after = res.items[-1].key
            page_limit = max(page_limit, 2 * (limit - len(items)), 100)

    async def watch_events(
        self, info: ResourceInfo, namespace: str, from_revision: int
    ) -> AsyncGenerator[EventBatch, None]:
        prefix = collection_prefix(info, namespace)
        try:
            watcher = self.store.watch(prefix, from_revision)
        except CompactedError as e:
            raise errors.gone(f"too old resource version: {from_revision} ({e.compacted})") from e
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
