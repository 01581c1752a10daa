"""Server-side Table printing: what ``kubectl get`` shows.

The kube-apiserver answers ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` with
``meta.k8s.io/v1`` Tables whose cells it computes itself (AGE included, as ``"5m"``).
This module is that printer:

* :func:`columns_for` / :func:`row_cells`: built-in resources, mirroring
  ``pkg/printers/internalversion`` printed with ``Wide: true`` (priority-1 columns are
  always sent; kubectl hides them unless ``-o wide``). Resources without a printer
  (roles, limit ranges, CRDs themselves, ...) fall back to :func:`default_columns`,
  like ``rest.NewDefaultTableConvertor``: ``Name`` and ``Created At`` (RFC 3339).
* :func:`crd_columns` / :func:`crd_row_cells`: custom resources, mirroring
  apiextensions' ``tableconvertor``: ``Name`` then the CRD's ``additionalPrinterColumns``
  (``Age`` alone when it declares none), cells found by JSONPath.
* :func:`build_table`: the whole Table body, rows carrying ``PartialObjectMetadata``
  (or the full object for ``includeObject=Object``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kubelite.api.humanize import parse_time, translate_timestamp_since
from kubelite.registry.printers import Column, Printer, printer_for
from kubelite.registry.printers._base import col, dig, doc, mp, name_col, name_of
from kubelite.registry.printers.jsonpath import JSONPathError, Step, find, parse
from kubelite.registry.printers.pods import row_conditions as pod_row_conditions

__all__ = [
    "Column",
    "build_table",
    "columns_for",
    "crd_columns",
    "crd_row_cells",
    "default_cells",
    "default_columns",
    "default_row_cells",
    "has_printer",
    "row_cells",
    "row_conditions",
]

Obj = Mapping[str, Any]
ZERO_TIME = "0001-01-01T00:00:00Z"

# ---------------------------------------------------------------- built-in resources


def has_printer(group: str, resource: str) -> bool:
    """Whether Kubernetes has a dedicated printer for the resource (else the default table)."""
    return printer_for(group, resource) is not None


def columns_for(group: str, resource: str) -> list[Column]:
    """Column definitions for ``resource`` (plural) in ``group`` ('' = core)."""
    printer = printer_for(group, resource)
    return list(printer.columns) if printer is not None else default_columns()


def row_cells(group: str, resource: str, obj: Obj, now: datetime) -> list[Any]:
    """The cells of one object's row, one per column of :func:`columns_for`."""
    printer = printer_for(group, resource)
    if printer is None:
        return default_cells(obj)
    return printer.cells(obj, now)


def row_conditions(group: str, resource: str, obj: Obj) -> list[dict[str, str]]:
    """``TableRow.conditions`` (only pods set one: ``Completed`` when they have finished)."""
    if (group, resource) == ("", "pods"):
        return pod_row_conditions(obj)
    return []


def default_columns() -> list[Column]:
    """``rest.DefaultTableConvertor``: ``Name`` and ``Created At`` (type ``date``)."""
    return [name_col(), col("Created At", "date", doc("meta.v1.ObjectMeta", "creationTimestamp"))]


def default_cells(obj: Obj) -> list[Any]:
    """Name and the creation time as RFC 3339 UTC (Go's zero time when unset)."""
    created = parse_time(dig(obj, "metadata", "creationTimestamp"))
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else ZERO_TIME
    return [name_of(obj), stamp]


def default_row_cells(obj: Obj, now: datetime) -> list[Any]:
    """:func:`default_cells` with the same signature as :func:`row_cells` (``now`` is unused)."""
    return default_cells(obj)


# ---------------------------------------------------------------- custom resources


def _apc_path(column: Mapping[str, Any]) -> str:
    path = column.get("jsonPath", column.get("JSONPath", ""))
    return path if isinstance(path, str) else ""


def _effective_apc(apc: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """The CRD's columns, or apiextensions' default ``Age`` column when it declares none."""
    columns = [c for c in (apc or ()) if isinstance(c, Mapping)]
    if columns:
        return columns
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return [{**age, "description": doc("meta.v1.ObjectMeta", "creationTimestamp")}]


def _parsed_apc(apc: Iterable[Mapping[str, Any]] | None) -> list[tuple[Mapping[str, Any], tuple[Step, ...]]]:
    """Columns with their parsed paths, up to the first unparsable one (as apiextensions stops)."""
    out = []
    for column in _effective_apc(apc):
        try:
            out.append((column, parse(_apc_path(column))))
        except JSONPathError:
            break
    return out


def _apc_column(column: Mapping[str, Any]) -> Column:
    desc = column.get("description")
    if not isinstance(desc, str) or not desc:
        desc = f"Custom resource definition column (in JSONPath format): {_apc_path(column)}"
    priority = column.get("priority")
    return Column(
        name=str(column.get("name", "")),
        type=str(column.get("type", "")),
        format=str(column.get("format", "") or ""),
        description=desc,
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
    )


def crd_columns(additional_printer_columns: Iterable[Mapping[str, Any]] | None) -> list[Column]:
    """``Name`` plus one column per ``additionalPrinterColumns`` entry (``Age`` if none)."""
    return [name_col(), *(_apc_column(c) for c, _ in _parsed_apc(additional_printer_columns))]


def crd_row_cells(apc: Iterable[Mapping[str, Any]] | None, obj: Obj, now: datetime) -> list[Any]:
    """The name, then each column's first JSONPath match converted to the column type."""
    cells: list[Any] = [name_of(obj)]
    for column, steps in _parsed_apc(apc):
        found = find(steps, obj)
        cells.append(_typed_cell(str(column.get("type", "")), found[0], now) if found else None)
    return cells


def _typed_cell(col_type: str, value: Any, now: datetime) -> Any:
    """apiextensions ``cellForJSONValue`` (and jsonpath printing for string columns)."""
    converters: dict[str, Callable[[Any, datetime], Any]] = {
        "string": lambda v, _: jsonpath_text(v),
        "integer": lambda v, _: _as_integer(v),
        "number": lambda v, _: _as_number(v),
        "boolean": lambda v, _: v if isinstance(v, bool) else None,
        "date": _as_age,
    }
    convert = converters.get(col_type)
    return convert(value, now) if convert is not None else None


def _as_integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) else None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _as_age(value: Any, now: datetime) -> str | None:
    if not isinstance(value, str):
        return None
    if value in ("", "null"):
        return "<unknown>"
    if parse_time(value) is None:
        return "<invalid>"
    return translate_timestamp_since(value, now)


def jsonpath_text(value: Any) -> str:
    """How client-go's jsonpath prints one result: JSON for objects/lists, Go ``%v`` otherwise."""
    if value is None:
        return "<no value>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def go_float(value: float) -> str:
    """Go's ``%v`` for float64 (``strconv.FormatFloat(f, 'g', -1, 64)``): 1.5, 2, 1e+21."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits_t, exp = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    point = len(digits) + int(exp)  # position of the decimal point
    x = point - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= 6:  # shortest formatting decides with precision 6
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


# ---------------------------------------------------------------- the Table body


def _row_object(obj: Obj, include_object: str, meta_api_version: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return dict(obj)
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version,
        "metadata": mp(obj, "metadata"),
    }


def build_table(
    columns: list[Column],
    objects: Iterable[Obj],
    cells: Callable[[Obj], list[Any]],
    *,
    include_object: str = "Metadata",
    list_metadata: Mapping[str, Any] | None = None,
    api_version: str = "meta.k8s.io/v1",
    conditions: Callable[[Obj], list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io`` Table: definitions, one row per object, ``row.object`` per ``includeObject``.

    ``include_object`` is ``Metadata`` (default: PartialObjectMetadata, needed for ``-A``,
    ``--show-labels``, ``-L``), ``Object`` (full objects, for ``--sort-by``) or ``None``.
    Pass ``objects`` with kind/apiVersion already set when using ``Object``.
    """
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj)}
        row_conds = conditions(obj) if conditions is not None else []
        if row_conds:
            row["conditions"] = row_conds
        row_obj = _row_object(obj, include_object, api_version)
        if row_obj is not None:
            row["object"] = row_obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": dict(list_metadata or {}),
        "columnDefinitions": [c.to_dict() for c in columns],
        "rows": rows,
    }


def table_for(
    group: str,
    resource: str,
    objects: Iterable[Obj],
    now: datetime,
    *,
    additional_printer_columns: Iterable[Mapping[str, Any]] | None = None,
    custom: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """:func:`build_table` for a resource: built-in printer, or CRD columns when ``custom``."""
    if custom:
        apc = list(additional_printer_columns or [])
        return build_table(crd_columns(apc), objects, lambda o: crd_row_cells(apc, o, now), **options)
    printer: Printer | None = printer_for(group, resource)
    columns = list(printer.columns) if printer is not None else default_columns()
    return build_table(
        columns,
        objects,
        lambda o: row_cells(group, resource, o, now),
        conditions=lambda o: row_conditions(group, resource, o),
        **options,
    )
