"""The revisioned key-value contract every backend implements (kine's subset of etcd).

One global, strictly increasing revision numbers every write; it is what the API
calls ``resourceVersion``.  Values are opaque bytes.  Every write returns the new
revision.  Watchers never block writers: one that falls too far behind is closed
with :class:`WatcherOverflow` and must re-list.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """Base of store errors; the API layer maps them to Status errors."""


class KeyExistsError(StoreError):
    """create() of a key that exists (and is not deleted)."""


class KeyNotFoundError(StoreError):
    """update()/delete() of a key that does not exist."""


class RevisionMismatchError(StoreError):
    """compare-and-swap failed: the key's mod revision is not the expected one."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"revision mismatch on {key}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    """A read or watch asked for a revision older than the compacted revision."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (compact revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StoreError):
    """A read asked for a revision newer than the current one."""


class WatcherOverflow(StoreError):
    """The watcher fell too far behind and was closed; the client must re-list."""


class StoreClosed(StoreError):
    """The store was closed."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"  # create or update (create when kv.create_revision == kv.mod_revision)
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kv: KeyValue  # for DELETE: key, the last value, mod_revision = the delete's revision
    prev: KeyValue | None  # the value before this event, None for a create

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.prev is None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]  # sorted by key
    revision: int  # the revision the list was read at
    more: bool  # True when ``limit`` cut the result short
    remaining: int  # how many matching keys follow the returned ones (0 if not more)


class Watcher(Protocol):
    """An async iterator of events in revision order.

    Iteration ends when ``close()`` is called; it raises :class:`WatcherOverflow`
    when the watcher fell too far behind, and :class:`StoreClosed` on shutdown.
    """

    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    async def next_batch(self) -> list[Event]:
        """The next batch; an empty one when ``poke()`` woke the consumer (e.g. for a bookmark).
        Raises StopAsyncIteration once closed."""
        ...

    def pending(self) -> bool:
        """True when ``next_batch()`` would return without waiting."""
        ...

    def poke(self) -> None: ...

    def close(self) -> None: ...


_Events = list[Event]  # Store has a method named ``list``


class Store(Protocol):
    """Revisioned KV contract.  ``prefix`` arguments match keys that start with the string."""

    @property
    def revision(self) -> int:
        """The newest committed (and announced) revision."""
        ...

    @property
    def compact_revision(self) -> int: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        """The value of ``key`` at ``revision`` (0 = newest), None if absent/deleted."""
        ...

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        """Keys under ``prefix`` at ``revision`` (0 = newest), sorted, strictly after
        ``start_after`` when given, at most ``limit`` (0 = all)."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> int:
        """Insert; raises KeyExistsError.  Returns the new revision."""
        ...

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        """Compare-and-swap on mod revision.  Raises KeyNotFoundError or
        RevisionMismatchError (carrying the current value).  Returns the new kv."""
        ...

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        """Delete (CAS when expected_mod_revision != 0).  Returns the deleted kv with
        mod_revision set to the delete's revision.  Raises KeyNotFoundError or
        RevisionMismatchError."""
        ...

    def watch(self, prefix: str, from_revision: int) -> Watcher:
        """Events for keys under ``prefix`` with revision > ``from_revision``.

        Raises CompactedError when ``from_revision`` < compact_revision (history gone).
        """
        ...

    async def compact(self, revision: int) -> int:
        """Drop history superseded at or before ``revision``; returns the compact revision."""
        ...

    def listen(self, prefix: str, callback: Callable[[_Events], None]) -> Callable[[], None]:
        """Call ``callback(events)`` synchronously with every committed batch's events under
        ``prefix``, before the revision is visible to readers; returns the unsubscribe
        function.  For caches that must be exactly as fresh as a read."""
        ...
