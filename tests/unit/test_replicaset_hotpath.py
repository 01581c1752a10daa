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
from kubelite.controllers.replicaset import count_pods
from kubelite.machinery import controller_utils as cu
from kubelite.machinery.workqueue import WorkQueue

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
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
