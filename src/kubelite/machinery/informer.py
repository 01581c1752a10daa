"""Shared informers: a list+watch cache of one resource, with indexes and handlers.

Like client-go's reflector + indexer: list, then watch from the list's resourceVersion;
on 410 Gone (or a closed stream) re-list and re-watch.  Handlers are called with the
object's key only (level-triggered: reconcilers re-read the cache).  Cached objects are
shared: never mutate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource

log = logging.getLogger("kubelite.informer")
Obj = dict[str, Any]
Handler = Callable[[str, Obj | None, Obj | None], None]  # key, old, new (None = absent)
IndexFunc = Callable[[Obj], list[str]]

WATCH_TIMEOUT = 300
RETRY_DELAY = 1.0


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


class Informer:
    def __init__(
        self,
        client: Client,
        resource: Resource,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[str, Obj] = {}
        self.handlers: list[Handler] = []
        self.indexers: dict[str, IndexFunc] = {}
        # index name -> value -> keys (a dict used as an insertion-ordered set)
        self.indexes: dict[str, dict[str, dict[str, None]]] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler`` on every change from now on; like client-go's
        ``AddEventHandler`` a handler added to a running informer (a shared one) is first
        told about every object already cached, as an add."""
        self.handlers.append(handler)
        for key, obj in list(self.cache.items()):
            self._notify(handler, key, None, obj)

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.indexers[name] = fn
        idx = self.indexes.setdefault(name, {})
        for key, obj in self.cache.items():
            for v in fn(obj):
                idx.setdefault(v, {})[key] = None

    def by_index(self, name: str, value: str) -> list[Obj]:
        """The cached objects whose index ``name`` has ``value``, in the order they entered it.

        Like client-go's ``Indexer.ByIndex`` the order means nothing (no sort: a namespace
        index of 10,000 pods is read on hot paths); callers that need one sort themselves.
        """
        keys = self.indexes.get(name, {}).get(value)
        if not keys:
            return []
        cache = self.cache
        return [cache[k] for k in keys]

    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def list(self) -> list[Obj]:
        return list(self.cache.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def wait_synced(self, timeout: float = 30) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    # ------------------------------------------------------------------ internals

    def _set(self, key: str, new: Obj | None) -> None:
        old = self.cache.get(key)
        if new is None:
            self.cache.pop(key, None)
        else:
            self.cache[key] = new
        for name, fn in self.indexers.items():
            before = fn(old) if old is not None else ()
            after = fn(new) if new is not None else ()
            if before != after:  # most updates (status, heartbeats) move no index entry
                self._reindex(self.indexes[name], key, before, after)
        for h in self.handlers:
            self._notify(h, key, old, new)

    def _notify(self, handler: Handler, key: str, old: Obj | None, new: Obj | None) -> None:
        """One handler call; a handler's error is logged, never passed to the informer."""
        try:
            handler(key, old, new)
        except Exception:
            log.exception("informer handler failed resource=%s key=%s", self.resource.plural, key)

    @staticmethod
    def _reindex(idx: dict[str, dict[str, None]], key: str, before: Any, after: Any) -> None:
        for v in before:
            keys = idx.get(v)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del idx[v]  # no empty buckets left behind (uids of deleted objects)
        for v in after:
            idx.setdefault(v, {})[key] = None

    async def _relist(self) -> None:
        items: list[Obj] = []
        cont = ""
        while True:
            page = await self.client.list(
                self.resource,
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                limit=500,
                continue_=cont,
            )
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue", "")
            rv = (page.get("metadata") or {}).get("resourceVersion", "")
            if not cont:
                break
        self.resource_version = rv
        fresh = {object_key(o): o for o in items}
        for key in list(self.cache):
            if key not in fresh:
                self._set(key, None)
        for key, obj in fresh.items():
            self._set(key, obj)
        self.synced.set()

    async def _run(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for ev in self.client.watch(
                    self.resource,
                    self.namespace,
                    resource_version=self.resource_version,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    timeout_seconds=WATCH_TIMEOUT,
                ):
                    rv = (ev.object.get("metadata") or {}).get("resourceVersion", "")
                    if rv:
                        self.resource_version = rv
                    if ev.type == "BOOKMARK":
                        continue
                    key = object_key(ev.object)
                    self._set(key, None if ev.type == "DELETED" else ev.object)
            except asyncio.CancelledError:
                raise
            except errors.Gone:
                need_list = True
            except Exception:
                log.exception("informer watch failed resource=%s; re-listing", self.resource.plural)
                need_list = True
                await asyncio.sleep(RETRY_DELAY)
