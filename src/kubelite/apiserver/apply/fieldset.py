"""Field sets and their ``FieldsV1`` wire form (mirrors structured-merge-diff ``fieldpath``).

A *path element* is kept in its serialized FieldsV1 spelling, which makes it hashable and
directly usable as a JSON key:

* ``f:<name>``            a field of a struct or a key of a map
* ``k:{"name":"nginx"}``  an item of an associative list (``x-kubernetes-list-type: map``),
                          keyed by the list-map keys, JSON with the key names sorted
* ``v:<json>``            an item of a set list (``x-kubernetes-list-type: set``)
* ``i:<n>``               an item of an atomic list, by index

A :class:`FieldSet` is a trie: ``members`` are path elements that belong to the set at this
level, ``children`` hold the sets below a path element.  A path element can be both (the
``".": {}`` marker of FieldsV1).  Values inside ``k:``/``v:`` elements are canonicalized the
way Go's ``encoding/json`` writes them, so equal keys always compare equal.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

Path = tuple[str, ...]

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _normalize_numbers(value: Any) -> Any:
    """Integral floats become ints, as Go prints ``80.0`` as ``80``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_numbers(v) for v in value]
    return value


def go_json(value: Any) -> str:
    """Compact JSON the way Go's ``encoding/json`` writes it (sorted keys, HTML-safe escapes)."""
    text = json.dumps(_normalize_numbers(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if any(ch in text for ch in _HTML_ESCAPES):
        for ch, esc in _HTML_ESCAPES.items():
            text = text.replace(ch, esc)
    return text


# ---------------------------------------------------------------------------------------------
# Path elements
# ---------------------------------------------------------------------------------------------


def field_pe(name: str) -> str:
    return "f:" + name


def key_pe(keys: dict[str, Any]) -> str:
    return "k:" + go_json(keys)


def value_pe(value: Any) -> str:
    return "v:" + go_json(value)


def index_pe(index: int) -> str:
    return f"i:{index}"


class UnknownPathElement(ValueError):
    """A FieldsV1 key with an unknown type prefix (ignored on decode, like Kubernetes does)."""


@functools.lru_cache(maxsize=65536)
def canonical_pe(text: str) -> str:
    """Parse and re-serialize a FieldsV1 key; raises ValueError when it is malformed."""
    if len(text) < 2 or text[1] != ":":
        raise ValueError(f"invalid path element {text!r}: missing colon")
    kind, body = text[0], text[2:]
    if kind == "f":
        return text
    if kind == "i":
        return index_pe(int(body))
    if kind in "kv":
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid path element {text!r}: {e}") from None
        if kind == "v":
            return value_pe(parsed)
        if not isinstance(parsed, dict):
            raise ValueError(f"invalid path element {text!r}: key must be a JSON object")
        return key_pe(parsed)
    raise UnknownPathElement(text)


def _value_sort_key(value: Any) -> tuple[Any, ...]:
    """Total order over JSON values: numbers < strings < bools < lists < maps < null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_sort_key(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_sort_key(value[k])) for k in sorted(value)))
    return (5,)


@functools.lru_cache(maxsize=65536)
def pe_sort_key(pe: str) -> tuple[Any, ...]:
    """Order of path elements: fields, then keys, then values, then indexes."""
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return (0, body)
    if kind == "k":
        keys = json.loads(body)
        return (1, tuple((k, _value_sort_key(keys[k])) for k in sorted(keys)))
    if kind == "v":
        return (2, _value_sort_key(json.loads(body)))
    return (3, int(body))


def _go_quote(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pe_to_string(pe: str) -> str:
    """Human form used in conflict messages: ``.name``, ``[name="x"]``, ``[=value]``, ``[3]``."""
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return "." + body
    if kind == "k":
        keys = json.loads(body)
        return "[" + ",".join(f"{k}={_go_quote(keys[k])}" for k in sorted(keys)) + "]"
    if kind == "v":
        return f"[={_go_quote(json.loads(body))}]"
    return f"[{body}]"


def path_to_string(path: Path) -> str:
    """``.spec.template.spec.containers[name="nginx"].image``"""
    return "".join(pe_to_string(pe) for pe in path)


# ---------------------------------------------------------------------------------------------
# Sets
# ---------------------------------------------------------------------------------------------


class FieldSet:
    """A set of field paths stored as a trie (structured-merge-diff ``fieldpath.Set``).

    Invariant: no child set is empty.  Set algebra never mutates its operands, and its
    results share unchanged subtrees with them (no copying: the managedFields bookkeeping of
    every write combines sets several times), so only a set under construction is mutated
    (:meth:`insert`), never one that took part in algebra.
    """

    __slots__ = ("children", "members")

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.children: dict[str, FieldSet] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def of(cls, paths: Iterable[Path]) -> FieldSet:
        fs = cls()
        for p in paths:
            fs.insert(p)
        return fs

    def insert(self, path: Path) -> None:
        """Add one path (the empty path is ignored: the root is never a member)."""
        if not path:
            return
        node = self
        for pe in path[:-1]:
            child = node.children.get(pe)
            if child is None:
                child = node.children[pe] = FieldSet()
            node = child
        node.members.add(path[-1])

    def copy(self) -> FieldSet:
        out = FieldSet()
        out.members = set(self.members)
        out.children = {pe: c.copy() for pe, c in self.children.items()}
        return out

    # -- queries ------------------------------------------------------------------------------
    def empty(self) -> bool:
        return not self.members and not self.children

    def has(self, path: Path) -> bool:
        if not path:
            return False
        node: FieldSet | None = self
        for pe in path[:-1]:
            node = node.children.get(pe) if node is not None else None
            if node is None:
                return False
        return node is not None and path[-1] in node.members

    def child(self, pe: str) -> FieldSet | None:
        return self.children.get(pe)

    def __iter__(self) -> Iterator[Path]:
        """Every member path, in Kubernetes order (members of a level before its children)."""
        yield from self._iter(())

    def _iter(self, prefix: Path) -> Iterator[Path]:
        for pe in sorted(self.members, key=pe_sort_key):
            yield (*prefix, pe)
        for pe in sorted(self.children, key=pe_sort_key):
            yield from self.children[pe]._iter((*prefix, pe))

    def __len__(self) -> int:
        return len(self.members) + sum(len(c) for c in self.children.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.members == other.members and self.children == other.children

    def __repr__(self) -> str:
        return f"FieldSet({[path_to_string(p) for p in self]})"

    __hash__ = None  # type: ignore[assignment]

    # -- algebra ------------------------------------------------------------------------------
    def union(self, other: FieldSet) -> FieldSet:
        if other.empty():
            return self
        if self.empty():
            return other
        out = FieldSet()
        out.members = self.members | other.members
        for pe in self.children.keys() | other.children.keys():
            a, b = self.children.get(pe), other.children.get(pe)
            if a is None:
                assert b is not None
                out.children[pe] = b
            elif b is None:
                out.children[pe] = a
            else:
                out.children[pe] = a.union(b)
        return out

    def intersection(self, other: FieldSet) -> FieldSet:
        out = FieldSet()
        out.members = self.members & other.members
        for pe in self.children.keys() & other.children.keys():
            sub = self.children[pe].intersection(other.children[pe])
            if not sub.empty():
                out.children[pe] = sub
        return out

    def difference(self, other: FieldSet) -> FieldSet:
        """Members of self not in other (member-wise: removing a path keeps its children)."""
        out = FieldSet()
        out.members = self.members - other.members
        for pe, c in self.children.items():
            o = other.children.get(pe)
            sub = c if o is None else c.difference(o)
            if not sub.empty():
                out.children[pe] = sub
        return out

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Self without every path that is, or lies below, a member of other."""
        out = FieldSet()
        out.members = self.members - other.members
        for pe, c in self.children.items():
            if pe in other.members:
                continue
            o = other.children.get(pe)
            sub = c if o is None else c.recursive_difference(o)
            if not sub.empty():
                out.children[pe] = sub
        return out


# ---------------------------------------------------------------------------------------------
# FieldsV1
# ---------------------------------------------------------------------------------------------


def to_fields_v1(fs: FieldSet) -> dict[str, Any]:
    """The FieldsV1 JSON object of a set (``"."`` first, then path elements in order)."""
    out: dict[str, Any] = {}
    for pe in sorted(fs.members | fs.children.keys(), key=pe_sort_key):
        child = fs.children.get(pe)
        if child is None or child.empty():
            out[pe] = {}
            continue
        node: dict[str, Any] = {".": {}} if pe in fs.members else {}
        node.update(to_fields_v1(child))
        out[pe] = node
    return out


def from_fields_v1(d: Any) -> FieldSet:
    """Decode a FieldsV1 object; raises ValueError when it is malformed.

    Keys with unknown type prefixes are skipped, like structured-merge-diff does.
    """
    if not isinstance(d, dict):
        raise ValueError("FieldsV1 must be a JSON object")
    out = FieldSet()
    for key, val in d.items():
        if key == ".":
            continue
        try:
            pe = canonical_pe(key)
        except UnknownPathElement:
            continue
        if not isinstance(val, dict):
            raise ValueError(f"FieldsV1 entry {key!r} must be a JSON object")
        sub = from_fields_v1(val) if val else FieldSet()
        if "." in val or sub.empty():
            out.members.add(pe)
        if not sub.empty():
            existing = out.children.get(pe)
            out.children[pe] = sub if existing is None else existing.union(sub)
    return out


# ---------------------------------------------------------------------------------------------
# Operations directly on (canonical) FieldsV1 objects: cheap for the common write, which
# touches a few paths of large entries.  Inputs are never mutated; untouched sub-objects are
# shared with the input, so treat FieldsV1 objects as immutable.
# ---------------------------------------------------------------------------------------------


def _is_member(node: Any) -> bool:
    return isinstance(node, dict) and (not node or "." in node)


def _sorted_level(level: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {".": {}} if "." in level else {}
    for pe in sorted((k for k in level if k != "."), key=pe_sort_key):
        out[pe] = level[pe]
    return out


def fields_v1_intersection(raw: dict[str, Any], fs: FieldSet) -> FieldSet:
    """``from_fields_v1(raw).intersection(fs)`` without decoding all of ``raw``."""
    out = FieldSet()
    for pe in fs.members:
        if _is_member(raw.get(pe)):
            out.members.add(pe)
    for pe, sub in fs.children.items():
        node = raw.get(pe)
        if isinstance(node, dict) and node:
            inner = fields_v1_intersection(node, sub)
            if not inner.empty():
                out.children[pe] = inner
    return out


def fields_v1_difference(raw: dict[str, Any], fs: FieldSet) -> dict[str, Any]:
    """``to_fields_v1(from_fields_v1(raw).difference(fs))``, copying only what changes."""
    out: dict[str, Any] | None = None
    for pe in fs.members | fs.children.keys():
        node = raw.get(pe)
        if not isinstance(node, dict):
            continue
        member = not node or "." in node
        children = {k: v for k, v in node.items() if k != "."}
        sub = fs.children.get(pe)
        if sub is not None and children:
            children = fields_v1_difference(children, sub)
        if pe in fs.members:
            member = False
        new_node = ({".": {}} if member and children else {}) | children
        if new_node == node and (member or children):
            continue
        if out is None:
            out = dict(raw)
        if member or children:
            out[pe] = new_node
        else:
            del out[pe]
    return raw if out is None else out


def fields_v1_union(raw: dict[str, Any], fs: FieldSet) -> dict[str, Any]:
    """``to_fields_v1(from_fields_v1(raw).union(fs))``, copying only what changes."""
    if fs.empty():
        return raw
    out = dict(raw)
    for pe in fs.members | fs.children.keys():
        node = raw.get(pe)
        node = node if isinstance(node, dict) else None
        member = pe in fs.members or (node is not None and (not node or "." in node))
        children = {k: v for k, v in (node or {}).items() if k != "."}
        sub = fs.children.get(pe)
        if sub is not None:
            children = fields_v1_union(children, sub)
        out[pe] = _sorted_level(({".": {}} if member and children else {}) | children)
    return _sorted_level(out)
