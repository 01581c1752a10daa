"""InterPodAffinity: required pod affinity/anti-affinity filter, preferred terms score.

Filter, in kube-scheduler's order and wording:

* the pod's required affinity terms need a matching pod in the node's topology domain
  (``node(s) didn't match pod affinity rules``, unresolvable) - unless no pod anywhere
  matches and the pod matches its own terms (the first pod of a group);
* the pod's required anti-affinity terms forbid domains holding a matching pod
  (``node(s) didn't match pod anti-affinity rules``);
* existing pods' required anti-affinity terms forbid their domain to a pod they match
  (``node(s) didn't satisfy existing pods anti-affinity rules``).

Score: for every topology domain, the weights of matching preferred terms (the pod's and
the existing pods', required affinity of existing pods counting 1), min-max scaled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kubelite.scheduler import framework as fw
from kubelite.scheduler.framework import MAX_NODE_SCORE, CycleState, Listers, PreFilterResult, Status
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.plugins.base import BasePlugin
from kubelite.scheduler.podinfo import AffinityTerm, PodInfo
from kubelite.scheduler.snapshot import Snapshot

NAME = "InterPodAffinity"
AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1
Pair = tuple[str, str]


@dataclass
class _State:
    existing_anti: Counter[Pair] = field(default_factory=Counter)
    affinity: Counter[Pair] = field(default_factory=Counter)
    anti: Counter[Pair] = field(default_factory=Counter)


def _count(counter: Counter[Pair], terms: tuple[AffinityTerm, ...], node: NodeInfo, sign: int) -> None:
    for t in terms:
        value = node.labels.get(t.topology_key)
        if value is not None:
            counter[(t.topology_key, value)] += sign


class InterPodAffinity(BasePlugin):
    name = NAME
    weight = 2
    event_names = (
        fw.ASSIGNED_POD_ADD,
        fw.ASSIGNED_POD_UPDATE,
        fw.ASSIGNED_POD_DELETE,
        fw.NODE_ADD,
        fw.NODE_UPDATE,
        fw.NAMESPACE_CHANGE,
    )

    def __init__(self, listers: Listers) -> None:
        self.listers = listers

    def _matching(self, terms: tuple[AffinityTerm, ...], other: PodInfo) -> tuple[AffinityTerm, ...]:
        if not terms:
            return ()
        ns = self.listers.namespace_labels(other.namespace)
        return tuple(t for t in terms if t.matches(other, ns))

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snap: Snapshot
    ) -> tuple[PreFilterResult | None, Status | None]:
        st = _State()
        for other, node in snap.anti_affinity.values():
            _count(st.existing_anti, self._matching(other.required_anti_affinity, pod), node, 1)
        if pod.required_affinity or pod.required_anti_affinity:
            for node in snap.nodes:
                for other in node.pods.values():
                    self._account(st, pod, other, node, 1)
        if not (st.existing_anti or pod.required_affinity or pod.required_anti_affinity):
            state.skip_filter.add(NAME)
        state.data[NAME] = st
        return None, None

    def _account(self, st: _State, pod: PodInfo, other: PodInfo, node: NodeInfo, sign: int) -> None:
        _count(st.affinity, self._matching(pod.required_affinity, other), node, sign)
        _count(st.anti, self._matching(pod.required_anti_affinity, other), node, sign)

    def add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, other, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, other, node, -1)

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, sign: int) -> None:
        st = state.data.get(NAME)
        if not isinstance(st, _State):
            return
        _count(st.existing_anti, self._matching(other.required_anti_affinity, pod), node, sign)
        self._account(st, pod, other, node, sign)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st = state.data.get(NAME)
        if not isinstance(st, _State):
            return None
        if not self._satisfies_affinity(st, pod, node):
            return fw.unresolvable(NAME, AFFINITY_REASON)
        for t in pod.required_anti_affinity:
            value = node.labels.get(t.topology_key)
            if value is not None and st.anti[(t.topology_key, value)] > 0:
                return fw.unschedulable(NAME, ANTI_REASON)
        if st.existing_anti:
            for pair in node.labels.items():
                if st.existing_anti[pair] > 0:
                    return fw.unschedulable(NAME, EXISTING_ANTI_REASON)
        return None

    def _satisfies_affinity(self, st: _State, pod: PodInfo, node: NodeInfo) -> bool:
        terms = pod.required_affinity
        if not terms:
            return True
        pods_exist = True
        for t in terms:
            value = node.labels.get(t.topology_key)
            if value is None:
                return False
            if st.affinity[(t.topology_key, value)] <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # the first pod of a self-affine group may go anywhere with the topology keys
        return not +st.affinity and len(self._matching(terms, pod)) == len(terms)

    # ------------------------------------------------------------------ score

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snap: Snapshot) -> bool:
        has_preferred = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if not has_preferred and snap.affinity_pods == 0:
            return False
        scores: Counter[Pair] = Counter()
        for node in snap.nodes:
            if not has_preferred and node.affinity_pods == 0:
                continue
            for other in node.pods.values():
                if has_preferred or other.has_affinity:
                    self._score_pair(scores, pod, other, node)
        state.data[NAME + "/score"] = scores
        return bool(scores)

    def _score_pair(self, scores: Counter[Pair], pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        def add(terms: tuple[AffinityTerm, ...], sign: int, weight: int | None = None) -> None:
            for t in terms:
                value = node.labels.get(t.topology_key)
                if value is not None:
                    scores[(t.topology_key, value)] += sign * (t.weight if weight is None else weight)

        add(self._matching(pod.preferred_affinity, other), 1)
        add(self._matching(pod.preferred_anti_affinity, other), -1)
        add(self._matching(other.preferred_affinity, pod), 1)
        add(self._matching(other.preferred_anti_affinity, pod), -1)
        add(self._matching(other.required_affinity, pod), 1, HARD_POD_AFFINITY_WEIGHT)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores = state.data.get(NAME + "/score")
        if not isinstance(scores, Counter):
            return 0
        return sum(scores.get(pair, 0) for pair in node.labels.items())

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (s - lo) // diff if diff > 0 else 0
