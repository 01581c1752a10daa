"""Informer cache indexes: kept in step with every add, update and delete."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.client.base import Resource
from kubelite.machinery.informer import Informer

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")


def _pod(name: str, node: str | None, ns: str = "default") -> Obj:
    spec = {"nodeName": node} if node else {}
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def _by_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def _informer() -> Informer:
    inf = Informer(None, PODS)  # type: ignore[arg-type]
    inf.add_indexer("node", _by_node)
    return inf


def test_by_index_follows_updates_and_deletes() -> None:
    inf = _informer()
    inf._set("default/a", _pod("a", None))
    inf._set("default/b", _pod("b", "n1"))
    inf._set("default/a", _pod("a", "n1"))
    assert [p["metadata"]["name"] for p in inf.by_index("node", "n1")] == ["b", "a"]  # entry order
    inf._set("default/b", _pod("b", "n2"))
    assert [p["metadata"]["name"] for p in inf.by_index("node", "n1")] == ["a"]
    inf._set("default/a", None)
    assert inf.by_index("node", "n1") == [] and inf.by_index("node", "missing") == []
    assert "n1" not in inf.indexes["node"]  # no empty bucket left behind


def test_by_index_returns_the_current_object_when_the_index_value_did_not_move() -> None:
    inf = _informer()
    inf._set("default/a", _pod("a", "n1"))
    newer = {**_pod("a", "n1"), "status": {"phase": "Running"}}
    inf._set("default/a", newer)
    assert inf.by_index("node", "n1") == [newer]


def test_indexer_added_late_indexes_what_is_cached() -> None:
    inf = Informer(None, PODS)  # type: ignore[arg-type]
    inf._set("default/a", _pod("a", "n1"))
    inf.add_indexer("node", _by_node)
    assert inf.by_index("node", "n1") == [inf.get("default/a")]


NAMES = st.sampled_from(["a", "b", "c", "d"])
NODES = st.sampled_from([None, "n1", "n2"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, st.one_of(st.none(), st.tuples(NODES, st.booleans())))))
def test_index_always_equals_a_rebuild(ops: list[tuple[str, Any]]) -> None:
    inf = _informer()
    for name, spec in ops:
        key = f"default/{name}"
        inf._set(key, None if spec is None else {**_pod(name, spec[0]), "flip": spec[1]})
    fresh = _informer()
    for key, obj in inf.cache.items():
        fresh._set(key, obj)
    for node in ("n1", "n2"):
        assert sorted(map(id, inf.by_index("node", node))) == sorted(map(id, fresh.by_index("node", node)))
    assert set(inf.indexes["node"]) == set(fresh.indexes["node"])


def test_handler_added_late_hears_of_every_cached_object_first() -> None:
    """client-go's AddEventHandler on a running (shared) informer: synthetic adds first."""
    inf = _informer()
    inf._set("default/a", _pod("a", "n1"))
    inf._set("default/b", _pod("b", None))
    seen: list[tuple[str, Any, Any]] = []
    inf.add_handler(lambda key, old, new: seen.append((key, old, new)))
    assert seen == [("default/a", None, inf.get("default/a")), ("default/b", None, inf.get("default/b"))]
    inf._set("default/a", None)
    assert seen[-1][0] == "default/a" and seen[-1][2] is None
