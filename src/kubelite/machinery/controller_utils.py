"""Helpers shared by the workload controllers (ReplicaSet, Deployment, StatefulSet, Job, ...).

They mirror kube-controller-manager's ``pkg/controller/controller_utils.go`` and
``ControllerRefManager``:

* controller references: :func:`controller_ref` (a copy; :func:`controller_ref_view` and
  :func:`controller_uid` for read-only hot paths), :func:`new_controller_ref`, and
  :class:`Claimer` (adopt matching orphans, release owned objects that stop matching) with
  the same strategic-merge patches Kubernetes sends, in one pass that only awaits the
  objects it patches; :func:`compile_selector` matches ``matchLabels`` selectors cheaply;
* pod state: :func:`is_pod_active`, :func:`is_pod_ready`, :func:`is_pod_available`
  (Ready for at least ``minReadySeconds``), :func:`seconds_until_available`;
* :class:`Expectations`: creations/deletions a controller is waiting to see in its
  informer cache before it acts again (``ControllerExpectations`` with the 5 minute
  time-out);
* :func:`compute_hash`: the ``pod-template-hash`` value, FNV-32a of the template (and the
  collision count) rendered with apimachinery's safe alphabet;
* :func:`sort_pods_for_deletion`: the ``ActivePodsWithRanks`` order that picks the pods a
  scale-down removes first;
* :func:`pod_from_template` and :func:`slow_start_batch` for creating pods the way
  ``RealPodControl`` and ``slowStartBatch`` do.

Objects are plain dicts from informer caches: these helpers never mutate their inputs.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import heapq
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.api.humanize import parse_time
from kubelite.api.selectors import LabelSelector, Operator
from kubelite.client.base import Client, Resource

Obj = dict[str, Any]

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery rand.SafeEncodeString
EXPECTATIONS_TIMEOUT = 300.0  # ExpectationsTimeout: 5 minutes
SMP = "application/strategic-merge-patch+json"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


class PendingWrites:
    """Objects a controller created (True) or deleted (False) that its informer cache does not
    show so yet, per work key (``namespace/name``): a sync that ran before the cache caught up
    with the controller's own writes would duplicate or resurrect objects (kube-controller-
    manager's endpoint slice tracker plays this part)."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache  # anything with get("namespace/name") -> object | None
        self.by_key: dict[str, dict[str, bool]] = {}

    def created(self, key: str, name: str) -> None:
        self.by_key.setdefault(key, {})[name] = True

    def deleted(self, key: str, name: str) -> None:
        self.by_key.setdefault(key, {})[name] = False

    def behind(self, key: str) -> bool:
        """True while a write recorded for ``key`` is not yet reflected in the cache."""
        pending = self.by_key.get(key)
        if not pending:
            return False
        namespace = key.partition("/")[0]
        for name, created in list(pending.items()):
            if (self.cache.get(f"{namespace}/{name}") is not None) == created:
                del pending[name]
        if not pending:
            del self.by_key[key]
        return bool(pending)


# ---------------------------------------------------------------------------- metadata


def meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def key_of(obj: Obj) -> str:
    """The informer key ``namespace/name`` (or ``name`` for cluster-scoped objects)."""
    m = meta(obj)
    ns = m.get("namespace")
    return f"{ns}/{m.get('name', '')}" if ns else str(m.get("name", ""))


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true`` (``metav1.GetControllerOf``), a copy."""
    ref = controller_ref_view(obj)
    return dict(ref) if ref is not None else None


def controller_ref_view(obj: Obj) -> Obj | None:
    """:func:`controller_ref` without the copy, for read-only hot paths (never mutate it)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            r: Obj = ref
            return r
    return None


def controller_uid(obj: Obj) -> str | None:
    """The uid of the controller owner (None for orphans), without copying the reference."""
    ref = controller_ref_view(obj)
    if ref is None:
        return None
    uid = ref.get("uid")
    return str(uid) if uid else ""


def new_controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    """``metav1.NewControllerRef``: controller and blockOwnerDeletion set."""
    m = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def with_kind(obj: Obj, api_version: str, kind: str) -> Obj:
    """A shallow copy carrying ``apiVersion``/``kind`` (event references need them)."""
    if obj.get("kind") == kind and obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version, "kind": kind}


def creation_key(obj: Obj) -> tuple[float, str]:
    """Sort key of ``ByCreationTimestamp``: oldest first, ties broken by name."""
    t = parse_time(meta(obj).get("creationTimestamp"))
    return (t.timestamp() if t is not None else 0.0, str(meta(obj).get("name", "")))


def is_being_deleted(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


# ---------------------------------------------------------------------------- indexes

# Informer index names shared by the workload controllers.  Informers are shared by every
# controller of a process, so an index name must always mean the same function: use these.
NS_INDEX = "workloads/namespace"
UID_INDEX = "workloads/uid"
OWNER_INDEX = "workloads/controller-uid"
ORPHAN_INDEX = "workloads/orphans-by-namespace"


def index_namespace(obj: Obj) -> list[str]:
    """Objects by namespace (``NS_INDEX``)."""
    ns = meta(obj).get("namespace")
    return [str(ns)] if ns else []


def index_uid(obj: Obj) -> list[str]:
    """Objects by their own uid (``UID_INDEX``)."""
    return [str(meta(obj).get("uid", ""))]


def index_controller_uid(obj: Obj) -> list[str]:
    """Objects by the uid of their controller owner (``OWNER_INDEX``)."""
    uid = controller_uid(obj)
    return [uid] if uid else []


def index_orphans(obj: Obj) -> list[str]:
    """Objects without a controller, by namespace (``ORPHAN_INDEX``): adoption candidates."""
    return index_namespace(obj) if controller_ref_view(obj) is None else []


def add_workload_indexes(informer: Any) -> None:
    """Register all four workload indexes on an informer (idempotent)."""
    for name, fn in (
        (NS_INDEX, index_namespace),
        (UID_INDEX, index_uid),
        (OWNER_INDEX, index_controller_uid),
        (ORPHAN_INDEX, index_orphans),
    ):
        if name not in informer.indexers:
            informer.add_indexer(name, fn)


# ---------------------------------------------------------------------------- pods


_FINISHED_PHASES = ("Succeeded", "Failed")


def is_pod_active(pod: Obj) -> bool:
    """``IsPodActive``: not Succeeded/Failed and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in _FINISHED_PHASES and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _ready_condition(pod: Obj) -> Obj | None:
    """The pod's Ready condition as stored (read-only: callers never mutate it)."""
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            r: Obj = c
            return r
    return None


def is_pod_ready(pod: Obj) -> bool:
    """``podutil.IsPodReady``: the Ready condition is True."""
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def pod_ready_since(pod: Obj) -> float | None:
    """When the pod became Ready (epoch seconds), None when not ready or unknown."""
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    t = parse_time(c.get("lastTransitionTime"))
    return t.timestamp() if t is not None else None


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """0 when available now, the wait when ready but not yet available, None when not ready.

    ``podutil.IsPodAvailable``: ready, and ready for more than ``minReadySeconds``.
    """
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = pod_ready_since(pod)
    if since is None:
        return None
    wait = since + min_ready_seconds - now
    return 0.0 if wait < 0 else max(wait, 0.001)


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def pod_from_template(template: Obj, owner: Obj, ref: Obj) -> Obj:
    """``GetPodFromTemplate``: labels, annotations, finalizers and spec of the template, a
    ``<owner>-`` generateName and the controller reference."""
    tmeta = template.get("metadata") or {}
    name = str(meta(owner).get("name", ""))
    prefix = f"{name}-" if len(name) < 253 else name
    pod_meta: Obj = {"generateName": prefix, "ownerReferences": [dict(ref)]}
    if meta(owner).get("namespace"):
        pod_meta["namespace"] = meta(owner)["namespace"]
    for k in ("labels", "annotations", "finalizers"):
        if tmeta.get(k):
            pod_meta[k] = copy.deepcopy(tmeta[k])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _deletion_cost(pod: Obj) -> int:
    raw = (meta(pod).get("annotations") or {}).get(POD_DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _log_rank(t: float, now: float) -> int:
    d = (now - t) * 1e9  # Go durations are nanoseconds
    return int(math.log2(d)) if d > 0 else -1


def _newer_first(t1: float | None, t2: float | None, now: float) -> int:
    """Compare two times: zero first, then newer first (logarithmic buckets, then 0 = tie)."""
    if not t1 or not t2:
        return -1 if not t1 else 1
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    return -1 if diff < 0 else (1 if diff > 0 else 0)


def _compare_for_deletion(a: tuple[Obj, int], b: tuple[Obj, int], now: float) -> int:
    pa, ra = a
    pb, rb = b
    na = (pa.get("spec") or {}).get("nodeName") or ""
    nb = (pb.get("spec") or {}).get("nodeName") or ""
    if na != nb and (not na or not nb):
        return -1 if not na else 1
    oa = _PHASE_ORDINAL.get((pa.get("status") or {}).get("phase") or "", 0)
    ob = _PHASE_ORDINAL.get((pb.get("status") or {}).get("phase") or "", 0)
    if oa != ob:
        return -1 if oa < ob else 1
    if is_pod_ready(pa) != is_pod_ready(pb):
        return -1 if not is_pod_ready(pa) else 1
    ca, cb = _deletion_cost(pa), _deletion_cost(pb)
    if ca != cb:
        return -1 if ca < cb else 1
    if ra != rb:
        return -1 if ra > rb else 1
    if is_pod_ready(pa) and is_pod_ready(pb):
        sa, sb = pod_ready_since(pa), pod_ready_since(pb)
        if sa != sb:
            c = _newer_first(sa, sb, now)
            if c:
                return c
            return _uid_order(pa, pb)
    if _max_restarts(pa) != _max_restarts(pb):
        return -1 if _max_restarts(pa) > _max_restarts(pb) else 1
    ta, tb = creation_key(pa)[0], creation_key(pb)[0]
    if ta != tb:
        return _newer_first(ta, tb, now) or _uid_order(pa, pb)
    return 0


def _uid_order(a: Obj, b: Obj) -> int:
    ua, ub = str(meta(a).get("uid", "")), str(meta(b).get("uid", ""))
    return -1 if ua < ub else (1 if ua > ub else 0)


def sort_pods_for_deletion(
    pods: list[Obj], ranks: list[int], now: float | None = None, limit: int | None = None
) -> list[Obj]:
    """Pods in the order a scale-down deletes them (``ActivePodsWithRanks``, 1.32 rules):

    unscheduled < scheduled; Pending < Unknown < Running; not ready < ready; lower
    ``controller.kubernetes.io/pod-deletion-cost`` first; more co-located related pods
    (higher rank) first; ready for less time first (logarithmic buckets); more container
    restarts first; newer first (logarithmic buckets, ties by uid).

    With ``limit`` only the first ``limit`` pods are returned (a partial selection: a
    scale-down by one of a 10,000-pod set compares each pod once instead of sorting).
    """
    when = time.time() if now is None else now
    pairs = list(zip(pods, ranks, strict=True))

    def cmp(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        return _compare_for_deletion(a, b, when)

    key = functools.cmp_to_key(cmp)
    chosen = heapq.nsmallest(limit, pairs, key=key) if limit is not None else sorted(pairs, key=key)
    return [p for p, _ in chosen]


def ranks_by_colocation(pods: list[Obj], related: Iterable[Obj]) -> list[int]:
    """``getPodsRankedByRelatedPodsOnSameNode``: per pod, the active related pods on its node."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    return [on_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in pods]


# ---------------------------------------------------------------------------- hashing


def fnv32a(data: bytes, h: int = _FNV32_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """``rand.SafeEncodeString``: each character mapped into the vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in s)


def semantic(value: Any) -> Any:
    """Drop nulls and empty maps/lists, as Go's semantic equality and omitempty treat them."""
    if isinstance(value, dict):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-32a of the pod template plus the collision count
    (8 bytes, little-endian) rendered as its decimal value through the safe alphabet.

    Kubernetes feeds the hasher a dump of the Go struct; here the template's canonical
    JSON (sorted keys, empty fields dropped) is hashed, so equal templates share a hash.
    """
    data = orjson.dumps(semantic(template), option=orjson.OPT_SORT_KEYS)
    h = fnv32a(data)
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0" * 4, h)
    return safe_encode(str(h))


# ---------------------------------------------------------------------------- expectations


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    """Creations and deletions a controller issued and has not yet seen in its cache.

    ``satisfied(key)`` is False while some are pending (and less than 5 minutes old), so
    the controller does not act twice on a stale cache.  Deletions are tracked by pod key
    (``UIDTrackingControllerExpectations``) so a pod seen deleted twice counts once.
    """

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic):
        self.timeout = timeout
        self.clock = clock
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        e = self._by_key.get(key)
        if e is None:
            return True
        if e.adds <= 0 and not e.deletes:
            return True
        return self.clock() - e.stamp > self.timeout

    def expect_creations(self, key: str, n: int) -> None:
        self._by_key[key] = _Expectation(adds=n, stamp=self.clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._by_key[key] = _Expectation(deletes=set(pod_keys), stamp=self.clock())

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None and e.adds > 0:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


# ---------------------------------------------------------------------------- events


class SpamFilteredRecorder:
    """client-go's ``EventSourceObjectSpamFilter`` in front of an event recorder.

    Each involved object may emit a burst of 25 events, then one more every 5 minutes
    (a token bucket per object): a 10,000-replica ReplicaSet records ~25 SuccessfulCreate
    events, as in Kubernetes, instead of 10,000.
    """

    BURST = 25
    REFILL_SECONDS = 300.0
    MAX_TRACKED = 4096

    def __init__(self, recorder: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.recorder = recorder
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # uid -> (tokens, last refill)

    def allow(self, obj: Obj) -> bool:
        m = meta(obj)
        key = str(m.get("uid") or f"{obj.get('kind')}/{m.get('namespace')}/{m.get('name')}")
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.BURST), now))
        tokens = min(float(self.BURST), tokens + (now - last) / self.REFILL_SECONDS)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.MAX_TRACKED:
            self._buckets.pop(next(iter(self._buckets)))
        return allowed

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if self.allow(obj):
            self.recorder.event(obj, type_, reason, message)

    async def flush(self) -> None:
        await self.recorder.flush()


# ---------------------------------------------------------------------------- batching


async def slow_start_batch(
    count: int, initial: int, fn: Callable[[], Awaitable[None]]
) -> tuple[int, Exception | None]:
    """``slowStartBatch``: call ``fn`` ``count`` times in batches of 1, 2, 4, ... run
    concurrently; stop after the first batch with a failure.  Returns (successes, error)."""
    done = 0
    size = min(count, initial)
    while size > 0:
        results = await asyncio.gather(*(fn() for _ in range(size)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        done += size - len(failures)
        if failures:
            first = failures[0]
            if not isinstance(first, Exception):
                raise first
            return done, first
        remaining = count - done
        size = min(2 * size, remaining)
    return done, None


# ---------------------------------------------------------------------------- adoption


def _adopt_patch(obj: Obj, ref: Obj) -> Obj:
    return {"metadata": {"ownerReferences": [ref], "uid": meta(obj).get("uid", "")}}


def _release_patch(obj: Obj, owner_uid: str) -> Obj:
    return {
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
            "uid": meta(obj).get("uid", ""),
        }
    }


@dataclass
class Claimer:
    """``ControllerRefManager``: which of ``candidates`` an owner controls after adopting
    matching orphans and releasing owned objects that no longer match its selector.

    ``can_adopt`` is called at most once, before the first adoption (Kubernetes re-reads
    the owner from the API to make sure it still exists and is not being deleted).
    """

    client: Client
    resource: Resource
    owner: Obj
    ref: Obj
    selector: LabelSelector
    can_adopt: Callable[[], Awaitable[bool]]
    _adopt_ok: bool | None = None

    async def claim(self, candidates: Iterable[Obj], only_active: bool = False) -> list[Obj]:
        """One synchronous pass classifies every candidate; only the objects to adopt or
        release are awaited (a patch each), so a sync over 10,000 owned pods costs one loop.

        ``only_active`` skips pods that are not active (:func:`is_pod_active`) in the same
        pass, as ``FilterActivePods`` before ``ClaimPods`` does."""
        owner_uid = str(meta(self.owner).get("uid", ""))
        owner_ns = meta(self.owner).get("namespace")
        owner_deleting = is_being_deleted(self.owner)
        matches = compile_selector(self.selector)
        slots: list[Obj | None] = []
        adopt: list[int] = []
        release: list[Obj] = []
        for obj in candidates:
            m = obj.get("metadata") or {}
            if only_active and (
                m.get("deletionTimestamp") or (obj.get("status") or {}).get("phase") in _FINISHED_PHASES
            ):
                continue
            labels = m.get("labels") or {}
            ref = controller_ref_view(obj)
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue
                if owner_deleting or matches(labels):
                    slots.append(obj)
                else:
                    release.append(obj)
            elif (
                not owner_deleting
                and matches(labels)
                and not m.get("deletionTimestamp")
                and m.get("namespace") == owner_ns
            ):
                adopt.append(len(slots))
                slots.append(obj)
        for obj in release:
            await self._patch(obj, _release_patch(obj, owner_uid))
        await self._adopt(slots, adopt)
        return [o for o in slots if o is not None]

    async def _adopt(self, slots: list[Obj | None], positions: list[int]) -> None:
        """Adopt the orphans at ``positions`` in place (None where adoption failed)."""
        for i in positions:
            if self._adopt_ok is None:
                self._adopt_ok = await self.can_adopt()
            obj = slots[i]
            slots[i] = await self._patch(obj, _adopt_patch(obj, self.ref)) if self._adopt_ok and obj else None

    async def _patch(self, obj: Obj, patch: Obj) -> Obj | None:
        try:
            return await self.client.patch(
                self.resource,
                str(meta(obj).get("namespace", "")),
                str(meta(obj)["name"]),
                patch,
                patch_type=SMP,
            )
        except (errors.NotFound, errors.Invalid):
            return None


_EXACT_OPS = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)


def compile_selector(selector: LabelSelector) -> Callable[[Mapping[str, str]], bool]:
    """A matcher equivalent to ``selector.matches``, cheap for the common case.

    Selectors made only of single-valued equality terms (every ``matchLabels`` selector)
    become one C-level subset test of the required pairs against the object's labels.
    """
    if selector.nothing:
        return lambda labels: False
    reqs = selector.requirements
    keys = {r.key for r in reqs}
    if len(keys) == len(reqs) and all(r.operator in _EXACT_OPS and len(r.values) == 1 for r in reqs):
        required = {r.key: r.values[0] for r in reqs}.items()
        return lambda labels: required <= labels.items()
    return selector.matches


def selector_matches(selector: LabelSelector, obj: Obj) -> bool:
    return selector.matches(meta(obj).get("labels") or {})
