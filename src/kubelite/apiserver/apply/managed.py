"""managedFields bookkeeping (mirrors apimachinery ``pkg/util/managedfields/internal``).

Each ``metadata.managedFields`` entry is one *manager*: identified by (manager, operation,
apiVersion, subresource), where Apply entries leave apiVersion out of the identity so that an
applier keeps one entry across versions.  On every create/update/patch the writer
(operation ``Update``) takes the fields it changed and every other manager loses them;
fields that disappear are dropped from every manager.  Entries that end up empty are
removed, at most 10 Update entries are kept (older ones merge into ``ancient-changes``), and
entries are sorted by operation, time, manager, apiVersion and subresource.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from kubelite.apiserver.apply.fieldset import (
    FieldSet,
    fields_v1_difference,
    fields_v1_intersection,
    fields_v1_union,
    from_fields_v1,
    go_json,
    to_fields_v1,
)
from kubelite.apiserver.apply.typed import STATUS, STRIPPED, Comparison, compare
from kubelite.schema.definitions import Schema

APPLY = "Apply"
UPDATE = "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"

Key = tuple[str, str, str, str]
_NOTHING = FieldSet()  # never mutated


@dataclass
class Entry:
    """One managedFields entry.

    ``raw`` (canonical FieldsV1) is the source of truth; the decoded set is built only when
    an operation needs all of it (apply), so a write that touches a few fields of large
    entries stays cheap.
    """

    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    _decoded: FieldSet | None = field(default=None, repr=False)

    @classmethod
    def with_fields(
        cls, manager: str, operation: str, api_version: str, subresource: str, fs: FieldSet
    ) -> Entry:
        return cls(manager, operation, api_version, subresource, raw=to_fields_v1(fs), _decoded=fs)

    @property
    def key(self) -> Key:
        return identity(self.manager, self.operation, self.api_version, self.subresource)

    @property
    def fields(self) -> FieldSet:
        if self._decoded is None:
            self._decoded = from_fields_v1(self.raw)
        return self._decoded

    def empty(self) -> bool:
        return not self.raw

    def intersect(self, fs: FieldSet) -> FieldSet:
        return fields_v1_intersection(self.raw, fs)

    def subtract(self, fs: FieldSet) -> None:
        raw = fields_v1_difference(self.raw, fs)
        if raw is not self.raw:
            self.raw, self._decoded = raw, None

    def add(self, fs: FieldSet) -> None:
        self.raw, self._decoded = fields_v1_union(self.raw, fs), None

    def encode(self) -> dict[str, Any]:
        """The entry as Kubernetes serializes ``ManagedFieldsEntry`` (empty strings omitted)."""
        out: dict[str, Any] = {}
        for name, value in (("manager", self.manager), ("operation", self.operation)):
            if value:
                out[name] = value
        if self.api_version:
            out["apiVersion"] = self.api_version
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self.raw
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def label(self) -> str:
        """How a conflict message names this manager (apiserver ``printManager``)."""
        text = go_json(self.manager)
        if self.subresource:
            text += f" with subresource {go_json(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def identifier(self) -> str:
        """The JSON manager identifier Kubernetes sorts conflict groups by."""
        ident: dict[str, str] = {"manager": self.manager, "operation": self.operation}
        if self.operation == UPDATE:
            ident["apiVersion"] = self.api_version
        parts = [f'"{k}":{go_json(v)}' for k, v in ident.items() if v]
        if self.subresource:
            parts.append(f'"subresource":{go_json(self.subresource)}')
        return "{" + ",".join(parts) + "}"


Managers = dict[Key, Entry]


def identity(manager: str, operation: str, api_version: str, subresource: str) -> Key:
    return (manager, operation, api_version if operation != APPLY else "", subresource)


# ---------------------------------------------------------------------------------------------
# decode / encode
# ---------------------------------------------------------------------------------------------


def decode_managed_fields(entries: Any, trusted: bool = False) -> Managers:
    """Entries of ``metadata.managedFields``; raises ValueError naming the bad entry.

    ``trusted`` entries (read back from storage, written by this module) are not re-parsed;
    others are validated and their FieldsV1 canonicalized.
    """
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ValueError("metadata.managedFields must be a list")
    out: Managers = {}
    for i, raw in enumerate(entries):
        entry = _decode_entry(i, raw, trusted)
        out[entry.key] = entry
    return out


def _decode_entry(i: int, raw: Any, trusted: bool) -> Entry:
    where = f"metadata.managedFields[{i}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    operation = raw.get("operation", "")
    if operation not in (APPLY, UPDATE):
        raise ValueError(f'{where}.operation: must be "Apply" or "Update"')
    if raw.get("fieldsType", "FieldsV1") != "FieldsV1":
        raise ValueError(f'{where}.fieldsType: must be "FieldsV1"')
    fields_v1 = raw.get("fieldsV1") or {}
    if not isinstance(fields_v1, dict):
        raise ValueError(f"{where}.fieldsV1: must be an object")
    entry = Entry(
        manager=str(raw.get("manager") or ""),
        operation=operation,
        api_version=str(raw.get("apiVersion") or ""),
        subresource=str(raw.get("subresource") or ""),
        time=raw.get("time") or None,
        raw=fields_v1,
    )
    if not trusted:
        try:
            decoded = from_fields_v1(fields_v1)
        except ValueError as e:
            raise ValueError(f"{where}.fieldsV1: {e}") from None
        entry.raw, entry._decoded = to_fields_v1(decoded), decoded
    return entry


@functools.lru_cache(maxsize=4096)
def _epoch(t: str | None) -> int:
    if not t:
        return 0
    try:
        return int(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def encode_managed_fields(managers: Managers) -> list[dict[str, Any]]:
    """Non-empty entries, in Kubernetes' order."""
    entries = [e for e in managers.values() if not e.empty()]
    entries.sort(key=lambda e: (e.operation, _epoch(e.time), e.manager, e.api_version, e.subresource))
    return [e.encode() for e in entries]


def store_managed_fields(obj: dict[str, Any], managers: Managers) -> None:
    """Write the entries onto ``obj`` (removing ``managedFields`` when there are none)."""
    meta = obj.setdefault("metadata", {})
    encoded = encode_managed_fields(managers)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


# ---------------------------------------------------------------------------------------------
# ownership
# ---------------------------------------------------------------------------------------------


def exclude(c: Comparison, ignored: FieldSet) -> Comparison:
    """The comparison without ignored (reset) fields, e.g. ``status`` on the main resource."""
    if ignored.empty():
        return c
    return Comparison(_without(c.added, ignored), _without(c.modified, ignored), _without(c.removed, ignored))


def _without(fs: FieldSet, ignored: FieldSet) -> FieldSet:
    """``fs.recursive_difference(ignored)``; ``fs`` itself (not a copy) when nothing of it lies
    under ``ignored``, e.g. a status write's fields and ``spec`` (comparisons are read-only)."""
    top = fs.members | fs.children.keys()
    if top.isdisjoint(ignored.members) and fs.children.keys().isdisjoint(ignored.children.keys()):
        return fs
    return fs.recursive_difference(ignored)


def find_conflicts(managers: Managers, c: Comparison, skip: Key | None) -> dict[Key, FieldSet]:
    """Fields other managers own whose value this write adds or changes."""
    changed = c.changed()
    if changed.empty():
        return {}
    out: dict[Key, FieldSet] = {}
    for key, entry in managers.items():
        if key == skip:
            continue
        overlap = entry.intersect(changed)
        if not overlap.empty():
            out[key] = overlap
    return out


def transfer_ownership(
    managers: Managers, c: Comparison, conflicts: dict[Key, FieldSet], skip: Key | None
) -> None:
    """Other managers lose the conflicting fields and every removed field; empty ones go."""
    for key in list(managers):
        if key == skip:
            continue
        entry = managers[key]
        lost = conflicts.get(key)
        if lost is not None:
            entry.subtract(lost)
        if not c.removed.empty():
            entry.subtract(c.removed)
        if entry.empty():
            del managers[key]


def cap_update_managers(managers: Managers, limit: int = MAX_UPDATE_MANAGERS) -> None:
    """Merge the oldest Update entries into per-version ``ancient-changes`` entries."""
    updaters = [k for k, e in managers.items() if e.operation == UPDATE]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda k: (_epoch(managers[k].time), k[0]))
    first_of_version: dict[str, Key] = {}
    count = len(updaters)
    for key in updaters:
        if count <= limit:
            break
        entry = managers[key]
        version = entry.api_version
        bucket = identity(ANCIENT_CHANGES, UPDATE, version, "")
        if version not in first_of_version:
            first_of_version[version] = key
            continue
        if key == bucket:
            continue
        if bucket not in managers:
            first = managers.pop(first_of_version[version])
            managers[bucket] = Entry(ANCIENT_CHANGES, UPDATE, version, "", first.time, raw=first.raw)
        target = managers[bucket]
        target.add(entry.fields)
        target.time = entry.time
        del managers[key]
        count -= 1


# ---------------------------------------------------------------------------------------------
# Update operations
# ---------------------------------------------------------------------------------------------


def _is_reset(raw: Any) -> bool:
    """``managedFields: []`` or ``[{}]`` in a write clears the tracking."""
    return isinstance(raw, list) and (len(raw) == 0 or (len(raw) == 1 and raw[0] == {}))


def _starting_managers(old: dict[str, Any] | None, new: dict[str, Any], subresource: str) -> Managers:
    """The writer may set managedFields itself, except through a subresource."""
    stored = (old.get("metadata") or {}).get("managedFields") if old is not None else None
    raw = (new.get("metadata") or {}).get("managedFields")
    if not subresource and raw != stored:
        if _is_reset(raw):
            return {}
        if raw:
            try:
                managers = decode_managed_fields(raw)
            except ValueError:
                managers = {}
            if managers:
                return managers
    try:
        return decode_managed_fields(stored, trusted=True)
    except ValueError:
        return {}


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    api_version: str,
    schema: Schema | None,
    now: str,
    subresource: str = "",
    ignore_status: bool = False,
    ignored: FieldSet | None = None,
) -> None:
    """Record a create/update/patch by ``manager`` in ``new["metadata"]["managedFields"]``.

    ``old`` is the stored object (None on create); ``new`` the object about to be stored,
    after defaulting.  ``ignore_status`` (main resource of a kind with a status subresource)
    or ``ignored`` (e.g. ``spec`` for the status subresource) leave those fields untracked.
    Objects that exist without managedFields stay untracked, as in Kubernetes.
    """
    managers = _starting_managers(old, new, subresource)
    if old is not None and not managers:
        (new.get("metadata") or {}).pop("managedFields", None)
        return
    skipped = STATUS if ignore_status else _NOTHING
    if ignored is not None and not ignored.empty():
        skipped = skipped.union(ignored)
    c = exclude(compare(old, new, schema), skipped)
    key = identity(manager, UPDATE, api_version, subresource)
    changed = c.added if c.modified.empty() else c.changed()  # read-only from here on
    taken = (changed if c.removed.empty() else changed.difference(c.removed)).difference(STRIPPED)
    if refreshes_own_fields(managers, changed, c.removed, key, taken):
        if not taken.empty():
            managers[key].time = now
    else:
        transfer_ownership(managers, c, find_conflicts(managers, c, None), None)
        _record(managers, key, taken, now)
    cap_update_managers(managers)
    store_managed_fields(new, managers)


def _record(managers: Managers, key: Key, taken: FieldSet, now: str) -> None:
    """The writer's entry gains ``taken`` (created if needed) and the time of this write."""
    if taken.empty():
        return
    entry = managers.get(key)
    if entry is None:
        managers[key] = Entry.with_fields(key[0], UPDATE, key[2], key[3], taken)
    else:
        entry.add(taken)
    managers[key].time = now


def refreshes_own_fields(
    managers: Managers, changed: FieldSet, removed: FieldSet, key: Key, taken: FieldSet
) -> bool:
    """True when ownership cannot change: the writer already owns exactly the fields it
    sets among those changed or removed, and no other manager owns any of them.

    This is the steady state of every heartbeat-like write (a Lease renewal, a status
    refresh): the general path would subtract the writer's fields and add them back, and
    only the entry's time changes.
    """
    if key not in managers and not taken.empty():
        return False
    for k, entry in managers.items():
        if entry.empty():
            return False
        owned = entry.intersect(changed)
        if not removed.empty():
            owned = owned.union(entry.intersect(removed))
        if owned != (taken if k == key else _NOTHING):
            return False
    return True
