"""Resource quantities come back in canonical form, as from kube-apiserver.

kube-apiserver decodes every ``resource.Quantity`` field into a number and encodes it again
when it stores and returns an object: ``cpu: 0.5`` is served as ``500m``, ``memory: 1024Mi`` as
``1Gi``, ``1000`` as ``1k`` and a JSON number ``1`` as the string ``"1"``, while canonical text
(``100m``, ``1Gi``) is kept. :func:`canonicalize_quantities` does the same for every Quantity
field of a built-in kind; the fields are found once per kind from the official 1.32 schemas.
Values that do not parse are left alone for validation to reject.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from kubelite.api.quantity import canonical_quantity, is_valid_quantity
from kubelite.schema.definitions import REF_PREFIX, definitions, name_for_gvk

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
MAP_VALUES = "*"  # tree key: every value of a map
LIST_ITEMS = "[]"  # tree key: every item of a list

# A tree of the paths that lead to quantities: property name (or MAP_VALUES / LIST_ITEMS) ->
# subtree; the LEAF tree marks a quantity.
Tree = dict[str, Any]
LEAF: Tree = {}


@cache
def _definition_tree(name: str) -> Tree | None:
    """The quantity paths under one named definition (None: there are none)."""
    if name == QUANTITY:
        return LEAF
    _IN_PROGRESS.add(name)
    try:
        return _schema_tree(definitions().get(name))
    finally:
        _IN_PROGRESS.discard(name)


_IN_PROGRESS: set[str] = set()


def _schema_tree(schema: Any) -> Tree | None:
    if not isinstance(schema, dict):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        name = ref[len(REF_PREFIX) :]
        # recursive types (JSONSchemaProps) hold no quantities
        return None if name in _IN_PROGRESS else _definition_tree(name)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return _schema_tree(all_of[0])
    tree: Tree = {}
    for prop, sub in (schema.get("properties") or {}).items():
        found = _schema_tree(sub)
        if found is not None:
            tree[prop] = found
    for key, child in ((MAP_VALUES, "additionalProperties"), (LIST_ITEMS, "items")):
        found = _schema_tree(schema.get(child))
        if found is not None:
            tree[key] = found
    return tree or None


@lru_cache(maxsize=1024)
def quantity_tree(group: str, version: str, kind: str) -> Tree | None:
    """Where a kind's quantities are (None for kinds without any, or without a schema)."""
    name = name_for_gvk(group, version, kind)
    return _definition_tree(name) if name else None


def canonicalize_quantities(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    """Rewrite every well-formed quantity of ``obj`` to its canonical text (in place)."""
    tree = quantity_tree(group, version, kind)
    if tree is not None:
        _walk(obj, tree)


def _walk(value: Any, tree: Tree) -> None:
    if isinstance(value, dict):
        for key, sub in tree.items():
            if key == MAP_VALUES:
                for k in value:
                    _visit(value, k, sub)
            elif key in value:
                _visit(value, key, sub)
    elif isinstance(value, list) and LIST_ITEMS in tree:
        for i in range(len(value)):
            _visit(value, i, tree[LIST_ITEMS])


def _visit(container: Any, key: Any, tree: Tree) -> None:
    if tree is LEAF:
        raw = container[key]
        if isinstance(raw, str | int | float) and not isinstance(raw, bool):
            text = _canonical(raw)
            if text is not None:
                container[key] = text
        return
    _walk(container[key], tree)


@lru_cache(maxsize=8192)
def _canonical(raw: str | int | float) -> str | None:
    return canonical_quantity(raw) if is_valid_quantity(raw) else None
