"""Which endpoints of a Service port get traffic on this node (kube-proxy's CategorizeEndpoints).

- Cluster-wide traffic goes to ready endpoints; when there are none, to endpoints that
  are serving and terminating (so connections drain to a Deployment being rolled).
- With topology-aware routing (annotation ``service.kubernetes.io/topology-mode: Auto``
  or ``trafficDistribution: PreferClose``), if every ready endpoint carries zone hints
  and one of them is for this node's zone, only endpoints hinted for the zone are used.
- Node-local traffic (``internalTrafficPolicy``/``externalTrafficPolicy: Local``) goes to
  ready endpoints on this node or, when none, serving-terminating ones on this node.
- ``has_any`` is false only when nothing anywhere could answer (the reject case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubelite.proxy.endpoints import Endpoint

Pick = Callable[[Endpoint], bool]


@dataclass(frozen=True)
class Categorized:
    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    has_any: bool

    @property
    def used(self) -> tuple[Endpoint, ...]:
        """Every endpoint some rule may send traffic to, sorted."""
        return tuple(sorted(set(self.cluster) | set(self.local)))


def _ready_or_terminating(eps: tuple[Endpoint, ...], pick: Pick) -> tuple[Endpoint, ...]:
    ready = tuple(e for e in eps if e.ready and pick(e))
    return ready or tuple(e for e in eps if e.serving and e.terminating and pick(e))


def _zone_filter(eps: tuple[Endpoint, ...], zone: str, wanted: bool) -> Pick | None:
    """The zone predicate when topology-aware routing applies, else None."""
    if not wanted or not zone:
        return None
    ready = [e for e in eps if e.ready]
    if any(not e.zones for e in ready) or not any(zone in (e.zones or ()) for e in ready):
        return None
    return lambda e: zone in (e.zones or ())


def categorize(
    eps: tuple[Endpoint, ...], node_name: str, zone: str = "", topology: bool = False
) -> Categorized:
    in_zone = _zone_filter(eps, zone, topology)
    cluster = _ready_or_terminating(eps, in_zone or (lambda e: True))
    local = _ready_or_terminating(eps, lambda e: e.node_name == node_name)
    has_any = bool(cluster) or any(e.ready or (e.serving and e.terminating) for e in eps)
    return Categorized(cluster, local, has_any)
