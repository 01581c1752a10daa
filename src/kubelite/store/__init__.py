"""The revisioned key-value store (the API's etcd): contract, backends, watch fan-out."""

from __future__ import annotations

from kubelite.store.fanout import DEFAULT_QUEUE_SIZE
from kubelite.store.sqlite import DEFAULT_COMMIT_DELAY_S, SqliteStore
from kubelite.store.types import Store, StoreError

__all__ = ["SqliteStore", "Store", "open_store"]

_SQLITE = "sqlite://"
_MEMORY = "memory://"


def open_store(
    url: str, *, watch_queue_size: int = DEFAULT_QUEUE_SIZE, commit_delay_s: float = DEFAULT_COMMIT_DELAY_S
) -> SqliteStore:
    """A (not yet started) store for ``url``.

    ``sqlite:///abs/path/state.db`` and ``sqlite://relative/path.db`` name a SQLite
    file (everything after ``sqlite://`` is the path); ``memory://`` is a throw-away
    store without fsync, removed on close.  Call ``await store.start()`` before use.
    ``commit_delay_s`` is the SQLite writer's group-commit delay (see SqliteStore).
    """
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        if not path:
            raise StoreError(f"store url {url!r} has no path")
        return SqliteStore(path, watch_queue_size=watch_queue_size, commit_delay_s=commit_delay_s)
    if url.startswith(_MEMORY):
        return SqliteStore.temporary(watch_queue_size=watch_queue_size, commit_delay_s=commit_delay_s)
    raise StoreError(f"unsupported store url {url!r} (want sqlite://PATH or memory://)")
