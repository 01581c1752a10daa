"""Render a :class:`Ruleset` as nftables commands: a full table, or the changes between two.

The table (family ``ip``) has three base chains, all with policy accept, so that other
tables (the proxy's NAT, the node's safety rules) keep their own say:

* ``forward-egress`` (hook forward, priority filter - 1) and ``input-egress`` (hook
  input): a local pod's outgoing traffic, to other pods or to the node itself, goes through
  ``ip saddr vmap @egress-pods``;
* ``forward-ingress`` (hook forward, priority filter): traffic to a local pod goes through
  ``ip daddr vmap @ingress-pods``, except traffic from the node's own addresses (probes).

Each base chain first accepts ``ct state established,related`` (replies of allowed
connections).  Accept only ends one base chain, so a new connection must pass both the
source's egress chain and the destination's ingress chain.  Traffic the node originates
(hook output) is never filtered: Kubernetes always allows node -> pod traffic.

An update touches only what changed: set elements (delete + add), chain rules (flush + add),
verdict map elements, and objects that appear or disappear; all in one atomic transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubelite.netpol.model import Direction
from kubelite.netpol.ruleset import Match, PodChain, PolicyChain, Ruleset

ADDR_TYPE = "type ipv4_addr; flags interval;"
PORT_TYPE = "type ipv4_addr . inet_proto . inet_service;"
NODE_SET = "node-ips"
MAPS = {Direction.INGRESS: "ingress-pods", Direction.EGRESS: "egress-pods"}
_PEER_FIELD = {Direction.INGRESS: "saddr", Direction.EGRESS: "daddr"}
_CHUNK = 500
_BASE_CHAINS = (
    ("forward-egress", "forward", "filter - 1", (f"ip saddr vmap @{MAPS[Direction.EGRESS]}",)),
    ("input-egress", "input", "filter - 1", (f"ip saddr vmap @{MAPS[Direction.EGRESS]}",)),
    (
        "forward-ingress",
        "forward",
        "filter",
        (f"ip saddr @{NODE_SET} accept", f"ip daddr vmap @{MAPS[Direction.INGRESS]}"),
    ),
)


@dataclass
class NftState:
    """The mutable part of the table, as nft text: sets, regular chains and map elements."""

    sets: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # name -> (type, elements)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> rules
    maps: dict[str, dict[str, str]] = field(default_factory=dict)  # map -> key -> verdict


def match_rule(direction: Direction, m: Match) -> str:
    parts = []
    if m.peers is not None:
        parts.append(f"ip {_PEER_FIELD[direction]} @{m.peers}")
    if m.ports is not None:
        r = m.ports
        parts.append(f"meta l4proto {r.protocol.lower()}")
        if r.first is not None:
            last = r.last if r.last is not None else r.first
            parts.append(f"th dport {r.first}" + (f"-{last}" if last != r.first else ""))
    if m.named is not None:
        parts.append(f"ip daddr . meta l4proto . th dport @{m.named}")
    parts.append("accept")
    return " ".join(parts)


def policy_rules(chain: PolicyChain) -> tuple[str, ...]:
    return tuple(match_rule(chain.direction, m) for m in chain.matches)


def pod_rules(chain: PodChain) -> tuple[str, ...]:
    """Own traffic first (a pod cannot cut itself off), then the policies, then drop."""
    own = f"ip {_PEER_FIELD[chain.direction]} {_elements(chain.ips)} accept"
    return (own, *(f"jump {p}" for p in chain.policies), "counter drop")


def _elements(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else "{ " + ", ".join(listed) + " }"


def to_state(rs: Ruleset) -> NftState:
    st = NftState()
    st.sets[NODE_SET] = (ADDR_TYPE, rs.node_addrs)
    for name, addrs in rs.addr_sets.items():
        st.sets[name] = (ADDR_TYPE, addrs)
    for name, triples in rs.port_sets.items():
        st.sets[name] = (PORT_TYPE, tuple(f"{ip} . {proto} . {port}" for ip, proto, port in triples))
    for name, pol in rs.policy_chains.items():
        st.chains[name] = policy_rules(pol)
    for name, pod in rs.pod_chains.items():
        st.chains[name] = pod_rules(pod)
    for direction, map_name in MAPS.items():
        st.maps[map_name] = {ip: f"jump {chain}" for ip, chain in rs.pod_map(direction).items()}
    return st


# ---------------------------------------------------------------------------- scripts


class _Script:
    def __init__(self, table: str) -> None:
        self.t = f"ip {table}"
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def elements(self, verb: str, name: str, items: Iterable[str]) -> None:
        listed = list(items)
        for i in range(0, len(listed), _CHUNK):
            self.add(f"{verb} element {self.t} {name} {{ {', '.join(listed[i : i + _CHUNK])} }}")

    def rules(self, chain: str, rules: Iterable[str]) -> None:
        for r in rules:
            self.add(f"add rule {self.t} {chain} {r}")

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def full_script(table: str, st: NftState) -> str:
    """Replace the whole table atomically (creating it if needed)."""
    s = _Script(table)
    s.add(f"add table {s.t}")
    s.add(f"delete table {s.t}")
    s.add(f"add table {s.t}")
    for name, (typ, elems) in st.sets.items():
        s.add(f"add set {s.t} {name} {{ {typ} }}")
        s.elements("add", name, elems)
    for name in st.chains:
        s.add(f"add chain {s.t} {name}")
    for name, rules in st.chains.items():
        s.rules(name, rules)
    for name, entries in st.maps.items():
        s.add(f"add map {s.t} {name} {{ type ipv4_addr : verdict; }}")
        s.elements("add", name, (f"{k} : {v}" for k, v in entries.items()))
    for name, hook, prio, rules in _BASE_CHAINS:
        s.add(f"add chain {s.t} {name} {{ type filter hook {hook} priority {prio}; policy accept; }}")
        s.rules(name, ("ct state established,related accept", *rules))
    return s.text()


def update_script(table: str, old: NftState, new: NftState) -> str:
    """The commands turning ``old`` into ``new``; empty when nothing changed.

    Order matters inside the transaction: new objects exist before anything refers to
    them, and references (map elements, jumps, set lookups) go before what they name.
    """
    s = _Script(table)
    for name, (typ, _) in new.sets.items():
        if name not in old.sets:
            s.add(f"add set {s.t} {name} {{ {typ} }}")
    for name in new.chains.keys() - old.chains.keys():
        s.add(f"add chain {s.t} {name}")
    for name, (_, elems) in new.sets.items():
        before = set(old.sets[name][1]) if name in old.sets else set()
        s.elements("delete", name, sorted(before.difference(elems)))
    for name, (_, elems) in new.sets.items():
        before = set(old.sets[name][1]) if name in old.sets else set()
        s.elements("add", name, [e for e in elems if e not in before])
    for name, rules in new.chains.items():
        before_rules = old.chains.get(name)
        if before_rules is not None and before_rules != rules:
            s.add(f"flush chain {s.t} {name}")
        if before_rules != rules:
            s.rules(name, rules)
    _update_maps(s, old, new)
    gone_chains = sorted(old.chains.keys() - new.chains.keys())
    for name in gone_chains:
        s.add(f"flush chain {s.t} {name}")
    for name in gone_chains:
        s.add(f"delete chain {s.t} {name}")
    for name in sorted(old.sets.keys() - new.sets.keys()):
        s.add(f"delete set {s.t} {name}")
    return s.text()


def _update_maps(s: _Script, old: NftState, new: NftState) -> None:
    for name, entries in new.maps.items():
        before = old.maps.get(name, {})
        stale = [k for k, v in before.items() if entries.get(k) != v]
        fresh = [f"{k} : {v}" for k, v in entries.items() if before.get(k) != v]
        s.elements("delete", name, stale)
        s.elements("add", name, fresh)
