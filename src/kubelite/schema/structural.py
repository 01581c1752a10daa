"""What kube-apiserver's JSON decoder does to a built-in object before anything else.

A real server decodes a request body into Go structs with ``sigs.k8s.io/json``:

* a JSON value of the wrong type is a decoding error, answered with **400 BadRequest**
  ``Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal
  string into Go struct field DeploymentSpec.spec.replicas of type int32``;
* ``null`` decodes to the Go zero value, so it is accepted everywhere;
* fields the struct does not know are dropped; with ``fieldValidation=Strict`` they fail the
  request (``strict decoding error: unknown field "spec.foo"``), with ``Warn`` each becomes a
  ``Warning`` header (``unknown field "spec.foo"``);
* a key that appears twice keeps its last value and is reported as ``duplicate field "x"``.

This module mirrors that walk over the official 1.32 schemas.  Each definition is compiled
once into a small tree of :class:`Node` s (property maps precomputed), so checking a typical
Pod costs tens of microseconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.errors import Cause
from kubelite.schema.definitions import REF_PREFIX, Schema, definitions, name_for_gvk

TYPE_INVALID = "FieldValueTypeInvalid"

QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING_DEF = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION_DEF = "io.k8s.apimachinery.pkg.runtime.RawExtension"
QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"

# Node kinds
ANY = 0  # anything (RawExtension, preserve-unknown-fields, untyped)
STRUCT = 1  # object with known properties: unknown keys are reported
MAP = 2  # object whose values share one schema
OBJECT = 3  # any JSON object (FieldsV1, Patch)
ARRAY = 4
STRING = 5
INTEGER = 6
NUMBER = 7
BOOLEAN = 8
INT_OR_STRING = 9
QUANTITY = 10
BYTES = 11
TIME = 12

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass(eq=False)
class Node:
    """A compiled schema node; ``go_type`` is the Go type name used in decoding messages."""

    kind: int = ANY
    go_type: str = ""
    struct: str = ""  # Go struct name (``DeploymentSpec``) when kind == STRUCT
    props: dict[str, Node] = field(default_factory=dict)
    values: Node | None = None  # MAP values
    items: Node | None = None  # ARRAY items
    int_range: tuple[int, int] | None = None


# ---------------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------------

_BY_NAME: dict[str, Node] = {}
_BY_ID: dict[int, tuple[Schema, Node]] = {}


def _go_name(def_name: str) -> tuple[str, str]:
    """``io.k8s.api.apps.v1.DeploymentSpec`` -> (``v1.DeploymentSpec``, ``DeploymentSpec``)."""
    parts = def_name.split(".")
    return f"{parts[-2]}.{parts[-1]}", parts[-1]


def _types(schema: Schema) -> set[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return {t} - {"null"}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)} - {"null"}
    return set()


def compile_definition(name: str) -> Node:
    """The compiled node of an official definition (cached; recursive definitions are fine)."""
    node = _BY_NAME.get(name)
    if node is not None:
        return node
    node = Node()
    _BY_NAME[name] = node  # placed before filling in, so self-references terminate
    schema = definitions()[name]
    if name == QUANTITY_DEF:
        node.kind, node.go_type = QUANTITY, "resource.Quantity"
    elif name == INT_OR_STRING_DEF:
        node.kind, node.go_type = INT_OR_STRING, "intstr.IntOrString"
    elif name == RAW_EXTENSION_DEF:
        node.kind, node.go_type = ANY, "runtime.RawExtension"
    else:
        go_type, struct = _go_name(name)
        _fill(node, schema, go_type, struct)
    return node


def compile_schema(schema: Schema) -> Node:
    """Compile an (unresolved) schema node; definition references share compiled nodes."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return compile_definition(ref[len(REF_PREFIX) :])
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in schema:
        return compile_schema(all_of[0])
    node = Node()
    _fill(node, schema, "", "")
    return node


def _fill(node: Node, schema: Schema, go_type: str, struct: str) -> None:
    types = _types(schema)
    fmt = schema.get("format", "")
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        node.kind = ANY
    elif schema.get("x-kubernetes-int-or-string") or fmt == "int-or-string":
        node.kind, node.go_type = INT_OR_STRING, "intstr.IntOrString"
    elif "properties" in schema and isinstance(schema["properties"], dict):
        node.kind, node.struct = STRUCT, struct or "object"
        node.go_type = go_type or "struct"
        node.props = {k: compile_schema(v) for k, v in schema["properties"].items() if isinstance(v, dict)}
    elif "object" in types:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            node.kind, node.values = MAP, compile_schema(extra)
            node.go_type = go_type or f"map[string]{node.values.go_type or 'interface {}'}"
        else:
            node.kind, node.go_type = OBJECT, go_type or "map[string]interface {}"
    elif "array" in types:
        items = schema.get("items")
        node.kind, node.items = ARRAY, compile_schema(items) if isinstance(items, dict) else Node()
        node.go_type = go_type or f"[]{node.items.go_type or 'interface {}'}"
    else:
        _fill_scalar(node, types, fmt, go_type)


def _fill_scalar(node: Node, types: set[str], fmt: str, go_type: str) -> None:
    if types == {"string"}:
        if fmt == "byte":
            node.kind, node.go_type = BYTES, "[]uint8"
        elif fmt == "date-time":
            node.kind, node.go_type = TIME, go_type or "v1.Time"
        else:
            node.kind, node.go_type = STRING, go_type or "string"
    elif types == {"integer"}:
        node.kind, node.go_type = INTEGER, go_type or (fmt if fmt in _INT_RANGES else "int64")
        node.int_range = _INT_RANGES.get(fmt, _INT_RANGES["int64"])
    elif types == {"number"}:
        node.kind, node.go_type = NUMBER, go_type or "float64"
    elif types == {"boolean"}:
        node.kind, node.go_type = BOOLEAN, go_type or "bool"
    else:
        node.kind = ANY


def compiled(schema: Schema) -> Node:
    """The compiled node of a top-level schema dict (cached by identity)."""
    hit = _BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    node = compile_schema(schema)
    _BY_ID[id(schema)] = (schema, node)
    return node


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


def _json_kind(value: Any) -> str:
    """How Go's encoding/json names a JSON value in ``cannot unmarshal X into ...``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array"


# A position in the checked object, built only as a linked chain of tuples while walking:
# ``(parent, key, step)`` with ``step`` one of the constants below, ``None`` at the root.  The
# ``.``/``[i]`` path strings of sigs.k8s.io/json are rendered from it only when an error or an
# unknown field is recorded (hand-written: formatting a path per field made the walk of a
# status update several times slower than the check itself).
FIELD = 0  # a struct field: part of both the JSON path and the Go field path
KEY = 1  # a map key: JSON path only
INDEX = 2  # a list index: JSON path only
Path = tuple[Any, Any, int] | None


def _steps(path: Path) -> list[tuple[Any, int]]:
    out: list[tuple[Any, int]] = []
    while path is not None:
        path, key, step = path
        out.append((key, step))
    out.reverse()
    return out


def json_path_of(path: Path) -> str:
    """``spec.template.spec.containers[0].image``: ``.`` before keys, ``[i]`` for indices."""
    parts: list[str] = []
    for key, step in _steps(path):
        parts.append(f"[{key}]" if step == INDEX else f".{key}" if parts else str(key))
    return "".join(parts)


def go_path_of(path: Path) -> str:
    """The Go field path of a position: struct field names only (``spec.template.spec.containers``)."""
    return ".".join(str(key) for key, step in _steps(path) if step == FIELD)


@dataclass
class _Walk:
    prune: bool
    errors: list[Cause] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def type_error(self, got: str, owner: str, path: Path, go_type: str) -> None:
        go_path = go_path_of(path)
        where = f"Go struct field {owner}.{go_path}" if owner and go_path else "Go value"
        message = f"json: cannot unmarshal {got} into {where} of type {go_type}"
        self.errors.append(Cause(TYPE_INVALID, message, json_path_of(path)))

    def value_error(self, message: str, path: Path) -> None:
        self.errors.append(Cause(TYPE_INVALID, message, json_path_of(path)))


def check_object(
    obj: dict[str, Any], schema: Schema, *, prune: bool = False
) -> tuple[list[Cause], list[str]]:
    """Decode-check ``obj`` against an official schema: (type errors, unknown field paths).

    Paths are written like sigs.k8s.io/json's strict errors: ``.`` before object and map keys,
    ``[i]`` for list indices (``spec.template.spec.containers[0].imagee``).  With
    ``prune=True`` unknown fields are removed from ``obj`` in place, as the Go decoder drops them.
    ``apiVersion``/``kind`` are always known.
    """
    walk = _Walk(prune)
    _check(obj, compiled(schema), walk, "", None)
    return walk.errors, walk.unknown


def drop_unknown(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Remove unknown fields from ``obj`` in place (what the Go decoder silently does); their paths."""
    return check_object(obj, schema, prune=True)[1]


def check_kind(
    obj: dict[str, Any], group: str, version: str, kind: str, *, prune: bool = False
) -> tuple[list[Cause], list[str]] | None:
    """:func:`check_object` against the official schema of a kind; None if the kind has none."""
    name = name_for_gvk(group, version, kind)
    if name is None:
        return None
    walk = _Walk(prune)
    _check(obj, compile_definition(name), walk, "", None)
    return walk.errors, walk.unknown


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check(value: Any, node: Node, walk: _Walk, owner: str, path: Path) -> None:
    """Check one value; ``owner`` names the Go struct holding the field, for messages."""
    if value is None or node.kind == ANY:
        return
    kind = node.kind
    if kind == STRUCT:
        if not isinstance(value, dict):
            walk.type_error(_json_kind(value), owner, path, node.go_type)
            return
        _check_struct(value, node, walk, path)
    elif kind in (MAP, OBJECT):
        if not isinstance(value, dict):
            walk.type_error(_json_kind(value), owner, path, node.go_type)
        elif node.values is not None and node.values.kind != ANY:
            values = node.values
            for key, item in value.items():
                if not _fits(item, values):
                    _check(item, values, walk, owner, (path, key, KEY))
    elif kind == ARRAY:
        if not isinstance(value, list):
            walk.type_error(_json_kind(value), owner, path, node.go_type)
        elif node.items is not None and node.items.kind != ANY:
            items = node.items
            for i, item in enumerate(value):
                if not _fits(item, items):
                    _check(item, items, walk, owner, (path, i, INDEX))
    else:
        _check_scalar(value, node, walk, owner, path)


def _fits(value: Any, node: Node) -> bool:
    """The common cases that need no further look: null, anything for ANY, a str for a string."""
    return value is None or node.kind == ANY or (node.kind == STRING and type(value) is str)


def _check_struct(value: dict[str, Any], node: Node, walk: _Walk, path: Path) -> None:
    props = node.props
    dropped: list[str] = []
    for key, item in value.items():
        child = props.get(key)
        if child is None:
            walk.unknown.append(json_path_of((path, key, FIELD)))
            dropped.append(key)
        elif not _fits(item, child):
            _check(item, child, walk, node.struct, (path, key, FIELD))
    if walk.prune:
        for key in dropped:
            del value[key]


def _check_scalar(value: Any, node: Node, walk: _Walk, owner: str, path: Path) -> None:
    kind = node.kind
    if kind == STRING:
        if not isinstance(value, str):
            walk.type_error(_json_kind(value), owner, path, node.go_type)
    elif kind == INTEGER:
        _check_integer(value, node, walk, owner, path)
    elif kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            walk.type_error(_json_kind(value), owner, path, node.go_type)
    elif kind == BOOLEAN:
        if not isinstance(value, bool):
            walk.type_error(_json_kind(value), owner, path, node.go_type)
    elif kind == INT_OR_STRING:
        _check_int_or_string(value, walk, path)
    elif kind == QUANTITY:
        _check_quantity(value, walk, path)
    elif kind == BYTES:
        _check_bytes(value, node, walk, owner, path)
    elif kind == TIME:
        _check_time(value, walk, path)


def _check_integer(value: Any, node: Node, walk: _Walk, owner: str, path: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        walk.type_error(_json_kind(value), owner, path, node.go_type)
        return
    low, high = node.int_range or _INT_RANGES["int64"]
    if isinstance(value, float) or not low <= value <= high:
        walk.type_error(f"number {_go_number(value)}", owner, path, node.go_type)


def _go_number(value: int | float) -> str:
    """The number as it appeared in the body (Go quotes the JSON literal)."""
    return repr(value)


def _check_int_or_string(value: Any, walk: _Walk, path: Path) -> None:
    """IntOrString.UnmarshalJSON: a string, or else an int32."""
    if isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        walk.value_error(f"json: cannot unmarshal {_json_kind(value)} into Go value of type int32", path)
    elif isinstance(value, float) or not -(2**31) <= value < 2**31:
        walk.value_error(f"json: cannot unmarshal number {value} into Go value of type int32", path)


def _check_quantity(value: Any, walk: _Walk, path: Path) -> None:
    """Quantity.UnmarshalJSON: a string or a number in Kubernetes quantity syntax."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        walk.value_error(QUANTITY_MESSAGE, path)
        return
    text = value.strip() if isinstance(value, str) else json.dumps(value)
    if not QUANTITY_RE.match(text):
        walk.value_error(QUANTITY_MESSAGE, path)


def _check_bytes(value: Any, node: Node, walk: _Walk, owner: str, path: Path) -> None:
    """[]byte fields are standard base64 strings (Secret.data)."""
    if not isinstance(value, str):
        walk.type_error(_json_kind(value), owner, path, node.go_type)
        return
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        walk.value_error(f"illegal base64 data at input byte {_base64_error_offset(value)}", path)


def _base64_error_offset(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(text):
        if ch not in alphabet:
            return i
    return len(text) - len(text) % 4 if len(text) % 4 else len(text)


def _check_time(value: Any, walk: _Walk, path: Path) -> None:
    """metav1.Time.UnmarshalJSON: an RFC 3339 string."""
    if not isinstance(value, str):
        walk.value_error(f"json: cannot unmarshal {_json_kind(value)} into Go value of type string", path)
    elif not RFC3339_RE.match(value):
        walk.value_error(
            f'parsing time "{value}" as "{RFC3339_LAYOUT}": cannot parse "{value}" as "2006"', path
        )


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def type_error_message(kind: str, version: str, path: str, expected: str, got: str) -> str:
    """``Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal ...``.

    ``path`` is the Go field path (``DeploymentSpec.spec.replicas``), ``expected`` the Go type
    (``int32``) and ``got`` the JSON kind (``string``).
    """
    return decode_error_message(
        kind, version, f"json: cannot unmarshal {got} into Go struct field {path} of type {expected}"
    )


def decode_error_message(kind: str, version: str, detail: str) -> str:
    """The 400 message of a body that does not decode (``detail`` = a Cause message)."""
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}'


def strict_error_message(kind: str, version: str, unknown: list[str], duplicates: list[str]) -> str:
    """The 400 message of ``fieldValidation=Strict`` with unknown or duplicate fields."""
    texts = ", ".join(field_warnings(unknown, duplicates))
    return decode_error_message(kind, version, f"strict decoding error: {texts}")


def field_warnings(unknown: list[str], duplicates: list[str]) -> list[str]:
    """``Warning`` header texts of ``fieldValidation=Warn``: ``unknown field "spec.foo"`` ..."""
    return [f'duplicate field "{p}"' for p in duplicates] + [f'unknown field "{p}"' for p in unknown]


# ---------------------------------------------------------------------------------------------
# Duplicate keys
# ---------------------------------------------------------------------------------------------


class _Pairs(dict[str, Any]):
    """A decoded JSON object that remembers which of its keys appeared more than once."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dups: list[str] = []
        for key, _ in pairs:
            if key in seen and key not in dups:
                dups.append(key)
            seen.add(key)
        out.duplicates = dups
    return out


def find_duplicate_keys(raw: bytes) -> list[str]:
    """Paths of keys that appear twice in one JSON object (``metadata.name``, ``spec.ports[0].port``).

    Only called for ``fieldValidation=Strict``/``Warn``; a body that is not JSON yields [].
    """
    if raw.count(b'"') < 4:
        return []
    try:
        tree = json.loads(raw, object_pairs_hook=_pairs_hook)
    except ValueError:
        return []
    out: list[str] = []
    _collect_duplicates(tree, "", out)
    return out


def _collect_duplicates(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", ()):
            out.append(_join(path, key))
        for key, value in node.items():
            if isinstance(value, dict | list):
                _collect_duplicates(value, _join(path, key), out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict | list):
                _collect_duplicates(value, f"{path}[{i}]", out)
