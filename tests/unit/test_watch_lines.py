"""Plain watch streams send each event as a line built from the stored bytes (issue 3).

``EncodedEventCache.line`` must give the JSON a watcher would get from decoding the stored
object and encoding ``{"type": ..., "object": ...}`` (kube-apiserver's watch event), for
creates, updates and deletes, with the object's resourceVersion set to the event's revision.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubelite.apiserver.objects import encode
from kubelite.apiserver.watchcast import EncodedEventCache
from kubelite.store.types import Event, EventType, KeyValue


def _kv(obj: dict[str, Any], rev: int, created: int = 1) -> KeyValue:
    return KeyValue("/registry/pods/default/p", encode(obj), created, rev)


def _pod(phase: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "args": ["{", "[", '"metadata":{']}]},
        "status": {"phase": phase},
    }


def _events() -> list[Event]:
    first, second = _kv(_pod("Pending"), 1), _kv(_pod("Running"), 2)
    return [
        Event(EventType.PUT, first, None),
        Event(EventType.PUT, second, first),
        Event(EventType.DELETE, KeyValue(second.key, second.value, 1, 3), second),
    ]


def test_line_is_the_decoded_event_encoded() -> None:
    cache = EncodedEventCache()
    for ev, typ, rv in zip(_events(), ("ADDED", "MODIFIED", "DELETED"), ("1", "2", "3"), strict=True):
        line = cache.line(ev)
        assert line.endswith(b"\n")
        got = orjson.loads(line)
        assert got["type"] == typ
        assert got["object"]["metadata"]["resourceVersion"] == rv
        want_typ, obj, _, _ = EncodedEventCache().get(ev)
        assert want_typ == typ
        assert got == {"type": typ, "object": obj}


def test_line_is_cached_and_shared_with_get() -> None:
    cache = EncodedEventCache()
    ev = _events()[1]
    assert cache.line(ev) is cache.line(ev)
    assert cache.get(ev)[3] is cache.line(ev)


def test_line_cache_is_bounded() -> None:
    cache = EncodedEventCache(size=2)
    evs = [Event(EventType.PUT, _kv(_pod("Pending"), rev), None) for rev in range(1, 6)]
    for ev in evs:
        cache.line(ev)
    assert len(cache._lines) == 2
