"""ReplicaSet / ReplicationController controller, and the shared controller helpers.

The pure helpers (hash, deletion ranking, availability, expectations, slow start) are
tested directly; the controller runs against a real in-process API server on SQLite
with a tiny fake kubelet that binds pods and reports them Running/Ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api import errors
from kubelite.apiserver.app import App
from kubelite.apiserver.server import ServerConfig, build_context
from kubelite.client.base import Client, Resource
from kubelite.client.inprocess import ASGITransport
from kubelite.controllers.manager import ControllerManager
from kubelite.controllers.replicaset import calculate_status
from kubelite.machinery import controller_utils as cu
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller
from kubelite.store import open_store

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
RS = Resource("apps", "v1", "replicasets")
RC = Resource("", "v1", "replicationcontrollers")
EVENTS = Resource("", "v1", "events")
UNREADY_IMAGE = "never-ready"


def _ts(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(name: str, **kw: Any) -> Obj:
    now = kw.pop("now", 1_000_000.0)
    pod: Obj = {
        "metadata": {
            "name": name,
            "uid": kw.pop("uid", name),
            "creationTimestamp": _ts(kw.pop("created", now)),
        },
        "spec": {"nodeName": kw.pop("node", f"node-of-{name}")},
        "status": {"phase": kw.pop("phase", "Running")},
    }
    ready_since = kw.pop("ready_since", None)
    if ready_since is not None:
        pod["status"]["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": _ts(ready_since)}
        ]
    if "cost" in kw:
        pod["metadata"]["annotations"] = {cu.POD_DELETION_COST: str(kw.pop("cost"))}
    if "restarts" in kw:
        pod["status"]["containerStatuses"] = [{"restartCount": kw.pop("restarts")}]
    assert not kw
    return pod


# ---------------------------------------------------------------------------- pure helpers


def test_safe_encode_uses_kubernetes_alphabet() -> None:
    assert cu.safe_encode("0123456789") == "456789bcdf"
    h = cu.compute_hash({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}})
    assert h and set(h) <= set("456789bcdf")


def test_compute_hash_is_stable_and_collision_count_changes_it() -> None:
    t: Obj = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    same = {"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}}
    assert cu.compute_hash(t) == cu.compute_hash(same)
    with_null = {**t, "metadata": {**t["metadata"], "creationTimestamp": None}}
    assert cu.compute_hash(with_null) == cu.compute_hash(t)
    assert cu.compute_hash(t, 0) != cu.compute_hash(t)
    assert cu.compute_hash(t, 1) != cu.compute_hash(t, 0)
    other = {**t, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert cu.compute_hash(other) != cu.compute_hash(t)


def test_fnv32a_reference_values() -> None:
    assert cu.fnv32a(b"") == 0x811C9DC5
    assert cu.fnv32a(b"a") == 0xE40C292C
    assert cu.fnv32a(b"foobar") == 0xBF9CF968


def test_availability_respects_min_ready_seconds() -> None:
    now = 1_000_000.0
    pod = _pod("p", ready_since=now - 5)
    assert cu.is_pod_available(pod, 0, now)
    assert cu.is_pod_available(pod, 4, now)
    assert not cu.is_pod_available(pod, 5, now)  # strictly after minReadySeconds
    assert cu.seconds_until_available(pod, 10, now) == pytest.approx(5)
    assert cu.seconds_until_available(_pod("q"), 0, now) is None


def test_deletion_order_follows_active_pods_with_ranks() -> None:
    now = 1_000_000.0
    unscheduled = _pod("unscheduled", node="", phase="Pending")
    pending = _pod("pending", phase="Pending")
    unready = _pod("unready")
    cheap = _pod("cheap", ready_since=now - 100, cost=-5)
    doubled = _pod("doubled", ready_since=now - 100, node="busy")
    fresh = _pod("fresh", ready_since=now - 3)
    restarted = _pod("restarted", ready_since=now - 100, restarts=4)
    old = _pod("old", ready_since=now - 100, created=now - 10_000)
    young = _pod("young", ready_since=now - 100, created=now - 200)
    pods = [old, young, restarted, fresh, doubled, cheap, unready, pending, unscheduled]
    related = [*pods, _pod("sibling", node="busy")]
    ranks = cu.ranks_by_colocation(pods, related)
    order = [cu.meta(p)["name"] for p in cu.sort_pods_for_deletion(pods, ranks, now)]
    assert order == [
        "unscheduled",
        "pending",
        "unready",
        "cheap",
        "doubled",
        "fresh",
        "restarted",
        "young",
        "old",
    ]
    first3 = cu.sort_pods_for_deletion(pods, ranks, now, limit=3)
    assert [cu.meta(p)["name"] for p in first3] == order[:3]


def test_expectations_block_until_observed_or_expired() -> None:
    clock = [0.0]
    exp = cu.Expectations(timeout=300, clock=lambda: clock[0])
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")
    assert not exp.satisfied("ns/rs")
    clock[0] = 301
    assert exp.satisfied("ns/rs")


@given(count=st.integers(0, 200), fail_at=st.one_of(st.none(), st.integers(0, 200)))
@settings(max_examples=60, deadline=None)
def test_slow_start_batches_double_and_stop_on_failure(count: int, fail_at: int | None) -> None:
    calls = itertools.count()
    batches: list[int] = []

    async def run() -> tuple[int, Exception | None]:
        async def fn() -> None:
            i = next(calls)
            if fail_at is not None and i == fail_at:
                raise RuntimeError("boom")

        orig_gather = asyncio.gather

        async def spy(*aws: Any, **kw: Any) -> Any:
            batches.append(len(aws))
            return await orig_gather(*aws, **kw)

        asyncio.gather = spy  # type: ignore[assignment]
        try:
            return await cu.slow_start_batch(count, 1, fn)
        finally:
            asyncio.gather = orig_gather

    done, err = asyncio.run(run())
    attempted = sum(batches)
    if fail_at is None or fail_at >= count:
        assert (done, err) == (count, None)
    else:
        assert err is not None and done == attempted - 1 and attempted > fail_at
    for i, size in enumerate(batches[:-1]):
        assert size == 2**i  # 1, 2, 4, ... until the remainder
    assert attempted <= count


def test_status_counts_and_replica_failure_condition() -> None:
    now = 1_000_000.0
    rs = {
        "metadata": {"generation": 3},
        "spec": {"replicas": 3, "minReadySeconds": 10, "template": {"metadata": {"labels": {"app": "a"}}}},
        "status": {},
    }
    pods = [_pod("a", ready_since=now - 20), _pod("b", ready_since=now - 1), _pod("c")]
    pods[0]["metadata"]["labels"] = {"app": "a"}
    out = calculate_status(rs, pods, None, 0, now)
    assert out == {
        "replicas": 3,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 3,
    }
    failed = calculate_status(rs, pods[:1], RuntimeError("quota exceeded"), -2, now)
    assert failed["conditions"][0]["type"] == "ReplicaFailure"
    assert failed["conditions"][0]["reason"] == "FailedCreate"
    assert failed["conditions"][0]["message"] == "quota exceeded"
    cleared = calculate_status({**rs, "status": failed}, pods, None, 0, now)
    assert "conditions" not in cleared


# ---------------------------------------------------------------------------- in-process cluster


class FakeKubelet:
    """Binds pending pods round-robin to fake nodes and reports them Running (and Ready,
    except for images named ``never-ready``); finishes graceful deletions."""

    def __init__(self, client: Client, nodes: tuple[str, ...] = ("node-a", "node-b", "node-c")) -> None:
        self.client = client
        self.nodes = itertools.cycle(nodes)
        self.informer = Informer(client, PODS)
        self.ctrl = Controller("fake-kubelet", self._reconcile, workers=4)
        self.informer.add_handler(lambda key, old, new: self.ctrl.queue.add(key))

    async def start(self) -> None:
        self.informer.start()
        await self.informer.wait_synced()
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.informer.stop()

    async def _reconcile(self, key: str) -> float | None:
        pod = self.informer.get(key)
        if pod is None:
            return None
        ns, name = cu.meta(pod)["namespace"], cu.meta(pod)["name"]
        if cu.is_being_deleted(pod):
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(PODS, ns, name, grace_period_seconds=0)
            return None
        if not (pod.get("spec") or {}).get("nodeName"):
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}}
            binding["target"] = {"kind": "Node", "name": next(self.nodes)}
            with contextlib.suppress(errors.APIError):
                await self.client.create(PODS, ns, binding, subresource="binding", name=name)
            return None
        if (pod.get("status") or {}).get("phase") == "Running":
            return None
        images = {c.get("image") for c in pod["spec"].get("containers") or []}
        ready = "False" if UNREADY_IMAGE in images else "True"
        now = _ts(time.time())
        status = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now}],
            "podIP": "10.0.0.1",
        }
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(PODS, ns, name, {"status": status}, subresource="status")
        return None


class Cluster:
    """A real API server in-process, the chosen controllers, and the fake kubelet."""

    def __init__(self, controllers: list[str], kubelet: bool = True) -> None:
        self.controllers = controllers
        self.with_kubelet = kubelet

    async def __aenter__(self) -> Cluster:
        self.data_dir = Path(tempfile.mkdtemp(prefix="kubelite-rs-"))
        cfg = ServerConfig(data_dir=self.data_dir)
        self.store = open_store(cfg.datastore_url)
        await self.store.start()
        ctx, self.crds = await build_context(self.store, cfg, {"tok": "admin"})
        self.client = Client(ASGITransport(App(ctx), "tok"))
        self.manager = ControllerManager(self.client, {}, enabled=self.controllers)
        await self.manager.start()
        self.kubelet = FakeKubelet(self.client)
        if self.with_kubelet:
            await self.kubelet.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.with_kubelet:
            await self.kubelet.stop()
        await self.manager.stop()
        await self.crds.stop()
        await self.store.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    async def wait_for(self, what: str, check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def pods(self, ns: str = "default", selector: str = "") -> list[Obj]:
        items: list[Obj] = (await self.client.list(PODS, ns, label_selector=selector))["items"]
        return [p for p in items if not cu.is_being_deleted(p)]

    async def events(self, ns: str, reason: str) -> list[str]:
        items = (await self.client.list(EVENTS, ns))["items"]
        return [e["message"] for e in items if e.get("reason") == reason]


def replicaset(name: str, replicas: int, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
            **spec,
        },
    }


@contextlib.asynccontextmanager
async def cluster(*controllers: str, kubelet: bool = True) -> AsyncIterator[Cluster]:
    async with Cluster(list(controllers), kubelet) as c:
        yield c


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


# ---------------------------------------------------------------------------- controller


def test_replicaset_creates_pods_with_owner_and_status() -> None:
    async def body() -> None:
        async with cluster("replicaset") as c:
            rs = await c.client.create(RS, "default", replicaset("web", 3, minReadySeconds=0))

            async def ready() -> bool:
                cur = await c.client.get(RS, "default", "web")
                return (cur.get("status") or {}).get("availableReplicas") == 3

            await c.wait_for("3 available", ready)
            cur = await c.client.get(RS, "default", "web")
            assert cur["status"]["replicas"] == 3
            assert cur["status"]["readyReplicas"] == 3
            assert cur["status"]["fullyLabeledReplicas"] == 3
            assert cur["status"]["observedGeneration"] == 1
            pods = await c.pods()
            assert len(pods) == 3
            for p in pods:
                assert p["metadata"]["name"].startswith("web-") and len(p["metadata"]["name"]) == 9
                ref = p["metadata"]["ownerReferences"]
                assert ref == [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "web",
                        "uid": rs["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ]
            await c.manager.controllers[0][1].recorder.flush()  # type: ignore[attr-defined]
            created = await c.events("default", "SuccessfulCreate")
            assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)

    run(body())


def test_replicaset_scales_down_unready_first_and_recreates_deleted() -> None:
    async def body() -> None:
        async with cluster("replicaset") as c:
            await c.client.create(RS, "default", replicaset("web", 4))

            async def available(n: int) -> bool:
                cur = await c.client.get(RS, "default", "web")
                return (cur.get("status") or {}).get("availableReplicas") == n

            await c.wait_for("4 available", lambda: available(4))
            victim = (await c.pods())[0]["metadata"]["name"]
            await c.client.delete(PODS, "default", victim)

            async def four_again() -> bool:
                names = {p["metadata"]["name"] for p in await c.pods()}
                return len(names) == 4 and victim not in names

            await c.wait_for("replacement", four_again)

            async def all_ready(n: int) -> bool:
                pods = await c.pods()
                return len(pods) == n and all(cu.is_pod_ready(p) for p in pods)

            await c.wait_for("4 ready pods", lambda: all_ready(4))
            await c.wait_for("4 available again", lambda: available(4))  # the cache saw them
            # an unready pod goes first on scale-down
            unready = (await c.pods())[1]["metadata"]["name"]
            patch = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
            await c.client.patch(PODS, "default", unready, patch, subresource="status")
            await c.wait_for("3 available", lambda: available(3))
            await c.client.patch(RS, "default", "web", {"spec": {"replicas": 3}})

            async def three() -> bool:
                names = {p["metadata"]["name"] for p in await c.pods()}
                return len(names) == 3

            await c.wait_for("scale down", three)
            assert unready not in {p["metadata"]["name"] for p in await c.pods()}
            await c.manager.controllers[0][1].recorder.flush()  # type: ignore[attr-defined]
            assert f"Deleted pod: {unready}" in await c.events("default", "SuccessfulDelete")

    run(body())


def test_replicaset_adopts_orphans_and_releases_non_matching() -> None:
    async def body() -> None:
        async with cluster("replicaset", kubelet=False) as c:
            orphan = {
                "metadata": {"name": "orphan", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }
            await c.client.create(PODS, "default", orphan)
            rs = await c.client.create(RS, "default", replicaset("web", 2))

            async def owned() -> bool:
                pods = await c.pods()
                refs = [cu.controller_ref(p) for p in pods]
                return len(pods) == 2 and all(r and r["uid"] == rs["metadata"]["uid"] for r in refs)

            await c.wait_for("adoption", owned)
            assert "orphan" in {p["metadata"]["name"] for p in await c.pods()}
            await c.client.patch(PODS, "default", "orphan", {"metadata": {"labels": {"app": "other"}}})

            async def released() -> bool:
                pod = await c.client.get(PODS, "default", "orphan")
                return cu.controller_ref(pod) is None and len(await c.pods(selector="app=web")) == 2

            await c.wait_for("release and replacement", released)

    run(body())


def test_replication_controller_uses_map_selector_and_its_kind() -> None:
    async def body() -> None:
        async with cluster("replicationcontroller") as c:
            rc = {
                "apiVersion": "v1",
                "kind": "ReplicationController",
                "metadata": {"name": "legacy"},
                "spec": {
                    "replicas": 2,
                    "selector": {"app": "legacy"},
                    "template": {
                        "metadata": {"labels": {"app": "legacy"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                    },
                },
            }
            await c.client.create(RC, "default", rc)

            async def ready() -> bool:
                cur = await c.client.get(RC, "default", "legacy")
                return (cur.get("status") or {}).get("readyReplicas") == 2

            await c.wait_for("rc ready", ready)
            for p in await c.pods():
                ref = cu.controller_ref(p)
                assert (
                    ref is not None and ref["kind"] == "ReplicationController" and ref["apiVersion"] == "v1"
                )

    run(body())


def test_min_ready_seconds_delays_availability() -> None:
    async def body() -> None:
        async with cluster("replicaset") as c:
            await c.client.create(RS, "default", replicaset("slow", 1, minReadySeconds=2))

            async def status() -> Obj:
                return (await c.client.get(RS, "default", "slow")).get("status") or {}

            await c.wait_for("ready", lambda: _eq(status(), "readyReplicas", 1))
            assert (await status()).get("availableReplicas") is None
            await c.wait_for(
                "available after minReadySeconds", lambda: _eq(status(), "availableReplicas", 1), 6
            )

    run(body())


async def _eq(status: Awaitable[Obj], key: str, value: int) -> bool:
    return (await status).get(key) == value


def test_event_spam_filter_allows_a_burst_of_25_per_object_then_one_per_5_minutes() -> None:
    class Sink:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
            self.seen.append(message)

        async def flush(self) -> None:
            return None

    clock = [0.0]
    sink = Sink()
    rec = cu.SpamFilteredRecorder(sink, clock=lambda: clock[0])
    rs = {"kind": "ReplicaSet", "metadata": {"uid": "u1", "name": "web"}}
    other = {"kind": "ReplicaSet", "metadata": {"uid": "u2", "name": "api"}}
    for i in range(100):
        rec.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {i}")
    rec.event(other, "Normal", "SuccessfulCreate", "Created pod: api-1")
    assert len(sink.seen) == 26 and sink.seen[-1] == "Created pod: api-1"
    clock[0] = 299
    rec.event(rs, "Normal", "SuccessfulCreate", "late")
    assert sink.seen[-1] != "late"
    clock[0] = 600
    rec.event(rs, "Normal", "SuccessfulCreate", "refilled")
    assert sink.seen[-1] == "refilled"
