"""One scheduling cycle: find the feasible nodes for a pod, score a sample, pick one.

Mirrors ``pkg/scheduler/schedule_one.go``:

* PreFilter plugins run once (a rejection there rejects every node with one message);
* Filter plugins run node by node, starting where the previous cycle stopped, until
  ``numFeasibleNodesToFind`` nodes fit - all nodes below 100, otherwise
  ``percentageOfNodesToScore`` of them, adaptive when unset: ``50 - nodes/125`` percent,
  at least 5 % and at least 100 nodes;
* a node with a nominated pod of equal or higher priority is checked with that pod added;
* Score plugins rate the feasible nodes, the weighted sum decides, ties are broken at random.

Pods that ask only for resources (no selectors, affinity, spread, volumes or ports) on
untainted nodes take a fast path over the snapshot's arrays that computes exactly what
NodeResourcesFit, LeastAllocated and BalancedAllocation would.  When nothing fits, a
:class:`FitError` carries the per-node statuses that become the FailedScheduling message.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain

from kubelite.scheduler.framework import (
    MAX_NODE_SCORE,
    Code,
    CycleState,
    ScorePlugin,
    Status,
    unresolvable,
)
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins import PluginSet
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.snapshot import MISFIT, UNKNOWN, Snapshot

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
NO_NODES = "no nodes available to schedule pods"
_FAST_FILTERS = frozenset({"NodeUnschedulable", "TaintToleration", "NodeResourcesFit"})
_FAST_SCORES = frozenset({"NodeResourcesFit", "NodeResourcesBalancedAllocation"})
_NO_REQUEST = -(1 << 62)  # a zero request always fits, even on an overcommitted node


@dataclass
class Diagnosis:
    """Why a pod fits nowhere: per-node statuses, or one PreFilter message."""

    statuses: dict[str, Status] = field(default_factory=dict)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""
    rejected_by: set[str] = field(default_factory=set)


class FitError(Exception):
    """No node fits the pod (``framework.FitError``)."""

    def __init__(self, pod: PodInfo, num_nodes: int, diagnosis: Diagnosis, state: CycleState) -> None:
        super().__init__(pod.key)
        self.state = state
        self.pod = pod
        self.num_nodes = num_nodes
        self.diagnosis = diagnosis

    def message(self) -> str:
        return fit_error_message(self.num_nodes, self.diagnosis)


class NoNodesAvailable(Exception):
    pass


def fit_error_message(num_nodes: int, d: Diagnosis) -> str:
    """``FitError.Error()``: ``0/5 nodes are available: 3 Insufficient cpu, ... preemption: ...``.

    Reasons are aggregated over nodes and sorted as strings, counts first.
    """
    msg = f"0/{num_nodes} nodes are available:"
    if d.pre_filter_msg:
        msg += f" {d.pre_filter_msg}."
    else:
        histogram = Counter(r for st in d.statuses.values() for r in st.reasons)
        parts = sorted(f"{n} {reason}" for reason, n in histogram.items())
        if parts:
            msg += " " + ", ".join(parts) + "."
    if d.post_filter_msg:
        msg += " " + d.post_filter_msg
    return msg


def num_feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """``numFeasibleNodesToFind`` with kube-scheduler's adaptive default percentage."""
    if num_nodes < MIN_FEASIBLE_NODES:
        return num_nodes
    if percentage <= 0:
        percentage = max(50 - num_nodes // 125, MIN_FEASIBLE_PERCENTAGE)
    return max(num_nodes * min(percentage, 100) // 100, MIN_FEASIBLE_NODES)


@dataclass
class ScheduleResult:
    node: str
    state: CycleState
    evaluated: int
    feasible: int


class Algorithm:
    def __init__(
        self,
        snapshot: Snapshot,
        plugins: PluginSet,
        percentage: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.snap = snapshot
        self.plugins = plugins
        self.percentage = percentage
        self.rng = rng or random.Random()
        self.next_start = 0

    # ------------------------------------------------------------------ entry point

    def schedule(self, pod: PodInfo) -> ScheduleResult:
        snap = self.snap
        n = len(snap)
        if n == 0:
            raise NoNodesAvailable(NO_NODES)
        state = CycleState()
        allowed = self._pre_filter(state, pod)
        nominated = snap.by_name.get(pod.nominated_node) if pod.nominated_node else None
        if nominated is not None and self.run_filters(state, pod, nominated) is None:
            return ScheduleResult(nominated.name, state, 1, 1)
        want = num_feasible_nodes_to_find(n, self.percentage)
        start = self.next_start % n
        fast = pod.plain and self._active_filters(state) <= _FAST_FILTERS
        if fast and allowed is None and snap.prefer_taint_nodes == 0 and snap.affinity_pods == 0:
            best, feasible, processed = self._one_pass(pod, state, start, want)
            self.next_start = (start + processed) % n
            if best < 0:
                raise self._fit_error(pod, state, allowed)
            return ScheduleResult(snap.nodes[best].name, state, processed, feasible)
        if fast:
            found, processed = self._fast_feasible(pod, state, self._order(allowed, start), want)
        else:
            found, processed = self._feasible(pod, state, self._order(allowed, start), want, None)
        if allowed is None:
            self.next_start = (start + processed) % n
        if not found:
            raise self._fit_error(pod, state, allowed)
        if len(found) == 1:
            return ScheduleResult(snap.nodes[found[0]].name, state, processed, 1)
        nodes = [snap.nodes[i] for i in found]
        active = [pl for pl in self.plugins.score if pl.pre_score(state, pod, nodes, snap)]
        if fast and {pl.name for pl in active} <= _FAST_SCORES:
            totals = self._fast_scores(pod, found)
        else:
            totals = self._scores(state, pod, nodes, active)
        best = self._select(found, totals)
        return ScheduleResult(snap.nodes[best].name, state, processed, len(found))

    def _order(self, allowed: frozenset[str] | None, start: int) -> Iterable[int]:
        """Node indexes to try: the PreFilter-narrowed set, or all nodes round-robin from ``start``."""
        snap = self.snap
        if allowed is not None:
            return sorted(snap.by_name[name].index for name in allowed if name in snap.by_name)
        return chain(range(start, len(snap)), range(0, start))

    def _fit_error(self, pod: PodInfo, state: CycleState, allowed: frozenset[str] | None) -> FitError:
        """Filter every node again, recording why each one failed."""
        snap = self.snap
        diagnosis = Diagnosis()
        self._feasible(pod, state, self._order(allowed, 0), len(snap), diagnosis)
        if allowed is not None:
            plugins: list[str] = state.data.get("narrowed_by", [])
            narrowed = unresolvable("", f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(plugins))}]")
            for ni in snap.nodes:
                diagnosis.statuses.setdefault(ni.name, narrowed)
            diagnosis.rejected_by.update(plugins)
        return FitError(pod, len(snap), diagnosis, state)

    # ------------------------------------------------------------------ filters

    def _pre_filter(self, state: CycleState, pod: PodInfo) -> frozenset[str] | None:
        """``RunPreFilterPlugins``: a rejection rejects every node; PreFilterResults that
        narrow the nodes are intersected, and an empty intersection rejects the pod."""
        allowed: frozenset[str] | None = None
        narrowing: list[str] = []
        for pl in self.plugins.pre_filter:
            result, status = pl.pre_filter(state, pod, self.snap)
            if status is not None and status.code != Code.SUCCESS:
                status.plugin = status.plugin or pl.name
                raise self._reject_all(pod, state, status, {pl.name, *narrowing})
            if result is not None and result.node_names is not None:
                allowed = result.node_names if allowed is None else allowed & result.node_names
                narrowing.append(pl.name)
                state.data["narrowed_by"] = narrowing
                if not allowed:
                    msg = f"node(s) didn't satisfy plugin(s) [{' '.join(narrowing)}] simultaneously"
                    if len(narrowing) == 1:
                        msg = f"node(s) didn't satisfy plugin {narrowing[0]}"
                    raise self._reject_all(pod, state, unresolvable(pl.name, msg), set(narrowing))
        return allowed

    def _reject_all(self, pod: PodInfo, state: CycleState, status: Status, plugins: set[str]) -> FitError:
        """A PreFilter verdict for every node: the FitError that carries it."""
        d = Diagnosis(pre_filter_msg=status.message, rejected_by=plugins)
        d.statuses = {ni.name: status for ni in self.snap.nodes}
        return FitError(pod, len(self.snap), d, state)

    def _active_filters(self, state: CycleState) -> set[str]:
        return {pl.name for pl in self.plugins.filter if pl.name not in state.skip_filter}

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """``RunFilterPluginsWithNominatedPods``: first failing status, None when the node fits."""
        nominated = self.snap.nominated.get(node.name)
        if nominated:
            others = [p for p in nominated.values() if p.key != pod.key and p.priority >= pod.priority]
            if others:
                clone = node.clone()
                st = state.clone()
                for other in others:
                    clone.add_pod(other)
                    for pl in self.plugins.pre_filter:
                        pl.add_pod(st, pod, other, clone)
                status = self._filters(st, pod, clone)
                if status is not None:
                    return status
        return self._filters(state, pod, node)

    def _filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        skip = state.skip_filter
        for pl in self.plugins.filter:
            if pl.name in skip:
                continue
            status = pl.filter(state, pod, node)
            if status is not None:
                status.plugin = status.plugin or pl.name
                return status
        return None

    def _feasible(
        self, pod: PodInfo, state: CycleState, order: Iterable[int], want: int, diagnosis: Diagnosis | None
    ) -> tuple[list[int], int]:
        nodes = self.snap.nodes
        found: list[int] = []
        processed = 0
        for i in order:
            processed += 1
            status = self.run_filters(state, pod, nodes[i])
            if status is None:
                found.append(i)
                if len(found) >= want:
                    break
            elif diagnosis is not None:
                diagnosis.statuses[nodes[i].name] = status
                diagnosis.rejected_by.add(status.plugin)
        return found, processed

    def _fast_feasible(
        self, pod: PodInfo, state: CycleState, order: Iterable[int], want: int
    ) -> tuple[list[int], int]:
        s = self.snap
        plain, nodes = s.plain, s.nodes
        fc, fm, fe, fp = s.free_cpu, s.free_mem, s.free_eph, s.free_pods
        r = pod.requests
        rc = r.cpu or _NO_REQUEST
        rm = r.memory or _NO_REQUEST
        re = r.ephemeral or _NO_REQUEST
        found: list[int] = []
        processed = 0
        for i in order:
            processed += 1
            if plain[i]:
                if fp[i] < 1 or fc[i] < rc or fm[i] < rm or fe[i] < re:
                    continue
            elif self.run_filters(state, pod, nodes[i]) is not None:
                continue
            found.append(i)
            if len(found) >= want:
                break
        return found, processed

    # ------------------------------------------------------------------ scores

    def _scores(
        self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], active: list[ScorePlugin]
    ) -> list[int]:
        totals = [0] * len(nodes)
        for pl in active:
            scores = [pl.score(state, pod, ni) for ni in nodes]
            pl.normalize(state, pod, scores)
            w = pl.weight
            for j, sc in enumerate(scores):
                totals[j] += w * sc
        return totals

    def _fast_scores(self, pod: PodInfo, found: list[int]) -> list[int]:
        """LeastAllocated + BalancedAllocation (weights 1 and 1) straight off the arrays."""
        return [self._resource_score(pod, i) for i in found]

    def _resource_score(self, pod: PodInfo, i: int) -> int:
        """NodeResourcesFit's LeastAllocated + BalancedAllocation of node ``i`` (weights 1, 1)."""
        s = self.snap
        a_cpu, a_mem = s.alloc_cpu[i], s.alloc_mem[i]
        if a_cpu <= 0 or a_mem <= 0:
            return 0
        uc, um = s.nz_cpu[i] + pod.nz_cpu, s.nz_mem[i] + pod.nz_mem
        la = ((a_cpu - uc) * MAX_NODE_SCORE // a_cpu if uc <= a_cpu else 0) + (
            (a_mem - um) * MAX_NODE_SCORE // a_mem if um <= a_mem else 0
        )
        f1 = min((s.req_cpu[i] + pod.requests.cpu) / a_cpu, 1.0)
        f2 = min((s.req_mem[i] + pod.requests.memory) / a_mem, 1.0)
        return la // 2 + int((1 - abs(f1 - f2) / 2) * MAX_NODE_SCORE)

    def _fit_and_score(self, pod: PodInfo, i: int) -> int:
        """The score cache entry of node ``i``: MISFIT when the requests do not fit (a zero
        request always fits), else :meth:`_resource_score`."""
        s = self.snap
        r = pod.requests
        if (
            s.free_pods[i] < 1
            or s.free_cpu[i] < (r.cpu or _NO_REQUEST)
            or s.free_mem[i] < (r.memory or _NO_REQUEST)
            or s.free_eph[i] < (r.ephemeral or _NO_REQUEST)
        ):
            return MISFIT
        return self._resource_score(pod, i)

    def _one_pass(self, pod: PodInfo, state: CycleState, start: int, want: int) -> tuple[int, int, int]:
        """Filter and score in one sweep from ``start`` (resource-only pod, no other scorer active).

        Returns (best node index or -1, feasible nodes found, nodes processed).  Computes
        exactly NodeResourcesFit + LeastAllocated + BalancedAllocation, ties broken at
        random; verdicts come from the snapshot's cache for the pod's request shape, so
        only nodes that changed since the last pod of that shape are computed again.
        """
        s = self.snap
        r = pod.requests
        cache = s.scores_for((r.cpu, r.memory, r.ephemeral, pod.nz_cpu, pod.nz_mem))
        plain, nodes = s.plain, s.nodes
        found = processed = 0
        best_score = -1
        ties: list[int] = []
        for i in chain(range(start, len(nodes)), range(start)):
            processed += 1
            score = cache[i]
            if score == UNKNOWN:
                score = cache[i] = self._fit_and_score(pod, i)
            if plain[i]:
                if score < 0:
                    continue
            elif self.run_filters(state, pod, nodes[i]) is not None:
                continue
            elif score < 0:  # fits once the filters' view (nominated pods) is taken into account
                score = self._resource_score(pod, i)
            found += 1
            if score > best_score:
                best_score = score
                ties = [i]
            elif score == best_score:
                ties.append(i)
            if found >= want:
                break
        if not ties:
            return -1, 0, processed
        return (ties[0] if len(ties) == 1 else self.rng.choice(ties)), found, processed

    def _select(self, found: list[int], totals: list[int]) -> int:
        """The highest total; ties broken uniformly at random."""
        best_score = max(totals)
        ties = [i for i, sc in zip(found, totals, strict=True) if sc == best_score]
        return ties[0] if len(ties) == 1 else self.rng.choice(ties)
