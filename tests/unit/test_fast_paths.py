"""The performance shortcuts give exactly what the general code gives.

* ``compare(None, obj)`` (the create walk) equals comparing with ``{}``;
* ``encode_with_revision`` (LIST by byte splicing) equals decoding and re-encoding;
* the namespace cache of ObjectStore is as fresh as a store read;
* ``new_uid`` gives distinct version-4 UUIDs.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api.uid import new_uid
from kubelite.apiserver.apply.typed import (
    Comparison,
    FieldSet,
    _compare,
    _without_managed_fields,
    compare,
    root_shape,
)
from kubelite.apiserver.objects import ObjectStore, decode, encode, encode_with_revision
from kubelite.registry.resources import builtin_index
from kubelite.schema.definitions import schema_for_gvk
from kubelite.store.sqlite import SqliteStore
from kubelite.store.types import KeyValue

KEYS = st.sampled_from(
    ["metadata", "spec", "status", "name", "labels", "containers", "ports", "x", "template", "items"]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)
TRICKY_TEXT = st.sampled_from(['"metadata":{', "{", "[", '\\"', "}", "metadata", ""])


def _slow_compare(new: dict[str, Any], schema: Any) -> Comparison:
    c = Comparison(FieldSet(), FieldSet(), FieldSet())
    _compare({}, _without_managed_fields(new), root_shape(schema), (), c)
    return c


def _same(a: Comparison, b: Comparison) -> bool:
    return (a.added, a.modified, a.removed) == (b.added, b.modified, b.removed)


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"a": "b"}, "managedFields": [{"manager": "x"}]},
    "spec": {
        "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}], "resources": {}}],
        "volumes": [],
    },
    "status": {"phase": "Pending"},
}


def test_create_compare_matches_general_compare_for_a_pod() -> None:
    schema = schema_for_gvk("", "v1", "Pod")
    assert _same(compare(None, POD, schema), _slow_compare(POD, schema))
    assert not compare(None, POD, schema).added.empty()


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(KEYS, JSON, max_size=5), kind=st.sampled_from(["Pod", "Deployment", "ConfigMap"]))
def test_create_compare_matches_general_compare(body: dict[str, Any], kind: str) -> None:
    group = "apps" if kind == "Deployment" else ""
    for schema in (schema_for_gvk(group, "v1", kind), None):
        assert _same(compare(None, body, schema), _slow_compare(body, schema))


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(KEYS, JSON, max_size=5),
    name=TRICKY_TEXT,
    first=st.booleans(),
    rev=st.integers(1, 10**12),
)
def test_encode_with_revision_equals_decode(body: dict[str, Any], name: str, first: bool, rev: int) -> None:
    obj = dict(body)
    meta = obj.get("metadata")
    if first and isinstance(meta, dict):
        obj = {"metadata": {**meta, "name": name}, **{k: v for k, v in obj.items() if k != "metadata"}}
    if not isinstance(obj.get("metadata", {}), dict):
        return  # decode() needs a metadata object; the store never holds anything else
    kv = KeyValue("/registry/x", encode(obj), 1, rev)
    assert orjson.loads(encode_with_revision(kv)) == decode(kv)


def test_encode_with_revision_nested_metadata_first() -> None:
    obj = {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}, "metadata": {"name": "d"}}
    kv = KeyValue("/k", encode(obj), 1, 7)
    out = orjson.loads(encode_with_revision(kv))
    assert out["metadata"]["resourceVersion"] == "7"
    assert "resourceVersion" not in out["spec"]["template"]["metadata"]


def test_namespace_cache_follows_writes() -> None:
    async def run() -> None:
        store = SqliteStore.temporary()
        await store.start()
        try:
            objects = ObjectStore(store)
            ns = builtin_index().get("", "v1", "namespaces")
            assert ns is not None
            assert await objects.get_kv(ns, "", "team") is None  # a miss is cached too
            await objects.create(ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
            got = await objects.get(ns, "", "team")
            assert got["metadata"]["name"] == "team"

            def terminate(cur: dict[str, Any]) -> dict[str, Any]:
                cur["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                return cur

            await objects.guaranteed_update(ns, "", "team", terminate)
            got = await objects.get(ns, "", "team")
            assert got["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
            assert got["metadata"]["resourceVersion"] == str(store.revision)
            await objects.guaranteed_update(ns, "", "team", lambda cur: None)
            assert await objects.get_kv(ns, "", "team") is None
        finally:
            await store.close()

    asyncio.run(run())


def test_new_uid_distinct_version4() -> None:
    uids = [new_uid() for _ in range(2000)]
    assert len(set(uids)) == len(uids)
    for u in uids:  # every one canonical text of a version-4, RFC 4122 UUID
        parsed = uuid.UUID(u)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == u
