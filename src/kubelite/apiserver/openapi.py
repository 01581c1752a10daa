"""The ``/openapi/v3`` documents: an index plus one OpenAPI 3.0 document per group-version.

Mirrors what kube-apiserver 1.32 serves and what kubectl 1.32 reads from it:

* ``GET /openapi/v3`` -> ``{"paths": {"apis/apps/v1": {"serverRelativeURL": "<url>?hash=H"}}}``;
* ``GET /openapi/v3/apis/apps/v1?hash=H`` -> the group-version document, with ``H`` as its ETag.

kubectl needs three things from a group-version document (docs/kubectl-wire.md section 4):

1. every PATCH operation whose ``x-kubernetes-group-version-kind`` (an *object*) names the
   kind carries its own ``fieldValidation`` query parameter, or client-side validation fails;
2. ``components.schemas`` holds the kind's schema with ``x-kubernetes-group-version-kind`` as
   a *list*, ``x-kubernetes-patch-*`` extensions and resolvable ``$ref`` s, so ``apply`` can
   compute a strategic merge patch and ``explain`` can print fields;
3. the PATCH operation's ``requestBody.content`` lists ``application/strategic-merge-patch+json``
   (built-in kinds only; custom resources do not support strategic merge patch).

Schemas come from the official 1.32 definitions (``kubelite.schema.definitions``), converted
from JSON-schema form (``type: ["string", "null"]``, ``#/$defs/`` references) into the form
the real server emits (single ``type``, ``#/components/schemas/`` references, a ``$ref``
with siblings wrapped as ``allOf: [{$ref}]``).  Custom resource kinds get their schema from
the CustomResourceDefinition's ``openAPIV3Schema``.

The ETag/hash of a document is a digest of the *inputs* it is built from (the resources of
the group-version and the CRD schemas), so the index can name every document's hash without
building them; documents themselves are built lazily and cached.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from kubelite.registry.resources import ResourceIndex, ResourceInfo, Subresource
from kubelite.schema.definitions import KUBE_VERSION, REF_PREFIX, definitions, name_for_gvk

Schema = dict[str, Any]
CRDSchemas = Callable[[str, str], dict[str, Schema]]

COMPONENT_PREFIX = "#/components/schemas/"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

# Subresources that stream or proxy (``x-kubernetes-action: connect`` on a real server); kubectl
# needs nothing from them in the document, so they are left out.
STREAMING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})

API_VERSION_DESC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
KIND_DESC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
METADATA_DESC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
LIST_METADATA_DESC = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
FIELD_VALIDATION_DESC = (
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown "
    "fields that are silently dropped from the object, and will ignore all but the last duplicate field "
    "that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a "
    "warning via the standard warning response header for each unknown field that is dropped from the "
    "object, and for each duplicate field that is encountered. The request will still succeed if there "
    "are no other errors, and will only persist the last of any duplicate fields. This is the default in "
    "v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be "
    "dropped from the object, or if any duplicate fields are present. The error returned from the server "
    "will contain all unknown and duplicate fields encountered."
)


# ---------------------------------------------------------------------------------------------
# Schema conversion: JSON-schema (kubernetes-validate) -> OpenAPI 3.0 (kube-apiserver)
# ---------------------------------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("oneOf", "anyOf", "allOf")
_SCHEMA_ONES = ("items", "additionalProperties", "additionalItems", "not")


def _single_type(t: Any) -> str | None:
    """OpenAPI 3.0 has no type arrays: ``["string", "null"]`` -> ``"string"``."""
    if isinstance(t, str):
        return None if t == "null" else t
    if isinstance(t, list):
        for x in t:
            if isinstance(x, str) and x != "null":
                return x
    return None


def convert_schema(node: Schema, refs: set[str]) -> Schema:
    """One schema node in OpenAPI 3 form; definition names it references are added to ``refs``."""
    out: Schema = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type":
            t = _single_type(value)
            if t is not None:
                out["type"] = t
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: convert_schema(v, refs) for k, v in value.items() if isinstance(v, dict)}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [convert_schema(v, refs) for v in value if isinstance(v, dict)]
        elif key in _SCHEMA_ONES and isinstance(value, dict):
            out[key] = convert_schema(value, refs)
        else:
            out[key] = value
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        name = ref[len(REF_PREFIX) :]
        refs.add(name)
        target = {"$ref": COMPONENT_PREFIX + name}
        if not out:
            return target
        # like the real server: a $ref with siblings (description, patch strategy) becomes allOf
        out["allOf"] = [target]
    return out


def _special_definition(name: str, converted: Schema) -> Schema:
    """IntOrString and Quantity exactly as kube-apiserver publishes them (explain shows their names)."""
    if name == INT_OR_STRING:
        return {
            "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or "
            "YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to "
            "have, for example, a JSON field that can accept a name or number.",
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }
    if name == QUANTITY:
        return {
            "description": "Quantity is a fixed-point representation of a number. It provides convenient "
            "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.",
            "oneOf": [{"type": "string"}, {"type": "number"}],
        }
    return converted


@functools.cache
def _converted_definition(name: str) -> tuple[Schema, frozenset[str]]:
    """An official definition in OpenAPI 3 form and the names it references directly."""
    refs: set[str] = set()
    schema = convert_schema(definitions()[name], refs)
    if schema.get("x-kubernetes-group-version-kind"):
        # kubernetes-validate pins apiVersion/kind with an enum; the real documents do not.
        props = schema.get("properties", {})
        for field in ("apiVersion", "kind"):
            if isinstance(props.get(field), dict):
                props[field] = {k: v for k, v in props[field].items() if k != "enum"}
    return _special_definition(name, schema), frozenset(refs)


def _closure(names: Iterable[str], into: dict[str, Schema]) -> None:
    """Add the official definitions ``names`` and everything they reference to ``into``."""
    pending = [n for n in names if n not in into]
    defs = definitions()
    while pending:
        name = pending.pop()
        if name in into or name not in defs:
            continue
        schema, refs = _converted_definition(name)
        into[name] = schema
        pending.extend(r for r in refs if r not in into)


# ---------------------------------------------------------------------------------------------
# Custom resource kinds
# ---------------------------------------------------------------------------------------------


def crd_component_name(group: str, version: str, kind: str) -> str:
    """``stable.example.com``/v1/CronTab -> ``com.example.stable.v1.CronTab`` (as kube-apiserver names it)."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _ref(name: str) -> Schema:
    return {"$ref": COMPONENT_PREFIX + name}


def custom_kind_schema(group: str, version: str, kind: str, schema: Schema | None) -> Schema:
    """The published schema of a custom resource kind: its openAPIV3Schema plus type meta.

    Like apiextensions-apiserver, ``apiVersion``/``kind`` get their standard descriptions and
    ``metadata`` refers to ObjectMeta; a version without a schema preserves unknown fields.
    """
    out: Schema = copy.deepcopy(schema) if schema else {"type": "object"}
    if not schema:
        out["x-kubernetes-preserve-unknown-fields"] = True
    out.setdefault("type", "object")
    props = out.setdefault("properties", {})
    props["apiVersion"] = {"description": API_VERSION_DESC, "type": "string"}
    props["kind"] = {"description": KIND_DESC, "type": "string"}
    props["metadata"] = {"allOf": [_ref(OBJECT_META)], "description": METADATA_DESC}
    out["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    return out


def custom_list_schema(group: str, version: str, kind: str) -> Schema:
    return {
        "description": f"{kind}List is a list of {kind}",
        "properties": {
            "apiVersion": {"description": API_VERSION_DESC, "type": "string"},
            "items": {
                "description": f"List of {kind.lower()}s. More info: "
                "https://git.k8s.io/community/contributors/devel/api-conventions.md",
                "items": _ref(crd_component_name(group, version, kind)),
                "type": "array",
            },
            "kind": {"description": KIND_DESC, "type": "string"},
            "metadata": {"allOf": [_ref(LIST_META)], "description": LIST_METADATA_DESC},
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": group, "kind": kind + "List", "version": version}],
    }


# ---------------------------------------------------------------------------------------------
# Paths and operations
# ---------------------------------------------------------------------------------------------


def _param(name: str, kind: str = "string", where: str = "query", description: str = "") -> Schema:
    p: Schema = {"in": where, "name": name, "schema": {"type": kind, "uniqueItems": True}}
    if description:
        p["description"] = description
    if where == "path":
        p["required"] = True
    return p


DRY_RUN = _param(
    "dryRun",
    description="When present, indicates that modifications should not be persisted. Valid values are: "
    "- All: all dry run stages will be processed",
)
FIELD_MANAGER = _param(
    "fieldManager", description="fieldManager is a name associated with the actor or entity making changes."
)
FIELD_VALIDATION = _param("fieldValidation", description=FIELD_VALIDATION_DESC)
FORCE = _param("force", "boolean", description='Force is going to "force" Apply requests.')
PRETTY = _param("pretty", description="If 'true', then the output is pretty printed.")
WRITE_PARAMS = (DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION)
PATCH_PARAMS = (*WRITE_PARAMS, FORCE)
DELETE_PARAMS = (
    DRY_RUN,
    _param("gracePeriodSeconds", "integer"),
    _param("orphanDependents", "boolean"),
    _param("propagationPolicy"),
)
LIST_PARAMS = (
    _param("allowWatchBookmarks", "boolean"),
    _param("continue"),
    _param("fieldSelector"),
    _param("labelSelector"),
    _param("limit", "integer"),
    _param("resourceVersion"),
    _param("resourceVersionMatch"),
    _param("sendInitialEvents", "boolean"),
    _param("timeoutSeconds", "integer"),
    _param("watch", "boolean"),
)
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _camel_group(group: str) -> str:
    """``rbac.authorization.k8s.io`` -> ``RbacAuthorization``; core -> ``Core`` (operationId style)."""
    if not group:
        return "Core"
    trimmed = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in trimmed.replace("-", ".").split(".") if part)


@dataclass(frozen=True)
class _GVK:
    group: str
    version: str
    kind: str

    def as_object(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "version": self.version}


class _PathBuilder:
    """Builds the ``paths`` of one group-version and collects the schema names they use."""

    def __init__(self, group: str, version: str, component: Callable[[_GVK], str | None]) -> None:
        self.group = group
        self.version = version
        self.prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.op_prefix = _camel_group(group) + version[:1].upper() + version[1:]
        self.tag = f"{group.replace('.', '')}_{version}" if group else f"core_{version}"
        self.component = component
        self.used: set[str] = {PATCH, DELETE_OPTIONS, STATUS}
        self.paths: dict[str, Schema] = {}

    # -- content helpers ---------------------------------------------------------------------
    def _content(self, name: str | None, types: Iterable[str]) -> Schema:
        if name is None:
            return {t: {"schema": {"type": "object"}} for t in types}
        self.used.add(name)
        return {t: {"schema": _ref(name)} for t in types}

    def _responses(self, name: str | None, codes: Iterable[tuple[str, str]]) -> Schema:
        out: Schema = {
            code: {"content": self._content(name, ("application/json", "application/yaml")), "description": d}
            for code, d in codes
        }
        out["401"] = {"description": "Unauthorized"}
        return out

    def _operation(self, action: str, op_id: str, gvk: _GVK, description: str) -> Schema:
        return {
            "description": description,
            "operationId": op_id,
            "tags": [self.tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk.as_object(),
        }

    # -- resources ---------------------------------------------------------------------------
    def add(self, r: ResourceInfo) -> None:
        gvk = _GVK(r.group, r.version, r.kind)
        kind_name = self.component(gvk)
        ns = "Namespaced" if r.namespaced else ""
        base = (
            f"{self.prefix}/namespaces/{{namespace}}/{r.plural}"
            if r.namespaced
            else f"{self.prefix}/{r.plural}"
        )
        path_params = [_param("namespace", where="path")] if r.namespaced else []
        self._collection(r, gvk, kind_name, base, ns, path_params)
        if r.namespaced and "list" in r.verbs:
            self._all_namespaces(r, gvk)
        item_params = [_param("name", where="path"), *path_params]
        item_verbs = [v for v in r.verbs if v != "create"]  # create is a collection operation
        item_ops = self._item_ops(item_verbs, gvk, kind_name, f"{ns}{r.kind}", r.crd)
        self._set(f"{base}/{{name}}", item_ops, item_params)
        for sub in r.subresources:
            if sub.name in STREAMING_SUBRESOURCES:
                continue
            self._subresource(r, sub, f"{base}/{{name}}/{sub.name}", f"{ns}{r.kind}", item_params)

    def _set(self, path: str, ops: Schema, params: list[Schema]) -> None:
        if ops:
            self.paths[path] = {**ops, "parameters": [*params, PRETTY]}

    def _collection(
        self, r: ResourceInfo, gvk: _GVK, kind_name: str | None, path: str, ns: str, params: list[Schema]
    ) -> None:
        ops: Schema = {}
        if "list" in r.verbs:
            list_name = self.component(_GVK(r.group, r.version, r.list_kind))
            op = self._operation(
                "list", f"list{self.op_prefix}{ns}{r.kind}", gvk, f"list objects of kind {r.kind}"
            )
            op["parameters"] = list(LIST_PARAMS)
            op["responses"] = self._responses(list_name, (("200", "OK"),))
            ops["get"] = op
        if "create" in r.verbs:
            op = self._operation("post", f"create{self.op_prefix}{ns}{r.kind}", gvk, f"create a {r.kind}")
            op["parameters"] = list(WRITE_PARAMS)
            op["requestBody"] = {"content": self._content(kind_name, ("*/*",)), "required": True}
            op["responses"] = self._responses(
                kind_name, (("200", "OK"), ("201", "Created"), ("202", "Accepted"))
            )
            ops["post"] = op
        if "deletecollection" in r.verbs:
            op = self._operation(
                "deletecollection",
                f"delete{self.op_prefix}Collection{ns}{r.kind}",
                gvk,
                f"delete collection of {r.kind}",
            )
            op["parameters"] = [*DELETE_PARAMS, *LIST_PARAMS]
            op["requestBody"] = {"content": self._content(DELETE_OPTIONS, ("*/*",))}
            op["responses"] = self._responses(STATUS, (("200", "OK"),))
            ops["delete"] = op
        self._set(path, ops, params)

    def _all_namespaces(self, r: ResourceInfo, gvk: _GVK) -> None:
        list_name = self.component(_GVK(r.group, r.version, r.list_kind))
        op = self._operation(
            "list", f"list{self.op_prefix}{r.kind}ForAllNamespaces", gvk, f"list objects of kind {r.kind}"
        )
        op["responses"] = self._responses(list_name, (("200", "OK"),))
        self.paths[f"{self.prefix}/{r.plural}"] = {"get": op, "parameters": [*LIST_PARAMS, PRETTY]}

    def _item_ops(self, verbs: Iterable[str], gvk: _GVK, name: str | None, suffix: str, crd: bool) -> Schema:
        verbs = set(verbs)
        ops: Schema = {}
        if "get" in verbs:
            op = self._operation(
                "get", f"read{self.op_prefix}{suffix}", gvk, f"read the specified {gvk.kind}"
            )
            op["responses"] = self._responses(name, (("200", "OK"),))
            ops["get"] = op
        if "update" in verbs:
            op = self._operation(
                "put", f"replace{self.op_prefix}{suffix}", gvk, f"replace the specified {gvk.kind}"
            )
            op["parameters"] = list(WRITE_PARAMS)
            op["requestBody"] = {"content": self._content(name, ("*/*",)), "required": True}
            op["responses"] = self._responses(name, (("200", "OK"), ("201", "Created")))
            ops["put"] = op
        if "patch" in verbs:
            ops["patch"] = self._patch_op(gvk, name, suffix, crd)
        if "delete" in verbs:
            op = self._operation("delete", f"delete{self.op_prefix}{suffix}", gvk, f"delete a {gvk.kind}")
            op["parameters"] = list(DELETE_PARAMS)
            op["requestBody"] = {"content": self._content(DELETE_OPTIONS, ("*/*",))}
            op["responses"] = self._responses(STATUS, (("200", "OK"), ("202", "Accepted")))
            ops["delete"] = op
        if "create" in verbs:
            op = self._operation("post", f"create{self.op_prefix}{suffix}", gvk, f"create {gvk.kind}")
            op["parameters"] = list(WRITE_PARAMS)
            op["requestBody"] = {"content": self._content(name, ("*/*",)), "required": True}
            op["responses"] = self._responses(name, (("200", "OK"), ("201", "Created"), ("202", "Accepted")))
            ops["post"] = op
        return ops

    def _patch_op(self, gvk: _GVK, name: str | None, suffix: str, crd: bool) -> Schema:
        """A PATCH operation with its *own* fieldValidation parameter (kubectl reads only this one)."""
        op = self._operation(
            "patch", f"patch{self.op_prefix}{suffix}", gvk, f"partially update the specified {gvk.kind}"
        )
        op["parameters"] = list(PATCH_PARAMS)
        types = [t for t in PATCH_TYPES if not (crd and t == "application/strategic-merge-patch+json")]
        op["requestBody"] = {"content": self._content(PATCH, types), "required": True}
        op["responses"] = self._responses(name, (("200", "OK"), ("201", "Created")))
        return op

    def _subresource(
        self, r: ResourceInfo, sub: Subresource, path: str, suffix: str, params: list[Schema]
    ) -> None:
        gvk = _GVK(sub.group or r.group, sub.version or r.version, sub.kind)
        name = self.component(gvk)
        # the custom resource handler serves no strategic merge patch on any subresource, scale included
        ops = self._item_ops(sub.verbs, gvk, name, suffix + sub.name[:1].upper() + sub.name[1:], r.crd)
        self._set(path, ops, params)


# ---------------------------------------------------------------------------------------------
# The documents
# ---------------------------------------------------------------------------------------------


def gv_path(group: str, version: str) -> str:
    """``apis/apps/v1`` / ``api/v1``: the key of a group-version in the v3 index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _parse_gv_path(path: str) -> tuple[str, str] | None:
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


@dataclass
class _Entry:
    key: tuple[ResourceInfo, ...]
    etag: str
    document: bytes | None = None


class OpenAPIV3:
    """Serves the OpenAPI v3 index and per-group-version documents, built lazily and cached."""

    def __init__(self, index: ResourceIndex, crd_schemas: CRDSchemas | None = None) -> None:
        self._index = index
        self._crd_schemas = crd_schemas
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    # -- public API --------------------------------------------------------------------------
    def index_document(self) -> bytes:
        """``{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}``."""
        paths: dict[str, dict[str, str]] = {}
        for group, versions in self._index.group_versions().items():
            for version in versions:
                entry = self._entry(group, version)
                if entry is None:
                    continue
                key = gv_path(group, version)
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={entry.etag}"}
        return orjson.dumps({"paths": paths})

    def group_version_document(self, gv_path: str) -> tuple[bytes, str] | None:
        """(document, etag) of ``apis/apps/v1`` / ``api/v1``; None if the group-version is not served."""
        parsed = _parse_gv_path(gv_path)
        if parsed is None:
            return None
        entry = self._entry(*parsed)
        if entry is None:
            return None
        if entry.document is None:
            entry.document = orjson.dumps(
                self._build(parsed[0], parsed[1], entry.key), option=orjson.OPT_SORT_KEYS
            )
        return entry.document, entry.etag

    def invalidate(self, group: str, version: str) -> None:
        """Forget a group-version's document (its CRD schemas changed)."""
        with self._lock:
            self._cache.pop((group, version), None)

    # -- internals ---------------------------------------------------------------------------
    def _entry(self, group: str, version: str) -> _Entry | None:
        key = tuple(self._index.in_group_version(group, version))
        if not key:
            return None
        with self._lock:
            entry = self._cache.get((group, version))
            if entry is None or entry.key != key:
                entry = _Entry(key, self._fingerprint(group, version, key))
                self._cache[(group, version)] = entry
            return entry

    def _custom_schemas(
        self, group: str, version: str, resources: Iterable[ResourceInfo]
    ) -> dict[str, Schema]:
        if self._crd_schemas is None or not any(r.crd for r in resources):
            return {}
        return self._crd_schemas(group, version)

    def _fingerprint(self, group: str, version: str, resources: tuple[ResourceInfo, ...]) -> str:
        h = hashlib.sha512()
        h.update(f"{KUBE_VERSION}\0{group}\0{version}\0{resources!r}".encode())
        h.update(orjson.dumps(self._custom_schemas(group, version, resources), option=orjson.OPT_SORT_KEYS))
        return h.hexdigest().upper()

    def _build(self, group: str, version: str, resources: tuple[ResourceInfo, ...]) -> Schema:
        custom: dict[str, Schema] = {}
        custom_kinds = {r.kind for r in resources if r.crd}
        crd_schemas = self._custom_schemas(group, version, resources)
        for kind in sorted(custom_kinds):
            custom[crd_component_name(group, version, kind)] = custom_kind_schema(
                group, version, kind, crd_schemas.get(kind)
            )
            custom[crd_component_name(group, version, kind + "List")] = custom_list_schema(
                group, version, kind
            )

        def component(gvk: _GVK) -> str | None:
            if gvk.group == group and gvk.version == version:
                base = gvk.kind.removesuffix("List") if gvk.kind.endswith("List") else gvk.kind
                if base in custom_kinds:
                    return crd_component_name(group, version, gvk.kind)
            return name_for_gvk(gvk.group, gvk.version, gvk.kind)

        builder = _PathBuilder(group, version, component)
        for r in resources:
            builder.add(r)
        schemas: dict[str, Schema] = {}
        official_refs: set[str] = {n for n in builder.used if n not in custom}
        for schema in custom.values():
            _collect_component_refs(schema, official_refs)
        _closure(official_refs - set(custom), schemas)
        schemas.update(custom)
        return {
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "BearerToken": {
                        "description": "Bearer Token authentication",
                        "in": "header",
                        "name": "authorization",
                        "type": "apiKey",
                    }
                },
            },
            "info": {"title": "Kubernetes", "version": f"v{KUBE_VERSION}"},
            "openapi": "3.0.0",
            "paths": builder.paths,
        }


def _collect_component_refs(node: Any, into: set[str]) -> None:
    """Names referenced as ``#/components/schemas/<name>`` anywhere inside ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(COMPONENT_PREFIX):
            into.add(ref[len(COMPONENT_PREFIX) :])
        for value in node.values():
            _collect_component_refs(value, into)
    elif isinstance(node, list):
        for value in node:
            _collect_component_refs(value, into)
