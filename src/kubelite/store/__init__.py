"""The revisioned key-value store (the API's etcd): contract, backends, watch fan-out."""

from __future__ import annotations

from kubelite.store.fanout import DEFAULT_QUEUE_SIZE
from kubelite.store.sqlite import SqliteStore
from kubelite.store.types import Store, StoreError

__all__ = ["SqliteStore", "Store", "open_store"]

_SQLITE = "sqlite://"
_MEMORY = "memory://"


def open_store(url: str, *, watch_queue_size: int = DEFAULT_QUEUE_SIZE) -> SqliteStore:
    """A (not yet started) store for ``url``.

    ``sqlite:///abs/path/state.db`` and ``sqlite://relative/path.db`` name a SQLite
    file (everything after ``sqlite://`` is the path); ``memory://`` is a throw-away
    store without fsync, removed on close.  Call ``await store.start()`` before use.
    """
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        if not path:
            raise StoreError(f"store url {url!r} has no path")
        return SqliteStore(path, watch_queue_size=watch_queue_size)
    if url.startswith(_MEMORY):
        return SqliteStore.temporary(watch_queue_size=watch_queue_size)
    raise StoreError(f"unsupported store url {url!r} (want sqlite://PATH or memory://)")
