"""Schema-aware walks over objects (mirrors structured-merge-diff ``typed``).

* :func:`shape_of` reads list/map semantics from an OpenAPI property schema:
  ``x-kubernetes-list-type`` (atomic | set | map, default atomic) with
  ``x-kubernetes-list-map-keys``, and ``x-kubernetes-map-type: atomic``.  Without a schema,
  maps are granular and lists atomic.
* :func:`fields_of` is ``ToFieldSet``: the paths an (applied) object sets.
* :func:`compare` is ``Compare``: the paths added, modified and removed between two objects,
  used to give ownership to the writer of an Update and to detect apply conflicts.
* :func:`remove_paths` is ``RemoveItems``; :func:`named_fields_as_members` is
  ``EnsureNamedFieldsAreMembers`` (used when pruning fields an applier stopped applying).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from kubelite.apiserver.apply.fieldset import FieldSet, Path, field_pe, index_pe, key_pe, value_pe
from kubelite.schema.definitions import REF_PREFIX, Schema, definitions, resolve

MISSING: Any = object()
"""Marks an absent field (as opposed to an explicit ``null``)."""

OBJECT_META = {"$ref": REF_PREFIX + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}

# Paths Kubernetes never records in managedFields (apimachinery ``stripMeta``).
STRIPPED = FieldSet.of(
    [
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        *(
            ("f:metadata", field_pe(n))
            for n in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    ]
)
STATUS = FieldSet.of([("f:status",)])

# Defaults of list-map key fields (SMD fills a missing key from its schema default).
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

# Fields that always exist in a Go-typed object when their parent exists (value structs and
# slices without ``omitempty``).  Kubernetes compares Go-typed objects, so such a field is
# never "added" by itself; only its children are.  This decides where ``".": {}`` appears
# in Update entries.
_API = "io.k8s.api."
_CRD = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
_IMPLICIT: dict[str, frozenset[str]] = {
    _API + "core.v1.PodTemplateSpec": frozenset({"metadata", "spec"}),
    _API + "apps.v1.DeploymentSpec": frozenset({"template", "strategy"}),
    _API + "apps.v1.ReplicaSetSpec": frozenset({"template"}),
    _API + "apps.v1.StatefulSetSpec": frozenset({"template", "updateStrategy"}),
    _API + "apps.v1.DaemonSetSpec": frozenset({"template", "updateStrategy"}),
    _API + "batch.v1.JobSpec": frozenset({"template"}),
    _API + "batch.v1.CronJobSpec": frozenset({"jobTemplate"}),
    _API + "batch.v1.JobTemplateSpec": frozenset({"metadata", "spec"}),
    _API + "core.v1.PodSpec": frozenset({"containers"}),
    _API + "core.v1.Container": frozenset({"resources"}),
    _API + "core.v1.EphemeralContainer": frozenset({"resources"}),
    _API + "core.v1.ServiceStatus": frozenset({"loadBalancer"}),
    _API + "core.v1.NodeStatus": frozenset({"daemonEndpoints", "nodeInfo"}),
    _API + "core.v1.NodeDaemonEndpoints": frozenset({"kubeletEndpoint"}),
    _API + "core.v1.ContainerStatus": frozenset({"state", "lastState"}),
    _API + "core.v1.PersistentVolumeClaimSpec": frozenset({"resources"}),
    _API + "autoscaling.v1.HorizontalPodAutoscalerSpec": frozenset({"scaleTargetRef"}),
    _API + "autoscaling.v2.HorizontalPodAutoscalerSpec": frozenset({"scaleTargetRef"}),
    _API + "core.v1.Event": frozenset({"involvedObject", "source"}),
    _API + "rbac.v1.RoleBinding": frozenset({"roleRef"}),
    _API + "rbac.v1.ClusterRoleBinding": frozenset({"roleRef"}),
    _API + "rbac.v1.Role": frozenset({"rules"}),
    _API + "rbac.v1.ClusterRole": frozenset({"rules"}),
    _API + "discovery.v1.EndpointSlice": frozenset({"endpoints"}),
    _API + "networking.v1.NetworkPolicySpec": frozenset({"podSelector"}),
    _CRD + "CustomResourceDefinitionSpec": frozenset({"names", "versions"}),
    _CRD + "CustomResourceDefinitionStatus": frozenset({"acceptedNames", "storedVersions"}),
}
_ROOT_IMPLICIT = frozenset({"metadata", "spec", "status"})


@functools.cache
def _definition_names() -> dict[int, str]:
    return {id(schema): name for name, schema in definitions().items()}


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """How a value is merged and tracked.

    kind: ``scalar`` | ``struct`` (declared properties) | ``map`` (free keys) | ``list`` |
    ``unknown`` (no schema: decided by the value).  ``kids`` memoises :meth:`child`.
    """

    kind: str
    node: Schema | None = None
    atomic: bool = False
    list_type: str = "atomic"
    keys: tuple[str, ...] = ()
    implicit: frozenset[str] = frozenset()
    kids: dict[str, Shape] = field(default_factory=dict, compare=False, repr=False)

    def declared(self, key: str) -> bool:
        if self.node is None:
            return False
        props = self.node.get("properties")
        return isinstance(props, dict) and key in props

    def child(self, key: str) -> Shape:
        """Shape of the value under ``key`` of a struct or map (memoised on this shape; a
        free-keyed map's memo is bounded, its keys being user data such as label names)."""
        hit = self.kids.get(key)
        if hit is not None:
            return hit
        node = self.node
        if node is None:
            return UNKNOWN
        props = node.get("properties")
        raw = props.get(key) if isinstance(props, dict) else None
        if raw is None:
            raw = node.get("additionalProperties")
        shape = shape_of(raw if isinstance(raw, dict) else None)
        if len(self.kids) >= _MAX_KIDS:
            self.kids.clear()
        self.kids[key] = shape
        return shape

    def item(self) -> Shape:
        """Shape of the items of a list."""
        if self.node is None:
            return UNKNOWN
        raw = self.node.get("items")
        return shape_of(raw if isinstance(raw, dict) else None)

    def effective(self, value: Any) -> Shape:
        """Resolve ``unknown`` from the value: dicts are granular maps, lists atomic."""
        if self.kind != "unknown":
            return self
        if isinstance(value, dict):
            return _UNKNOWN_MAP
        if isinstance(value, list):
            return _UNKNOWN_LIST
        return _SCALAR


UNKNOWN = Shape("unknown")
_MAX_SHAPES = 50_000
_MAX_KIDS = 1_000
_MAX_ROOTS = 1_000
_SCALAR = Shape("scalar")
_UNKNOWN_MAP = Shape("map")
_UNKNOWN_LIST = Shape("list", atomic=True)


def _ext(raw: Schema, node: Schema, name: str) -> Any:
    value = raw.get(name)
    return node.get(name) if value is None else value


def _types(node: Schema) -> set[str]:
    t = node.get("type")
    if isinstance(t, str):
        return {t} - {"null"}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)} - {"null"}
    return set()


_SHAPES: dict[int, tuple[Schema, Shape]] = {}


def shape_of(raw: Schema | None) -> Shape:
    """The shape of an *unresolved* property schema (extensions may sit beside ``$ref``).

    Memoised by schema node (the node is kept alive with its shape, so its id stays unique).
    """
    if raw is None:
        return UNKNOWN
    hit = _SHAPES.get(id(raw))
    if hit is not None and hit[0] is raw:
        return hit[1]
    shape = _shape_of(raw)
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()
    _SHAPES[id(raw)] = (raw, shape)
    return shape


def _shape_of(raw: Schema | None) -> Shape:
    node = resolve(raw) if raw is not None else None
    if raw is None or node is None:
        return UNKNOWN
    if node.get("x-kubernetes-int-or-string"):
        return _SCALAR
    types = _types(node)
    if "array" in types:
        list_type = str(_ext(raw, node, "x-kubernetes-list-type") or "atomic")
        keys = tuple(_ext(raw, node, "x-kubernetes-list-map-keys") or ())
        return Shape("list", node, list_type == "atomic", list_type, keys)
    atomic = _ext(raw, node, "x-kubernetes-map-type") == "atomic"
    if isinstance(node.get("properties"), dict):
        implicit = _IMPLICIT.get(_definition_names().get(id(node), ""), frozenset())
        return Shape("struct", node, atomic, implicit=implicit)
    if isinstance(node.get("additionalProperties"), dict):
        return Shape("map", node, atomic)
    if types and types != {"object"}:
        return _SCALAR
    return UNKNOWN


_ROOTS: dict[int, tuple[Schema | None, Shape]] = {}


def root_shape(schema: Schema | None) -> Shape:
    """Shape of a whole object; without a schema, ``metadata`` still uses ObjectMeta.

    Memoised by schema (kept alive with its shape, so its id stays unique), which keeps the
    child shapes memoised on it across writes.
    """
    hit = _ROOTS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    shape = _root_shape(schema)
    if len(_ROOTS) >= _MAX_ROOTS:
        _ROOTS.clear()
    _ROOTS[id(schema)] = (schema, shape)
    return shape


def _root_shape(schema: Schema | None) -> Shape:
    if schema is None:
        synthetic: Schema = {
            "type": "object",
            "properties": {"metadata": OBJECT_META},
            "additionalProperties": {},
        }
        return Shape("struct", synthetic)
    node = resolve(schema)
    if node is None:
        return _root_shape(None)
    if id(node) in _definition_names():
        props = node.get("properties", {})
        return Shape("struct", node, implicit=frozenset(k for k in _ROOT_IMPLICIT if k in props))
    # a custom resource schema: metadata is always ObjectMeta
    props = node.get("properties")
    synthetic = {**node, "type": "object", "properties": {**(props if isinstance(props, dict) else {})}}
    synthetic["properties"]["metadata"] = OBJECT_META
    return Shape("struct", synthetic)


def item_pe(shape: Shape, index: int, item: Any) -> str:
    """The path element of a list item (``k:``, ``v:`` or ``i:``)."""
    if shape.list_type == "map" and isinstance(item, dict):
        key = {}
        for k in shape.keys:
            if k in item and item[k] is not None:
                key[k] = item[k]
            elif k in KEY_DEFAULTS:
                key[k] = KEY_DEFAULTS[k]
        if all(type(v) in _SCALAR_TYPES for v in key.values()):
            return _scalar_key_pe(tuple((k, type(v), v) for k, v in key.items()))
        return key_pe(key)
    if shape.list_type == "set":
        if type(item) in _SCALAR_TYPES:
            return _scalar_value_pe(type(item).__name__, item)
        return value_pe(item)
    return index_pe(index)


_SCALAR_TYPES = (str, int, float, bool)


@functools.lru_cache(maxsize=65536)
def _scalar_key_pe(key: tuple[tuple[str, type, Any], ...]) -> str:
    """``key_pe`` memoised for scalar keys (the type is part of the memo key: ``1 == True``)."""
    return key_pe({k: v for k, _, v in key})


@functools.lru_cache(maxsize=65536)
def _scalar_value_pe(_type: str, value: Any) -> str:
    return value_pe(value)


def index_items(shape: Shape, items: Any) -> dict[str, Any]:
    """pe -> item for a granular list (first occurrence of a duplicate wins)."""
    out: dict[str, Any] = {}
    if isinstance(items, list):
        for i, item in enumerate(items):
            out.setdefault(item_pe(shape, i, item), item)
    return out


def _is_leaf(shape: Shape, value: Any) -> bool:
    """Scalars and atomic values are leaves; so is a value whose type contradicts its shape."""
    if shape.kind == "scalar" or shape.atomic:
        return True
    if value is None or value is MISSING:
        return False
    return not isinstance(value, list if shape.kind == "list" else dict)


# ---------------------------------------------------------------------------------------------
# ToFieldSet
# ---------------------------------------------------------------------------------------------


def fields_of(obj: dict[str, Any], schema: Schema | None, ignore_status: bool = False) -> FieldSet:
    """The set of paths an object sets, as Kubernetes records it for an appliers' entry.

    Scalars, atomic lists/maps, list items and map keys are members; struct fields are members
    only when null or ``{}``.  Identity metadata (name, uid, resourceVersion, ...) and
    ``metadata.managedFields`` are left out; so is ``status`` when ``ignore_status``.
    """
    out = all_fields(obj, root_shape(schema)).difference(STRIPPED)
    return out.recursive_difference(STATUS) if ignore_status else out


def all_fields(obj: Any, shape: Shape) -> FieldSet:
    """Like :func:`fields_of` but keeping identity metadata (what pruning needs)."""
    out = FieldSet()
    _collect(obj, shape, (), out)
    return out


def _collect(value: Any, shape: Shape, path: Path, out: FieldSet) -> None:
    shape = shape.effective(value)
    if _is_leaf(shape, value):
        out.insert(path)
    elif shape.kind == "list":
        item_shape = shape.item()
        for pe, item in index_items(shape, value).items():
            p = (*path, pe)
            _collect(item, item_shape, p, out)
            out.insert(p)
    elif isinstance(value, dict):
        for key, val in value.items():
            if not path and key == "metadata" and isinstance(val, dict):
                val = {k: v for k, v in val.items() if k != "managedFields"}
            p = (*path, field_pe(key))
            _collect(val, shape.child(key), p, out)
            if val is None or val == {} or not shape.declared(key):
                out.insert(p)


# ---------------------------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Comparison:
    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def changed(self) -> FieldSet:
        return self.added.union(self.modified)


def compare(old: dict[str, Any] | None, new: dict[str, Any], schema: Schema | None) -> Comparison:
    """Paths added, modified and removed from ``old`` (None: a create) to ``new``.

    Leaves (scalars, atomic values, empty containers) are compared by value; a granular node
    that appears or disappears is itself added or removed.  Equal subtrees are skipped, so
    the cost is proportional to what changed.  ``metadata.managedFields`` is ignored.
    """
    c = Comparison(FieldSet(), FieldSet(), FieldSet())
    rhs = _without_managed_fields(new)
    if old is None:  # a create: one walk of the new object (same result as comparing with {})
        _compare_absent(None, rhs, root_shape(schema), (), c)
        return c
    _compare(_without_managed_fields(old), rhs, root_shape(schema), (), c)
    return c


def _compare_absent(lhs: Any, rhs: Any, shape: Shape, path: Path, c: Comparison) -> None:
    """:func:`_compare` specialised to a left side that is MISSING or None (a create).

    Below an absent node everything is added; an implicit field (``_IMPLICIT``) of a present
    parent counts as None, so it is "modified" when it is a leaf and is itself not added.
    """
    if lhs is None and rhs is None:
        return
    shape = shape.effective(rhs)
    if _empty(rhs) or _is_leaf(shape, lhs) or _is_leaf(shape, rhs):
        (c.added if lhs is MISSING else c.modified).insert(path)
        return
    if shape.kind == "list":
        item_shape = shape.item()
        for pe, item in index_items(shape, rhs).items():
            _compare_absent(MISSING, item, item_shape, (*path, pe), c)
    else:
        implicit = shape.implicit if lhs is not MISSING else ()
        for key, value in rhs.items():
            lv = None if key in implicit else MISSING
            _compare_absent(lv, value, shape.child(key), (*path, field_pe(key)), c)
    if path and lhs is MISSING:
        c.added.insert(path)


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _compare(lhs: Any, rhs: Any, shape: Shape, path: Path, c: Comparison) -> None:
    if lhs is not MISSING and rhs is not MISSING and lhs == rhs:
        return
    shape = shape.effective(rhs if rhs is not MISSING else lhs)
    both_empty = _empty(lhs) and _empty(rhs)
    if _is_leaf(shape, lhs) or _is_leaf(shape, rhs) or both_empty:
        target = c.added if lhs is MISSING else c.removed if rhs is MISSING else c.modified
        target.insert(path)
        return
    if shape.kind == "list":
        _compare_lists(lhs, rhs, shape, path, c)
    else:
        _compare_maps(lhs, rhs, shape, path, c)
    if path and lhs is MISSING:
        c.added.insert(path)
    elif path and rhs is MISSING:
        c.removed.insert(path)


def _empty(value: Any) -> bool:
    return value is MISSING or value is None or value == {} or value == []


def _compare_maps(lhs: Any, rhs: Any, shape: Shape, path: Path, c: Comparison) -> None:
    lmap = lhs if isinstance(lhs, dict) else {}
    rmap = rhs if isinstance(rhs, dict) else {}
    for key, rv in rmap.items():
        lv = lmap.get(key, MISSING)
        if lv is not MISSING and (lv is rv or lv == rv):
            continue  # what _compare would conclude first, without building the path
        _compare_field(lhs, rhs, key, lv, rv, shape, path, c)
    for key, lv in lmap.items():
        if key not in rmap:
            _compare_field(lhs, rhs, key, lv, MISSING, shape, path, c)


def _compare_field(
    lhs: Any, rhs: Any, key: str, lv: Any, rv: Any, shape: Shape, path: Path, c: Comparison
) -> None:
    if key in shape.implicit:
        lv = None if lv is MISSING and lhs is not MISSING else lv
        rv = None if rv is MISSING and rhs is not MISSING else rv
    if lv is MISSING:
        if rv is not MISSING:
            _compare_absent(MISSING, rv, shape.child(key), (*path, field_pe(key)), c)
        return
    _compare(lv, rv, shape.child(key), (*path, field_pe(key)), c)


def _compare_lists(lhs: Any, rhs: Any, shape: Shape, path: Path, c: Comparison) -> None:
    litems = index_items(shape, lhs)
    ritems = index_items(shape, rhs)
    item_shape = shape.item()
    for pe, ritem in ritems.items():
        litem = litems.get(pe, MISSING)
        if litem is MISSING:
            _compare_absent(MISSING, ritem, item_shape, (*path, pe), c)
        elif litem is not ritem and litem != ritem:
            _compare(litem, ritem, item_shape, (*path, pe), c)
    for pe, litem in litems.items():
        if pe not in ritems:
            _compare(litem, MISSING, item_shape, (*path, pe), c)


# ---------------------------------------------------------------------------------------------
# RemoveItems / EnsureNamedFieldsAreMembers
# ---------------------------------------------------------------------------------------------


def remove_paths(value: Any, fs: FieldSet, shape: Shape) -> Any:
    """A copy of ``value`` without the subtrees at the members of ``fs``.

    Returns MISSING when a container ends up empty (Kubernetes stores such fields as unset).
    """
    if fs.empty():
        return value
    shape = shape.effective(value)
    if _is_leaf(shape, value) or value is None:
        return value
    if shape.kind == "list":
        item_shape = shape.item()
        items = []
        for i, item in enumerate(value):
            pe = item_pe(shape, i, item)
            if pe in fs.members:
                continue
            sub = fs.children.get(pe)
            kept = remove_paths(item, sub, item_shape) if sub is not None else item
            items.append({} if kept is MISSING else kept)
        return items if items else MISSING
    out = {}
    for key, val in value.items():
        pe = field_pe(key)
        if pe in fs.members:
            continue
        sub = fs.children.get(pe)
        kept = remove_paths(val, sub, shape.child(key)) if sub is not None else val
        if kept is not MISSING:
            out[key] = kept
    return out if out else MISSING


def named_fields_as_members(fs: FieldSet, shape: Shape) -> FieldSet:
    """``fs`` plus every declared struct field that has children in it."""
    out = FieldSet()
    out.members = set(fs.members)
    for pe, sub in fs.children.items():
        if pe.startswith("f:"):
            key = pe[2:]
            if shape.kind == "struct" and shape.declared(key):
                out.members.add(pe)
            child_shape = shape.child(key)
        else:
            child_shape = shape.item()
        out.children[pe] = named_fields_as_members(sub, child_shape)
    return out
