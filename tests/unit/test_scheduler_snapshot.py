"""Cache, snapshot arrays, the scheduling cycle, FitError messages and preemption."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.scheduler.cache import Cache
from kubelite.scheduler.framework import CycleState
from kubelite.scheduler.plugins import default_plugins
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.preemption import Preemptor
from kubelite.scheduler.schedule_one import Algorithm, FitError, num_feasible_nodes_to_find
from kubelite.scheduler.snapshot import UNKNOWN
from tests.unit.scheduler_builders import cache_with, node, pinfo, pod
from tests.unit.test_scheduler_plugins import Listers


def algo(cache: Cache, seed: int = 1) -> Algorithm:
    return Algorithm(cache.snapshot, default_plugins(Listers()), rng=random.Random(seed))


def test_num_feasible_nodes_matches_kube_scheduler() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(100) == 100
    assert num_feasible_nodes_to_find(500) == 230  # 46 %
    assert num_feasible_nodes_to_find(5000) == 500  # 10 %
    assert num_feasible_nodes_to_find(6000) == 300  # 5 % floor
    assert num_feasible_nodes_to_find(1000, percentage=50) == 500
    assert num_feasible_nodes_to_find(150, percentage=10) == 100  # at least 100


def test_assume_forget_confirm_keep_arrays_in_step() -> None:
    c = cache_with([node("a", cpu="2", memory="4Gi")])
    snap = c.snapshot
    i = c.infos["a"].index
    p = pinfo(pod("p", cpu="500m", memory="1Gi"))
    c.assume(p, "a")
    assert c.is_assumed("default/p")
    assert snap.free_cpu[i] == 1500 and snap.free_pods[i] == 109
    c.forget("default/p")
    assert snap.free_cpu[i] == 2000 and snap.free_pods[i] == 110
    c.assume(p, "a")
    c.set_pod(pinfo(pod("p", cpu="500m", memory="1Gi", node_name="a")))  # the informer confirms
    assert not c.is_assumed("default/p")
    assert snap.free_cpu[i] == 1500
    c.remove_pod("default/p")
    assert snap.free_cpu[i] == 2000


def test_node_removal_swaps_arrays_and_ghost_nodes_keep_pods() -> None:
    c = cache_with([node("a", cpu="1"), node("b", cpu="2"), node("c", cpu="3")])
    c.set_pod(pinfo(pod("p", cpu="1", node_name="a")))
    c.remove_node("a")
    snap = c.snapshot
    assert sorted(n.name for n in snap.nodes) == ["b", "c"]
    for ni in snap.nodes:
        assert snap.alloc_cpu[ni.index] == ni.alloc.cpu
    assert "a" in c.infos and c.infos["a"].obj is None  # ghost: its pod is still known
    c.remove_pod("default/p")
    assert "a" not in c.infos


def test_heartbeat_only_node_updates_are_not_events() -> None:
    c = Cache()
    n = node("a")
    assert c.set_node(n)
    beat = {**n, "status": {**n["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
    assert not c.set_node(beat)
    assert c.set_node({**n, "metadata": {"name": "a", "labels": {"x": "y"}}})


def test_fit_error_message_aggregates_and_sorts_reasons() -> None:
    taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    nodes = [node(f"s{i}", cpu="1") for i in range(3)] + [node(f"g{i}", taints=taint) for i in range(2)]
    c = cache_with(nodes)
    a = algo(c)
    big = pinfo(pod("web-1", cpu="2"))
    try:
        a.schedule(big)
    except FitError as err:
        outcome = Preemptor(a).preempt(big, err.state, err)
        err.diagnosis.post_filter_msg = outcome.message
        assert err.message() == (
            "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, "
            "3 Insufficient cpu. preemption: 0/5 nodes are available: "
            "2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod."
        )
    else:
        raise AssertionError("expected a FitError")


def test_prefilter_rejection_message() -> None:
    c = cache_with([node("a"), node("b")])
    p = pinfo(pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]))
    a = algo(c)
    try:
        a.schedule(p)
    except FitError as err:
        err.diagnosis.post_filter_msg = Preemptor(a).preempt(p, err.state, err).message
        assert err.message() == (
            '0/2 nodes are available: persistentvolumeclaim "data" not found. '
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        )
    else:
        raise AssertionError("expected a FitError")


def test_least_allocated_spreads_pods() -> None:
    c = cache_with([node(f"n{i}") for i in range(4)])
    a = algo(c)
    placed = []
    for i in range(8):
        p = pinfo(pod(f"p{i}", cpu="500m", memory="512Mi"))
        result = a.schedule(p)
        c.assume(p, result.node)
        placed.append(result.node)
    assert sorted(placed.count(n) for n in {"n0", "n1", "n2", "n3"}) == [2, 2, 2, 2]


def test_nominated_pod_reserves_room() -> None:
    c = cache_with([node("a", cpu="1"), node("b", cpu="1")])
    high = pinfo(pod("high", cpu="800m", priority=100))
    c.snapshot.nominate(high, "a")
    assert not c.snapshot.plain[c.infos["a"].index]
    a = algo(c)
    low = pinfo(pod("low", cpu="500m", priority=0))
    assert a.schedule(low).node == "b"


def test_preemption_picks_lowest_priority_victims() -> None:
    pods = [
        pod("v-a", cpu="900m", priority=10, node_name="a"),
        pod("v-b", cpu="900m", priority=1, node_name="b"),
        pod("keep", cpu="900m", priority=1000, node_name="c"),
    ]
    c = cache_with([node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="1")], pods)
    a = algo(c)
    high = pinfo(pod("high", cpu="500m", priority=100))
    try:
        a.schedule(high)
    except FitError as err:
        outcome = Preemptor(a, random.Random(3)).preempt(high, err.state, err)
        assert outcome.candidate is not None
        assert outcome.candidate.node == "b"
        assert [v.name for v in outcome.candidate.victims] == ["v-b"]
    else:
        raise AssertionError("expected a FitError")
    never = pinfo(pod("never", cpu="500m", priority=100, preemptionPolicy="Never"))
    try:
        a.schedule(never)
    except FitError as err:
        outcome = Preemptor(a).preempt(never, err.state, err)
        assert outcome.candidate is None
        assert outcome.message == "preemption: not eligible due to preemptionPolicy=Never."


def test_victims_are_reprieved_when_not_needed() -> None:
    pods = [
        pod("small", cpu="200m", priority=1, node_name="a"),
        pod("big", cpu="700m", priority=2, node_name="a"),
    ]
    c = cache_with([node("a", cpu="1")], pods)
    a = algo(c)
    high = pinfo(pod("high", cpu="600m", priority=100))
    victims, status = Preemptor(a).select_victims(high, CycleState(), c.infos["a"])
    assert status is None
    assert [v.name for v in victims] == ["big"]


_node_strategy = st.tuples(
    st.integers(1, 8),  # cpu cores
    st.integers(1, 16),  # memory GiB
    st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 3000)), max_size=5),  # existing pods (m, Mi)
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_node_strategy, min_size=2, max_size=12), st.integers(0, 2000), st.integers(0, 4000))
def test_fast_path_equals_plugin_pipeline(
    specs: list[tuple[int, int, list[tuple[int, int]]]], cpu_m: int, mem_mi: int
) -> None:
    """The array fast path must pick from exactly the nodes, with exactly the scores, of the plugins."""
    nodes = [node(f"n{i}", cpu=str(c), memory=f"{m}Gi") for i, (c, m, _) in enumerate(specs)]
    existing = [
        pod(f"e{i}-{j}", cpu=f"{pc}m" if pc else None, memory=f"{pm}Mi" if pm else None, node_name=f"n{i}")
        for i, (_, _, ps) in enumerate(specs)
        for j, (pc, pm) in enumerate(ps)
    ]
    c = cache_with(nodes, existing)
    a = algo(c)
    p = pinfo(pod("p", cpu=f"{cpu_m}m" if cpu_m else None, memory=f"{mem_mi}Mi" if mem_mi else None))
    assert p.plain
    state = CycleState()
    a._pre_filter(state, p)
    order = range(len(c.snapshot))
    fast, _ = a._fast_feasible(p, state, order, len(order))
    slow, _ = a._feasible(p, state, order, len(order), None)
    assert fast == slow
    if fast:
        nodes_ = [c.snapshot.nodes[i] for i in fast]
        active = [pl for pl in a.plugins.score if pl.pre_score(state, p, nodes_, c.snapshot)]
        totals = a._scores(state, p, nodes_, active)
        assert a._fast_scores(p, fast) == totals
        top = {i for i, t in zip(fast, totals, strict=True) if t == max(totals)}
        best, feasible, processed = a._one_pass(p, state, 0, len(order))
        assert best in top and feasible == len(fast) and processed == len(order)
    else:
        assert a._one_pass(p, state, 0, len(order))[0] == -1


def test_sampling_stops_at_num_feasible_and_rotates() -> None:
    c = cache_with([node(f"n{i:03d}") for i in range(300)])
    a = algo(c)
    want = num_feasible_nodes_to_find(300)
    assert want == 144
    first = a.schedule(pinfo(pod("p0")))
    assert (first.evaluated, first.feasible) == (want, want)
    assert a.next_start == want
    a.schedule(pinfo(pod("p1")))
    assert a.next_start == (2 * want) % 300


def _pinned(name: str, *terms: list[str], cpu: str = "100m") -> dict[str, object]:
    """A pod whose required node affinity is ``metadata.name In`` lists (one term per list)."""
    node_terms = [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": t}]} for t in terms]
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": node_terms}}
    }
    return pod(name, cpu=cpu, affinity=affinity)


def test_daemon_pod_pinned_by_name_filters_only_its_node() -> None:
    c = cache_with([node(f"n{i}") for i in range(300)])
    result = algo(c).schedule(pinfo(_pinned("ds-x", ["n217"])))
    assert (result.node, result.evaluated, result.feasible) == ("n217", 1, 1)
    # terms are ORed: the union of their names is searched
    result = algo(c).schedule(pinfo(_pinned("ds-y", ["n3"], ["n4"])))
    assert result.node in {"n3", "n4"} and result.evaluated == 2


def test_pinned_pod_that_does_not_fit_counts_the_other_nodes_as_narrowed_away() -> None:
    c = cache_with([node("a", cpu="1"), node("b"), node("c")])
    try:
        algo(c).schedule(pinfo(_pinned("ds-a", ["a"], cpu="2")))
    except FitError as err:
        assert err.message() == (
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
        )
        assert err.diagnosis.rejected_by == {"NodeResourcesFit", "NodeAffinity"}
    else:
        raise AssertionError("expected a FitError")


def test_pinned_to_a_missing_node_or_conflicting_fields() -> None:
    c = cache_with([node("a"), node("b")])
    try:
        algo(c).schedule(pinfo(_pinned("gone", ["deleted-node"])))
    except FitError as err:
        assert err.message() == "0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    else:
        raise AssertionError("expected a FitError")
    # two name requirements in one term are ANDed: nothing can match
    conflict = _pinned("conflict", ["a"])
    term = conflict["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]  # type: ignore[index]
    term["nodeSelectorTerms"][0]["matchFields"].append(
        {"key": "metadata.name", "operator": "In", "values": ["b"]}
    )
    try:
        algo(c).schedule(pinfo(conflict))
    except FitError as err:
        assert err.message() == "0/2 nodes are available: pod affinity terms conflict."
    else:
        raise AssertionError("expected a FitError")


def test_a_term_without_name_fields_keeps_all_nodes() -> None:
    c = cache_with([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})])
    labels_term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}
    p = _pinned("mixed", ["a"])
    terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]  # type: ignore[index]
    terms["nodeSelectorTerms"].append(labels_term)
    result = algo(c).schedule(pinfo(p))
    assert result.evaluated == 2 and result.feasible == 2


def _assert_scores_current(a: Algorithm, shape_pod: object) -> None:
    """Every cached verdict equals a fresh computation over the current arrays."""
    assert isinstance(shape_pod, PodInfo)
    r = shape_pod.requests
    scores = a.snap.scores_for((r.cpu, r.memory, r.ephemeral, shape_pod.nz_cpu, shape_pod.nz_mem))
    assert len(scores) == len(a.snap)
    for i, cached in enumerate(scores):
        assert cached in (UNKNOWN, a._fit_and_score(shape_pod, i)), a.snap.nodes[i].name


def test_score_cache_follows_assume_forget_and_node_changes() -> None:
    c = cache_with([node(f"n{i}", cpu=str(1 + i % 3), memory=f"{2 + i % 4}Gi") for i in range(12)])
    a = algo(c, seed=7)
    shape = pinfo(pod("shape", cpu="300m", memory="700Mi"))
    placed: list[str] = []
    for k in range(40):
        p = pinfo(pod(f"p{k}", cpu="300m", memory="700Mi"))
        with contextlib.suppress(FitError):
            placed.append(c.assume(p, a.schedule(p).node).key)
        if k % 7 == 3 and placed:
            c.forget(placed.pop(0))
        if k == 10:
            c.set_node(node("n3", cpu="16", memory="64Gi"))  # resized
        if k == 15:
            c.remove_node("n5")  # the last node's entries move into its slot
        if k == 20:
            c.set_node(node("late", cpu="8", memory="8Gi"))
        if k == 25:
            c.snapshot.nominate(pinfo(pod("big", cpu="2", priority=100)), "n1")
        _assert_scores_current(a, shape)
    # with the cache filled, the same shape still picks only top-scoring nodes
    p = pinfo(pod("last", cpu="300m", memory="700Mi"))
    state = CycleState()
    a._pre_filter(state, p)
    order = range(len(c.snapshot))
    found, _ = a._fast_feasible(p, state, order, len(order))
    totals = a._fast_scores(p, found)
    top = {i for i, t in zip(found, totals, strict=True) if t == max(totals)}
    assert a._one_pass(p, state, 0, len(order))[0] in top
