"""Custom resources: the per-version OpenAPI v3 schema of a CustomResourceDefinition, pruning
of unknown fields and validation, as apiextensions-apiserver 1.32 does them.

Order on a write (the caller runs it): :func:`prune` (drops unknown fields and non-nullable
``null`` s, returning the dropped paths for ``fieldValidation`` Warn/Strict), then
:func:`apply_defaults`, then :func:`validate_custom_resource`.

Validation is written here rather than delegated to the ``jsonschema`` package: that package
implements JSON-schema drafts, not Kubernetes' structural-schema dialect (``nullable``,
``x-kubernetes-int-or-string``, ``x-kubernetes-preserve-unknown-fields``, list types), its
messages are not the ``field.Error`` texts kubectl users see (``spec.size: Invalid value: 20:
spec.size in body should be less than or equal to 10``), and its generic validator machinery
is several times slower than a direct walk on this hot path.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.errors import Cause
from kubelite.schema.definitions import definitions
from kubelite.schema.structural import check_object

Schema = dict[str, Any]

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
TYPE_MISMATCH = "FieldValueTypeInvalid"
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
TYPE_META = ("apiVersion", "kind", "metadata")


# ---------------------------------------------------------------------------------------------
# Reading a CustomResourceDefinition
# ---------------------------------------------------------------------------------------------


def crd_versions(crd: dict[str, Any]) -> list[dict[str, Any]]:
    """The served entries of ``spec.versions`` (storage version included if served)."""
    versions = crd.get("spec", {}).get("versions") or []
    return [v for v in versions if isinstance(v, dict) and v.get("served", True)]


def version_schema(crd: dict[str, Any], version: str) -> Schema | None:
    """``spec.versions[name=version].schema.openAPIV3Schema`` (None when the version has none)."""
    for v in crd.get("spec", {}).get("versions") or []:
        if isinstance(v, dict) and v.get("name") == version:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else None
    return None


def kind_schemas(crd: dict[str, Any], version: str) -> dict[str, Schema]:
    """``{kind: openAPIV3Schema}`` of one version: the shape ``OpenAPIV3`` asks ``crd_schemas`` for."""
    kind = crd.get("spec", {}).get("names", {}).get("kind", "")
    schema = version_schema(crd, version)
    return {kind: schema} if kind and schema is not None else {}


# ---------------------------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------------------------


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def prune(obj: dict[str, Any], openapi_schema: Schema) -> list[str]:
    """Remove fields the schema does not specify, in place; return their paths.

    Mirrors apiextensions pruning: ``x-kubernetes-preserve-unknown-fields`` keeps unknown
    fields below it, ``additionalProperties`` schemas apply to every value, an object schema
    with neither properties nor additionalProperties keeps nothing, and at the root (and in
    ``x-kubernetes-embedded-resource`` objects) ``apiVersion``/``kind``/``metadata`` stay, with
    ``metadata`` reduced to ObjectMeta's fields.  ``null`` s of non-nullable properties without
    a default are removed too (silently, as Kubernetes does).
    """
    pruned: list[str] = []
    _prune_object(obj, openapi_schema, "", pruned, root=True)
    return pruned


def _prune_object(
    value: dict[str, Any], schema: Schema, path: str, out: list[str], root: bool = False
) -> None:
    embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
    if embedded and isinstance(value.get("metadata"), dict):
        _prune_metadata(value["metadata"], _join(path, "metadata"), out)
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    extra = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key in list(value):
        if embedded and key in TYPE_META:
            continue
        item = value[key]
        sub = props.get(key)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is None:
            if not preserve and extra is not True:
                del value[key]
                out.append(_join(path, key))
            continue
        if item is None and key in props and not sub.get("nullable") and "default" not in sub:
            del value[key]
            continue
        _prune_value(item, sub, _join(path, key), out)


def _prune_value(value: Any, schema: Schema, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        _prune_object(value, schema, path, out)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune_value(item, items, f"{path}[{i}]", out)


def _prune_metadata(meta: dict[str, Any], path: str, out: list[str]) -> None:
    """Unknown ObjectMeta fields are dropped and reported like any other unknown field."""
    _, unknown = check_object(meta, definitions()[OBJECT_META], prune=True)
    out.extend(_join(path, p) for p in unknown)


# ---------------------------------------------------------------------------------------------
# Defaulting
# ---------------------------------------------------------------------------------------------


def apply_defaults(obj: dict[str, Any], openapi_schema: Schema) -> None:
    """Fill in ``default`` s of missing properties (apiextensions structural defaulting), in place."""
    _default_value(obj, openapi_schema)


def _default_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and key not in value and "default" in sub:
                    value[key] = json.loads(json.dumps(sub["default"]))
        for key, item in value.items():
            sub = props.get(key) if isinstance(props, dict) else None
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if isinstance(sub, dict):
                _default_value(item, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_value(item, schema["items"])


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """How ``field.Error`` prints a value: strings quoted, numbers and booleans bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_number(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _format_number(n: float | int) -> str:
    """Go's ``%v`` of a float64 bound: 10 not 10.0."""
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e21:
        return str(int(n))
    return repr(n)


def json_type(value: Any) -> str:
    """The OpenAPI type name of a JSON value, as kube-openapi reports it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _type_ok(value: Any, expected: str) -> bool:
    actual = json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


@dataclass
class _Errors:
    causes: list[Cause] = field(default_factory=list)

    def type_invalid(self, path: str, value: Any, expected: str) -> None:
        actual = json_type(value)
        self.causes.append(
            Cause(
                TYPE_MISMATCH,
                f'Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"',
                path,
            )
        )

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.causes.append(Cause(INVALID, f"Invalid value: {format_value(value)}: {detail}", path))

    def required(self, path: str) -> None:
        self.causes.append(Cause(REQUIRED, "Required value", path))

    def not_supported(self, path: str, value: Any, allowed: list[Any]) -> None:
        # non-string enum values are JSON-encoded, then every value is quoted
        names = [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in allowed]
        supported = ", ".join(json.dumps(n, ensure_ascii=False) for n in names)
        self.causes.append(
            Cause(
                NOT_SUPPORTED,
                f"Unsupported value: {format_value(value)}: supported values: {supported}",
                path,
            )
        )

    def too_long(self, path: str, limit: int) -> None:
        self.causes.append(Cause(TOO_LONG, f"Too long: may not be longer than {limit}", path))

    def too_many(self, path: str, actual: int, limit: int, what: str) -> None:
        self.causes.append(Cause(TOO_MANY, f"Too many: {actual}: must have at most {limit} {what}", path))

    def duplicate(self, path: str, value: Any) -> None:
        self.causes.append(Cause(DUPLICATE, f"Duplicate value: {format_value(value)}", path))


def validate_custom_resource(obj: dict[str, Any], openapi_schema: Schema) -> list[Cause]:
    """Validate a custom resource against its structural schema; [] when it is valid.

    Covers type, nullable, x-kubernetes-int-or-string, enum, required, minimum/maximum
    (exclusive too), multipleOf, minLength/maxLength, pattern, basic formats, minItems/maxItems,
    uniqueItems, list-type set/map uniqueness, minProperties/maxProperties,
    additionalProperties and allOf/anyOf/oneOf/not.  ``apiVersion``, ``kind`` and ``metadata``
    at the root are the API server's business and are skipped.  CEL rules
    (``x-kubernetes-validations``) are not evaluated.
    """
    errors = _Errors()
    root = {k: v for k, v in obj.items() if k not in TYPE_META}
    _validate(root, openapi_schema, "", errors, root=True)
    return errors.causes


def _validate(value: Any, schema: Schema, path: str, errors: _Errors, root: bool = False) -> None:
    if value is None:
        if not schema.get("nullable") and isinstance(schema.get("type"), str):
            errors.type_invalid(path or "<root>", value, schema["type"])
        return
    if not _check_type(value, schema, path, errors):
        return
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        errors.not_supported(path, value, schema["enum"])
    if isinstance(value, str):
        _validate_string(value, schema, path, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, errors)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errors)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, errors, root)
    _validate_combinators(value, schema, path, errors)


def _check_type(value: Any, schema: Schema, path: str, errors: _Errors) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        integral = (
            isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        )
        if not (isinstance(value, str) or integral):
            errors.type_invalid(path, value, "integer,string")
            return False
        return True
    expected = schema.get("type")
    if isinstance(expected, str) and expected and not _type_ok(value, expected):
        errors.type_invalid(path or "<root>", value, expected)
        return False
    return True


def _validate_string(value: str, schema: Schema, path: str, errors: _Errors) -> None:
    max_len, min_len = schema.get("maxLength"), schema.get("minLength")
    if isinstance(max_len, int) and len(value) > max_len:
        errors.too_long(path, max_len)
    if isinstance(min_len, int) and len(value) < min_len:
        errors.invalid(path, value, f"{path} in body should be at least {min_len} chars long")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not _compiled_pattern(pattern).search(value):
        errors.invalid(path, value, f"{path} in body should match '{pattern}'")
    fmt = schema.get("format")
    if isinstance(fmt, str) and not _format_ok(fmt, value):
        errors.invalid(path, value, f"{path} in body must be of type {fmt}: {format_value(value)}")


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        try:
            compiled = re.compile(pattern)
        except re.error:
            compiled = re.compile(r"(?s).*")  # the CRD's own validation rejects bad patterns
        _PATTERNS[pattern] = compiled
    return compiled


_FORMATS: dict[str, re.Pattern[str]] = {
    "date-time": re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "uuid": re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"),
    "email": re.compile(r"^[^@\s]+@[^@\s]+$"),
    "hostname": re.compile(
        r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$"
    ),
    "ipv4": re.compile(r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"),
}


def _format_ok(fmt: str, value: str) -> bool:
    """Basic string formats; unknown formats are accepted, as Kubernetes does."""
    if fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    pattern = _FORMATS.get(fmt)
    return pattern is None or bool(pattern.match(value))


def _validate_number(value: float | int, schema: Schema, path: str, errors: _Errors) -> None:
    maximum, minimum = schema.get("maximum"), schema.get("minimum")
    if isinstance(maximum, int | float):
        if schema.get("exclusiveMaximum") and value >= maximum:
            errors.invalid(path, value, f"{path} in body should be less than {_format_number(maximum)}")
        elif value > maximum:
            errors.invalid(
                path, value, f"{path} in body should be less than or equal to {_format_number(maximum)}"
            )
    if isinstance(minimum, int | float):
        if schema.get("exclusiveMinimum") and value <= minimum:
            errors.invalid(path, value, f"{path} in body should be greater than {_format_number(minimum)}")
        elif value < minimum:
            errors.invalid(
                path, value, f"{path} in body should be greater than or equal to {_format_number(minimum)}"
            )
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int | float) and multiple > 0 and not _is_multiple(value, multiple):
        errors.invalid(path, value, f"{path} in body should be a multiple of {_format_number(multiple)}")
    fmt = schema.get("format")
    limits = {"int32": 2**31, "int64": 2**63}
    if fmt in limits and isinstance(value, int) and not -limits[fmt] <= value < limits[fmt]:
        errors.invalid(path, value, f"{path} in body must be of type {fmt}: {format_value(value)}")


def _is_multiple(value: float | int, multiple: float | int) -> bool:
    if isinstance(value, int) and isinstance(multiple, int):
        return value % multiple == 0
    q = value / multiple
    return math.isclose(q, round(q), rel_tol=0, abs_tol=1e-9)


def _validate_array(value: list[Any], schema: Schema, path: str, errors: _Errors) -> None:
    max_items, min_items = schema.get("maxItems"), schema.get("minItems")
    if isinstance(max_items, int) and len(value) > max_items:
        errors.too_many(path, len(value), max_items, "items")
    if isinstance(min_items, int) and len(value) < min_items:
        errors.invalid(path, value, f"{path} in body should have at least {min_items} items")
    if schema.get("uniqueItems") and _first_duplicate(value) is not None:
        errors.invalid(path, value, f"{path} in body shouldn't contain duplicates")
    _validate_list_type(value, schema, path, errors)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", errors)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _first_duplicate(values: list[Any]) -> int | None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        key = _canonical(v)
        if key in seen:
            return i
        seen.add(key)
    return None


def _validate_list_type(value: list[Any], schema: Schema, path: str, errors: _Errors) -> None:
    """``x-kubernetes-list-type: set`` items and ``map`` keys must be unique."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: set[str] = set()
        for i, item in enumerate(value):
            key = _canonical(item)
            if key in seen:
                errors.duplicate(f"{path}[{i}]", item)
            seen.add(key)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key_value = {k: item.get(k) for k in keys}
            key = _canonical(key_value)
            if key in seen_keys:
                errors.duplicate(f"{path}[{i}]", key_value)
            seen_keys.add(key)


def _validate_object(value: dict[str, Any], schema: Schema, path: str, errors: _Errors, root: bool) -> None:
    for name in schema.get("required") or ():
        if isinstance(name, str) and name not in value and not (root and name in TYPE_META):
            errors.required(_join(path, name))
    max_props, min_props = schema.get("maxProperties"), schema.get("minProperties")
    if isinstance(max_props, int) and len(value) > max_props:
        errors.too_many(path, len(value), max_props, "items")
    if isinstance(min_props, int) and len(value) < min_props:
        errors.invalid(path, value, f"{path} in body should have at least {min_props} properties")
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        sub = props.get(key)
        if isinstance(sub, dict):
            _validate(item, sub, _join(path, key), errors)
        elif isinstance(extra, dict):
            _validate(item, extra, _join(path, key), errors)


def _validate_combinators(value: Any, schema: Schema, path: str, errors: _Errors) -> None:
    for sub in schema.get("allOf") or ():
        if isinstance(sub, dict):
            _validate(value, sub, path, errors)
    any_of = [s for s in schema.get("anyOf") or () if isinstance(s, dict)]
    if any_of and not any(_valid(value, s, path) for s in any_of):
        errors.invalid(path, value, f'"{path}" must validate at least one schema (anyOf)')
    one_of = [s for s in schema.get("oneOf") or () if isinstance(s, dict)]
    if one_of and sum(1 for s in one_of if _valid(value, s, path)) != 1:
        errors.invalid(path, value, f'"{path}" must validate one and only one schema (oneOf)')
    not_schema = schema.get("not")
    if isinstance(not_schema, dict) and _valid(value, not_schema, path):
        errors.invalid(path, value, f'"{path}" must not validate the schema (not)')


def _valid(value: Any, schema: Schema, path: str) -> bool:
    probe = _Errors()
    _validate(value, schema, path, probe)
    return not probe.causes
