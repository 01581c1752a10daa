"""The active pods each controller owns, kept current from pod events instead of re-scanned.

kube-controller-manager's ReplicaSet controller lists every pod of the namespace on each
sync, keeps the active ones (``FilterActivePods``), claims them (``ClaimPods``: owned pods
that stop matching the selector are released, matching orphans adopted) and counts them
for the status (``calculateStatus``).  That is O(pods) per sync; Go can afford it for a
10,000-replica set, this process cannot (~30 ms per sync, many syncs per second while the
set's pods start).

:class:`OwnedPods` gives the same answer for the *owned* pods in O(changed pods): the
pod handler marks the keys an event touched (:meth:`observe`), and :meth:`sync` re-reads
only those from the informer cache.  Per owner it keeps the owned, active pods that match
the owner's selector (what ``ClaimPods`` returns for them), those that stopped matching
(to release), and the fully-labeled and ready counts of the status.  Orphans (usually
none) are still claimed by :class:`~kubelite.machinery.controller_utils.Claimer` on each
sync.  A change of the owner's selector, template labels or deletion state starts over
with one full pass, so the result is always what a full re-scan would give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.machinery import controller_utils as cu

Obj = dict[str, Any]
Matcher = Callable[[Mapping[str, str]], bool]

_FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Claim:
    """What the owner's selector, template labels and deletion state say about a pod."""

    selector: Any  # hashable: a LabelSelector
    template_labels: tuple[tuple[str, str], ...]
    owner_deleting: bool


@dataclass
class Owned:
    """The active pods one owner controls: matching (``pods``) and to release (``stray``)."""

    claim: Claim
    matches: Matcher
    pods: dict[str, Obj] = field(default_factory=dict)
    stray: dict[str, Obj] = field(default_factory=dict)
    labeled: set[str] = field(default_factory=set)
    ready: set[str] = field(default_factory=set)
    dirty: set[str] = field(default_factory=set)

    def drop(self, key: str) -> None:
        self.pods.pop(key, None)
        self.stray.pop(key, None)
        self.labeled.discard(key)
        self.ready.discard(key)

    def place(self, key: str, pod: Obj, uid: str) -> None:
        """Classify ``pod`` as ``ClaimPods`` does for an owned candidate (after
        ``FilterActivePods``): inactive or owned by someone else -> not ours; matching (or
        the owner is being deleted) -> claimed; otherwise -> to release."""
        self.drop(key)
        m = pod.get("metadata") or {}
        if m.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in _FINISHED:
            return
        if cu.controller_uid(pod) != uid:
            return
        labels = m.get("labels") or {}
        if not (self.claim.owner_deleting or self.matches(labels)):
            self.stray[key] = pod
            return
        self.pods[key] = pod
        wanted = self.claim.template_labels
        if all(labels.get(k) == v for k, v in wanted):
            self.labeled.add(key)
        if cu.is_pod_ready(pod):
            self.ready.add(key)


class OwnedPods:
    """Per controller uid, the claimed active pods and their status counts (see module doc).

    ``cache`` is the pods informer (``get(key)``, ``by_index(OWNER_INDEX, uid)``).
    """

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self._owners: dict[str, Owned] = {}

    def observe(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """A pod event: mark ``key`` for the owners (old and new controller) tracked here."""
        for pod in (old, new):
            if pod is None:
                continue
            uid = cu.controller_uid(pod)
            if uid:
                owned = self._owners.get(uid)
                if owned is not None:
                    owned.dirty.add(key)

    def forget(self, uid: str) -> None:
        self._owners.pop(uid, None)

    def sync(self, uid: str, claim: Claim, matches: Matcher) -> Owned:
        """The owner's pods as of the informer cache now (one full pass the first time or
        when ``claim`` changed, then only the keys marked since)."""
        owned = self._owners.get(uid)
        if owned is None or owned.claim != claim:
            owned = self._owners[uid] = Owned(claim, matches)
            for pod in self.cache.by_index(cu.OWNER_INDEX, uid):
                owned.place(cu.key_of(pod), pod, uid)
            return owned
        dirty, owned.dirty = owned.dirty, set()
        for key in dirty:
            pod = self.cache.get(key)
            if pod is None:
                owned.drop(key)
            else:
                owned.place(key, pod, uid)
        return owned
