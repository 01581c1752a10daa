"""The cheap update paths give exactly what the general code gives.

* managedFields: an Update whose writer already owns exactly the fields it changes (a Lease
  renewal, a status refresh) only moves the entry's time; the general path (subtract the
  changed fields from every manager, add them back to the writer) must give the same
  entries, checked over random write sequences of several managers;
* Compare (equal subtrees skipped before building paths, added subtrees walked by the
  create walk, memoised list-map keys) equals the plain recursive walk;
* memoised schema shapes (per-shape child memo, memoised root shapes) equal fresh ones;
* the write strategy's spec comparison equals comparing copies of the spec parts;
* the simulator's writes are the cheap ones: Lease renewals are PUTs that skip the JSON
  field scan, node status refreshes patch only the conditions; slow Lease writes overlap
  instead of stretching the heartbeat period.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.apiserver.apply import FieldSet, managed, update_managed_fields
from kubelite.apiserver.apply import typed as typed_mod
from kubelite.apiserver.apply.typed import (
    MISSING,
    Comparison,
    Shape,
    _empty,
    _is_leaf,
    _without_managed_fields,
    compare,
    index_items,
    root_shape,
    shape_of,
)
from kubelite.client.base import Client
from kubelite.registry.strategy import spec_changed
from kubelite.schema.definitions import schema_for_gvk
from kubelite.simulator.config import SimConfig
from kubelite.simulator.heartbeat import Heartbeats
from kubelite.simulator.nodeobj import build_node, now_micro
from kubelite.simulator.nodes import NodeManager
from kubelite.simulator.podstatus import running_status

LEASE = schema_for_gvk("coordination.k8s.io", "v1", "Lease")
POD = schema_for_gvk("", "v1", "Pod")
SPEC_IGNORED = FieldSet.of([("f:spec",)])
T0 = "2026-01-01T00:00:00Z"


@contextmanager
def general_path_only() -> Iterator[None]:
    with mock.patch.object(managed, "refreshes_own_fields", return_value=False):
        yield


def _times(i: int) -> str:
    return f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"


def lease(renew: str, holder: str = "n1", owner: bool = True, labels: dict[str, str] | None = None) -> Any:
    meta: dict[str, Any] = {"name": "n1", "namespace": "kube-node-lease", "uid": "u1", "resourceVersion": "7"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "nu"}]
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 40, "renewTime": renew},
    }


def _update(old: Any, new: Any, manager: str, now: str, **kw: Any) -> Any:
    """One write as the API server does it: the stored managedFields travel with ``new``."""
    new = copy.deepcopy(new)
    if old is not None and "managedFields" in old["metadata"]:
        new["metadata"]["managedFields"] = copy.deepcopy(old["metadata"]["managedFields"])
    new["metadata"].pop("resourceVersion", None)
    update_managed_fields(
        old, new, manager, kw.pop("api_version", "coordination.k8s.io/v1"), kw.pop("schema", LEASE), now, **kw
    )
    return new


def _both(old: Any, new: Any, manager: str, now: str, **kw: Any) -> tuple[Any, Any]:
    fast = _update(old, new, manager, now, **dict(kw))
    with general_path_only():
        slow = _update(old, new, manager, now, **dict(kw))
    return fast, slow


def test_lease_renewal_takes_the_fast_path_and_only_moves_the_time() -> None:
    created = _update(None, lease(T0), "kubelet", T0)
    with mock.patch.object(managed, "transfer_ownership") as transfer:
        renewed = _update(created, lease("2026-01-01T00:00:10.000000Z"), "kubelet", _times(10))
    transfer.assert_not_called()
    before, after = created["metadata"]["managedFields"], renewed["metadata"]["managedFields"]
    assert [e["time"] for e in after] == [_times(10)]
    assert [{k: v for k, v in e.items() if k != "time"} for e in after] == [
        {k: v for k, v in e.items() if k != "time"} for e in before
    ]
    fast, slow = _both(created, lease("2026-01-01T00:00:10.000000Z"), "kubelet", _times(10))
    assert fast == slow


def test_a_field_owned_by_another_manager_moves_to_the_writer() -> None:
    created = _update(None, lease(T0), "kubelet", T0)
    fast, slow = _both(created, lease(T0, holder="other"), "kubectl", _times(5))
    assert fast == slow
    entries = {e["manager"]: e["fieldsV1"] for e in fast["metadata"]["managedFields"]}
    assert entries["kubectl"] == {"f:spec": {"f:holderIdentity": {}}}
    assert "f:holderIdentity" not in entries["kubelet"]["f:spec"]


def test_removing_an_owned_field_is_not_a_refresh() -> None:
    created = _update(None, lease(T0), "kubelet", T0)
    fast, slow = _both(created, lease(T0, owner=False), "kubelet", _times(3))
    assert fast == slow
    (entry,) = fast["metadata"]["managedFields"]
    assert "f:metadata" not in entry["fieldsV1"]
    assert entry["time"] == T0  # nothing was taken, so the entry keeps its time


def test_a_write_that_changes_nothing_tracked_keeps_the_time() -> None:
    created = _update(None, lease(T0), "kubelet", T0)
    fast, slow = _both(created, lease(T0), "kubelet", _times(9))
    assert fast == slow
    assert fast["metadata"]["managedFields"][0]["time"] == T0


WORDS = st.sampled_from(["a", "b", "c"])
LEASES = st.builds(
    lease,
    renew=st.sampled_from([T0, "2026-01-01T00:00:10.000000Z", "2026-01-01T00:00:20.000000Z"]),
    holder=st.sampled_from(["n1", "n2"]),
    owner=st.booleans(),
    labels=st.none() | st.dictionaries(WORDS, WORDS, max_size=2),
)
MANAGERS = st.sampled_from(["kubelet", "kubectl", "controller"])


@settings(max_examples=150, deadline=None)
@given(first=LEASES, writes=st.lists(st.tuples(LEASES, MANAGERS), min_size=1, max_size=6))
def test_lease_write_sequences_match_the_general_path(first: Any, writes: list[tuple[Any, str]]) -> None:
    cur = _update(None, first, "kubelet", T0)
    for i, (obj, manager) in enumerate(writes, 1):
        fast, slow = _both(cur, obj, manager, _times(i))
        assert fast == slow
        cur = fast


def pod(phase: str, ready: str, ip: str | None, labels: dict[str, str] | None = None) -> Any:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": ready, "lastProbeTime": None, "lastTransitionTime": T0},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": T0},
        ],
    }
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    meta: dict[str, Any] = {"name": "p", "namespace": "default", "uid": "pu", "resourceVersion": "3"}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        "status": status,
    }


PODS = st.builds(
    pod,
    phase=st.sampled_from(["Pending", "Running"]),
    ready=st.sampled_from(["True", "False"]),
    ip=st.sampled_from([None, "10.0.0.1", "10.0.0.2"]),
    labels=st.none() | st.dictionaries(WORDS, WORDS, max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(
    first=PODS,
    writes=st.lists(st.tuples(PODS, MANAGERS, st.booleans()), min_size=1, max_size=6),
)
def test_pod_and_status_write_sequences_match_the_general_path(
    first: Any, writes: list[tuple[Any, str, bool]]
) -> None:
    kw: dict[str, Any] = {"api_version": "v1", "schema": POD}
    cur = _update(None, first, "kubectl", T0, ignore_status=True, **kw)
    for i, (obj, manager, status) in enumerate(writes, 1):
        extra = {"subresource": "status", "ignored": SPEC_IGNORED} if status else {"ignore_status": True}
        fast, slow = _both(cur, obj, manager, _times(i), **kw, **extra)
        assert fast == slow
        cur = fast


def test_memoised_shapes_equal_fresh_ones() -> None:
    root = root_shape(POD)
    assert root_shape(POD) is root
    spec = root.child("spec")
    assert root.child("spec") is spec
    assert spec == shape_of(POD["properties"]["spec"])  # type: ignore[index]
    containers = spec.child("containers")
    assert (containers.kind, containers.list_type, containers.keys) == ("list", "map", ("name",))
    labels = root.child("metadata").child("labels")
    for i in range(typed_mod._MAX_KIDS + 5):  # user keys: the memo stays bounded
        assert labels.child(f"k{i}").kind == "scalar"
    assert len(labels.kids) <= typed_mod._MAX_KIDS


# ---------------------------------------------------------------------- strategy


SPECISH = st.dictionaries(
    st.sampled_from(["metadata", "status", "apiVersion", "kind", "spec", "data", "rules"]),
    st.none() | st.integers(0, 2) | st.dictionaries(WORDS, WORDS, max_size=1),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(new=SPECISH, old=SPECISH)
def test_spec_changed_matches_comparing_the_spec_parts(new: dict[str, Any], old: dict[str, Any]) -> None:
    def part(o: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    assert spec_changed(new, old) == (part(new) != part(old))


# ---------------------------------------------------------------------- simulator writes


class RecordingTransport:
    """Answers every request with ``{}`` and remembers (method, path, body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        self.calls.append((method, path, orjson.loads(body) if body else None))
        return 200, b"{}"

    async def close(self) -> None:
        return None


async def test_lease_renewal_is_a_put_without_field_scanning() -> None:
    transport = RecordingTransport()
    hb = Heartbeats(Client(transport), 10, lambda n: "uid-" + n, lambda n: True)  # type: ignore[arg-type]
    hb._have_lease.add("n1")
    await hb._renew("n1")
    ((method, path, body),) = transport.calls
    assert method == "PUT"
    assert path == "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1?fieldValidation=Ignore"
    assert body["spec"]["holderIdentity"] == "n1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["spec"]["renewTime"])
    assert hb.renewals == 1


def test_now_micro_is_microtime_of_now() -> None:
    before = dt.datetime.now(dt.UTC)
    text = now_micro()
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert before <= dt.datetime.fromisoformat(text.replace("Z", "+00:00")) <= after


async def test_node_status_refresh_patches_only_the_conditions() -> None:
    transport = RecordingTransport()
    cfg = SimConfig(nodes=1)
    mgr = NodeManager(Client(transport), cfg)  # type: ignore[arg-type]
    node = build_node(cfg, 0, "2026-01-01T00:00:00Z")
    mgr.index["sim-node-0"] = 0
    await mgr._post_status(node)
    ((method, path, body),) = transport.calls
    assert (method, path.rstrip("?")) == ("PATCH", "/api/v1/nodes/sim-node-0/status")
    assert list(body) == ["status"] and list(body["status"]) == ["conditions"]
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert ready["lastHeartbeatTime"] > "2026-01-01T00:00:00Z"  # refreshed to now
    # a node without capacity (registered by hand) gets the whole status
    transport.calls.clear()
    del node["status"]["capacity"]
    await mgr._post_status(node)
    body = transport.calls[-1][2]
    assert body["status"]["capacity"]["cpu"] == cfg.cpu and "nodeInfo" in body["status"]


# ---------------------------------------------------------------------- compare


def _reference_compare(old: Any, new: Any, schema: Any) -> Comparison:
    """The plain recursive Compare (no shortcuts): every key of both sides visited."""
    c = Comparison(FieldSet(), FieldSet(), FieldSet())

    def walk(lhs: Any, rhs: Any, shape: Shape, path: tuple[str, ...]) -> None:
        if lhs is not MISSING and rhs is not MISSING and lhs == rhs:
            return
        shape = shape.effective(rhs if rhs is not MISSING else lhs)
        both_empty = _empty(lhs) and _empty(rhs)
        if _is_leaf(shape, lhs) or _is_leaf(shape, rhs) or both_empty:
            (c.added if lhs is MISSING else c.removed if rhs is MISSING else c.modified).insert(path)
            return
        if shape.kind == "list":
            litems, ritems = index_items(shape, lhs), index_items(shape, rhs)
            for pe in litems.keys() | ritems.keys():
                walk(litems.get(pe, MISSING), ritems.get(pe, MISSING), shape.item(), (*path, pe))
        else:
            lmap = lhs if isinstance(lhs, dict) else {}
            rmap = rhs if isinstance(rhs, dict) else {}
            for key in lmap.keys() | rmap.keys():
                lv, rv = lmap.get(key, MISSING), rmap.get(key, MISSING)
                if key in shape.implicit:
                    lv = None if lv is MISSING and lhs is not MISSING else lv
                    rv = None if rv is MISSING and rhs is not MISSING else rv
                if lv is MISSING and rv is MISSING:
                    continue
                walk(lv, rv, shape.child(key), (*path, f"f:{key}"))
        if path and lhs is MISSING:
            c.added.insert(path)
        elif path and rhs is MISSING:
            c.removed.insert(path)

    walk(_without_managed_fields(old), _without_managed_fields(new), root_shape(schema), ())
    return c


KEYS = st.sampled_from(
    ["metadata", "spec", "status", "name", "labels", "containers", "ports", "conditions", "type", "x"]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(0, 2), st.sampled_from(["a", "b", "TCP"]))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=15,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    old=OBJECTS,
    new=OBJECTS,
    kind=st.sampled_from([("", "Pod"), ("apps", "Deployment"), ("", "Service"), ("", "ConfigMap")]),
)
def test_compare_matches_the_plain_walk(
    old: dict[str, Any], new: dict[str, Any], kind: tuple[str, str]
) -> None:
    for schema in (schema_for_gvk(kind[0], "v1", kind[1]), None):
        got, want = compare(old, new, schema), _reference_compare(old, new, schema)
        assert (got.added, got.modified, got.removed) == (want.added, want.modified, want.removed)


def test_compare_matches_the_plain_walk_for_a_pod_start() -> None:
    old = pod("Pending", "False", None)
    new = copy.deepcopy(old)
    new["status"] = running_status(old, "10.240.0.1", "10.244.0.7", "2026-01-01T00:00:05Z")
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]
    got, want = compare(old, new, POD), _reference_compare(old, new, POD)
    assert (got.added, got.modified, got.removed) == (want.added, want.modified, want.removed)
    assert got.added.has(("f:status", "f:conditions", 'k:{"type":"ContainersReady"}', "f:status"))


class SlowLeases:
    """A transport whose Lease writes each take ``latency`` seconds (an API server under load)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.renewed: list[tuple[float, str]] = []

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        await asyncio.sleep(self.latency)
        assert body is not None
        self.renewed.append((time.monotonic(), orjson.loads(body)["metadata"]["name"]))
        return 200, body


async def test_slow_lease_writes_do_not_stretch_the_heartbeat_period() -> None:
    client = SlowLeases(latency=0.3)
    hb = Heartbeats(Client(client), 1.0, lambda n: "", lambda n: True)  # type: ignore[arg-type]
    nodes = [f"n{i}" for i in range(10)]
    for n in nodes:
        hb.add(n)
        hb._have_lease.add(n)
    t0 = time.monotonic()
    hb.start()
    try:
        await asyncio.sleep(2.45)  # two turns of the wheel
    finally:
        await hb.stop()
    # each node renewed about once a second although every write took 0.3 s (3 ticks);
    # waiting for each slot before the next would have managed one turn in ~3 s
    per_node = {n: [t - t0 for t, m in client.renewed if m == n] for n in nodes}
    assert all(len(times) >= 2 for times in per_node.values()), per_node
    assert hb.renewals == len(client.renewed)
