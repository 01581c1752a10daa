"""Decode ``application/vnd.kubernetes.protobuf`` request bodies into JSON-shaped dicts.

client-go 1.32 typed clients (``kubectl create <generator>``, ``auth can-i``, ``auth whoami``,
``autoscale``, ``debug``, the drain fallback DELETE, ``create token``) send protobuf bodies and
do not fall back to JSON on a 415, so the API server must read them.  Replies stay JSON.

Wire format, as written by the apimachinery protobuf serializer:

* 4 magic bytes ``k8s\\x00``, then a ``runtime.Unknown`` message
  ``{1 typeMeta{1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType}``;
* ``raw`` is the object, encoded with the field numbers of ``k8s.io/api/<group>/<version>``
  and ``k8s.io/apimachinery`` ``generated.proto``.  Those numbers, with JSON names and the JSON
  facts the .proto lacks, live in ``pbfields.json`` (made by ``tools/gen_pbfields.py``).

The result equals what the same Go object would look like as JSON:

* Special types: ``meta.v1.Time`` -> RFC 3339 seconds (``2026-01-02T03:04:05Z``), ``MicroTime`` ->
  6-digit microseconds, zero/empty time -> omitted (Go writes ``null``); ``Quantity`` -> string;
  ``IntOrString`` -> int or str; ``RawExtension``/``FieldsV1`` -> parsed JSON; ``bytes`` -> base64
  string; ``Verbs``/``ExtraValue`` -> list of strings; maps are ``{1 key, 2 value}`` entries.
* **Zero pruning.**  The Go encoder writes every non-pointer scalar, even ``""``, ``0`` and
  ``false``.  A present zero scalar is dropped unless its Go field is a pointer (present on the
  wire means it was set, e.g. ``spec.replicas: 0``) or has no ``omitempty`` (JSON prints it
  too, e.g. ``roleRef.apiGroup: ""``, ``status.allowed: false``) -- flag ``z`` in the table.
  Nested messages present on the wire are kept even when empty (JSON prints ``"strategy": {}``),
  list elements and map values are never pruned.
* ``json:",inline"`` members (``Volume.volumeSource``, ``Probe.handler``, ...) are merged into
  their parent.  Unknown field numbers are skipped, as the Go decoder does.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from kubelite.api.errors import BadRequest, UnsupportedMediaType

PROTOBUF_MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_VARINT_KINDS = frozenset({"bool", "int32", "int64", "uint32", "uint64"})
_WIRE_TYPE = {"double": 1, "float": 5, "string": 2, "bytes": 2, "message": 2, "map": 2}
_SCALARS = _VARINT_KINDS | {"double", "float", "string", "bytes"}
_MAX_DEPTH = 100
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Field(NamedTuple):
    """One protobuf field of a Kubernetes message, as described by ``pbfields.json``."""

    name: str
    kind: str  # scalar type, "message" or "map"
    type: str | None  # message type, or the map value type
    repeated: bool
    inline: bool
    keep_zero: bool


class _Ctx(NamedTuple):
    path: str
    depth: int

    def child(self, name: str) -> _Ctx:
        if self.depth >= _MAX_DEPTH:
            raise BadRequest(f"protobuf body nests deeper than {_MAX_DEPTH} levels at {self.path}")
        return _Ctx(f"{self.path}.{name}" if self.path else name, self.depth + 1)


def is_protobuf(content_type: str) -> bool:
    """True when a Content-Type header names the Kubernetes protobuf encoding."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == PROTOBUF_MEDIA_TYPE


def decode(body: bytes) -> dict[str, Any]:
    """Decode a whole protobuf request body into the object's JSON form (with apiVersion/kind).

    Raises BadRequest for malformed bodies and UnsupportedMediaType for kinds or content
    encodings this server cannot read as protobuf.
    """
    return _decode_body(body, _Ctx("", 0))


def _decode_body(body: bytes, ctx: _Ctx) -> dict[str, Any]:
    """Decode a magic-prefixed runtime.Unknown (top level, or embedded in a RawExtension)."""
    if not body.startswith(MAGIC):
        raise BadRequest("protobuf body does not start with the 'k8s\\x00' magic prefix")
    api_version, kind, raw, encoding = _read_unknown(body[len(MAGIC) :])
    if not kind or not api_version:
        raise BadRequest("protobuf body is missing apiVersion or kind in its typeMeta")
    if encoding:
        raise UnsupportedMediaType(f"protobuf contentEncoding {encoding!r} is not supported")
    message = message_for(api_version, kind)
    if message is None:
        raise UnsupportedMediaType(
            f"{kind} in {api_version} cannot be decoded from {PROTOBUF_MEDIA_TYPE}; send application/json"
        )
    obj = _decode_message(raw, message, ctx)
    return {"apiVersion": api_version, "kind": kind, **obj}


def message_for(api_version: str, kind: str) -> str | None:
    """The protobuf message name of a kind: its group's k8s.io/api package, else meta/v1."""
    group, _, version = api_version.rpartition("/")
    package = group.split(".", 1)[0] if group else "core"
    tables = _tables()
    for name in (f"k8s.io.api.{package}.{version}.{kind}", f"{_META}{kind}"):
        if name in tables:
            return name
    return None


@functools.cache
def _tables() -> dict[str, dict[int, Field]]:
    raw = json.loads((Path(__file__).with_name("pbfields.json")).read_text())
    return {
        msg: {int(num): _field(entry) for num, entry in fields.items()}
        for msg, fields in raw["messages"].items()
    }


def _field(entry: list[Any]) -> Field:
    name, kind, typ, flags = entry
    return Field(name, kind, typ, "r" in flags, "i" in flags, "z" in flags)


# --- wire level -------------------------------------------------------------------------


def _varint(buf: bytes, pos: int, path: str) -> tuple[int, int]:
    """Read a base-128 varint at ``pos``; returns (value, next position)."""
    value = shift = 0
    for i in range(pos, min(pos + 10, len(buf))):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, i + 1
        shift += 7
    raise BadRequest(f"malformed protobuf body: truncated or overlong varint at {path or 'top level'}")


def _fields(buf: bytes, path: str) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of one encoded message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, path)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise BadRequest(f"malformed protobuf body: field number 0 at {path or 'top level'}")
        if wire == 0:
            value, pos = _varint(buf, pos, path)
            yield num, wire, value
            continue
        if wire == 2:
            size, pos = _varint(buf, pos, path)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise BadRequest(
                f"malformed protobuf body: unsupported wire type {wire} at {path or 'top level'}"
            )
        if pos + size > len(buf):
            raise BadRequest(f"malformed protobuf body: truncated field {num} at {path or 'top level'}")
        yield num, wire, buf[pos : pos + size]
        pos += size


def _read_unknown(buf: bytes) -> tuple[str, str, bytes, str]:
    """Parse the runtime.Unknown envelope: (apiVersion, kind, raw, contentEncoding)."""
    api_version = kind = encoding = ""
    raw = b""
    for num, _wire, value in _fields(buf, "envelope"):
        if not isinstance(value, bytes):
            continue
        if num == 1:
            for sub, _w, text in _fields(value, "envelope.typeMeta"):
                if sub in (1, 2) and isinstance(text, bytes):
                    decoded = _text(text)
                    api_version, kind = (decoded, kind) if sub == 1 else (api_version, decoded)
        elif num == 2:
            raw = value
        elif num == 3:
            encoding = _text(value)
    return api_version, kind, raw, encoding


def _text(value: bytes) -> str:
    # Go does not validate UTF-8 here; its JSON encoder then writes U+FFFD, as this does.
    return value.decode("utf-8", errors="replace")


# --- scalars ----------------------------------------------------------------------------


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(kind: str, wire: int, value: int | bytes, path: str) -> Any:
    """Convert one wire value to its JSON form for the given proto scalar type."""
    expected = 0 if kind in _VARINT_KINDS else _WIRE_TYPE.get(kind)
    if wire != expected:
        raise BadRequest(f"malformed protobuf body: field {path} has wire type {wire}, expected {expected}")
    if isinstance(value, int):
        if kind == "bool":
            return value != 0
        if kind == "int32":
            return _signed(value, 32)
        if kind == "int64":
            return _signed(value, 64)
        return value & (0xFFFFFFFF if kind == "uint32" else 0xFFFFFFFFFFFFFFFF)
    if kind == "string":
        return _text(value)
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    return struct.unpack("<d" if kind == "double" else "<f", value)[0]


def _is_zero(value: Any) -> bool:
    return value is False or value == "" or (type(value) in (int, float) and value == 0)


def _packed(kind: str, value: bytes, path: str) -> list[Any]:
    """Decode a packed repeated numeric field."""
    if kind in _VARINT_KINDS:
        out, pos = [], 0
        while pos < len(value):
            item, pos = _varint(value, pos, path)
            out.append(_scalar(kind, 0, item, path))
        return out
    size = 8 if kind == "double" else 4
    if len(value) % size:
        raise BadRequest(f"malformed protobuf body: packed field {path} has a partial element")
    wire = 1 if size == 8 else 5
    return [_scalar(kind, wire, value[i : i + size], path) for i in range(0, len(value), size)]


# --- messages ---------------------------------------------------------------------------


def _decode_message(buf: bytes, message: str, ctx: _Ctx) -> Any:
    """Decode one message; special Kubernetes types map to their JSON representation."""
    special = _SPECIAL.get(message.rsplit(".", 1)[1]) if message.startswith("k8s.io.apimachinery") else None
    if special is None and message.endswith(".ExtraValue"):
        special = _string_list
    if special is not None:
        return special(buf, ctx)
    table = _tables().get(message)
    if table is None:
        raise UnsupportedMediaType(f"protobuf message {message} at {ctx.path} is not known to this server")
    out: dict[str, Any] = {}
    singles: dict[int, bytes] = {}
    for num, wire, value in _fields(buf, ctx.path):
        field = table.get(num)
        if field is None:
            continue
        if field.kind == "message" and not field.repeated:
            singles[num] = singles.get(num, b"") + _as_bytes(value, field, ctx)
        else:
            _add_field(out, field, wire, value, ctx)
    for num, chunk in sorted(singles.items()):
        _add_message(out, table[num], chunk, ctx)
    return out


def _as_bytes(value: int | bytes, field: Field, ctx: _Ctx) -> bytes:
    if not isinstance(value, bytes):
        raise BadRequest(
            f"malformed protobuf body: field {ctx.child(field.name).path} is not length-delimited"
        )
    return value


def _add_message(out: dict[str, Any], field: Field, chunk: bytes, ctx: _Ctx) -> None:
    """Store a singular message field (merged chunks); inline members join the parent."""
    assert field.type is not None
    value = _decode_message(chunk, field.type, ctx.child(field.name))
    if value is None:
        return
    if field.inline and isinstance(value, dict):
        out.update(value)
    else:
        out[field.name] = value


def _add_field(out: dict[str, Any], field: Field, wire: int, value: int | bytes, ctx: _Ctx) -> None:
    """Store a scalar, repeated or map field, pruning zero scalars JSON would omit."""
    sub = ctx.child(field.name)
    if field.kind == "map":
        key, item = _map_entry(_as_bytes(value, field, ctx), field, sub)
        out.setdefault(field.name, {})[key] = item
    elif field.kind == "message":
        assert field.type is not None
        item = _decode_message(_as_bytes(value, field, ctx), field.type, sub)
        out.setdefault(field.name, []).append(item)
    elif field.repeated:
        items = out.setdefault(field.name, [])
        if wire == 2 and field.kind not in ("string", "bytes"):
            items.extend(_packed(field.kind, _as_bytes(value, field, ctx), sub.path))
        else:
            items.append(_scalar(field.kind, wire, value, sub.path))
    else:
        scalar = _scalar(field.kind, wire, value, sub.path)
        if field.keep_zero or not _is_zero(scalar):
            out[field.name] = scalar
        else:
            out.pop(field.name, None)


def _map_entry(buf: bytes, field: Field, ctx: _Ctx) -> tuple[str, Any]:
    """One ``{1 key, 2 value}`` map entry; a missing value is the zero value of its type."""
    assert field.type is not None
    scalar_type = field.type in _SCALARS
    key = ""
    found: tuple[int, int | bytes] | None = None
    chunk = b""
    for num, wire, value in _fields(buf, ctx.path):
        if num == 1:
            key = _scalar("string", wire, value, ctx.path)
        elif num == 2 and scalar_type:
            found = (wire, value)
        elif num == 2:
            chunk += _as_bytes(value, field, ctx)
    if not scalar_type:
        return key, _decode_message(chunk, field.type, ctx.child(key))
    if found is None:
        return key, _scalar_zero(field.type)
    return key, _scalar(field.type, found[0], found[1], f"{ctx.path}[{key}]")


def _scalar_zero(kind: str) -> Any:
    return {"string": "", "bytes": "", "bool": False, "double": 0.0, "float": 0.0}.get(kind, 0)


# --- special apimachinery types -----------------------------------------------------------


def _time_parts(buf: bytes, ctx: _Ctx) -> tuple[int, int] | None:
    seconds = nanos = 0
    present = False
    for num, wire, value in _fields(buf, ctx.path):
        if num in (1, 2):
            present = True
            number = _scalar("int64" if num == 1 else "int32", wire, value, ctx.path)
            seconds, nanos = (number, nanos) if num == 1 else (seconds, number)
    return (seconds, nanos) if present else None


def _timestamp(buf: bytes, ctx: _Ctx, micro: bool) -> str | None:
    parts = _time_parts(buf, ctx)
    if parts is None:
        return None  # Go's zero time: JSON null, omitted here
    seconds, nanos = parts
    try:
        when = _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as exc:
        raise BadRequest(f"time at {ctx.path} is out of range: {seconds}s") from exc
    naive = when.replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds" if micro else "seconds") + "Z"


def _time(buf: bytes, ctx: _Ctx) -> str | None:
    return _timestamp(buf, ctx, micro=False)


def _micro_time(buf: bytes, ctx: _Ctx) -> str | None:
    return _timestamp(buf, ctx, micro=True)


def _first_bytes(buf: bytes, ctx: _Ctx) -> bytes:
    """The value of field 1 (a string/bytes field) of a one-field wrapper message."""
    out = b""
    for num, _wire, value in _fields(buf, ctx.path):
        if num == 1:
            if not isinstance(value, bytes):
                raise BadRequest(f"malformed protobuf body: field {ctx.path} is not length-delimited")
            out = value
    return out


def _quantity(buf: bytes, ctx: _Ctx) -> str:
    return _text(_first_bytes(buf, ctx)) or "0"


def _raw_json(buf: bytes, ctx: _Ctx) -> Any:
    """RawExtension/FieldsV1: embedded JSON (or an embedded protobuf object)."""
    raw = _first_bytes(buf, ctx)
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return _decode_body(raw, ctx.child("(embedded)"))
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"embedded object at {ctx.path} is neither JSON nor protobuf") from exc


def _int_or_string(buf: bytes, ctx: _Ctx) -> int | str:
    kind = int_val = 0
    str_val = ""
    for num, wire, value in _fields(buf, ctx.path):
        if num == 1:
            kind = _scalar("int64", wire, value, ctx.path)
        elif num == 2:
            int_val = _scalar("int32", wire, value, ctx.path)
        elif num == 3:
            str_val = _scalar("string", wire, value, ctx.path)
    return str_val if kind == 1 else int_val


def _string_list(buf: bytes, ctx: _Ctx) -> list[str]:
    """Go ``[]string`` aliases (Verbs, ExtraValue) travel as ``{repeated string items = 1}``."""
    return [_scalar("string", w, v, ctx.path) for n, w, v in _fields(buf, ctx.path) if n == 1]


_SPECIAL: dict[str, Any] = {
    "Time": _time,
    "MicroTime": _micro_time,
    "Quantity": _quantity,
    "QuantityValue": _quantity,
    "IntOrString": _int_or_string,
    "RawExtension": _raw_json,
    "FieldsV1": _raw_json,
    "Verbs": _string_list,
}
