"""Server-side apply: merge, prune and conflicts (mirrors structured-merge-diff ``merge.Updater``).

An apply merges the applied configuration into the live object (structs and granular maps
merged key by key, list-maps by their keys, sets unioned, atomic values replaced), records
the configuration's field set as the applier's ``Apply`` entry, removes fields the applier
applied last time but no longer applies and nobody else owns, and refuses (409) to change a
field another manager owns unless forced, in which case ownership moves to the applier.

kubectl specifics from apimachinery are kept: for manager ``kubectl`` conflicts with fields
recorded in the ``kubectl.kubernetes.io/last-applied-configuration`` annotation (and equal
to live) are allowed, and that annotation, when present, is rewritten to the new config.
"""

from __future__ import annotations

import json
from typing import Any

from kubelite.api.errors import BadRequest, Cause, Conflict, StatusDetails
from kubelite.apiserver.apply.fieldset import FieldSet, Path, go_json, path_to_string, pe_to_string
from kubelite.apiserver.apply.managed import (
    APPLY,
    Entry,
    Key,
    Managers,
    cap_update_managers,
    decode_managed_fields,
    exclude,
    find_conflicts,
    identity,
    store_managed_fields,
    transfer_ownership,
)
from kubelite.apiserver.apply.typed import (
    KEY_DEFAULTS,
    MISSING,
    STATUS,
    STRIPPED,
    Shape,
    all_fields,
    compare,
    fields_of,
    index_items,
    item_pe,
    named_fields_as_members,
    remove_paths,
    root_shape,
)
from kubelite.schema.definitions import Schema, resolve

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"


# ---------------------------------------------------------------------------------------------
# conflicts
# ---------------------------------------------------------------------------------------------


def format_conflicts(conflicts: list[tuple[str, str]]) -> str:
    """Kubernetes' 409 message for ``(manager label, path)`` pairs.

    A label is ``"name"``, plus ``using <apiVersion>`` for Update managers and
    ``with subresource "x"`` for subresource managers.
    """
    if len(conflicts) == 1:
        label, path = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {label}: {path}"
    groups: dict[str, list[str]] = {}
    for label, path in conflicts:
        groups.setdefault(label, []).append(path)
    lines: list[str] = []
    for label in sorted(groups):
        lines.append(f"conflicts with {label}:")
        lines.extend(f"- {path}" for path in groups[label])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


class ApplyConflict(Conflict):
    """409 Conflict of an apply; ``conflicts`` holds ``(manager label, field path)`` pairs."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        causes = [Cause("FieldManagerConflict", f"conflict with {label}", path) for label, path in conflicts]
        super().__init__(format_conflicts(conflicts), StatusDetails(causes=causes))


def _conflict_error(managers: Managers, conflicts: dict[Key, FieldSet]) -> ApplyConflict:
    pairs: list[tuple[str, str]] = []
    for key in sorted(conflicts, key=lambda k: managers[k].identifier()):
        label = managers[key].label()
        pairs.extend((label, path_to_string(p)) for p in conflicts[key])
    return ApplyConflict(pairs)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------


def _expected_kinds(schema: Schema | None) -> list[str]:
    node = resolve(schema) if schema is not None else None
    gvks = node.get("x-kubernetes-group-version-kind") if node is not None else None
    return [g.get("kind", "") for g in gvks if isinstance(g, dict)] if isinstance(gvks, list) else []


def check_applied(applied: Any, api_version: str, schema: Schema | None) -> None:
    """The apply body must be a full object of this group-version with no managedFields."""
    if not isinstance(applied, dict):
        raise BadRequest("the apply patch must be a JSON or YAML object")
    version = applied.get("apiVersion")
    if version != api_version:
        raise BadRequest(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {version or ''}, expected: {api_version}"
        )
    kind = applied.get("kind")
    if not isinstance(kind, str) or not kind:
        raise BadRequest(f"Object 'Kind' is missing in '{go_json(applied)}'")
    expected = _expected_kinds(schema)
    if expected and kind not in expected:
        raise BadRequest(f'apply patch kind "{kind}" does not match the resource kind "{expected[0]}"')
    meta = applied.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise BadRequest("metadata: must be an object")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")


# ---------------------------------------------------------------------------------------------
# merge
# ---------------------------------------------------------------------------------------------


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def merge(lhs: Any, rhs: Any, shape: Shape, path: Path = ()) -> Any:
    """``rhs`` (the applied config) merged over ``lhs`` (live); None means "unset".

    Structs and granular maps merge key by key, list-maps by key and sets by value; scalars
    and atomic values are replaced.  Nulls and empty typed maps/lists are not stored.
    """
    if rhs is MISSING:
        return lhs
    shape = shape.effective(rhs)
    granular = not shape.atomic and shape.kind in ("struct", "map", "list")
    if rhs is None or (_omitted_when_empty(shape, rhs) and (not granular or lhs is MISSING or not lhs)):
        keep = granular and isinstance(lhs, list if shape.kind == "list" else dict) and bool(lhs)
        return lhs if keep else None
    if not granular:
        return rhs
    if shape.kind == "list":
        if not isinstance(rhs, list):
            return rhs
        return _merge_list(lhs if isinstance(lhs, list) else [], rhs, shape, path)
    if not isinstance(rhs, dict):
        return rhs
    out = dict(lhs) if isinstance(lhs, dict) else {}
    for key, value in rhs.items():
        merged = merge(out.get(key, MISSING), value, shape.child(key), (*path, "f:" + key))
        if merged is None:
            out.pop(key, None)
        else:
            out[key] = merged
    return out


def _omitted_when_empty(shape: Shape, value: Any) -> bool:
    """Empty typed maps and lists are not stored (Go drops them: ``omitempty``)."""
    return shape.node is not None and shape.kind in ("map", "list") and value in ({}, [])


def _check_map_item(item: Any, shape: Shape, path: Path, index: int) -> None:
    if shape.list_type != "map":
        return
    where = f"{path_to_string(path)}: element {index}"
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: associative list with keys may only contain maps")
    for key in shape.keys:
        if item.get(key) is None and key not in KEY_DEFAULTS:
            raise BadRequest(
                f'{where}: associative list with keys has an element that omits key field "{key}" '
                "(and doesn't have default value)"
            )


def check_list_keys(value: Any, shape: Shape, path: Path = ()) -> None:
    """Items of list-maps and sets in an applied config must be unique (400 otherwise)."""
    shape = shape.effective(value)
    if shape.atomic or shape.kind == "scalar":
        return
    if isinstance(value, list) and shape.kind == "list":
        seen: set[str] = set()
        item_shape = shape.item()
        for i, item in enumerate(value):
            _check_map_item(item, shape, path, i)
            pe = item_pe(shape, i, item)
            if pe in seen:
                raise BadRequest(f"{path_to_string(path)}: duplicate entries for key {pe_to_string(pe)}")
            seen.add(pe)
            check_list_keys(item, item_shape, (*path, pe))
    elif isinstance(value, dict) and shape.kind != "list":
        for key, val in value.items():
            check_list_keys(val, shape.child(key), (*path, "f:" + key))


def _merge_list(lhs: list[Any], rhs: list[Any], shape: Shape, path: Path) -> list[Any]:
    """Merge granular lists: live-only items keep their place, shared and new ones follow rhs."""
    item_shape = shape.item()
    left = index_items(shape, lhs)
    right = index_items(shape, rhs)
    lorder, rorder = list(left), list(right)
    shared = [pe for pe in rorder if pe in left]
    out: list[Any] = []
    emitted: set[str] = set()

    def emit(pe: str) -> None:
        emitted.add(pe)
        merged = merge(left.get(pe, MISSING), right[pe], item_shape, (*path, pe))
        if merged is not None:
            out.append(merged)

    li = ri = si = 0
    while li < len(lorder) or ri < len(rorder):
        if li < len(lorder) and ri < len(rorder):
            pe = lorder[li]
            if pe == rorder[ri]:
                emit(pe)
                li, ri, si = li + 1, ri + 1, si + 1
                continue
            if pe in right and si < len(shared) and shared[si] != pe:
                li += 1  # a shared item placed differently in rhs: emitted at its rhs position
                continue
        if li < len(lorder):
            pe = lorder[li]
            if pe not in right:
                out.append(left[pe])
                li += 1
                continue
            if pe in emitted:
                li += 1
                continue
        if ri < len(rorder):
            pe = rorder[ri]
            emit(pe)
            ri += 1
            if si < len(shared) and shared[si] == pe:
                si += 1
    return out


# ---------------------------------------------------------------------------------------------
# prune
# ---------------------------------------------------------------------------------------------


def _prune(
    merged: dict[str, Any],
    managers: Managers,
    applier: Key,
    last: FieldSet,
    config_set: FieldSet,
    shape: Shape,
) -> dict[str, Any]:
    """Remove what the applier applied last time, no longer applies, and nobody else owns."""
    owned = named_fields_as_members(config_set, shape)
    for key, entry in managers.items():
        if key != applier:
            owned = owned.union(named_fields_as_members(entry.fields, shape))
    doomed = named_fields_as_members(last, shape).difference(owned).difference(STRIPPED)
    if doomed.empty():
        return merged
    result = remove_paths(merged, doomed, shape)
    return {} if result is MISSING else result


# ---------------------------------------------------------------------------------------------
# last-applied (kubectl client-side apply upgrade)
# ---------------------------------------------------------------------------------------------


def _last_applied(obj: dict[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations")
    value = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) and value else None


def _allowed_by_last_applied(live: dict[str, Any], api_version: str, schema: Schema | None) -> FieldSet:
    """Fields the last-applied annotation sets to the value they still have live."""
    text = _last_applied(live)
    if text is None:
        return FieldSet()
    try:
        last = json.loads(text)
    except ValueError:
        return FieldSet()
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return FieldSet()
    c = compare(last, live, schema)
    return fields_of(last, schema).difference(c.modified).difference(c.added).difference(c.removed)


def _filter_conflicts(conflicts: dict[Key, FieldSet], allowed: FieldSet) -> dict[Key, FieldSet]:
    out: dict[Key, FieldSet] = {}
    for key, fs in conflicts.items():
        rest = FieldSet.of(p for p in fs if not allowed.has(p))
        if not rest.empty():
            out[key] = rest
    return out


def _refresh_last_applied(result: dict[str, Any], applied: dict[str, Any]) -> None:
    """kubectl's server-side apply keeps an existing last-applied annotation in sync."""
    config = _clone(applied)
    annotations = (config.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del config["metadata"]["annotations"]
    result["metadata"]["annotations"][LAST_APPLIED] = go_json(config) + "\n"


# ---------------------------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------------------------


def _split_live(live: dict[str, Any] | None) -> tuple[dict[str, Any], Managers]:
    if live is None:
        return {}, {}
    obj = _clone(live)
    meta = obj.get("metadata")
    raw = meta.pop("managedFields", None) if isinstance(meta, dict) else None
    try:
        return obj, decode_managed_fields(raw, trusted=True)
    except ValueError:
        return obj, {}


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    api_version: str,
    schema: Schema | None,
    force: bool,
    now: str,
    subresource: str = "",
    ignore_status: bool = False,
    ignored: FieldSet | None = None,
) -> dict[str, Any]:
    """Apply ``applied`` as ``manager``; returns the new object (live None: a create).

    Raises BadRequest for a malformed body and :class:`ApplyConflict` (409) for conflicts
    when not ``force``.  The result carries the updated ``metadata.managedFields``; it is
    not defaulted or validated.  Neither ``live`` nor ``applied`` is modified.
    """
    check_applied(applied, api_version, schema)
    skipped = (STATUS if ignore_status else FieldSet()).union(ignored or FieldSet())
    shape = root_shape(schema)
    live_obj, managers = _split_live(live)
    config = _clone(applied)
    check_list_keys(config, shape)
    config_full = all_fields(config, shape).recursive_difference(skipped)
    if not skipped.empty():
        config = remove_paths(config, skipped, shape)
    merged: dict[str, Any] = merge(live_obj, config, shape)

    key = identity(manager, APPLY, api_version, subresource)
    last = managers.get(key)
    managers[key] = Entry.with_fields(
        manager, APPLY, api_version, subresource, config_full.difference(STRIPPED)
    )
    managers[key].time = last.time if last else None
    if last is not None and not last.fields.empty():
        merged = _prune(merged, managers, key, last.fields, config_full, shape)

    c = exclude(compare(live_obj, merged, schema), skipped)
    conflicts = find_conflicts(managers, c, key)
    if conflicts and not force:
        if manager == KUBECTL and live is not None:
            conflicts = _filter_conflicts(conflicts, _allowed_by_last_applied(live_obj, api_version, schema))
        if conflicts:
            raise _conflict_error(managers, conflicts)
        conflicts = find_conflicts(managers, c, key)
    transfer_ownership(managers, c, conflicts, key)

    if merged != live_obj:
        managers[key].time = now
    if manager == KUBECTL and _last_applied(merged) is not None:
        _refresh_last_applied(merged, applied)
    cap_update_managers(managers)
    store_managed_fields(merged, managers)
    return merged
