"""The ReplicaSet controller's per-sync hot path at scale.

One pass claims the pods (no coroutine per pod, only the adoptions/releases are awaited),
a compiled selector matches like ``LabelSelector.matches``, status counts come from one
pass, and a hot key's syncs are spaced by the work queue's opt-in ``not_before``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api.selectors import LabelSelector, Operator, Requirement, from_label_selector_dict
from kubelite.client.base import Resource
from kubelite.controllers.replicaset import REPLICASET, ReplicaSetController, count_pods
from kubelite.machinery import controller_utils as cu
from kubelite.machinery.informer import Informer
from kubelite.machinery.ownedpods import Claim, OwnedPods
from kubelite.machinery.workqueue import WorkQueue

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
RS = Resource("apps", "v1", "replicasets")
KEYS = st.sampled_from(["app", "tier", "env"])
VALUES = st.sampled_from(["a", "b", "c"])
LABELS = st.dictionaries(KEYS, VALUES, max_size=3)
OPS = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"])
EXPRESSIONS = st.lists(
    st.builds(
        lambda k, op, vs: {"key": k, "operator": op, "values": vs if op in ("In", "NotIn") else []},
        KEYS,
        OPS,
        st.lists(VALUES, min_size=1, max_size=2),
    ),
    max_size=2,
)


@settings(max_examples=300, deadline=None)
@given(LABELS, EXPRESSIONS, LABELS)
def test_compiled_selector_matches_like_label_selector(
    match_labels: dict[str, str], expressions: list[Obj], labels: dict[str, str]
) -> None:
    sel = from_label_selector_dict({"matchLabels": match_labels, "matchExpressions": expressions})
    assert cu.compile_selector(sel)(labels) == sel.matches(labels)


def test_compiled_selector_edge_cases() -> None:
    assert cu.compile_selector(LabelSelector.match_nothing())({"a": "b"}) is False
    assert cu.compile_selector(LabelSelector.everything())({}) is True
    dup = LabelSelector.of([Requirement("a", Operator.EQUALS, ("x",)), Requirement("a", Operator.IN, ("y",))])
    assert cu.compile_selector(dup)({"a": "x"}) is False


class PatchClient:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Obj]] = []

    async def patch(self, resource: Resource, ns: str, name: str, body: Obj, patch_type: str = "") -> Obj:
        self.patches.append((name, body))
        return {"metadata": {"name": name, "namespace": ns, "adopted": True}}


def _pod(name: str, labels: dict[str, str], owner: str | None, ns: str = "default", **meta: Any) -> Obj:
    m: Obj = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels, **meta}
    if owner is not None:
        m["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    return {"metadata": m}


def test_claim_keeps_order_adopts_and_releases_only_what_needs_a_patch() -> None:
    owner: Obj = {"metadata": {"name": "rs", "namespace": "default", "uid": "rs"}}
    web = {"app": "web"}
    pods = [
        _pod("owned-1", web, "rs"),
        _pod("orphan", web, None),
        _pod("other-owner", web, "someone-else"),
        _pod("stray", {"app": "db"}, "rs"),
        _pod("orphan-other-ns", web, None, ns="kube-system"),
        _pod("orphan-deleting", web, None, deletionTimestamp="2026-01-01T00:00:00Z"),
        _pod("orphan-no-match", {"app": "db"}, None),
        _pod("owned-2", web, "rs"),
    ]
    client = PatchClient()
    asked: list[int] = []

    async def can_adopt() -> bool:
        asked.append(1)
        return True

    ref = cu.new_controller_ref(owner, "apps/v1", "ReplicaSet")
    claimer = cu.Claimer(client, PODS, owner, ref, from_label_selector_dict({"matchLabels": web}), can_adopt)  # type: ignore[arg-type]
    out = asyncio.run(claimer.claim(pods))
    assert [o["metadata"]["name"] for o in out] == ["owned-1", "orphan", "owned-2"]
    assert out[1]["metadata"].get("adopted") is True
    assert [name for name, _ in client.patches] == ["stray", "orphan"]
    assert client.patches[0][1]["metadata"]["ownerReferences"] == [{"$patch": "delete", "uid": "rs"}]
    assert client.patches[1][1]["metadata"]["ownerReferences"] == [ref]
    assert asked == [1]
    assert "controller" in pods[0]["metadata"]["ownerReferences"][0]  # inputs untouched


def test_claim_without_orphans_never_awaits_can_adopt_or_patches() -> None:
    owner: Obj = {"metadata": {"name": "rs", "namespace": "default", "uid": "rs"}}
    pods = [_pod(f"p{i}", {"app": "web"}, "rs") for i in range(100)]
    client = PatchClient()

    async def can_adopt() -> bool:
        raise AssertionError("no adoption needed")

    sel = from_label_selector_dict({"matchLabels": {"app": "web"}})
    claimer = cu.Claimer(client, PODS, owner, {}, sel, can_adopt)  # type: ignore[arg-type]
    assert asyncio.run(claimer.claim(pods)) == pods
    assert client.patches == []


def test_claim_only_active_skips_finished_and_deleting_pods_in_the_same_pass() -> None:
    owner: Obj = {"metadata": {"name": "rs", "namespace": "default", "uid": "rs"}}
    web = {"app": "web"}
    running = _pod("running", web, "rs")
    succeeded = {**_pod("succeeded", web, "rs"), "status": {"phase": "Succeeded"}}
    failed_orphan = {**_pod("failed-orphan", web, None), "status": {"phase": "Failed"}}
    deleting = _pod("deleting", web, "rs", deletionTimestamp="2026-01-01T00:00:00Z")
    client = PatchClient()

    async def can_adopt() -> bool:
        raise AssertionError("finished orphans are not adopted")

    sel = from_label_selector_dict({"matchLabels": web})
    claimer = cu.Claimer(client, PODS, owner, {}, sel, can_adopt)  # type: ignore[arg-type]
    pods = [running, succeeded, failed_orphan, deleting]
    assert asyncio.run(claimer.claim(pods, only_active=True)) == [running]
    assert [cu.is_pod_active(p) for p in pods] == [True, False, False, False]
    assert client.patches == []


def _status_pod(labels: dict[str, str], ready: str | None, since: str = "2026-01-01T00:00:00Z") -> Obj:
    conds = [{"type": "PodScheduled", "status": "True"}]
    if ready is not None:
        conds.append({"type": "Ready", "status": ready, "lastTransitionTime": since})
    return {"metadata": {"labels": labels}, "status": {"phase": "Running", "conditions": conds}}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(LABELS, st.sampled_from([None, "True", "False"]), st.integers(0, 60)), max_size=20),
    LABELS,
    st.integers(0, 30),
)
def test_count_pods_agrees_with_the_per_pod_helpers(
    specs: list[tuple[dict[str, str], str | None, int]], template: dict[str, str], min_ready: int
) -> None:
    now = 1_767_225_600.0 + 30  # 2026-01-01T00:00:30Z
    pods = [_status_pod(lbl, r, f"2026-01-01T00:00:{age:02d}Z") for lbl, r, age in specs]
    labeled = sum(all(p["metadata"]["labels"].get(k) == v for k, v in template.items()) for p in pods)
    ready = sum(cu.is_pod_ready(p) for p in pods)
    available = sum(cu.is_pod_available(p, min_ready, now) for p in pods)
    assert count_pods(pods, template, min_ready, now) == (labeled, ready, available)


def test_not_before_holds_a_key_back_and_coalesces_adds() -> None:
    async def body() -> None:
        q = WorkQueue()
        q.not_before("ns/hot", 0.1)
        q.add("ns/hot")
        q.add("ns/hot")
        q.add("ns/cold")
        assert await asyncio.wait_for(q.get(), 0.05) == "ns/cold"
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await asyncio.wait_for(q.get(), 1.0) == "ns/hot"
        assert loop.time() - t0 >= 0.08
        q.done("ns/hot")
        q.add("ns/hot")  # the wait is over: queued at once
        assert await asyncio.wait_for(q.get(), 0.05) == "ns/hot"
        assert len(q) == 0

    asyncio.run(body())


# ---------------------------------------------------------------------------- OwnedPods

POD_NAMES = st.sampled_from([f"p{i}" for i in range(6)])
OWNERS = st.sampled_from(["rs", "other", None])
PHASES = st.sampled_from(["Pending", "Running", "Succeeded", "Failed"])
POD_EVENTS = st.lists(
    st.tuples(
        POD_NAMES, st.one_of(st.none(), st.tuples(LABELS, OWNERS, PHASES, st.booleans(), st.booleans()))
    ),
    max_size=40,
)
CLAIMS = st.tuples(LABELS, LABELS, st.booleans())


def _event_pod(name: str, spec: tuple[dict[str, str], str | None, str, bool, bool]) -> Obj:
    labels, owner, phase, ready, deleting = spec
    extra: Obj = {"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {}
    pod = _pod(name, labels, owner, **extra)
    pod["status"] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return pod


def _full_claim(cache: Any, owner: Obj, selector: LabelSelector, template: dict[str, str]) -> tuple[Any, ...]:
    """What a full re-scan (FilterActivePods + ClaimPods over the owned index) gives."""
    client = PatchClient()

    async def can_adopt() -> bool:
        return True

    candidates = cache.by_index(cu.OWNER_INDEX, "rs")
    claimer = cu.Claimer(client, PODS, owner, {}, selector, can_adopt)  # type: ignore[arg-type]
    pods = asyncio.run(claimer.claim(candidates, only_active=True))
    labeled, ready, _ = count_pods(pods, template, 0, 0.0)
    return sorted(cu.key_of(p) for p in pods), sorted(name for name, _ in client.patches), labeled, ready


@settings(max_examples=300, deadline=None)
@given(
    st.lists(CLAIMS, min_size=1, max_size=2),
    st.lists(st.tuples(POD_EVENTS, st.integers(0, 9)), min_size=1, max_size=6),
)
def test_owned_pods_agree_with_a_full_rescan(claims: list[Any], rounds: list[tuple[list[Any], int]]) -> None:
    """Whatever the pod events and owner changes, the tally after each sync is what a
    full claim over the owned pods would return (claimed keys, releases, counts)."""
    cache = Informer(None, PODS)  # type: ignore[arg-type]
    cu.add_workload_indexes(cache)
    owned_pods = OwnedPods(cache)
    cache.add_handler(owned_pods.observe)
    for events, pick in rounds:
        match, template, deleting = claims[pick % len(claims)]
        for name, spec in events:
            key = f"default/{name}"
            cache._set(key, None if spec is None else _event_pod(name, spec))
        meta: Obj = {"name": "rs", "namespace": "default", "uid": "rs"}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        selector = from_label_selector_dict({"matchLabels": match}) if match else LabelSelector.everything()
        claim = Claim(selector, tuple(sorted(template.items())), deleting)
        got = owned_pods.sync("rs", claim, cu.compile_selector(selector))
        want = _full_claim(cache, {"metadata": meta}, selector, template)
        assert (
            sorted(got.pods),
            sorted(k.split("/")[1] for k in got.stray),
            len(got.labeled),
            len(got.ready),
        ) == (
            want[0],
            want[1],
            want[2],
            want[3],
        )
        for key, pod in got.pods.items():
            assert cache.get(key) is pod  # the cached object, not a stale copy


def test_owned_pods_sync_reads_only_marked_keys() -> None:
    cache = Informer(None, PODS)  # type: ignore[arg-type]
    cu.add_workload_indexes(cache)
    owned_pods = OwnedPods(cache)
    cache.add_handler(owned_pods.observe)
    for i in range(50):
        cache._set(f"default/p{i}", _event_pod(f"p{i}", ({"app": "web"}, "rs", "Running", False, False)))
    sel = from_label_selector_dict({"matchLabels": {"app": "web"}})
    claim = Claim(sel, (("app", "web"),), False)
    first = owned_pods.sync("rs", claim, cu.compile_selector(sel))
    assert len(first.pods) == 50 and not first.ready
    cache._set("default/p7", _event_pod("p7", ({"app": "web"}, "rs", "Running", True, False)))
    reads: list[str] = []
    real_get = cache.get
    cache.get = lambda key: reads.append(key) or real_get(key)  # type: ignore[method-assign]
    again = owned_pods.sync("rs", claim, cu.compile_selector(sel))
    assert again is first and reads == ["default/p7"] and again.ready == {"default/p7"}


# ---------------------------------------------------------------------------- sync


class StatusClient:
    """Records status updates (the only write a sync of a full, settled set makes)."""

    def __init__(self) -> None:
        self.updates: list[Obj] = []

    async def update(self, resource: Resource, ns: str, body: Obj, subresource: str = "") -> Obj:
        self.updates.append(body["status"])
        return body


class NoEvents:
    def event(self, *_: Any) -> None:
        pass

    async def flush(self) -> None:
        pass


def _ready_pod(i: int, ready: bool) -> Obj:
    pod = _pod(f"web-{i}", {"app": "web"}, "rs-uid")
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return pod


def test_sync_counts_from_events_and_spaces_syncs_after_a_status_write() -> None:
    async def body() -> None:
        client = StatusClient()
        sets, pods = Informer(client, RS), Informer(client, PODS)  # type: ignore[arg-type]
        ctl = ReplicaSetController(client, REPLICASET, sets, pods, NoEvents())  # type: ignore[arg-type]
        rs: Obj = {
            "metadata": {"name": "rs", "namespace": "default", "uid": "rs-uid", "generation": 1},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}},
            },
        }
        sets._set("default/rs", rs)
        for i in range(3):
            pods._set(f"default/web-{i}", _ready_pod(i, False))
        await ctl._reconcile("default/rs")
        assert client.updates[-1] == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}
        assert "default/rs" in ctl.ctrl.queue._not_before  # held back after the write
        sets._set("default/rs", {**rs, "status": client.updates[-1]})
        pods._set("default/web-1", _ready_pod(1, True))
        ctl.ctrl.queue._not_before.clear()
        await ctl._reconcile("default/rs")
        assert client.updates[-1]["readyReplicas"] == 1 and client.updates[-1]["availableReplicas"] == 1
        sets._set("default/rs", {**rs, "status": client.updates[-1]})
        ctl.ctrl.queue._not_before.clear()
        writes = len(client.updates)
        await ctl._reconcile("default/rs")  # nothing changed: no write, no hold-back
        assert len(client.updates) == writes and "default/rs" not in ctl.ctrl.queue._not_before

    asyncio.run(body())
