"""DaemonSet controller: node eligibility, manage/rolling-update plans, status, and the
controller against a real in-process API server."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.client.base import Resource
from kubelite.controllers import daemonset
from kubelite.controllers import daemonset_nodes as dn
from kubelite.controllers import daemonset_plan as dp
from tests.unit.lifecycle_api import NODES, PODS, api_server, eventually, running, set_pod_status

Obj = dict[str, Any]
DS = Resource("apps", "v1", "daemonsets")
REVS = Resource("apps", "v1", "controllerrevisions")


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def make_ds(pod: Obj | None = None, **spec: Any) -> Obj:
    template_spec: Obj = {"containers": [{"name": "c", "image": "nginx"}]}
    template_spec.update(pod or {})
    body: Obj = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": template_spec},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
            },
        },
    }
    body["spec"].update(spec)
    return body


# ---------------------------------------------------------------------------- eligibility


def test_default_tolerations() -> None:
    spec: Obj = {"tolerations": [{"key": dn.NOT_READY, "operator": "Exists", "effect": "NoExecute"}]}
    dn.add_default_tolerations(spec)
    keys = [t["key"] for t in spec["tolerations"]]
    assert keys == [
        dn.NOT_READY,
        dn.UNREACHABLE,
        dn.DISK_PRESSURE,
        dn.MEMORY_PRESSURE,
        dn.PID_PRESSURE,
        dn.UNSCHEDULABLE,
    ]
    host: Obj = {"hostNetwork": True}
    dn.add_default_tolerations(host)
    assert host["tolerations"][-1] == {
        "key": dn.NETWORK_UNAVAILABLE,
        "operator": "Exists",
        "effect": "NoSchedule",
    }


tolerations = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["", "a", dn.NOT_READY]),
            "operator": st.sampled_from(["Exists", "Equal"]),
            "value": st.sampled_from(["", "x"]),
            "effect": st.sampled_from(["", "NoSchedule", "NoExecute"]),
        }
    ),
    max_size=4,
)


@given(tolerations)
def test_adding_default_tolerations_is_idempotent(tols: list[Obj]) -> None:
    once: Obj = {"tolerations": copy.deepcopy(tols)}
    dn.add_default_tolerations(once)
    twice = copy.deepcopy(once)
    dn.add_default_tolerations(twice)
    assert once == twice
    assert once["tolerations"][: len(tols)] == tols


def test_node_selector_and_affinity() -> None:
    ds = make_ds({"nodeSelector": {"disk": "ssd"}})
    assert dn.should_run(node("a", {"disk": "ssd"}), ds) == (True, True)
    assert dn.should_run(node("b"), ds) == (False, False)
    expr = {"key": "gen", "operator": "Gt", "values": ["3"]}
    ds = make_ds(
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [expr]},
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["z"]}]},
                        ]
                    }
                }
            }
        }
    )
    assert dn.should_run(node("a", {"gen": "4"}), ds)[0]
    assert not dn.should_run(node("a", {"gen": "3"}), ds)[0]
    assert dn.should_run(node("z"), ds)[0]
    assert not dn.should_run(node("y", {"gen": "x"}), ds)[0]
    assert dn.should_run(node("n1"), make_ds({"nodeName": "n1"}))[0]
    assert dn.should_run(node("n2"), make_ds({"nodeName": "n1"})) == (False, False)


def test_taints() -> None:
    no_schedule = node("a", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
    no_execute = node("b", taints=[{"key": "gpu", "value": "yes", "effect": "NoExecute"}])
    prefer = node("c", taints=[{"key": "gpu", "effect": "PreferNoSchedule"}])
    ds = make_ds()
    assert dn.should_run(no_schedule, ds) == (False, True)
    assert dn.should_run(no_execute, ds) == (False, False)
    assert dn.should_run(prefer, ds) == (True, True)
    tolerant = make_ds({"tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}]})
    assert dn.should_run(no_execute, tolerant) == (True, True)
    unreachable = node("d", taints=[{"key": dn.UNREACHABLE, "effect": "NoExecute"}])
    unschedulable = node("e", taints=[{"key": dn.UNSCHEDULABLE, "effect": "NoSchedule"}])
    assert dn.should_run(unreachable, ds) == (True, True)  # default tolerations
    assert dn.should_run(unschedulable, ds) == (True, True)


@given(st.text(alphabet="abc-123", min_size=1, max_size=12))
def test_pin_and_target_node_round_trip(name: str) -> None:
    spec: Obj = {"affinity": {"podAffinity": {"x": 1}}}
    dn.pin_to_node(spec, name)
    assert dn.target_node({"spec": spec}) == name
    assert spec["affinity"]["podAffinity"] == {"x": 1}
    assert dn.target_node({"spec": {**spec, "nodeName": "bound"}}) == "bound"


# ---------------------------------------------------------------------------- plans


def pod(name: str, node_name: str, hash_: str = "h1", ready: bool = True, **extra: Any) -> Obj:
    p: Obj = {
        "metadata": {
            "name": name,
            "labels": {"app": "agent", "controller-revision-hash": hash_},
            "creationTimestamp": extra.pop("created", "2020-01-01T00:00:00Z"),
        },
        "spec": {"nodeName": node_name},
        "status": {
            "phase": extra.pop("phase", "Running"),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2020-01-01T00:00:00Z",
                }
            ],
        },
    }
    p["metadata"].update(extra)
    return p


def names(pods: list[Obj]) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods)


def test_manage_plan() -> None:
    ds = make_ds({"nodeSelector": {"run": "yes"}})
    nodes = [node(n, {"run": "yes"}) for n in ("a", "b", "c")] + [node("d")]
    node_pods = {
        "a": [pod("a1", "a"), pod("a2", "a", created="2021-01-01T00:00:00Z")],
        "b": [pod("b1", "b", phase="Failed")],
        "d": [pod("d1", "d")],
        "gone": [pod("g1", "gone")],
    }
    plan = dp.manage_plan(ds, nodes, node_pods, "h1", time.time())
    assert plan.create_on == ["c"]
    assert names(plan.delete) == ["a2", "b1", "d1", "g1"]
    assert [p["metadata"]["name"] for p, _ in plan.failed] == ["b1"]
    terminating = pod("c1", "c", deletionTimestamp="2020-01-01T00:00:00Z")
    plan = dp.manage_plan(
        ds, nodes[:3], {"a": [pod("a1", "a")], "b": [pod("b1", "b")], "c": [terminating]}, "h1", 0
    )
    assert plan.empty()  # the node's old pod must go before a new one is created


def test_rolling_update_without_surge() -> None:
    ds = make_ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    nodes = [node(n) for n in "abcd"]
    node_pods = {n: [pod(f"{n}1", n, hash_="old")] for n in "abcd"}
    plan = dp.rolling_update_plan(ds, nodes, node_pods, "new", time.time())
    assert names(plan.delete) == ["a1", "b1"] and not plan.create_on
    node_pods["a"] = []  # one node already without pod: counts as unavailable
    node_pods["c"] = [pod("c1", "c", hash_="old", ready=False)]  # unavailable old pods are always replaced
    plan = dp.rolling_update_plan(ds, nodes, node_pods, "new", time.time())
    assert names(plan.delete) == ["b1", "c1"]
    assert dp.max_surge_unavailable(
        make_ds(updateStrategy={"rollingUpdate": {"maxUnavailable": "30%"}}), 10
    ) == (0, 3)
    zero = make_ds(updateStrategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert dp.max_surge_unavailable(zero, 10) == (0, 1)


def test_rolling_update_with_surge() -> None:
    ds = make_ds(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    )
    nodes = [node(n) for n in "abc"]
    node_pods = {n: [pod(f"{n}1", n, hash_="old")] for n in "abc"}
    plan = dp.rolling_update_plan(ds, nodes, node_pods, "new", time.time())
    assert plan.create_on == ["a"] and not plan.delete
    node_pods["a"].append(pod("a2", "a", hash_="new", ready=False))
    plan = dp.rolling_update_plan(ds, nodes, node_pods, "new", time.time())
    assert plan.empty()  # the surge budget is used by a2
    node_pods["a"][1] = pod("a2", "a", hash_="new")
    plan = dp.rolling_update_plan(ds, nodes, node_pods, "new", time.time())
    assert names(plan.delete) == ["a1"] and plan.create_on == ["b"]
    # manage keeps both while the new one is not ready, drops the old one once it is
    assert dp.manage_plan(ds, nodes, node_pods, "new", time.time()).delete == [node_pods["a"][0]]


def test_status_counts() -> None:
    ds = make_ds({"nodeSelector": {"run": "yes"}}, minReadySeconds=3600)
    nodes = [node(n, {"run": "yes"}) for n in "abc"] + [node("d")]
    node_pods = {
        "a": [pod("a1", "a")],
        "b": [pod("b1", "b", hash_="old", ready=False)],
        "d": [pod("d1", "d")],
    }
    status = dp.compute_status(ds, nodes, node_pods, "h1", time.time())
    assert status == {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "numberReady": 1,
        "numberAvailable": 1,
        "numberUnavailable": 2,
        "updatedNumberScheduled": 1,
    }
    fresh = pod("a1", "a")
    fresh["status"]["conditions"][0]["lastTransitionTime"] = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
    )
    status = dp.compute_status(ds, nodes, {"a": [fresh]}, "h1", time.time())
    assert (status["numberReady"], status["numberAvailable"]) == (1, 0)


# ---------------------------------------------------------------------------- controller


async def test_controller_in_process(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api, running(api.client, [daemonset.new]):
        c = api.client
        for n in ("n0", "n1"):
            await c.create(NODES, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})
        body = make_ds()
        for k in ("uid", "generation", "namespace"):
            body["metadata"].pop(k)
        await c.create(DS, "default", body)

        async def pods() -> list[Obj]:
            return list((await c.list(PODS, "default"))["items"])

        async def on_nodes(want: list[str]) -> bool:
            return sorted(str(dn.target_node(p)) for p in await pods()) == want

        await eventually(lambda: on_nodes(["n0", "n1"]))
        for p in await pods():
            assert p["metadata"]["generateName"] == "agent-"
            assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
            assert "nodeName" not in p["spec"]
            p["spec"]["nodeName"] = dn.target_node(p)
        (rev,) = (await c.list(REVS, "default"))["items"]
        hash_ = rev["metadata"]["labels"]["controller-revision-hash"]
        assert rev["metadata"]["name"] == f"agent-{hash_}" and rev["revision"] == 1
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in await pods()} == {hash_}

        for p in await pods():
            await set_pod_status(c, "default", p["metadata"]["name"])

        async def status() -> Obj:
            s: Obj = (await c.get(DS, "default", "agent")).get("status") or {}
            return s if s.get("numberReady") == 2 else {}

        st_ = await eventually(status)
        assert st_["desiredNumberScheduled"] == 2 and st_["observedGeneration"] == 1

        await c.create(NODES, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
        await eventually(lambda: on_nodes(["n0", "n1", "n2"]))
        await c.delete(NODES, "", "n2")
        await eventually(lambda: on_nodes(["n0", "n1"]))


@pytest.mark.parametrize("value", [None, "25%", 2])
def test_scaled(value: Any) -> None:
    assert dp.scaled(value, 10, True) == {None: 0, "25%": 3, 2: 2}[value]


def test_eligibility_cache_reuses_verdicts_until_node_or_template_changes() -> None:
    calls: list[str] = []
    real = dn.should_run

    def counting(node_obj: Obj, ds: Obj, pod_spec: Obj | None = None) -> tuple[bool, bool]:
        calls.append(node_obj["metadata"]["name"])
        return real(node_obj, ds, pod_spec)

    ds = make_ds({"nodeSelector": {"disk": "ssd"}})
    a, b = node("a", {"disk": "ssd"}), node("b")
    cache = dn.EligibilityCache()
    dn.should_run = counting  # type: ignore[assignment]
    try:
        assert cache.compute(ds, [a, b]) == {"a": (True, True), "b": (False, False)}
        assert cache.compute(ds, [a, b]) == dp.eligibility(ds, [a, b])
        assert calls == ["a", "b"]  # the second pass reused both verdicts
        relabelled = node("b", {"disk": "ssd"})  # a new object: the informer saw a change
        assert cache.compute(ds, [a, relabelled])["b"] == (True, True)
        assert calls == ["a", "b", "b"]
        newer = copy.deepcopy(ds)
        newer["metadata"]["generation"] = 2
        newer["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "hdd"}
        assert cache.compute(newer, [a, relabelled]) == {"a": (False, False), "b": (False, False)}
        assert calls == ["a", "b", "b", "a", "b"]
        assert cache.compute(newer, [a]) == {"a": (False, False)} and set(cache.verdicts) == {"a"}
    finally:
        dn.should_run = real  # type: ignore[assignment]
