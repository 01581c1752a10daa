"""The official Kubernetes 1.32 schemas, as shipped in the ``kubernetes-validate`` package.

Schemas are plain JSON-schema dicts; references look like ``{"$ref": "#/$defs/<name>"}``.
Types are often ``["string", "null"]``.  Kubernetes extensions are kept as-is:
``x-kubernetes-group-version-kind``, ``x-kubernetes-patch-merge-key``,
``x-kubernetes-patch-strategy``, ``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``,
``x-kubernetes-map-type``, ``x-kubernetes-int-or-string``, ``x-kubernetes-preserve-unknown-fields``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

import orjson

KUBE_VERSION = "1.32.0"
REF_PREFIX = "#/$defs/"

Schema = dict[str, Any]


def _definitions_path() -> str:
    # locate the package without importing it: its import pulls in jsonschema (~0.2 s of
    # the server's start-up) and only the data file is needed
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("kubernetes_validate is not installed")
    base = next(iter(spec.submodule_search_locations))
    return os.path.join(base, "kubernetes-json-schema", f"v{KUBE_VERSION}-local", "_definitions.json")


@functools.cache
def definitions() -> dict[str, Schema]:
    """name (``io.k8s.api.apps.v1.Deployment``) -> schema."""
    with open(_definitions_path(), "rb") as f:
        data = orjson.loads(f.read())
    defs: dict[str, Schema] = data["$defs"]
    return defs


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            # prefer the api type over meta types that claim many GVKs (DeleteOptions, WatchEvent)
            out.setdefault(key, name)
    return out


def name_for_gvk(group: str, version: str, kind: str) -> str | None:
    """The definition name of a kind, e.g. ('apps','v1','Deployment') -> io.k8s.api.apps.v1.Deployment."""
    return _gvk_index().get((group, version, kind))


def schema_for_gvk(group: str, version: str, kind: str) -> Schema | None:
    name = name_for_gvk(group, version, kind)
    return definitions()[name] if name else None


def resolve(schema: Schema | None) -> Schema | None:
    """Follow ``$ref`` and single-element ``allOf`` wrappers to the real schema node."""
    seen = 0
    while schema is not None and seen < 32:
        seen += 1
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            schema = definitions().get(ref[len(REF_PREFIX) :])
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in schema:
            schema = all_of[0]
            continue
        return schema
    return schema


def property_schema(schema: Schema | None, name: str) -> Schema | None:
    """The resolved schema of property ``name`` of an object schema (None if unknown)."""
    node = resolve(schema)
    if node is None:
        return None
    props = node.get("properties")
    if isinstance(props, dict) and name in props:
        return resolve(props[name])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra)
    return None


def items_schema(schema: Schema | None) -> Schema | None:
    """The resolved schema of the items of an array schema."""
    node = resolve(schema)
    if node is None:
        return None
    items = node.get("items")
    return resolve(items) if isinstance(items, dict) else None


def types_of(schema: Schema | None) -> set[str]:
    """The JSON types a schema allows, without 'null' (empty set = anything)."""
    node = resolve(schema)
    if node is None:
        return set()
    t = node.get("type")
    if isinstance(t, str):
        return {t} - {"null"}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)} - {"null"}
    if "properties" in node:
        return {"object"}
    return set()


def patch_strategy(schema: Schema | None) -> tuple[str, str]:
    """(x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key) of a field schema.

    Call it on the *unresolved* property schema too: the extensions sit beside the
    ``$ref`` / ``items``.  Returns ('', '') when absent.
    """
    if schema is None:
        return "", ""
    strategy = schema.get("x-kubernetes-patch-strategy", "")
    key = schema.get("x-kubernetes-patch-merge-key", "")
    if not strategy and not key:
        node = resolve(schema)
        if node is not None and node is not schema:
            strategy = node.get("x-kubernetes-patch-strategy", "")
            key = node.get("x-kubernetes-patch-merge-key", "")
    return str(strategy), str(key)


def raw_property(schema: Schema | None, name: str) -> Schema | None:
    """The *unresolved* property schema (keeps the x-kubernetes-* extensions beside a $ref)."""
    node = resolve(schema)
    if node is None:
        return None
    props = node.get("properties")
    if isinstance(props, dict) and name in props:
        p = props[name]
        return p if isinstance(p, dict) else None
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None
