"""Preemption (DefaultPreemption PostFilter): make room for a pod by evicting lower-priority pods.

Mirrors ``pkg/scheduler/framework/preemption`` and ``plugins/defaultpreemption``:

1. a pod with ``preemptionPolicy: Never`` is not eligible; neither is one whose nominated
   node still has a lower-priority pod terminating (it already preempted; wait for that);
2. only nodes rejected with a *resolvable* status (``Insufficient cpu``, anti-affinity ...)
   are candidates - taints, selectors and the like cannot be fixed by evicting pods;
3. on each candidate (a sample of max(10 %, 100) of them from a random offset) all
   lower-priority pods are removed; if the pod then fits, victims are reprieved from the
   most important down while the pod still fits;
4. the node with the least important victims wins: lowest highest-priority victim, then
   lowest sum of priorities, then fewest victims, then latest start time.

When no candidate exists the PostFilter message is
``preemption: 0/N nodes are available: ...`` with each node's dry-run reason (``No
preemption victims found for incoming pod``) or ``Preemption is not helpful for
scheduling``.  Executing the choice (deleting victims, nominating the node) is the
scheduler's job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kubelite.scheduler.framework import Code, CycleState, Status, unresolvable
from kubelite.scheduler.nodeinfo import NodeInfo
from kubelite.scheduler.podinfo import PodInfo
from kubelite.scheduler.schedule_one import Algorithm, Diagnosis, FitError, fit_error_message

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
MIN_CANDIDATE_PERCENTAGE = 10
MIN_CANDIDATE_ABSOLUTE = 100
_INT32_SPAN = 2**31


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo] = field(default_factory=list)


@dataclass
class Outcome:
    """The PostFilter result: a candidate to act on, or the message explaining why not."""

    candidate: Candidate | None
    message: str


def _start_time(p: PodInfo) -> str:
    status = p.obj.get("status") or {}
    return str(status.get("startTime") or (p.obj.get("metadata") or {}).get("creationTimestamp") or "")


def _more_important(p: PodInfo) -> tuple[int, str]:
    """Sort key: higher priority first, then the one running longer (``MoreImportantPod``)."""
    return (-p.priority, _start_time(p))


class Preemptor:
    def __init__(self, algorithm: Algorithm, rng: random.Random | None = None) -> None:
        self.algorithm = algorithm
        self.rng = rng or random.Random()

    def preempt(self, pod: PodInfo, state: CycleState, err: FitError) -> Outcome:
        snap = self.algorithm.snap
        ineligible = self._ineligible(pod, err)
        if ineligible:
            return Outcome(None, "preemption: " + ineligible)
        statuses = err.diagnosis.statuses
        potential = [
            ni for ni in snap.nodes if (st := statuses.get(ni.name)) and st.code == Code.UNSCHEDULABLE
        ]
        dry: dict[str, Status] = {}
        candidates = self._dry_run(pod, state, potential, dry) if potential else []
        if not candidates:
            absent = unresolvable("DefaultPreemption", NOT_HELPFUL)
            d = Diagnosis(statuses={ni.name: dry.get(ni.name, absent) for ni in snap.nodes})
            return Outcome(None, "preemption: " + fit_error_message(len(snap), d))
        return Outcome(self._select(candidates), "")

    def _ineligible(self, pod: PodInfo, err: FitError) -> str:
        if pod.preemption_never:
            return NEVER
        node = pod.nominated_node
        st = err.diagnosis.statuses.get(node) if node else None
        if node and (st is None or st.code != Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
            ni = self.algorithm.snap.by_name.get(node)
            if ni is not None and any(p.terminating and p.priority < pod.priority for p in ni.pods.values()):
                return TERMINATING
        return ""

    def _dry_run(
        self, pod: PodInfo, state: CycleState, potential: list[NodeInfo], dry: dict[str, Status]
    ) -> list[Candidate]:
        n = len(potential)
        wanted = min(max(n * MIN_CANDIDATE_PERCENTAGE // 100, MIN_CANDIDATE_ABSOLUTE), n)
        offset = self.rng.randrange(n)
        out: list[Candidate] = []
        for i in range(n):
            ni = potential[(offset + i) % n]
            victims, status = self.select_victims(pod, state, ni)
            if status is None and victims:
                out.append(Candidate(ni.name, victims))
                if len(out) >= wanted:
                    break
            elif status is not None:
                dry[ni.name] = status
        return out

    def select_victims(
        self, pod: PodInfo, state: CycleState, node: NodeInfo
    ) -> tuple[list[PodInfo], Status | None]:
        """``SelectVictimsOnNode``: the fewest, least important pods whose removal lets ``pod`` fit."""
        algo = self.algorithm
        potential = [p for p in node.pods.values() if p.priority < pod.priority]
        if not potential:
            return [], unresolvable("DefaultPreemption", NO_VICTIMS)
        clone = node.clone()
        st = state.clone()
        for p in potential:
            self._remove(st, pod, p, clone)
        status = algo.run_filters(st, pod, clone)
        if status is not None:
            return [], status
        victims: list[PodInfo] = []
        for p in sorted(potential, key=_more_important):
            self._add(st, pod, p, clone)
            if algo.run_filters(st, pod, clone) is not None:
                self._remove(st, pod, p, clone)
                victims.append(p)
        return victims, None

    def _remove(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        node.remove_pod(other.key)
        for pl in self.algorithm.plugins.pre_filter:
            pl.remove_pod(state, pod, other, node)

    def _add(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        node.add_pod(other)
        for pl in self.algorithm.plugins.pre_filter:
            pl.add_pod(state, pod, other, node)

    @staticmethod
    def _select(candidates: list[Candidate]) -> Candidate:
        """``pickOneNodeForPreemption`` (without PDB accounting: no PDB is ever violated here)."""

        def rank(c: Candidate) -> tuple[int, int, int, str]:
            top = max(v.priority for v in c.victims)
            total = sum(v.priority + _INT32_SPAN for v in c.victims)
            earliest = min(_start_time(v) for v in c.victims if v.priority == top)
            # later start of the most important victims is better: invert by sorting descending
            return (top, total, len(c.victims), _invert(earliest))

        return min(candidates, key=rank)


def _invert(s: str) -> str:
    """A string that sorts in the reverse order of ``s`` (RFC 3339 timestamps)."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in s)
