"""A pod parsed once for scheduling: requests, priority, tolerations, affinity, spread.

The scheduler looks at a pending pod thousands of times per cycle (once per node), so
everything it needs is extracted up front into plain attributes, like kube-scheduler's
``framework.PodInfo`` (which pre-parses affinity terms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import errors
from kubelite.api.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    from_label_selector_dict,
)
from kubelite.scheduler.resources import Resources, pod_requests

Obj = dict[str, Any]

DEFAULT_SCHEDULER = "default-scheduler"
HOSTNAME_LABEL = "kubernetes.io/hostname"
_NODE_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}


@dataclass(slots=True, frozen=True)
class NodeSelectorTerm:
    """One ``nodeSelectorTerms`` entry: label expressions AND ``metadata.name`` field expressions."""

    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if not self.labels and not self.fields:
            return False  # an empty term matches no objects
        if not all(r.matches(labels) for r in self.labels):
            return False
        return all(r.matches({"metadata.name": node_name}) for r in self.fields)


@dataclass(slots=True, frozen=True)
class NodeSelector:
    """``v1.NodeSelector``: the terms are ORed."""

    terms: tuple[NodeSelectorTerm, ...]

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        return any(t.matches(node_name, labels) for t in self.terms)


@dataclass(slots=True, frozen=True)
class AffinityTerm:
    """A pod (anti-)affinity term with its namespaces resolved (``framework.AffinityTerm``)."""

    selector: LabelSelector
    namespaces: frozenset[str]
    ns_selector: LabelSelector  # match_nothing() when the term has no namespaceSelector
    topology_key: str
    weight: int = 0

    def matches(self, other: PodInfo, ns_labels: Mapping[str, str] | None) -> bool:
        if other.namespace not in self.namespaces and (
            self.ns_selector.nothing or ns_labels is None or not self.ns_selector.matches(ns_labels)
        ):
            return False
        return self.selector.matches(other.labels)


@dataclass(slots=True, frozen=True)
class SpreadConstraint:
    """A ``topologySpreadConstraints`` entry (``matchLabelKeys`` folded into the selector)."""

    max_skew: int
    topology_key: str
    selector: LabelSelector
    hard: bool
    min_domains: int
    honor_node_affinity: bool
    honor_taints: bool


@dataclass(slots=True, frozen=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, taint: Taint) -> bool:
        """``Toleration.ToleratesTaint``."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass(slots=True, frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(slots=True)
class PodInfo:
    """Everything the plugins read from a pod."""

    obj: Obj
    key: str
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    node_name: str
    scheduler_name: str
    priority_class: str
    priority: int
    preemption_never: bool
    requests: Resources
    nz_cpu: int
    nz_mem: int
    node_selector: dict[str, str]
    required_node_affinity: NodeSelector | None
    preferred_node_affinity: tuple[tuple[int, NodeSelectorTerm], ...]
    tolerations: tuple[Toleration, ...]
    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread: tuple[SpreadConstraint, ...]
    claims: tuple[str, ...]
    host_ports: tuple[tuple[str, str, int], ...]
    terminating: bool
    nominated_node: str
    plain: bool = field(default=False)

    @property
    def has_affinity(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )

    def with_node(self, node_name: str) -> PodInfo:
        """A copy assigned to ``node_name`` (an assumed pod)."""
        copy = PodInfo(**{f: getattr(self, f) for f in self.__slots__})
        copy.node_name = node_name
        return copy


def _requirement(expr: Obj, field_mode: bool) -> Requirement:
    op_name = str(expr.get("operator", ""))
    op = _NODE_OPERATORS.get(op_name)
    if op is None:
        raise errors.BadRequest(f'"{op_name}" is not a valid node selector operator')
    key = str(expr.get("key", ""))
    if field_mode and key != "metadata.name":
        raise errors.BadRequest(f'"{key}" is not a valid field selector key for node selectors')
    return Requirement(key, op, tuple(str(v) for v in expr.get("values") or ()))


def parse_node_selector_term(term: Obj) -> NodeSelectorTerm:
    return NodeSelectorTerm(
        tuple(_requirement(e, False) for e in term.get("matchExpressions") or []),
        tuple(_requirement(e, True) for e in term.get("matchFields") or []),
    )


def parse_node_selector(sel: Obj) -> NodeSelector:
    return NodeSelector(tuple(parse_node_selector_term(t) for t in sel.get("nodeSelectorTerms") or []))


def _affinity_term(term: Obj, namespace: str, labels: Mapping[str, str], weight: int = 0) -> AffinityTerm:
    raw_sel = term.get("labelSelector")
    sel = from_label_selector_dict(raw_sel)
    keys = [k for k in term.get("matchLabelKeys") or [] if k in labels]
    if keys and raw_sel is not None:
        extra = [Requirement(k, Operator.IN, (labels[k],)) for k in keys]
        sel = LabelSelector.of([*sel.requirements, *extra])
    mismatch = [k for k in term.get("mismatchLabelKeys") or [] if k in labels]
    if mismatch and raw_sel is not None:
        extra = [Requirement(k, Operator.NOT_IN, (labels[k],)) for k in mismatch]
        sel = LabelSelector.of([*sel.requirements, *extra])
    ns_raw = term.get("namespaceSelector")
    namespaces = frozenset(term.get("namespaces") or ())
    if not namespaces and ns_raw is None:
        namespaces = frozenset({namespace})
    ns_sel = from_label_selector_dict(ns_raw)
    return AffinityTerm(sel, namespaces, ns_sel, str(term.get("topologyKey", "")), weight)


def _terms(
    block: Obj | None, kind: str, namespace: str, labels: Mapping[str, str]
) -> tuple[AffinityTerm, ...]:
    raw = (block or {}).get(kind)
    if not raw:
        return ()
    if kind.startswith("preferred"):
        return tuple(
            _affinity_term(w.get("podAffinityTerm") or {}, namespace, labels, int(w.get("weight") or 0))
            for w in raw
        )
    return tuple(_affinity_term(t, namespace, labels) for t in raw)


def _spread(spec: Obj, labels: Mapping[str, str]) -> tuple[SpreadConstraint, ...]:
    out = []
    for c in spec.get("topologySpreadConstraints") or []:
        raw_sel = c.get("labelSelector")
        sel = from_label_selector_dict(raw_sel)
        keys = [k for k in c.get("matchLabelKeys") or [] if k in labels]
        if keys and raw_sel is not None:
            sel = LabelSelector.of(
                [*sel.requirements, *(Requirement(k, Operator.IN, (labels[k],)) for k in keys)]
            )
        out.append(
            SpreadConstraint(
                max_skew=int(c.get("maxSkew") or 1),
                topology_key=str(c.get("topologyKey", "")),
                selector=sel,
                hard=c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule",
                min_domains=int(c.get("minDomains") or 1),
                honor_node_affinity=c.get("nodeAffinityPolicy", "Honor") == "Honor",
                honor_taints=c.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return tuple(out)


def parse_tolerations(raw: list[Obj] | None) -> tuple[Toleration, ...]:
    return tuple(
        Toleration(
            str(t.get("key") or ""),
            str(t.get("operator") or "Equal"),
            str(t.get("value") or ""),
            str(t.get("effect") or ""),
        )
        for t in raw or []
    )


def parse_taints(raw: list[Obj] | None) -> tuple[Taint, ...]:
    return tuple(
        Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in raw or []
    )


def _host_ports(spec: Obj) -> tuple[tuple[str, str, int], ...]:
    ports = []
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            hp = p.get("hostPort")
            if hp:
                ports.append((str(p.get("hostIP") or "0.0.0.0"), str(p.get("protocol") or "TCP"), int(hp)))
    return tuple(ports)


def parse_pod(pod: Obj, priority: int | None = None) -> PodInfo:
    """Build a :class:`PodInfo`; ``priority`` overrides ``spec.priority`` when the API left it unset.

    Malformed selectors (which the API server may not have rejected) raise BadRequest.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ns = str(meta.get("namespace") or "")
    labels = dict(meta.get("labels") or {})
    affinity = spec.get("affinity") or {}
    na = affinity.get("nodeAffinity") or {}
    pa = affinity.get("podAffinity")
    paa = affinity.get("podAntiAffinity")
    req_na = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    requests, nz_cpu, nz_mem = pod_requests(spec)
    prio = spec.get("priority")
    info = PodInfo(
        obj=pod,
        key=f"{ns}/{meta.get('name', '')}",
        namespace=ns,
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        labels=labels,
        node_name=str(spec.get("nodeName") or ""),
        scheduler_name=str(spec.get("schedulerName") or DEFAULT_SCHEDULER),
        priority_class=str(spec.get("priorityClassName") or ""),
        priority=int(prio) if isinstance(prio, int) else (priority or 0),
        preemption_never=spec.get("preemptionPolicy") == "Never",
        requests=requests,
        nz_cpu=nz_cpu,
        nz_mem=nz_mem,
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_node_affinity=parse_node_selector(req_na) if req_na is not None else None,
        preferred_node_affinity=tuple(
            (int(p.get("weight") or 0), parse_node_selector_term(p.get("preference") or {}))
            for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ),
        tolerations=parse_tolerations(spec.get("tolerations")),
        required_affinity=_terms(pa, "requiredDuringSchedulingIgnoredDuringExecution", ns, labels),
        required_anti_affinity=_terms(paa, "requiredDuringSchedulingIgnoredDuringExecution", ns, labels),
        preferred_affinity=_terms(pa, "preferredDuringSchedulingIgnoredDuringExecution", ns, labels),
        preferred_anti_affinity=_terms(paa, "preferredDuringSchedulingIgnoredDuringExecution", ns, labels),
        spread=_spread(spec, labels),
        claims=tuple(
            str(v["persistentVolumeClaim"].get("claimName", ""))
            for v in spec.get("volumes") or []
            if v.get("persistentVolumeClaim")
        ),
        host_ports=_host_ports(spec),
        terminating=bool(meta.get("deletionTimestamp")),
        nominated_node=str(status.get("nominatedNodeName") or ""),
    )
    info.plain = not (
        info.node_selector
        or info.required_node_affinity
        or info.preferred_node_affinity
        or info.has_affinity
        or info.spread
        or info.claims
        or info.host_ports
        or info.requests.scalar
    )
    return info


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
