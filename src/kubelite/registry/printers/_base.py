"""Building blocks shared by the per-group printers.

A :class:`Printer` pairs the column definitions of one resource with the function that
computes a row's cells, the way ``pkg/printers/internalversion`` pairs each
``TableColumnDefinition`` list with a ``print<Kind>`` function. The API server always
prints with ``Wide: true``, so cells cover every column, priority 1 included.

The accessors here never raise on partial objects: a missing or mistyped field reads
as the zero value of its Go type (``""``, ``0``, ``[]``, ``{}``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelite.api.humanize import translate_timestamp_since
from kubelite.schema.definitions import definitions

NONE = "<none>"
UNKNOWN = "<unknown>"
UNSET = "<unset>"

Obj = Mapping[str, Any]
CellFn = Callable[[Obj, datetime], list[Any]]


@dataclass(frozen=True)
class Column:
    """One ``metav1.TableColumnDefinition``."""

    name: str
    type: str
    format: str
    description: str
    priority: int

    def to_dict(self) -> dict[str, Any]:
        """The wire form inside ``Table.columnDefinitions``."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Printer:
    """Columns and the cell function of one resource."""

    columns: tuple[Column, ...]
    cells: CellFn


# ---------------------------------------------------------------- descriptions


@functools.cache
def doc(definition: str, field: str) -> str:
    """The OpenAPI description of ``field`` in ``definition`` (``core.v1.PodStatus``), as SwaggerDoc.

    Short names are relative to ``io.k8s.api.``; ``meta.v1.X`` means apimachinery's meta types.
    """
    if definition.startswith("meta."):
        full = "io.k8s.apimachinery.pkg.apis." + definition
    else:
        full = "io.k8s.api." + definition
    schema = definitions().get(full) or {}
    prop = (schema.get("properties") or {}).get(field) or {}
    description = prop.get("description", "")
    return description if isinstance(description, str) else ""


def col(name: str, typ: str, description: str, priority: int = 0, fmt: str = "") -> Column:
    return Column(name=name, type=typ, format=fmt, description=description, priority=priority)


def name_col(priority: int = 0) -> Column:
    """The ``Name`` column, ``format: name`` (what gives ``pod/p`` in multi-type output)."""
    return col("Name", "string", doc("meta.v1.ObjectMeta", "name"), priority, "name")


def age_col() -> Column:
    return col("Age", "string", doc("meta.v1.ObjectMeta", "creationTimestamp"))


CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


def containers_cols(priority: int = 1) -> tuple[Column, Column]:
    return (
        col("Containers", "string", CONTAINERS_DOC, priority),
        col("Images", "string", IMAGES_DOC, priority),
    )


# ---------------------------------------------------------------- accessors


def dig(obj: Any, *path: str | int) -> Any:
    """``obj[p0][p1]...``, or None as soon as a step is missing or of the wrong type."""
    cur = obj
    for step in path:
        # plain dicts (every decoded object) first: ``isinstance(x, Mapping)`` is an ABC check
        if type(cur) is dict and type(step) is str:
            cur = cur.get(step)
        elif isinstance(step, int):
            if not isinstance(cur, list) or not -len(cur) <= step < len(cur):
                return None
            cur = cur[step]
        elif isinstance(cur, Mapping):
            cur = cur.get(step)
        else:
            return None
    return cur


def txt(obj: Any, *path: str | int) -> str:
    """A string field, ``""`` when missing (Go's zero string)."""
    v = dig(obj, *path)
    return v if isinstance(v, str) else ""


def num(obj: Any, *path: str | int, default: int = 0) -> int:
    """An integer field, ``default`` when missing (Go's zero int)."""
    v = dig(obj, *path)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return default
    return int(v)


def opt_int(obj: Any, *path: str | int) -> int | None:
    """An optional (pointer) integer field."""
    v = dig(obj, *path)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return int(v)


def b(obj: Any, *path: str | int) -> bool:
    return dig(obj, *path) is True


def lst(obj: Any, *path: str | int) -> list[Any]:
    v = dig(obj, *path)
    return v if isinstance(v, list) else []


def dicts(obj: Any, *path: str | int) -> list[Mapping[str, Any]]:
    """The mapping items of a list field (non-mapping items are skipped)."""
    return [x for x in lst(obj, *path) if type(x) is dict or isinstance(x, Mapping)]


def mp(obj: Any, *path: str | int) -> Mapping[str, Any]:
    v = dig(obj, *path)
    return v if type(v) is dict or isinstance(v, Mapping) else {}


def name_of(obj: Obj) -> str:
    return txt(obj, "metadata", "name")


def age(obj: Obj, now: datetime) -> str:
    """The AGE cell: ``translateTimestampSince(metadata.creationTimestamp)``."""
    return translate_timestamp_since(dig(obj, "metadata", "creationTimestamp"), now)


def is_deleting(obj: Obj) -> bool:
    return bool(dig(obj, "metadata", "deletionTimestamp"))


# ---------------------------------------------------------------- formatting


def format_labels(labels: Mapping[str, Any]) -> str:
    """``labels.FormatLabels``: ``k=v`` sorted by key, comma-joined; ``<none>`` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={_text(labels[k])}" for k in sorted(labels))


def selector_string(selector: Any) -> str:
    """``LabelSelectorAsSelector(sel).String()``: ``""`` for nil/empty selectors."""
    if not isinstance(selector, Mapping):
        return ""
    reqs: list[tuple[str, str]] = []
    for key, value in mp(selector, "matchLabels").items():
        reqs.append((key, f"{key}={_text(value)}"))
    for expr in dicts(selector, "matchExpressions"):
        reqs.append((txt(expr, "key"), _expression(expr)))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def _expression(expr: Mapping[str, Any]) -> str:
    key = txt(expr, "key")
    op = txt(expr, "operator")
    values = ",".join(sorted({_text(v) for v in lst(expr, "values")}))
    if op == "In":
        return f"{key} in ({values})"
    if op == "NotIn":
        return f"{key} notin ({values})"
    if op == "DoesNotExist":
        return f"!{key}"
    return key  # Exists


def format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: the selector string, ``<none>`` when it selects everything."""
    return selector_string(selector) or NONE


def layout_container_cells(containers: Iterable[Any]) -> tuple[str, str]:
    """``layoutContainerCells``: comma-joined container names and images."""
    items = [c for c in containers if isinstance(c, Mapping)]
    return ",".join(txt(c, "name") for c in items), ",".join(txt(c, "image") for c in items)


def intstr(value: Any) -> str:
    """``intstr.IntOrString.String()``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(int(value))
    return value if isinstance(value, str) else ""


def quantity(value: Any) -> str:
    """A ``resource.Quantity`` as stored (the canonical string); ``"0"`` when absent."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return "0"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def list_with_more(items: list[str], total: int, limit: int, empty: str) -> str:
    """``a,b,c + N more...`` as the endpoint printers shorten long lists."""
    shown = ",".join(items[:limit])
    if total > limit:
        return f"{shown} + {total - limit} more..."
    return shown or empty
