"""The JSONPath subset used by CRD ``additionalPrinterColumns``.

Kubernetes parses each column's ``jsonPath`` with client-go's ``jsonpath`` (as
``{<path>}``, missing keys allowed) and prints the first result. Supported here:
``.a.b`` (``\\.`` escapes a dot inside a key), ``['a.b']``, ``[0]``/``[-1]``,
``[*]``, ``[1:3]`` and filters ``[?(@.type=="Ready")]`` with ``== != < <= > >=``
or bare existence ``[?(@.ready)]``. A path that cannot be parsed raises
:class:`JSONPathError`; a path that matches nothing yields no results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_FILTER = re.compile(r"^\?\(\s*@(?P<path>[^=!<>]*?)\s*(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<rhs>.+?))?\s*\)$")
_SLICE = re.compile(r"^(-?\d*):(-?\d*)$")


class JSONPathError(ValueError):
    """A jsonPath outside the supported subset or malformed."""


@dataclass(frozen=True)
class Step:
    kind: str  # field | index | wild | slice | filter
    key: str = ""
    index: int = 0
    end: int | None = None
    path: tuple[Step, ...] = ()
    op: str = ""
    rhs: Any = None


def parse(path: str) -> tuple[Step, ...]:
    """Parse ``.spec.replicas`` (or ``{.spec.replicas}``, ``$.spec``) into steps."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        if text[pos] == ".":
            step, pos = _parse_field(text, pos + 1)
        elif text[pos] == "[":
            step, pos = _parse_bracket(text, pos + 1)
        else:
            raise JSONPathError(f"unrecognized character in jsonPath {path!r} at {pos}")
        steps.append(step)
    return tuple(steps)


def _parse_field(text: str, pos: int) -> tuple[Step, int]:
    out: list[str] = []
    while pos < len(text) and text[pos] not in ".[" and not text[pos].isspace():
        if text[pos] == "\\" and pos + 1 < len(text):
            pos += 1
        out.append(text[pos])
        pos += 1
    if not out:
        raise JSONPathError(f"empty field name in jsonPath {text!r}")
    key = "".join(out)
    return (Step("wild") if key == "*" else Step("field", key=key)), pos


def _closing_bracket(text: str, pos: int) -> int:
    depth, quote = 0, ""
    for j in range(pos, len(text)):
        ch = text[j]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0 and ch == "]":
                return j
            depth -= 1
    raise JSONPathError(f"unclosed [ in jsonPath {text!r}")


def _parse_bracket(text: str, pos: int) -> tuple[Step, int]:
    end = _closing_bracket(text, pos)
    inner = text[pos:end].strip()
    return _bracket_step(inner), end + 1


def _bracket_step(inner: str) -> Step:
    if inner == "*":
        return Step("wild")
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return Step("field", key=inner[1:-1])
    if re.fullmatch(r"-?\d+", inner):
        return Step("index", index=int(inner))
    sliced = _SLICE.match(inner)
    if sliced:
        start, stop = sliced.groups()
        return Step("slice", index=int(start or 0), end=int(stop) if stop else None)
    flt = _FILTER.match(inner)
    if flt:
        rhs = _literal(flt.group("rhs")) if flt.group("op") else None
        return Step("filter", path=parse(flt.group("path")), op=flt.group("op") or "", rhs=rhs)
    raise JSONPathError(f"unsupported jsonPath subscript [{inner}]")


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        if text.startswith("@"):
            return parse(text[1:])
        raise JSONPathError(f"unsupported filter value {text!r}") from None


def find(steps: tuple[Step, ...], data: Any) -> list[Any]:
    """Every value the path reaches, in document order (missing keys yield nothing)."""
    nodes = [data]
    for step in steps:
        nodes = [out for node in nodes for out in _apply(step, node)]
    return nodes


def _apply(step: Step, node: Any) -> list[Any]:
    if step.kind == "field":
        return [node[step.key]] if isinstance(node, Mapping) and step.key in node else []
    if step.kind == "wild":
        if isinstance(node, Mapping):
            return [node[k] for k in sorted(node)]
        return list(node) if isinstance(node, list) else []
    if not isinstance(node, list):
        return []
    if step.kind == "index":
        return [node[step.index]] if -len(node) <= step.index < len(node) else []
    if step.kind == "slice":
        return node[step.index : step.end]
    return [item for item in node if _matches(step, item)]


def _matches(step: Step, item: Any) -> bool:
    left = find(step.path, item)
    if not step.op:
        return bool(left) and left[0] is not None and left[0] is not False
    if not left:
        return False
    rhs = step.rhs
    if isinstance(rhs, tuple):
        found = find(rhs, item)
        if not found:
            return False
        rhs = found[0]
    return _compare(left[0], step.op, rhs)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    numeric = (int, float)
    both_numbers = isinstance(left, numeric) and isinstance(right, numeric)
    if not both_numbers and not (isinstance(left, str) and isinstance(right, str)):
        return False
    result = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}
    return bool(result[op])
