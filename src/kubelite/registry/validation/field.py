"""Field errors as apimachinery's ``field.Error`` prints them.

Each constructor returns a :class:`~kubelite.api.errors.Cause` whose ``reason`` is the
Kubernetes CauseType and whose ``message`` is ``ErrorBody()``: the error type's text,
the offending value rendered the way Go's ``fmt`` renders it (``%q`` for strings,
``%v`` for numbers and booleans, ``%#v`` for maps and slices) and the detail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubelite.api.errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
TYPE_INVALID = "FieldValueTypeInvalid"

Errs = list[Cause]

_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
}


class Omit:
    """A bad value that is not printed (apimachinery's ``field.OmitValueType``)."""


OMIT = Omit()


class Raw(str):
    """A bad value printed verbatim, as Go prints a ``fmt.Stringer`` (e.g. an IntOrString)."""


def go_quote(s: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` for the characters that occur in API values."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = []
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_value(value: Any) -> str:
    """Render a bad value like ``field.Error.ErrorBody`` does."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int | float):
        return str(value)
    return go_struct(value)


def go_struct(value: Any) -> str:
    """``%#v`` of a map, slice or struct-like dict (maps are printed with sorted keys)."""
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            inner = ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(value.items()))
            return "map[string]string{" + inner + "}"
        inner = ", ".join(f"{k[:1].upper()}{k[1:]}:{_go_nested(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
        return "[]{" + ", ".join(_go_nested(v) for v in value) + "}"
    return str(value)


def go_selector(selector: Any) -> str:
    """``%#v`` of a ``metav1.LabelSelector`` as validation messages print it."""
    sel = selector if isinstance(selector, dict) else {}
    labels = sel.get("matchLabels")
    if isinstance(labels, dict) and labels:
        ml = (
            "map[string]string{"
            + ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(labels.items()))
            + "}"
        )
    else:
        ml = "map[string]string(nil)"
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list) and exprs:
        items = []
        for e in exprs:
            d = e if isinstance(e, dict) else {}
            values = d.get("values")
            vals = (
                "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"
                if isinstance(values, list) and values
                else "[]string(nil)"
            )
            items.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(d.get('key', '')))}, "
                f"Operator:{go_quote(str(d.get('operator', '')))}, Values:{vals}}}"
            )
        me = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    else:
        me = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}"


def _go_nested(value: Any) -> str:
    if isinstance(value, dict | list):
        return go_struct(value)
    return go_value(value)


def _body(kind_text: str, value: Any, detail: str) -> str:
    body = kind_text if isinstance(value, Omit) else f"{kind_text}: {go_value(value)}"
    return f"{body}: {detail}" if detail else body


def required(path: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, f"Required value: {detail}" if detail else "Required value", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, f"Forbidden: {detail}" if detail else "Forbidden", path)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(INVALID, _body("Invalid value", value, detail), path)


def type_invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(TYPE_INVALID, _body("Invalid value", value, detail), path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(DUPLICATE, _body("Duplicate value", value, ""), path)


def not_found(path: str, value: Any) -> Cause:
    return Cause(NOT_FOUND, _body("Not found", value, ""), path)


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Cause:
    quoted = ", ".join(go_quote(v) for v in valid)
    return Cause(NOT_SUPPORTED, _body("Unsupported value", value, f"supported values: {quoted}"), path)


def too_long(path: str, max_length: int) -> Cause:
    detail = f"may not be more than {max_length} bytes" if max_length >= 0 else "value is too long"
    return Cause(TOO_LONG, f"Too long: {detail}", path)


def too_many(path: str, actual: int, max_items: int) -> Cause:
    return Cause(TOO_MANY, f"Too many: {actual}: must have at most {max_items} items", path)


def selector_value(selector: Any) -> Raw:
    """A label selector as a bad value (Go prints the dereferenced struct)."""
    return Raw("null") if selector is None else Raw(go_selector(selector))


def immutable_selector(path: str, new: Any, old: Any) -> list[Cause]:
    return [] if new == old else [invalid(path, selector_value(new), "field is immutable")]


def immutable(path: str, new: Any, old: Any) -> list[Cause]:
    """``ValidateImmutableField``: the new value must equal the old one."""
    if new == old:
        return []
    return [invalid(path, new, "field is immutable")]


def nonnegative(path: str, value: Any) -> list[Cause]:
    """``ValidateNonnegativeField`` for an optional integer field."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []
