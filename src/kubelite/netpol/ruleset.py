"""The compiled rule model: what the node's nftables table must contain.

Independent of nft syntax, so the compiler can be tested by evaluating it (see
``tests/netpol/evaluate.py``) and the renderer can diff two models.

Shape (one of each per node):

* ``ingress_map`` / ``egress_map``: an isolated local pod's IP -> its pod chain;
  pods absent from a map are not isolated in that direction (everything allowed);
* a pod chain accepts the pod's own address, then jumps to the chain of every policy
  selecting the pod for that direction, and drops what none of them accepted;
* a policy chain holds one :class:`Match` per (rule, port) of the policy, each accepting;
* address sets hold a rule's peers (pod IPs and ipBlocks, as non-overlapping networks);
  port sets hold resolved named ports as (pod IP, protocol, port) triples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelite.netpol.model import Direction


@dataclass(frozen=True)
class PortRange:
    """A protocol and an inclusive port range; ``first`` None means every port."""

    protocol: str
    first: int | None = None
    last: int | None = None


@dataclass(frozen=True)
class Match:
    """One accepting rule: peer in ``peers`` (None = any peer) and the port condition.

    At most one of ``ports`` (a literal range) and ``named`` (a port set matched against the
    destination address, protocol and port) is set; neither means every port.
    """

    peers: str | None = None
    ports: PortRange | None = None
    named: str | None = None


@dataclass(frozen=True)
class PolicyChain:
    direction: Direction
    policy: str  # namespace/name, for humans
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class PodChain:
    direction: Direction
    pod: str  # namespace/name
    ips: tuple[str, ...]
    policies: tuple[str, ...]  # policy chain names, in policy key order


PortTriple = tuple[str, str, int]  # (ip, protocol, port)


@dataclass
class Ruleset:
    node_addrs: tuple[str, ...] = ()
    addr_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    port_sets: dict[str, tuple[PortTriple, ...]] = field(default_factory=dict)
    policy_chains: dict[str, PolicyChain] = field(default_factory=dict)
    pod_chains: dict[str, PodChain] = field(default_factory=dict)
    ingress_map: dict[str, str] = field(default_factory=dict)
    egress_map: dict[str, str] = field(default_factory=dict)

    def pod_map(self, direction: Direction) -> dict[str, str]:
        return self.ingress_map if direction is Direction.INGRESS else self.egress_map
