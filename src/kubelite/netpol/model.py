"""Typed, pre-parsed views of NetworkPolicies, Pods and Namespaces.

The enforcer parses each object once, when its informer reports it, so the compiler only
works on these immutable values.  The semantics mirrored are those of
``networking.k8s.io/v1`` NetworkPolicy (``pkg/apis/networking/types.go``):

* ``policyTypes`` defaults to ``[Ingress]`` plus ``Egress`` when egress rules exist;
* a missing or empty ``from``/``to`` list matches every peer; an empty ``ports`` list
  matches every port and protocol; a port's protocol defaults to TCP;
* a peer is a ``podSelector`` (pods of the policy's namespace), a ``namespaceSelector``
  (every pod of the matching namespaces), both (matching pods in matching namespaces), or
  an ``ipBlock`` (``cidr`` minus its ``except`` list).

Only IPv4 is enforced: the nftables table is of family ``ip``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubelite.api.errors import BadRequest
from kubelite.api.selectors import LabelSelector, from_label_selector_dict

log = logging.getLogger("kubelite.netpol")
Obj = dict[str, Any]
LabelKey = frozenset[tuple[str, str]]

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("TCP", "UDP", "SCTP")


class Direction(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


@dataclass(frozen=True)
class PortSpec:
    """One ``NetworkPolicyPort``: a number (optionally up to ``end``), a name, or neither (all)."""

    protocol: str = "TCP"
    port: int | None = None
    end: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class Peer:
    """One ``NetworkPolicyPeer``.  ``cidr`` set means an ipBlock; otherwise selectors."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    cidr: ipaddress.IPv4Network | None = None
    excepts: tuple[ipaddress.IPv4Network, ...] = ()


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule: ``peers`` None means every peer."""

    peers: tuple[Peer, ...] | None
    ports: tuple[PortSpec, ...]


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    types: frozenset[Direction]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True)
class ContainerPort:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True)
class PodInfo:
    """What policies need of a pod: where it runs, its IPv4 addresses, labels and named ports."""

    namespace: str
    name: str
    node: str
    ips: tuple[str, ...]
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @functools.cached_property
    def label_key(self) -> LabelKey:
        return label_key(self.labels)

    def named_port(self, name: str, protocol: str) -> int | None:
        """The container port called ``name`` with that protocol, as named ports resolve."""
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None


def label_key(labels: Mapping[str, str]) -> LabelKey:
    """A hashable form of a label set, so selector results can be cached per label set."""
    return frozenset(labels.items())


@functools.lru_cache(maxsize=1 << 16)
def selects(selector: LabelSelector, labels: LabelKey) -> bool:
    """``selector.matches(labels)``, memoised: pods of one workload share their labels."""
    return selector.matches(dict(labels))


# ---------------------------------------------------------------------------- policies


def _selector(raw: Any) -> LabelSelector | None:
    if raw is None:
        return None
    try:
        return from_label_selector_dict(raw)
    except BadRequest as e:
        log.warning("invalid label selector %r in a NetworkPolicy: %s (selects nothing)", raw, e)
        return LabelSelector.match_nothing()


def _network(raw: Any) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(str(raw), strict=False)
    except ValueError:
        log.warning("invalid ipBlock CIDR %r in a NetworkPolicy (ignored)", raw)
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def parse_peer(raw: Mapping[str, Any]) -> Peer | None:
    """A peer, or None when it can never match an IPv4 address (IPv6 or invalid ipBlock)."""
    block = raw.get("ipBlock")
    if block is not None:
        cidr = _network(block.get("cidr"))
        if cidr is None:
            return None
        excepts = tuple(n for n in (_network(e) for e in block.get("except") or []) if n is not None)
        return Peer(cidr=cidr, excepts=excepts)
    pods = _selector(raw.get("podSelector"))
    namespaces = _selector(raw.get("namespaceSelector"))
    if pods is None and namespaces is None:
        return None  # rejected by validation: a peer must say something
    return Peer(pod_selector=pods, namespace_selector=namespaces)


def parse_port(raw: Mapping[str, Any]) -> PortSpec | None:
    protocol = str(raw.get("protocol") or "TCP").upper()
    if protocol not in PROTOCOLS:
        return None
    port = raw.get("port")
    if port is None:
        return PortSpec(protocol)
    if isinstance(port, str) and not port.isdigit():
        return PortSpec(protocol, name=port)
    number = int(port)
    end = raw.get("endPort")
    return PortSpec(protocol, number, int(end) if end is not None and int(end) > number else None)


def parse_rule(raw: Mapping[str, Any], peers_field: str) -> Rule:
    raw_peers = raw.get(peers_field) or []
    peers: tuple[Peer, ...] | None = None
    if raw_peers:
        peers = tuple(p for p in (parse_peer(r) for r in raw_peers) if p is not None)
    ports = tuple(p for p in (parse_port(r) for r in raw.get("ports") or []) if p is not None)
    if raw.get("ports") and not ports:
        # Every listed port is unusable (e.g. an unknown protocol): the rule matches nothing.
        peers = ()
    return Rule(peers, ports)


def policy_types(spec: Mapping[str, Any]) -> frozenset[Direction]:
    """``policyTypes``, defaulted as the API server does when absent."""
    raw = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
    return frozenset(Direction(t) for t in raw if t in (Direction.INGRESS, Direction.EGRESS))


def parse_policy(obj: Obj) -> Policy:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    selector = _selector(spec.get("podSelector") or {}) or LabelSelector.everything()
    return Policy(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        pod_selector=selector,
        types=policy_types(spec),
        ingress=tuple(parse_rule(r, "from") for r in spec.get("ingress") or []),
        egress=tuple(parse_rule(r, "to") for r in spec.get("egress") or []),
    )


# ---------------------------------------------------------------------------- pods


def _ipv4s(obj: Obj) -> tuple[str, ...]:
    status = obj.get("status") or {}
    raw = [p.get("ip", "") for p in status.get("podIPs") or []] or [status.get("podIP", "")]
    out: list[str] = []
    for ip in raw:
        try:
            if ip and ipaddress.ip_address(ip).version == 4 and ip not in out:
                out.append(ip)
        except ValueError:
            continue
    return tuple(out)


def _container_ports(spec: Mapping[str, Any]) -> tuple[ContainerPort, ...]:
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    out = []
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("name") and p.get("containerPort"):
                proto = str(p.get("protocol") or "TCP").upper()
                out.append(ContainerPort(str(p["name"]), proto, int(p["containerPort"])))
    return tuple(out)


def parse_pod(obj: Obj) -> PodInfo | None:
    """The pod's policy view, or None when policies ignore it.

    Ignored: host-network pods (their address is the node's), finished pods (their IP may
    be reused) and pods without an IPv4 address yet.
    """
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    ips = _ipv4s(obj)
    if not ips:
        return None
    meta = obj.get("metadata") or {}
    return PodInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        node=str(spec.get("nodeName") or ""),
        ips=ips,
        labels=dict(meta.get("labels") or {}),
        ports=_container_ports(spec),
    )


def namespace_labels(obj: Obj) -> dict[str, str]:
    """A namespace's labels, with ``kubernetes.io/metadata.name`` as the API server sets it."""
    meta = obj.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels.setdefault(NAMESPACE_NAME_LABEL, str(meta.get("name", "")))
    return labels
