"""Deployment controller: the arithmetic, one sync at a time, and the real thing in-process.

Most tests drive :class:`Rollout` with an in-memory :class:`FakeOps` (ReplicaSets as dicts
and a clock), settling ReplicaSet status between syncs the way the ReplicaSet controller
and kubelets would, so every intermediate state of a rollout can be checked.  The last
tests run both controllers against a real in-process API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api import errors
from kubelite.client.base import Resource
from kubelite.controllers import deployment_util as du
from kubelite.controllers.deployment_rollout import Rollout
from kubelite.machinery import controller_utils as cu
from tests.unit.test_replicaset import PODS, RS, UNREADY_IMAGE, cluster, run

Obj = dict[str, Any]
DEPLOYMENTS = Resource("apps", "v1", "deployments")


def _ts(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(
    replicas: int = 10,
    image: str = "v1",
    surge: int | str = "25%",
    unavailable: int | str = "25%",
    strategy: str = "RollingUpdate",
    **spec: Any,
) -> Obj:
    strat: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "dep-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            "strategy": strat,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            **spec,
        },
        "status": {},
    }


class FakeOps:
    """ReplicaSets in a dict; ``settle`` plays the ReplicaSet controller and kubelets."""

    def __init__(self, d: Obj) -> None:
        self.d = d
        self.sets: dict[str, Obj] = {}
        self.events: list[tuple[str, str]] = []
        self.clock = 1_000_000.0
        self.deleted: list[str] = []
        self.pods_left: dict[str, int] = {}
        self.foreign: set[str] = set()
        self.real: dict[str, int] = {}
        self.max_total = 0  # the most pods ever asked for at once, write by write

    # --- Ops
    def now(self) -> float:
        return self.clock

    async def create_rs(self, namespace: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        if name in self.sets or name in self.foreign:
            raise errors.AlreadyExists(f'replicasets.apps "{name}" already exists')
        self.clock += 1
        rs = copy.deepcopy(body)
        rs["metadata"].update(uid=f"uid-{name}", generation=1, creationTimestamp=_ts(self.clock))
        rs["status"] = {}
        self.sets[name] = rs
        return copy.deepcopy(rs)

    async def get_rs(self, namespace: str, name: str) -> Obj | None:
        if name in self.foreign:
            return {"metadata": {"name": name, "ownerReferences": []}, "spec": {"template": {}}}
        return copy.deepcopy(self.sets.get(name))

    async def update_rs(self, rs: Obj) -> Obj:
        name = rs["metadata"]["name"]
        stored = self.sets[name]
        new = copy.deepcopy(rs)
        new["status"] = stored.get("status", {})
        if new["spec"] != stored["spec"]:
            new["metadata"]["generation"] = stored["metadata"]["generation"] + 1
        self.sets[name] = new
        self.max_total = max(self.max_total, sum(self.sizes().values()))
        return copy.deepcopy(new)

    async def delete_rs(self, rs: Obj) -> None:
        self.deleted.append(rs["metadata"]["name"])
        self.sets.pop(rs["metadata"]["name"], None)

    async def update_status(self, d: Obj) -> Obj:
        self.d = copy.deepcopy(d)
        return copy.deepcopy(d)

    def event(self, d: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def pods_by_rs(self, d: Obj, sets: list[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for name, n in self.pods_left.items():
            out[f"uid-{name}"] = [{"status": {"phase": "Running"}}] * n
        return out

    # --- test driving
    async def sync(self) -> float | None:
        return await Rollout(self, self.d, [copy.deepcopy(s) for s in self.sets.values()]).run()

    def settle(
        self,
        available: Callable[[Obj], bool] = lambda rs: True,
        report: Callable[[Obj], bool] = lambda rs: True,
    ) -> None:
        """Pods follow spec.replicas at once; ``available(rs)`` decides if its new ones work.

        ``real`` holds the pods that really are available; sets for which ``report(rs)`` is
        False keep their old status (a ReplicaSet controller lagging behind)."""
        for name, rs in self.sets.items():
            want = du.replicas(rs)
            have = self.real.get(name, 0)
            self.real[name] = want if available(rs) else min(have, want)
            if report(rs):
                st_ = rs.setdefault("status", {})
                st_["replicas"] = want
                st_["availableReplicas"] = self.real[name]
                st_["readyReplicas"] = self.real[name]
                st_["observedGeneration"] = rs["metadata"]["generation"]

    def sizes(self) -> dict[str, int]:
        return {name: du.replicas(rs) for name, rs in self.sets.items()}

    def by_image(self) -> dict[str, int]:
        return {image_of(rs): du.replicas(rs) for rs in self.sets.values()}

    def update(self, **spec: Any) -> None:
        self.d["spec"].update(spec)
        self.d["metadata"]["generation"] += 1

    def set_image(self, image: str) -> None:
        self.d = copy.deepcopy(self.d)
        self.d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.d["metadata"]["generation"] += 1


def image_of(rs: Obj) -> str:
    return str(rs["spec"]["template"]["spec"]["containers"][0]["image"])


async def converge(
    ops: FakeOps, available: Callable[[Obj], bool] = lambda rs: True, rounds: int = 60
) -> None:
    """Sync and settle until nothing changes any more (or ``rounds`` run out)."""
    before = None
    for _ in range(rounds):
        await ops.sync()
        ops.settle(available)
        now = repr((ops.d, ops.sets))
        if now == before:
            return
        before = now


def arun(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailable rounds down
        (4, "25%", "25%", (1, 1)),
        (1, "25%", "25%", (1, 0)),
        (3, 0, 0, (0, 1)),  # never both zero
        (5, "0%", "0%", (0, 1)),
        (10, 3, 2, (3, 2)),
        (10, "30%", "35%", (3, 3)),
    ],
)
def test_resolve_fenceposts_matches_kubernetes(
    replicas: int, surge: int | str, unavailable: int | str, expected: tuple[int, int]
) -> None:
    assert du.resolve_fenceposts(deployment(replicas, surge=surge, unavailable=unavailable)) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert du.max_unavailable(deployment(2, unavailable=5)) == 2
    assert du.max_unavailable(deployment(0)) == 0
    assert du.max_unavailable(deployment(5, strategy="Recreate")) == 0
    assert du.max_surge(deployment(5, strategy="Recreate")) == 0


def test_scaled_value_rejects_garbage() -> None:
    with pytest.raises(errors.BadRequest):
        du.scaled_value("ten", 10, True)


def test_equal_ignore_hash_and_find_new() -> None:
    d = deployment()
    t = copy.deepcopy(d["spec"]["template"])
    t["metadata"]["labels"][cu.POD_TEMPLATE_HASH_LABEL] = "abc"
    t["metadata"]["creationTimestamp"] = None
    assert du.equal_ignore_hash(t, d["spec"]["template"])
    rs = {"metadata": {"name": "web-abc", "uid": "1", "creationTimestamp": _ts(5)}, "spec": {"template": t}}
    assert du.find_new(d, [rs]) is rs


def test_revision_history_annotation_grows_on_reuse() -> None:
    d = deployment()
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v1 again", du.LAST_APPLIED: "{}"}
    rs: Obj = {"metadata": {"annotations": {du.REVISION: "1"}}, "spec": {}}
    assert du.set_new_rs_annotations(d, rs, "3", exists=True)
    anns = rs["metadata"]["annotations"]
    assert anns[du.REVISION] == "3" and anns[du.REVISION_HISTORY] == "1"
    assert anns["kubernetes.io/change-cause"] == "v1 again" and du.LAST_APPLIED not in anns
    assert du.set_new_rs_annotations(d, rs, "5", exists=True)
    assert anns[du.REVISION_HISTORY] == "1,3"
    assert not du.set_new_rs_annotations(d, rs, "5", exists=True)


def test_set_condition_keeps_transition_time_for_same_status() -> None:
    status: Obj = {}
    du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_CREATED, "a", "t1"))
    du.set_condition(status, du.new_condition("Progressing", "True", du.REPLICASET_UPDATED, "b", "t2"))
    cond = du.get_condition(status, "Progressing")
    assert cond is not None and cond["lastTransitionTime"] == "t1" and cond["lastUpdateTime"] == "t2"
    du.set_condition(status, du.new_condition("Progressing", "True", du.REPLICASET_UPDATED, "c", "t3"))
    assert du.get_condition(status, "Progressing") == cond  # same status and reason: untouched


# ---------------------------------------------------------------------------- one sync at a time


def test_first_sync_creates_replicaset_with_hash_revision_and_annotations() -> None:
    ops = FakeOps(deployment(3))
    arun(ops.sync())
    (rs,) = ops.sets.values()
    pod_hash = cu.compute_hash(ops.d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["annotations"] == {
        du.REVISION: "1",
        du.DESIRED_REPLICAS: "3",
        du.MAX_REPLICAS: "4",
    }
    assert rs["spec"]["replicas"] == 3
    assert ops.d["metadata"]["annotations"][du.REVISION] == "1"
    cond = du.get_condition(ops.d["status"], "Progressing")
    assert cond is not None and cond["reason"] == du.NEW_RS_CREATED
    assert cond["message"] == f'Created new replica set "web-{pod_hash}"'
    assert ("ScalingReplicaSet", f"Scaled up replica set web-{pod_hash} from 0 to 3") in ops.events


def test_rollout_completes_with_status_and_conditions() -> None:
    ops = FakeOps(deployment(3))
    arun(converge(ops))
    status = ops.d["status"]
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
    }
    assert "unavailableReplicas" not in status and status["observedGeneration"] == 1
    available = du.get_condition(status, "Available")
    progressing = du.get_condition(status, "Progressing")
    assert available is not None and available["reason"] == du.MIN_AVAILABLE
    assert progressing is not None and progressing["reason"] == du.NEW_RS_AVAILABLE
    assert progressing["message"].endswith("has successfully progressed.")


def test_documented_proportional_scaling_example() -> None:
    """kubernetes.io "Proportional scaling": 10 replicas, maxSurge 3, maxUnavailable 2, a
    broken new image, then scaled to 15: old 8 -> 11, new 5 -> 7."""
    ops = FakeOps(deployment(10, surge=3, unavailable=2))
    arun(converge(ops))
    ops.set_image("broken")
    arun(converge(ops, available=lambda rs: image_of(rs) != "broken"))
    assert ops.by_image() == {"v1": 8, "broken": 5}
    ops.update(replicas=15)
    arun(ops.sync())
    assert ops.by_image() == {"v1": 11, "broken": 7}
    for rs in ops.sets.values():
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "15"
        assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "18"
    ops.settle(lambda rs: image_of(rs) != "broken")
    ops.update(replicas=5)  # and proportionally down again
    arun(ops.sync())
    assert sum(ops.sizes().values()) == 5 + 3


@given(
    replicas=st.integers(1, 12),
    surge=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "25%", "50%", "100%"])),
    unavailable=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "25%", "50%"])),
    delays=st.lists(st.booleans(), min_size=1, max_size=30),
    lags=st.lists(st.booleans(), min_size=1, max_size=30),
)
@settings(max_examples=80, deadline=None)
def test_rolling_update_never_exceeds_surge_or_unavailable(
    replicas: int, surge: int | str, unavailable: int | str, delays: list[bool], lags: list[bool]
) -> None:
    ops = FakeOps(deployment(replicas, surge=surge, unavailable=unavailable))
    arun(converge(ops))
    max_s, max_u = du.resolve_fenceposts(ops.d)
    max_u = min(max_u, replicas)
    ops.set_image("v2")
    ops.max_total = 0
    steps = iter(delays)
    lagging = iter(lags)

    async def roll() -> None:
        for _ in range(200):
            with contextlib.suppress(errors.Conflict):  # a lagging status: retried next round
                await ops.sync()
            assert ops.max_total <= replicas + max_s, "maxSurge exceeded (by some write)"
            flaky = next(steps, True)

            def works(rs: Obj, ok: bool = flaky) -> bool:
                return image_of(rs) == "v1" or ok

            lag = next(lagging, False)

            def reports(rs: Obj, lag: bool = lag) -> bool:
                return image_of(rs) != "v1" or not lag

            ops.settle(works, reports)
            assert sum(ops.real.values()) >= replicas - max_u, "maxUnavailable exceeded"
            if ops.by_image().get("v2") == replicas and ops.by_image().get("v1", 0) == 0:
                return

    arun(roll())
    arun(converge(ops))
    assert du.complete(ops.d, ops.d["status"])
    assert ops.d["metadata"]["annotations"][du.REVISION] == "2"


def test_lagging_old_status_never_scales_an_old_set_back_up() -> None:
    """An old set whose status still counts pods of our last scale-down (available >
    replicas) fails the sync, as in Kubernetes, instead of being scaled back up."""
    ops = FakeOps(deployment(6, surge=2, unavailable=1))
    arun(converge(ops))
    ops.set_image("v2")
    ops.max_total = 0
    conflicts = 0
    for lag in (True, True, True, False, False, False, False, False):

        def reports(rs: Obj, lag: bool = lag) -> bool:
            return image_of(rs) != "v1" or not lag

        try:
            arun(ops.sync())
        except errors.Conflict as e:
            conflicts += 1
            assert "invalid request to scale down" in str(e)
        ops.settle(report=reports)
    assert conflicts >= 1 and ops.max_total <= 8
    arun(converge(ops))
    assert ops.by_image() == {"v1": 0, "v2": 6}


def test_rollback_to_an_old_template_reuses_its_replicaset() -> None:
    ops = FakeOps(deployment(2))
    arun(converge(ops))
    first = next(iter(ops.sets))
    ops.set_image("v2")
    arun(converge(ops))
    ops.set_image("v1")  # what `kubectl rollout undo` patches in
    arun(converge(ops))
    assert len(ops.sets) == 2  # no third set
    rs = ops.sets[first]
    assert du.replicas(rs) == 2
    assert rs["metadata"]["annotations"][du.REVISION] == "3"
    assert rs["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert ops.d["metadata"]["annotations"][du.REVISION] == "3"


def test_paused_deployment_scales_but_does_not_roll_out() -> None:
    ops = FakeOps(deployment(4))
    arun(converge(ops))
    ops.update(paused=True)
    ops.set_image("v2")
    arun(converge(ops))
    assert ops.by_image() == {"v1": 4}
    cond = du.get_condition(ops.d["status"], "Progressing")
    assert cond is not None and (cond["status"], cond["reason"]) == ("Unknown", du.PAUSED)
    assert cond["message"] == "Deployment is paused"
    ops.update(replicas=6)
    arun(converge(ops))
    assert ops.by_image() == {"v1": 6}
    ops.update(paused=False)
    arun(ops.sync())
    cond = du.get_condition(ops.d["status"], "Progressing")
    assert cond is not None and cond["reason"] in (du.RESUMED, du.NEW_RS_CREATED, du.REPLICASET_UPDATED)
    arun(converge(ops))
    assert ops.by_image() == {"v1": 0, "v2": 6}


def test_recreate_scales_old_down_and_waits_for_pods_before_new() -> None:
    ops = FakeOps(deployment(3, strategy="Recreate"))
    arun(converge(ops))
    old = next(iter(ops.sets))
    ops.set_image("v2")
    arun(ops.sync())
    assert ops.sizes() == {old: 0}
    ops.settle()
    ops.pods_left[old] = 1  # a terminating pod is still there
    arun(ops.sync())
    assert len(ops.sets) == 1
    ops.pods_left[old] = 0
    arun(ops.sync())
    assert ops.by_image() == {"v1": 0, "v2": 3}
    reasons = [m for r, m in ops.events if r == "ScalingReplicaSet"]
    assert reasons[-2].startswith(f"Scaled down replica set {old} to 0 from 3")


def test_progress_deadline_exceeded_and_requeue_delay() -> None:
    ops = FakeOps(deployment(2, progressDeadlineSeconds=30))
    arun(converge(ops))
    ops.set_image("broken")
    arun(converge(ops, available=lambda rs: image_of(rs) != "broken", rounds=5))
    delay = arun(ops.sync())
    assert delay is not None and 0 < delay <= 31
    ops.clock += 31
    arun(ops.sync())
    cond = du.get_condition(ops.d["status"], "Progressing")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", du.TIMED_OUT)
    new = next(rs for rs in ops.sets.values() if image_of(rs) == "broken")
    assert cond["message"] == f'ReplicaSet "{new["metadata"]["name"]}" has timed out progressing.'
    assert arun(ops.sync()) is None  # nothing more to wait for
    available = du.get_condition(ops.d["status"], "Available")
    assert available is not None and available["status"] == "True"  # 2 - 0 unavailable... still 1 old up


def test_available_condition_false_below_minimum() -> None:
    ops = FakeOps(deployment(4, unavailable=1))
    arun(converge(ops, available=lambda rs: False, rounds=3))
    cond = du.get_condition(ops.d["status"], "Available")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", du.MIN_UNAVAILABLE)
    assert ops.d["status"]["unavailableReplicas"] == 4


def test_revision_history_limit_deletes_oldest_scaled_down_sets() -> None:
    ops = FakeOps(deployment(1, revisionHistoryLimit=1))
    names = []
    for image in ("v1", "v2", "v3", "v4"):
        ops.set_image(image)
        arun(converge(ops))
        names.append(next(n for n, rs in ops.sets.items() if image_of(rs) == image))
    assert set(ops.sets) == {names[2], names[3]}
    assert ops.deleted == [names[0], names[1]]


def test_hash_collision_bumps_collision_count() -> None:
    d = deployment(1)
    ops = FakeOps(d)
    ops.foreign.add(f"web-{cu.compute_hash(d['spec']['template'])}")
    with pytest.raises(errors.AlreadyExists):
        arun(ops.sync())
    assert ops.d["status"]["collisionCount"] == 1
    arun(converge(ops))
    (name,) = ops.sets
    assert name == f"web-{cu.compute_hash(d['spec']['template'], 1)}"


# ---------------------------------------------------------------------------- in-process API server


def _manifest(name: str, replicas: int, image: str = "nginx:1", **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
    }


def _done(d: Obj) -> bool:
    """What `kubectl rollout status` checks."""
    st_ = d.get("status") or {}
    want = d["spec"]["replicas"]
    return bool(
        d["metadata"]["generation"] <= st_.get("observedGeneration", 0)
        and st_.get("updatedReplicas", 0) >= want
        and st_.get("replicas", 0) <= st_.get("updatedReplicas", 0)
        and st_.get("availableReplicas", 0) >= st_.get("updatedReplicas", 0)
    )


def test_deployment_rolls_out_undoes_and_scales_against_the_api_server() -> None:
    async def body() -> None:
        async with cluster("replicaset", "deployment") as c:
            await c.client.create(DEPLOYMENTS, "default", _manifest("web", 4))

            async def rolled() -> bool:
                return _done(await c.client.get(DEPLOYMENTS, "default", "web"))

            await c.wait_for("first rollout", rolled)
            d = await c.client.get(DEPLOYMENTS, "default", "web")
            assert d["metadata"]["annotations"][du.REVISION] == "1"
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}
            await c.client.patch(DEPLOYMENTS, "default", "web", patch, patch_type=cu.SMP)
            await c.wait_for("second rollout", rolled)
            sets = (await c.client.list(RS, "default"))["items"]
            assert sorted(du.replicas(s) for s in sets) == [0, 4]
            old = next(s for s in sets if du.replicas(s) == 0)
            # kubectl rollout undo: the old template without its hash label, as a JSON patch
            template = copy.deepcopy(old["spec"]["template"])
            del template["metadata"]["labels"][cu.POD_TEMPLATE_HASH_LABEL]
            undo = [
                {"op": "replace", "path": "/spec/template", "value": template},
                {"op": "replace", "path": "/metadata/annotations", "value": {du.REVISION: "2"}},
            ]
            await c.client.patch(
                DEPLOYMENTS, "default", "web", undo, patch_type="application/json-patch+json"
            )
            await c.wait_for("undo", rolled)

            async def reused() -> bool:
                cur = await c.client.get(RS, "default", old["metadata"]["name"])
                return du.replicas(cur) == 4 and du.annotations_of(cur).get(du.REVISION) == "3"

            await c.wait_for("old set re-used as revision 3", reused)
            assert len((await c.client.list(RS, "default"))["items"]) == 2
            await c.client.patch(
                DEPLOYMENTS, "default", "web", {"spec": {"replicas": 6}}, subresource="scale"
            )
            await c.wait_for("scaled", rolled)
            assert len(await c.pods(selector="app=web")) == 6

    run(body())


def test_never_ready_rollout_hits_progress_deadline_against_the_api_server() -> None:
    async def body() -> None:
        async with cluster("replicaset", "deployment") as c:
            await c.client.create(DEPLOYMENTS, "default", _manifest("stuck", 2, progressDeadlineSeconds=2))

            async def rolled() -> bool:
                return _done(await c.client.get(DEPLOYMENTS, "default", "stuck"))

            await c.wait_for("first rollout", rolled)
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": UNREADY_IMAGE}]}}}}
            await c.client.patch(DEPLOYMENTS, "default", "stuck", patch, patch_type=cu.SMP)

            async def exceeded() -> bool:
                d = await c.client.get(DEPLOYMENTS, "default", "stuck")
                cond = du.get_condition(d.get("status") or {}, "Progressing")
                return cond is not None and cond["reason"] == du.TIMED_OUT

            await c.wait_for("progress deadline", exceeded, timeout=8)
            pods = await c.pods(selector="app=stuck")
            assert len(pods) == 3  # 2 old + 1 surge, the rollout is blocked
            assert all(p["spec"]["containers"][0]["image"] for p in pods)
            assert PODS.plural == "pods"

    run(body())
