"""Compile NetworkPolicies + pods + namespaces into the node's :class:`Ruleset`.

Mirrors the NetworkPolicy semantics of Kubernetes 1.32:

* a pod is isolated for a direction when any policy of its namespace selects it
  (``podSelector``) and lists that direction in ``policyTypes``;
* an isolated pod's traffic is allowed when any rule of any selecting policy allows it
  (policies are OR-ed; a policy without rules for a direction only isolates);
* a rule allows a peer (``from``/``to``, empty = all) on a port (``ports``, empty = all);
  named ports resolve against the destination pod's container ports: the selected pod for
  ingress, the peer pods for egress.

Only pods of this node get chains (enforcement is per node); peers come from the whole
cluster.  Set and chain names embed a hash of the policy or pod key, so they are stable
across syncs and an update only touches what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubelite.api.selectors import LabelSelector
from kubelite.netpol import intervals
from kubelite.netpol.model import (
    NAMESPACE_NAME_LABEL,
    Direction,
    LabelKey,
    Peer,
    PodInfo,
    Policy,
    PortSpec,
    Rule,
    label_key,
    selects,
)
from kubelite.netpol.ruleset import Match, PodChain, PolicyChain, PortRange, PortTriple, Ruleset

_SHORT = {Direction.INGRESS: "in", Direction.EGRESS: "out"}
_READABLE_MAX = 48


def object_name(prefix: str, direction: Direction, key: str) -> str:
    """A stable nft identifier such as ``pol-in-1a2b3c4d5e-default/web`` (unique by hash)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{prefix}-{_SHORT[direction]}-{digest}-{key[:_READABLE_MAX]}"


@dataclass
class Cluster:
    """The cluster as the compiler sees it: every pod with an address, namespace labels."""

    pods: Mapping[str, PodInfo]
    namespaces: Mapping[str, Mapping[str, str]]
    by_namespace: dict[str, list[PodInfo]] = field(init=False)
    groups: dict[str, dict[LabelKey, list[PodInfo]]] = field(init=False)  # namespace -> labels -> pods
    _all: list[PodInfo] = field(init=False)
    _ints: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self._all = sorted(self.pods.values(), key=lambda p: p.key)
        self._ints = {ip: intervals.to_int(ip) for p in self._all for ip in p.ips}
        self.by_namespace = {}
        self.groups = {}
        for pod in self._all:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
            self.groups.setdefault(pod.namespace, {}).setdefault(pod.label_key, []).append(pod)

    def namespace_labels(self, name: str) -> LabelKey:
        return label_key(self.namespaces.get(name) or {NAMESPACE_NAME_LABEL: name})

    def select(self, namespace: str, selector: LabelSelector | None) -> list[PodInfo]:
        """The namespace's pods matching ``selector`` (None: all of them)."""
        if selector is None:
            return self.by_namespace.get(namespace, [])
        groups = self.groups.get(namespace, {})
        return [p for key, pods in groups.items() if selects(selector, key) for p in pods]

    def all_pods(self) -> list[PodInfo]:
        return self._all

    def ip_ints(self, pod: PodInfo) -> list[int]:
        return [self._ints[ip] for ip in pod.ips]


def _peer_pods(peer: Peer, policy_ns: str, cluster: Cluster) -> list[PodInfo]:
    """Pods a peer designates (for an ipBlock: the known pods whose address is inside it)."""
    if peer.cidr is not None:
        return [p for p in cluster.all_pods() if any(_in_block(peer, ip) for ip in p.ips)]
    if peer.namespace_selector is None:
        namespaces = [policy_ns]
    else:
        sel = peer.namespace_selector
        namespaces = [ns for ns in sorted(cluster.by_namespace) if selects(sel, cluster.namespace_labels(ns))]
    return [p for ns in namespaces for p in cluster.select(ns, peer.pod_selector)]


def _in_block(peer: Peer, ip: str) -> bool:
    assert peer.cidr is not None
    n = intervals.to_int(ip)
    return any(a <= n <= b for a, b in intervals.block(peer.cidr, peer.excepts))


class _Compiler:
    def __init__(self, cluster: Cluster, node_name: str) -> None:
        self.cluster = cluster
        self.local: dict[str, list[PodInfo]] = {}
        for p in cluster.all_pods():
            if p.node == node_name:
                self.local.setdefault(p.namespace, []).append(p)
        self.rs = Ruleset()
        self.pod_policies: dict[tuple[Direction, str], list[str]] = {}
        self._peer_cache: dict[tuple[str, Peer], list[PodInfo]] = {}

    def peer_pods(self, peer: Peer, policy_ns: str) -> list[PodInfo]:
        key = (policy_ns, peer)
        if key not in self._peer_cache:
            self._peer_cache[key] = _peer_pods(peer, policy_ns, self.cluster)
        return self._peer_cache[key]

    def add_policy(self, policy: Policy) -> None:
        selected = [
            p for p in self.local.get(policy.namespace, []) if selects(policy.pod_selector, p.label_key)
        ]
        if not selected:
            return
        for direction in sorted(policy.types):
            chain = object_name("pol", direction, policy.key)
            matches: list[Match] = []
            for i, rule in enumerate(policy.rules(direction)):
                matches.extend(self.rule_matches(policy, direction, rule, f"{chain}-{i}", selected))
            self.rs.policy_chains[chain] = PolicyChain(direction, policy.key, tuple(matches))
            for pod in selected:
                self.pod_policies.setdefault((direction, pod.key), []).append(chain)

    def rule_matches(
        self, policy: Policy, direction: Direction, rule: Rule, set_name: str, selected: list[PodInfo]
    ) -> list[Match]:
        peers: str | None = None
        if rule.peers is not None:
            peers = set_name
            self.rs.addr_sets[set_name] = self.peer_addresses(rule.peers, policy.namespace)
        literal = [s for s in rule.ports if s.name is None]
        named = [s for s in rule.ports if s.name is not None]
        if not rule.ports:
            return [Match(peers)]
        out = [Match(peers, PortRange(s.protocol, s.port, s.end or s.port)) for s in literal]
        if named:
            # Ingress: the selected pods' ports; egress: the ports of the pods the rule reaches.
            if direction is Direction.INGRESS:
                targets = selected
            elif rule.peers is None:
                targets = self.cluster.all_pods()
            else:
                targets = self.peers_pods(rule.peers, policy.namespace)
            named_set = f"{set_name}-ports"
            self.rs.port_sets[named_set] = _named_triples(targets, named)
            out.append(Match(peers, named=named_set))
        return out

    def peers_pods(self, peers: Iterable[Peer], policy_ns: str) -> list[PodInfo]:
        seen: dict[str, PodInfo] = {}
        for peer in peers:
            for p in self.peer_pods(peer, policy_ns):
                seen.setdefault(p.key, p)
        return list(seen.values())

    def peer_addresses(self, peers: Iterable[Peer], policy_ns: str) -> tuple[str, ...]:
        spans: list[intervals.Interval] = []
        for peer in peers:
            if peer.cidr is not None:
                spans.extend(intervals.block(peer.cidr, peer.excepts))
            else:
                spans.extend((n, n) for p in self.peer_pods(peer, policy_ns) for n in self.cluster.ip_ints(p))
        return intervals.render(spans)

    def add_pod_chains(self) -> None:
        for pod in (p for ns in sorted(self.local) for p in self.local[ns]):
            for direction in (Direction.INGRESS, Direction.EGRESS):
                policies = self.pod_policies.get((direction, pod.key))
                if not policies:
                    continue
                chain = object_name("pod", direction, pod.key)
                self.rs.pod_chains[chain] = PodChain(direction, pod.key, pod.ips, tuple(policies))
                for ip in pod.ips:
                    self.rs.pod_map(direction)[ip] = chain


def _named_triples(targets: Iterable[PodInfo], specs: Iterable[PortSpec]) -> tuple[PortTriple, ...]:
    out: set[PortTriple] = set()
    wanted = [(s.name, s.protocol) for s in specs if s.name is not None]
    for pod in targets:
        for name, protocol in wanted:
            number = pod.named_port(name, protocol)
            if number is not None:
                out.update((ip, protocol.lower(), number) for ip in pod.ips)
    return tuple(sorted(out))


def compile_ruleset(
    policies: Iterable[Policy], cluster: Cluster, node_name: str, node_addrs: Iterable[str] = ()
) -> Ruleset:
    """The whole ruleset for ``node_name``; deterministic for equal inputs."""
    comp = _Compiler(cluster, node_name)
    comp.rs.node_addrs = intervals.render((n, n) for n in map(intervals.to_int, node_addrs))
    for policy in sorted(policies, key=lambda p: p.key):
        comp.add_policy(policy)
    comp.add_pod_chains()
    return comp.rs
