"""Node lifecycle bookkeeping at scale: zone states from per-zone counts, the monitor pass
and master disruption mode (``monitorNodeHealth`` / ``handleDisruption``), driven through
the informers' event path without an API server."""

from __future__ import annotations

import time
from typing import Any

from kubelite.client.base import Client
from kubelite.controllers.nodelifecycle import (
    FULL,
    NORMAL,
    PARTIAL,
    SECONDARY_EVICTION_RATE,
    NodeLifecycleController,
    zone_key,
)
from kubelite.machinery.informer import Informer
from tests.unit.lifecycle_api import LEASES, NODES, PODS

Obj = dict[str, Any]


def _controller(grace: float = 40.0) -> NodeLifecycleController:
    client: Any = None  # never called: these tests do not reconcile
    c: Client = client
    return NodeLifecycleController(
        c, client, Informer(c, NODES), Informer(c, LEASES), Informer(c, PODS), grace=grace
    )


def _node(name: str, zone: str, status: str = "True") -> Obj:
    return {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "status": {"conditions": [{"type": "Ready", "status": status, "lastHeartbeatTime": "T"}]},
    }


def _put(nlc: NodeLifecycleController, node: Obj | None, name: str = "") -> None:
    """An informer event for the node (``None``: deleted), handlers included."""
    nlc.nodes._set(name or (node or {})["metadata"]["name"], node)


def _queued(nlc: NodeLifecycleController) -> set[str]:
    return set(nlc.ctrl.queue._queued)


def _drain(nlc: NodeLifecycleController) -> None:
    q = nlc.ctrl.queue
    while len(q):
        q._queued.discard(q._queue.get_nowait())


def test_zone_key_like_get_zone_key() -> None:
    assert zone_key({"metadata": {}}) == ""
    ga = {"metadata": {"labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "a"}}}
    beta_labels = {
        "failure-domain.beta.kubernetes.io/region": "r",
        "failure-domain.beta.kubernetes.io/zone": "a",
    }
    beta = {"metadata": {"labels": beta_labels}}
    assert zone_key(ga) == zone_key(beta) == "r:\x00:a"


def test_zone_states_follow_node_events() -> None:
    nlc = _controller()
    for i in range(5):
        _put(nlc, _node(f"a{i}", "a"))
    _put(nlc, _node("b0", "b"))
    za, zb = zone_key(_node("x", "a")), zone_key(_node("x", "b"))
    assert (nlc.zone_state(za), nlc.zone_state(zb)) == (NORMAL, NORMAL)
    for i in range(2):
        _put(nlc, _node(f"a{i}", "a", "Unknown"))
    assert nlc.zone_state(za) == NORMAL  # 2 unhealthy: never more than "2 or fewer"
    _put(nlc, _node("a2", "a", "False"))
    assert nlc.zone_state(za) == PARTIAL  # 3 of 5 >= 55 %
    _put(nlc, _node("a3", "a", "Unknown"))
    _put(nlc, _node("a4", "a", "Unknown"))
    assert nlc.zone_state(za) == FULL
    assert not nlc.master_disruption()  # zone b is fine
    _put(nlc, _node("b0", "b", "Unknown"))
    assert nlc.master_disruption()
    _put(nlc, None, "b0")  # a deleted node leaves its zone
    assert zb not in nlc.zones and nlc.master_disruption()
    _put(nlc, _node("a4", "a"))
    assert (nlc.zone_state(za), nlc.zones[za].size, nlc.zones[za].unhealthy) == (PARTIAL, 5, 4)
    assert not nlc.master_disruption()


def test_zone_rates_like_set_limiter_in_zone() -> None:
    nlc = _controller()
    for i in range(60):  # a large zone: partial disruption slows tainting down
        _put(nlc, _node(f"big{i}", "big", "Unknown" if i < 40 else "True"))
    for i in range(4):  # a small zone: partial disruption stops tainting
        _put(nlc, _node(f"small{i}", "small", "Unknown" if i < 3 else "True"))
    _put(nlc, _node("gone", "dead", "Unknown"))
    big, small, dead = (zone_key(_node("x", z)) for z in ("big", "small", "dead"))
    assert nlc.zone_state(big) == nlc.zone_state(small) == PARTIAL
    assert nlc.zone_rate(big) == SECONDARY_EVICTION_RATE
    assert nlc.zone_rate(small) == 0.0
    assert nlc.zone_state(dead) == FULL and nlc.zone_rate(dead) == nlc.eviction_rate
    assert nlc._may_taint(_node("small0", "small")) == nlc.monitor_period
    assert nlc._may_taint(_node("big0", "big")) == 0.0  # the burst of 1
    assert nlc._may_taint(_node("big1", "big")) > 90  # then 1 per 100 s


def test_monitor_pass_queues_only_silent_nodes_not_yet_unknown() -> None:
    nlc = _controller(grace=10.0)
    for name, status in (("fresh", "True"), ("silent", "True"), ("known", "Unknown"), ("new", "")):
        node = _node(name, "a", status)
        if not status:
            node["status"] = {}
        _put(nlc, node)
    _drain(nlc)
    for name in ("silent", "known", "new"):
        nlc.probes[name].seen = time.monotonic() - 11
    nlc.monitor_pass()
    assert _queued(nlc) == {"silent", "new"}


def test_lease_renewal_moves_the_probe_without_queueing() -> None:
    nlc = _controller()
    _put(nlc, _node("n", "a", "Unknown"))
    _drain(nlc)
    nlc.probes["n"].seen = 0.0
    lease = {"metadata": {"name": "n", "namespace": "kube-node-lease"}, "spec": {"renewTime": "R1"}}
    nlc.leases._set("kube-node-lease/n", lease)
    assert nlc.probes["n"].seen > 0 and not _queued(nlc)
    nlc.leases._set("kube-node-lease/other", lease)  # no Node, no probe
    assert "other" not in nlc.probes


def test_master_disruption_requeues_unhealthy_nodes_and_refreshes_probes() -> None:
    nlc = _controller(grace=10.0)
    for i in range(3):
        _put(nlc, _node(f"n{i}", f"z{i}"))
    nlc.monitor_pass()
    _drain(nlc)
    for i in range(3):
        _put(nlc, _node(f"n{i}", f"z{i}", "Unknown"))
    _drain(nlc)
    nlc.monitor_pass()  # every zone fully disrupted: all looked at again (taints come off)
    assert nlc.in_master_disruption and _queued(nlc) == {"n0", "n1", "n2"}
    _drain(nlc)
    nlc.monitor_pass()  # nothing changed: nothing queued
    assert not _queued(nlc)
    for name in ("n1", "n2"):
        nlc.probes[name].seen = 0.0
    _put(nlc, _node("n0", "z0"))
    _drain(nlc)
    nlc.monitor_pass()  # leaving: a fresh grace period for all, unhealthy nodes re-checked
    assert not nlc.in_master_disruption
    assert _queued(nlc) == {"n1", "n2"}
    assert min(p.seen for p in nlc.probes.values()) > time.monotonic() - 1
