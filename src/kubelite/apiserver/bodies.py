"""Request bodies: JSON, YAML and protobuf (``k8s\\0`` envelope) into plain dicts,
with the checks kube-apiserver makes while decoding (kind/apiVersion, types, unknown fields)."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from kubelite.api import errors
from kubelite.apiserver import protobuf
from kubelite.registry.resources import ResourceInfo
from kubelite.schema import structural
from kubelite.schema.definitions import schema_for_gvk

try:  # the C loader is ~10x faster; fall back to the pure-Python one
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
JSON_TYPES = ("application/json", "")


def is_protobuf_body(content_type: str) -> bool:
    return protobuf.is_protobuf(content_type)


def parse_document(body: bytes, content_type: str) -> Any:
    """Bytes to a JSON-like value; malformed input is a 400 that says what is wrong."""
    if protobuf.is_protobuf(content_type):
        return protobuf.decode(body)
    if content_type in JSON_TYPES or content_type.endswith("+json"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise errors.BadRequest(f"error decoding request body as JSON: {e}") from e
    if content_type in YAML_TYPES or content_type == "application/apply-patch+yaml":
        try:
            return yaml.load(body, Loader=_YamlLoader)
        except yaml.YAMLError as e:
            raise errors.BadRequest(f"error converting YAML to JSON: {e}") from e
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f'application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")'
    )


def parse_object(body: bytes, content_type: str) -> dict[str, Any]:
    if not body.strip():
        raise errors.BadRequest("the request body is empty; expected an object")
    doc = parse_document(body, content_type)
    if not isinstance(doc, dict):
        raise errors.BadRequest(f"the request body must be a JSON object, not {type(doc).__name__}")
    return doc


def check_type_meta(info: ResourceInfo, obj: dict[str, Any], kind: str | None = None) -> None:
    """apiVersion/kind of a body must name the endpoint's kind (empty is filled in)."""
    want_kind = kind or info.kind
    av = obj.get("apiVersion")
    k = obj.get("kind")
    if (av is not None and not isinstance(av, str)) or (k is not None and not isinstance(k, str)):
        raise errors.BadRequest("apiVersion and kind must be strings")
    if k and k != want_kind:
        raise errors.BadRequest(
            f'the kind in the body "{k}" does not match the kind of the request "{want_kind}"'
        )
    if av and av != info.group_version:
        raise errors.BadRequest(
            f"the API version in the data ({av}) does not match the expected "
            f"API version ({info.group_version})"
        )
    obj["apiVersion"] = info.group_version
    obj["kind"] = want_kind
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = {}
    elif not isinstance(meta, dict):
        raise errors.BadRequest(
            f'{want_kind} in version "{info.version}" cannot be handled as a {want_kind}: '
            "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta"
        )


def field_validation_mode(raw: str) -> str:
    mode = raw or "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise errors.BadRequest(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", got "{raw}"')
    return mode


def passes_field_check(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    """True when :func:`check_fields` would find nothing in ``obj``: no type error, no unknown
    field (duplicates aside: they live in raw bodies)."""
    schema = schema_for_gvk(info.group, info.version, info.kind)
    if schema is None:
        return True
    type_errors, unknown = structural.check_object(obj, schema)
    return not type_errors and not unknown


def check_fields(
    info: ResourceInfo, obj: dict[str, Any], mode: str, warnings: list[str], raw: bytes | None = None
) -> None:
    """Type errors are always 400; unknown (and duplicate) fields per fieldValidation, then
    dropped, as Go's decoding does."""
    schema = schema_for_gvk(info.group, info.version, info.kind)
    if schema is None:
        return
    type_errors, unknown = structural.check_object(obj, schema)
    if type_errors:
        raise errors.BadRequest(
            structural.decode_error_message(info.kind, info.version, type_errors[0].message),
            errors.StatusDetails(kind=info.kind, group=info.group, causes=list(type_errors[:1])),
        )
    duplicates = structural.find_duplicate_keys(raw) if raw is not None and mode != "Ignore" else []
    if not unknown and not duplicates:
        return
    if mode == "Strict":
        raise errors.BadRequest(structural.strict_error_message(info.kind, info.version, unknown, duplicates))
    if mode == "Warn":
        warnings.extend(structural.field_warnings(unknown, duplicates))
    if unknown:
        structural.drop_unknown(obj, schema)
