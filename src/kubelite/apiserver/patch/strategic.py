"""Strategic merge patch (``application/strategic-merge-patch+json``).

Mirrors apimachinery's ``strategicpatch.StrategicMergeMapPatch`` as kube-apiserver
applies it (``MergeParallelList`` and ``IgnoreUnmatchedNulls`` on), driven by the
official OpenAPI schema of the kind: at each field, ``x-kubernetes-patch-strategy``
(``merge``, ``replace``, ``retainKeys``, ``merge,retainKeys``) and
``x-kubernetes-patch-merge-key`` decide how a value is merged.

- Maps merge recursively; ``null`` deletes a key.  ``{"$patch": "replace"}`` replaces
  the map with the rest of the patch map, ``{"$patch": "delete"}`` empties it,
  ``"$patch": "merge"`` is the default.  ``$retainKeys: [...]`` clears every key of
  the live map not listed (and every patched key must be listed).
- Lists with strategy ``merge`` and a merge key merge items by key; patch items not in
  the live list are added; ``{"<key>": v, "$patch": "delete"}`` removes items; an item
  ``{"$patch": "replace"}`` makes the list exactly the other patch items.  Lists of
  scalars with strategy ``merge`` are unions; ``$deleteFromPrimitiveList/<f>`` removes
  values (from any list).  ``$setElementOrder/<f>`` fixes the final order; without it
  the order of the patch list wins over the live order (Kubernetes'
  ``normalizeElementOrder``: patch items keep their patch order, live-only items keep
  their live order, and a live-only item stays ahead of a patch item only when the
  live order puts it first, so new items come before the remaining live-only ones).
- Every other list is replaced wholesale.
- Without a schema (``schema=None``, or fields the schema does not know) maps merge
  like a JSON merge patch and lists are replaced.

Deliberate differences from apimachinery, all on inputs it mishandles: directives
never leak into the result (apimachinery keeps ``$setElementOrder/...`` inside newly
added maps), ``{"$patch": "replace"}`` on a map absent from the live object keeps the
map (apimachinery drops it), ``"$patch": "merge"`` on a map is accepted as the default
(apimachinery rejects it), ``null`` members of maps inside replaced lists are pruned,
and malformed patches are 400 BadRequest (apimachinery answers 500 for some).
A patch value whose shape contradicts the schema (an array where an object is
declared, or the reverse) is 422 Invalid, as the apiserver's decode of the result
would answer.

Inputs are never mutated.  The result is built structurally: maps and lists on the
patched paths are new, untouched subtrees are shared with ``doc``, values taken from
the patch are copied.  Callers that mutate the result in place must own ``doc``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson

from kubelite.api.errors import BadRequest, Cause, Invalid, StatusDetails
from kubelite.schema.definitions import (
    Schema,
    items_schema,
    patch_strategy,
    property_schema,
    raw_property,
    types_of,
)

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM_LIST = "$deleteFromPrimitiveList"
_DROP: Any = object()


def apply_strategic_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any], schema: Schema | None
) -> dict[str, Any]:
    """Apply ``patch`` to ``doc``; ``schema`` is the resolved schema of the object's kind."""
    if not isinstance(patch, dict):
        raise BadRequest("a strategic merge patch must be a JSON object")
    if not isinstance(doc, dict):
        raise BadRequest("a strategic merge patch can only be applied to a JSON object")
    return _merge_map(doc, patch, schema, "")


# ---------------------------------------------------------------- field metadata


@dataclass(frozen=True, slots=True)
class _Field:
    """What the schema says about one field: its strategy and where to look deeper."""

    strategy: str  # "merge", "replace" or ""
    retain_keys: bool
    merge_key: str
    schema: Schema | None  # resolved schema of the value
    items: Schema | None  # resolved schema of list items


_UNKNOWN = _Field("", False, "", None, None)


# (id(schema), key) -> (schema, field); holding the schema keeps its id from being reused
_FIELD_CACHE: dict[tuple[int, str], tuple[Schema, _Field]] = {}
_FIELD_CACHE_SIZE = 20000


def _field(schema: Schema | None, key: str) -> _Field:
    if schema is None:
        return _UNKNOWN
    cached = _FIELD_CACHE.get((id(schema), key))
    if cached is not None and cached[0] is schema:
        return cached[1]
    field = _lookup_field(schema, key)
    if len(_FIELD_CACHE) >= _FIELD_CACHE_SIZE:
        _FIELD_CACHE.clear()
    _FIELD_CACHE[(id(schema), key)] = (schema, field)
    return field


def _lookup_field(schema: Schema, key: str) -> _Field:
    raw = raw_property(schema, key)
    if raw is None:
        return _UNKNOWN
    strategies, merge_key = patch_strategy(raw)
    parts = [s for s in strategies.split(",") if s]
    retain = "retainKeys" in parts
    others = [s for s in parts if s != "retainKeys"]
    return _Field(
        others[0] if others else "",
        retain,
        merge_key,
        property_schema(schema, key),
        items_schema(raw),
    )


# ---------------------------------------------------------------- errors and helpers


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _bad(message: str, path: str) -> BadRequest:
    where = f" (at {path})" if path else ""
    return BadRequest(f"{message}{where}")


def _show(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


def _ident(value: Any) -> Hashable:
    """A hashable identity for a scalar (or merge-key value) that keeps ``true`` apart from ``1``."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (dict, list)):
        return ("json", _show(value))
    return value  # type: ignore[no-any-return]


def _check_shape(value: Any, field: _Field, path: str) -> None:
    """422 when a patch value is an array where the schema declares an object, or the reverse."""
    if field.schema is None or not isinstance(value, (dict, list)):
        return
    declared = types_of(field.schema)
    got, wrong = ("array", "object") if isinstance(value, list) else ("object", "array")
    if declared == {wrong}:
        message = f"expected {wrong}, got {got}"
        cause = Cause(reason="FieldValueInvalid", message=message, field=path)
        raise Invalid(f"the patch is invalid: {path}: {message}", StatusDetails(causes=[cause]))


# ---------------------------------------------------------------- maps


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], schema: Schema | None, path: str
) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return _fresh_map(patch, path)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise _bad(f"unknown patch type: {directive} in map: {_show(patch)}", path)
    result = dict(original)
    if RETAIN_KEYS in patch:
        result = _retain_keys(result, patch, path)
    done = _apply_element_orders(result, patch, schema, path)
    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key.startswith("$") and _is_directive(key, path):
            if key.startswith(DELETE_FROM_LIST):
                deletions.append((key, value))
            continue
        if key not in done:
            _merge_key(result, key, value, schema, path)
    for key, value in deletions:
        _delete_from_list(result, key, value, path)
    return result


def _is_directive(key: str, path: str) -> bool:
    """Whether ``key`` is a patch directive (other ``$`` keys are ordinary fields, e.g. ``$ref``)."""
    if key in (DIRECTIVE, RETAIN_KEYS):
        return True
    for prefix, kind in ((SET_ORDER, "setElementOrder list"), (DELETE_FROM_LIST, "primitive list")):
        if key.startswith(prefix):
            if not key.startswith(prefix + "/") or len(key) == len(prefix) + 1:
                raise _bad(f"invalid patch format of {kind}: {key}", path)
            return True
    return False


def _merge_key(result: dict[str, Any], key: str, value: Any, schema: Schema | None, path: str) -> None:
    """Merge one patch member into ``result`` (a fresh dict owned by the caller)."""
    if value is None:
        result.pop(key, None)
        return
    here = _at(path, key)
    current = result.get(key)
    field = _field(schema, key) if isinstance(value, (dict, list)) else _UNKNOWN
    _check_shape(value, field, here)
    if isinstance(current, dict) and isinstance(value, dict):
        if field.strategy == "replace":
            merged: Any = _fresh_map(value, here)
        else:
            merged = _merge_map(current, value, field.schema, here)
    elif isinstance(current, list) and isinstance(value, list):
        merged = _merge_list(current, value, field, here)
    else:
        merged = _fresh(value, here)
    if merged is _DROP:
        result.pop(key, None)
    else:
        result[key] = merged


def _retain_keys(result: dict[str, Any], patch: dict[str, Any], path: str) -> dict[str, Any]:
    """Clear the live keys not listed in ``$retainKeys``; every patched key must be listed."""
    keys = patch[RETAIN_KEYS]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _bad("invalid patch format of retainKeys: $retainKeys must be a list of field names", path)
    keep = set(keys)
    for key, value in patch.items():
        if value is None or (key.startswith("$") and _is_directive(key, path)):
            continue
        if key not in keep:
            raise _bad(f'invalid patch format of retainKeys: "{key}" is patched but not in $retainKeys', path)
    return {k: v for k, v in result.items() if k in keep}


# ---------------------------------------------------------------- values with nothing to merge into


def _fresh(value: Any, path: str) -> Any:
    """A patch value that lands where nothing can be merged: directives applied, ``null`` members pruned."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            directive = value[DIRECTIVE]
            if directive == "delete":
                return _DROP
            if directive not in ("replace", "merge"):
                raise _bad(f"unknown patch type: {directive} in map: {_show(value)}", path)
        return _fresh_map(value, path)
    if isinstance(value, list):
        return _fresh_list(value, path)
    return value


def _fresh_map(value: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None or (key.startswith("$") and _is_directive(key, path)):
            continue
        cleaned = _fresh(item, _at(path, key))
        if cleaned is not _DROP:
            out[key] = cleaned
    return out


def _fresh_list(items: list[Any], path: str) -> list[Any]:
    """List items carrying ``$patch`` are list directives: delete drops them, replace keeps the rest."""
    out: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and DIRECTIVE in item:
            directive = item[DIRECTIVE]
            if directive not in ("delete", "replace", "merge"):
                raise _bad(f"unknown patch type: {directive} in map: {_show(item)}", f"{path}[{i}]")
            continue
        out.append(_fresh(item, f"{path}[{i}]"))
    return out


# ---------------------------------------------------------------- lists


def _merge_list(original: list[Any], patch: list[Any], field: _Field, path: str) -> list[Any]:
    if field.strategy != "merge":
        return _fresh_list(patch, path)
    if not original and not patch:
        return []
    kind = _element_kind(original, patch, path=path)
    if kind == "scalar":
        return _merge_scalars(original, patch)
    if not field.merge_key:
        raise _bad("cannot merge lists of objects without a patch merge key", path)
    return _merge_objects(original, patch, field, path)


def _element_kind(*lists: list[Any], path: str) -> str:
    """'map' or 'scalar'; mixed lists and lists of lists are errors, as in apimachinery."""
    kinds = {
        ("map" if isinstance(v, dict) else "list" if isinstance(v, list) else "scalar")
        for lst in lists
        for v in lst
    }
    if "list" in kinds:
        cause = Cause(reason="FieldValueInvalid", message="lists of lists are not supported", field=path)
        raise Invalid(
            f"the patch is invalid: {path}: lists of lists are not supported", StatusDetails(causes=[cause])
        )
    if len(kinds) > 1:
        raise _bad("list element types are not identical", path)
    return kinds.pop() if kinds else "scalar"


def _merge_scalars(original: list[Any], patch: list[Any]) -> list[Any]:
    """The union of two scalar lists (duplicates collapse), ordered by the patch then the live list."""
    seen: set[Hashable] = set()
    merged: list[Any] = []
    for value in (*original, *patch):
        key = _ident(value)
        if key not in seen:
            seen.add(key)
            merged.append(value)
    in_patch = {_ident(v) for v in patch}
    patch_items = [v for v in merged if _ident(v) in in_patch]
    server_only = [v for v in merged if _ident(v) not in in_patch]
    return _normalize_order(patch_items, server_only, patch, original, _ident)


def _merge_objects(original: list[Any], patch: list[Any], field: _Field, path: str) -> list[Any]:
    """Merge two lists of maps by ``field.merge_key``."""
    key = field.merge_key
    live, items = _apply_list_directives(original, patch, key, path)
    merged = list(live)
    index: dict[Hashable, int] = {}
    for i, item in enumerate(merged):
        index.setdefault(_ident(item.get(key)), i)
    for item in items:
        ident = _ident(_merge_key_value(item, key, path))
        at = index.get(ident)
        if at is None:
            index[ident] = len(merged)
            merged.append(_fresh_map(item, path))
        else:
            merged[at] = _merge_map(merged[at], item, field.items, f"{path}[{key}={item[key]}]")
    by_key = _by_key(key, path)
    in_patch = {by_key(v) for v in items}
    patch_items = [v for v in merged if by_key(v) in in_patch]
    server_only = [v for v in merged if by_key(v) not in in_patch]
    return _normalize_order(patch_items, server_only, items, live, by_key)


def _merge_key_value(item: dict[str, Any], key: str, path: str) -> Any:
    if key not in item:
        raise _bad(f"map: {_show(item)} does not contain declared merge key: {key}", path)
    return item[key]


def _by_key(key: str, path: str) -> Callable[[Any], Hashable]:
    def ident(item: Any) -> Hashable:
        if not isinstance(item, dict):
            raise _bad("list element types are not identical", path)
        return _ident(_merge_key_value(item, key, path))

    return ident


def _apply_list_directives(
    original: list[Any], patch: list[Any], key: str, path: str
) -> tuple[list[Any], list[Any]]:
    """Handle ``$patch`` items: the live list after deletions (or replacement), and the plain items."""
    live = original
    plain: list[Any] = []
    replace = False
    for item in patch:
        directive = item.get(DIRECTIVE, _DROP)
        if directive is _DROP:
            plain.append(item)
        elif directive == "delete":
            gone = _ident(_merge_key_value(item, key, path))
            live = [v for v in live if not (isinstance(v, dict) and _ident(v.get(key)) == gone)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _bad("merging lists cannot yet be specified in the patch", path)
        else:
            raise _bad(f"unknown patch type: {directive} in map: {_show(item)}", path)
    if replace:
        return [_fresh_map(v, path) for v in plain], []
    return live, plain


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    ident: Callable[[Any], Hashable],
) -> list[Any]:
    """Kubernetes' ``normalizeElementOrder``.

    Patch items are sorted by ``patch_order``, live-only items by ``server_order``; then
    the two are interleaved: a live-only item goes first only when it and the next patch
    item are both in ``server_order`` and it comes earlier there.
    """
    patch_rank = _ranks(patch_order, ident)
    server_rank = _ranks(server_order, ident)
    end = len(patch_order) + len(server_order)
    patch_items = sorted(patch_items, key=lambda v: patch_rank.get(ident(v), end))
    server_only = sorted(server_only, key=lambda v: server_rank.get(ident(v), end))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(patch_items):
        left = server_rank.get(ident(server_only[i]))
        right = server_rank.get(ident(patch_items[j]))
        if left is not None and right is not None and left < right:
            out.append(server_only[i])
            i += 1
        else:
            out.append(patch_items[j])
            j += 1
    out.extend(server_only[i:])
    out.extend(patch_items[j:])
    return out


def _ranks(items: list[Any], ident: Callable[[Any], Hashable]) -> dict[Hashable, int]:
    ranks: dict[Hashable, int] = {}
    for i, item in enumerate(items):
        ranks.setdefault(ident(item), i)
    return ranks


# ---------------------------------------------------------------- $setElementOrder


def _apply_element_orders(
    result: dict[str, Any], patch: dict[str, Any], schema: Schema | None, path: str
) -> set[str]:
    """Merge every list that has a ``$setElementOrder/<f>`` and order it; returns the fields done."""
    done: set[str] = set()
    for key, order in patch.items():
        if not key.startswith(SET_ORDER) or not _is_directive(key, path):
            continue
        name = key[len(SET_ORDER) + 1 :]
        if name in patch and patch[name] is None:
            continue  # the list is deleted by the main merge
        here = _at(path, name)
        if not isinstance(order, list):
            raise _bad(f"invalid patch format of setElementOrder list: {key} must be a list", path)
        merged = _ordered_list(result.get(name), patch.get(name), order, _field(schema, name), here)
        if merged is not None:
            result[name] = merged
        done.add(name)
    return done


def _ordered_list(current: Any, value: Any, order: list[Any], field: _Field, path: str) -> list[Any] | None:
    if value is None and current is None:
        return None
    if value is not None and not isinstance(value, list):
        raise _bad(f"expected a list to go with $setElementOrder, got {_show(value)}", path)
    if current is not None and not isinstance(current, list):
        if value is None:
            return None
        current = None
    original: list[Any] = current or []
    patch_list: list[Any] = value or []
    if field.merge_key:
        ident = _by_key(field.merge_key, path)
    elif _element_kind(original, patch_list, order, path=path) == "scalar":
        ident = _ident
    else:
        # order of maps without a merge key cannot be expressed: merge and keep as is
        return _fresh_list(patch_list, path) if value is not None else original
    _check_order(patch_list, order, field.merge_key, ident, path)
    if value is None:
        merged = original
    elif current is None:
        merged = _fresh_list(patch_list, path)
    else:
        merged = _merge_list(original, patch_list, field, path)
    ranked = {ident(v) for v in order}
    patch_items = [v for v in merged if ident(v) in ranked]
    server_only = [v for v in merged if ident(v) not in ranked]
    return _normalize_order(patch_items, server_only, order, original, ident)


def _check_order(
    patch_list: list[Any], order: list[Any], merge_key: str, ident: Callable[[Any], Hashable], path: str
) -> None:
    """The patch items (deletions aside) must appear in ``$setElementOrder`` in the same relative order."""
    wanted = [v for v in patch_list if not (merge_key and isinstance(v, dict) and DIRECTIVE in v)]
    if not wanted or not order:
        return
    position = 0
    for entry in order:
        if position < len(wanted) and ident(wanted[position]) == ident(entry):
            position += 1
    if position < len(wanted):
        raise _bad(
            f"The order in patch list: {_show(patch_list)} "
            f"doesn't match $setElementOrder list: {_show(order)}",
            path,
        )


# ---------------------------------------------------------------- $deleteFromPrimitiveList


def _delete_from_list(result: dict[str, Any], key: str, values: Any, path: str) -> None:
    name = key[len(DELETE_FROM_LIST) + 1 :]
    if values is None:
        result.pop(name, None)
        return
    if not isinstance(values, list):
        raise _bad(f"invalid patch format of primitive list: {key} must be a list", path)
    current = result.get(name)
    if not isinstance(current, list):
        return
    if _element_kind(current, values, path=_at(path, name)) != "scalar":
        raise _bad(f"invalid patch format of primitive list: {key} applies to lists of scalars only", path)
    gone = {_ident(v) for v in values}
    result[name] = [v for v in current if _ident(v) not in gone]
