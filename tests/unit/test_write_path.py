"""The API server's write-path shortcuts keep kube-apiserver's observable behaviour:

* ObjectStore's cache of recent values is exactly as fresh as a store read (updates,
  deletes, eviction, a write landing during a cache fill, concurrent compare-and-swap);
* a patch result is checked only where the patch changed it, with the same outcome as
  checking the whole object (type errors, unknown fields per fieldValidation);
* ``ServerContext.now`` (cached per second) follows the clock;
* a status patch and a Lease renewal through the API behave as before (resourceVersion,
  managedFields, 400s).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api import errors
from kubelite.apiserver import rest
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.objects import ObjectStore, _RecentCache, decode, object_key
from kubelite.client.base import Client, Resource
from kubelite.registry.resources import builtin_index
from kubelite.store.sqlite import SqliteStore
from kubelite.store.types import KeyValue
from tests.unit.lifecycle_api import api_server

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
INDEX = builtin_index()
POD_INFO = INDEX.get("", "v1", "pods")
CM_INFO = INDEX.get("", "v1", "configmaps")
assert POD_INFO is not None and CM_INFO is not None


# ------------------------------------------------------------------ the recent-values cache


async def test_recent_cache_follows_updates_and_deletes() -> None:
    store = SqliteStore.temporary()
    await store.start()
    try:
        objects = ObjectStore(store)
        await objects.create(CM_INFO, {"metadata": {"name": "a", "namespace": "ns"}, "data": {"v": "1"}})
        assert (await objects.get(CM_INFO, "ns", "a"))["data"] == {"v": "1"}

        def bump(cur: Obj) -> Obj:
            cur["data"]["v"] = str(int(cur["data"]["v"]) + 1)
            return cur

        out = await objects.update_object(CM_INFO, "ns", "a", bump)
        got = await objects.get(CM_INFO, "ns", "a")
        assert got == out and got["data"] == {"v": "2"}
        assert got["metadata"]["resourceVersion"] == str(store.revision)
        # a write straight to the store (another path) is seen too
        kv = await store.get(object_key(CM_INFO, "ns", "a"))
        assert kv is not None
        await store.update(
            kv.key, b'{"metadata":{"name":"a","namespace":"ns"},"data":{"v":"9"}}', kv.mod_revision
        )
        assert (await objects.get(CM_INFO, "ns", "a"))["data"] == {"v": "9"}
        old, new = await objects.guaranteed_update(CM_INFO, "ns", "a", lambda cur: None)
        assert old is new and old["data"] == {"v": "9"}
        with pytest.raises(errors.NotFound):
            await objects.get(CM_INFO, "ns", "a")
    finally:
        await store.close()


async def test_concurrent_compare_and_swap_loses_no_update() -> None:
    store = SqliteStore.temporary()
    await store.start()
    try:
        objects = ObjectStore(store)
        await objects.create(CM_INFO, {"metadata": {"name": "n", "namespace": "ns"}, "data": {"v": "0"}})

        def bump(cur: Obj) -> Obj:
            cur["data"]["v"] = str(int(cur["data"]["v"]) + 1)
            return cur

        await asyncio.gather(*(objects.update_object(CM_INFO, "ns", "n", bump) for _ in range(12)))
        assert (await objects.get(CM_INFO, "ns", "n"))["data"] == {"v": "12"}
    finally:
        await store.close()


async def test_recent_cache_keeps_the_most_recently_used_keys() -> None:
    store = SqliteStore.temporary()
    await store.start()
    try:
        cache = _RecentCache(store, max_keys=3)
        for name in "abcd":
            await store.create(f"/k/{name}", name.encode())
        for name in "abc":
            assert (await cache.get(f"/k/{name}")) is not None
        await cache.get("/k/a")  # a is now the most recent: b goes first
        await store.create("/k/e", b"e")  # written keys enter the cache
        assert list(cache._values) == ["/k/c", "/k/a", "/k/e"]
        assert await cache.get("/k/missing") is None  # absent keys are remembered as absent
        await store.create("/k/missing", b"m")
        got = await cache.get("/k/missing")
        assert got is not None and got.value == b"m"
    finally:
        await store.close()


class _SlowStore:
    """A store whose reads yield to the loop, so a write can land during a cache fill."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.reads = 0

    async def get(self, key: str) -> KeyValue | None:
        kv = await self.inner.get(key)
        self.reads += 1
        await asyncio.sleep(0.01)
        return kv

    def listen(self, prefix: str, callback: Any) -> Any:
        return self.inner.listen(prefix, callback)


async def test_a_write_during_a_cache_fill_is_not_hidden() -> None:
    inner = SqliteStore.temporary()
    await inner.start()
    try:
        slow = _SlowStore(inner)
        cache = _RecentCache(slow)  # type: ignore[arg-type]
        await inner.create("/k/x", b"old")
        await cache.get("/k/y")  # starts listening
        read = asyncio.create_task(cache.get("/k/x"))
        await asyncio.sleep(0)
        kv = await inner.get("/k/x")
        assert kv is not None
        await inner.update("/k/x", b"new", kv.mod_revision)
        assert (await read) is not None
        got = await cache.get("/k/x")
        assert got is not None and got.value == b"new"
    finally:
        await inner.close()


# ------------------------------------------------------------------ checking a patch result

STORED_POD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "5", "labels": {"a": "b"}},
    "spec": {
        "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}],
        "restartPolicy": "Always",
    },
    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
}

PATCHED_VALUES = st.sampled_from([1, 1.5, True, "x", None, [], {}, [1], {"k": "v"}, "2026-01-01T00:00:00Z"])
PATCHED_PATHS = st.sampled_from(
    [
        ("spec", "restartPolicy"),
        ("spec", "containers"),
        ("spec", "priority"),
        ("spec", "unknownThing"),
        ("status", "phase"),
        ("status", "startTime"),
        ("status", "hostIP"),
        ("status", "bogus"),
        ("metadata", "labels"),
        ("metadata", "generation"),
        ("extra",),
    ]
)


def _outcome(check: Any, obj: Obj, mode: str) -> tuple[str, Obj, list[str]]:
    warnings: list[str] = []
    try:
        check(obj, mode, warnings)
    except errors.APIError as e:
        return f"{type(e).__name__}: {e}", obj, warnings
    return "ok", obj, warnings


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(st.tuples(PATCHED_PATHS, PATCHED_VALUES), max_size=3),
    mode=st.sampled_from(["Strict", "Warn", "Ignore"]),
)
def test_checking_changed_fields_equals_checking_the_whole_result(
    changes: list[tuple[tuple[str, ...], Any]], mode: str
) -> None:
    patched = copy.deepcopy(STORED_POD)
    for path, value in changes:
        target = patched
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = copy.deepcopy(value)
    full = _outcome(lambda o, m, w: rest.check_body(None, POD_INFO, o, m, []), copy.deepcopy(patched), mode)
    part = _outcome(
        lambda o, m, w: rest.check_patched(None, POD_INFO, o, STORED_POD, m), copy.deepcopy(patched), mode
    )
    assert part[0] == full[0]
    assert part[1] == full[1]  # unknown fields dropped the same way


def test_same_json_tells_types_apart() -> None:
    assert rest._same_json({"a": [1, {"b": "c"}]}, {"a": [1, {"b": "c"}]})
    assert not rest._same_json({"a": 1}, {"a": True})
    assert not rest._same_json({"a": 1}, {"a": 1.0})
    assert not rest._same_json(1, True)
    assert not rest._same_json(rest._ABSENT, None)


# ------------------------------------------------------------------ the clock


def test_now_is_cached_per_second_and_follows_the_clock() -> None:
    t = [dt.datetime(2026, 1, 1, 12, 0, 0, 100, tzinfo=dt.UTC)]
    ctx = ServerContext(
        index=INDEX,
        objects=None,
        discovery=None,
        openapi=None,
        tokens={},
        clock=lambda: t[0],  # type: ignore[arg-type]
    )
    assert ctx.now() == "2026-01-01T12:00:00Z"
    t[0] = t[0].replace(microsecond=999_999)
    assert ctx.now() == "2026-01-01T12:00:00Z"
    t[0] = dt.datetime(2026, 1, 1, 12, 0, 1, tzinfo=dt.UTC)
    assert ctx.now() == "2026-01-01T12:00:01Z"
    t[0] = dt.datetime(2025, 6, 30, 23, 59, 59, tzinfo=dt.UTC)  # a clock set back
    assert ctx.now() == "2025-06-30T23:59:59Z"


# ------------------------------------------------------------------ through the API


def _lease(name: str, renew: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
    }


async def test_lease_renewals_and_status_patches_through_the_api(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c: Client = api.client
        made = await c.create(LEASES, "kube-node-lease", _lease("n1", "2026-01-01T00:00:00.000000Z"))
        path = f"{LEASES.path('kube-node-lease', 'n1')}?fieldValidation=Ignore"
        rv = made["metadata"]["resourceVersion"]
        for i in range(1, 4):  # kubelet renews with the resourceVersion it last saw
            lease = _lease("n1", f"2026-01-01T00:00:0{i}.000000Z")
            lease["metadata"]["resourceVersion"] = rv
            rv = orjson.loads(await c.send("PUT", path, lease))["metadata"]["resourceVersion"]
        got = await c.get(LEASES, "kube-node-lease", "n1")
        assert got["spec"]["renewTime"] == "2026-01-01T00:00:03.000000Z"
        assert int(got["metadata"]["resourceVersion"]) == int(made["metadata"]["resourceVersion"]) + 3
        assert [m["manager"] for m in got["metadata"]["managedFields"]] == ["unit-test"]
        assert got["metadata"]["managedFields"] is not made["metadata"]["managedFields"]

        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
        await c.create(PODS, "default", pod)
        with pytest.raises(errors.BadRequest) as bad:
            await c.patch(PODS, "default", "p", {"status": {"hostIP": 7}}, subresource="status")
        assert "cannot unmarshal number into Go struct field PodStatus.status.hostIP of type string" in str(
            bad.value
        )
        with pytest.raises(errors.BadRequest) as strict:
            await c.send(
                "PATCH",
                f"{PODS.path('default', 'p', 'status')}?fieldValidation=Strict",
                {"status": {"bogus": 1}},
                "application/merge-patch+json",
            )
        assert 'unknown field "status.bogus"' in str(strict.value)
        out = await c.patch(
            PODS, "default", "p", {"status": {"phase": "Running", "bogus": 1}}, subresource="status"
        )
        assert out["status"]["phase"] == "Running" and "bogus" not in out["status"]
        kv = await api.ctx.objects.store.get(object_key(POD_INFO, "default", "p"))
        assert kv is not None
        stored = decode(kv)
        assert "bogus" not in stored["status"]
        status_managers = {
            (m["manager"], m.get("subresource", "")) for m in stored["metadata"]["managedFields"]
        }
        assert ("unit-test", "status") in status_managers


async def test_an_update_that_loses_a_race_is_admitted_again_from_its_body(tmp_path: Path) -> None:
    """PUT without resourceVersion whose compare-and-swap loses to another write: the retry
    starts from the request body again (not from the first attempt's admitted copy)."""
    configmaps = Resource("", "v1", "configmaps")
    async with api_server(tmp_path) as api:
        c: Client = api.client
        await c.create(configmaps, "default", {"metadata": {"name": "cm"}, "data": {"a": "0"}})
        store = api.ctx.objects.store
        real_update = store.update
        raced = []

        async def racing_update(key: str, value: bytes, expected: int) -> KeyValue:
            if not raced:
                raced.append(key)
                other = (
                    b'{"metadata":{"name":"cm","namespace":"default","labels":{"x":"y"}},"data":{"a":"1"}}'
                )
                await real_update(key, other, expected)  # another writer wins the race
            return await real_update(key, value, expected)

        store.update = racing_update  # type: ignore[method-assign]
        out = await c.update(configmaps, "default", {"metadata": {"name": "cm"}, "data": {"a": "put"}})
        store.update = real_update  # type: ignore[method-assign]
        assert raced
        assert out["data"] == {"a": "put"} and "labels" not in out["metadata"]
        got = await c.get(configmaps, "default", "cm")
        assert (
            got["data"] == {"a": "put"}
            and got["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
        )
