"""Objects to ``meta.k8s.io/v1`` Tables and PartialObjectMetadata (what ``kubectl get`` asks for)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubelite.registry import tables
from kubelite.registry.printers import printer_for
from kubelite.registry.resources import ResourceInfo

Obj = dict[str, Any]


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


class TableConverter:
    def __init__(self, info: ResourceInfo, crd_columns: list[dict[str, Any]] | None = None) -> None:
        self.info = info
        self.crd_columns = crd_columns
        if crd_columns is not None:
            self.columns = tables.crd_columns(crd_columns)
        else:
            self.columns = tables.columns_for(info.group, info.plural)
        self._builtin = crd_columns is None and tables.has_printer(info.group, info.plural)
        printer = printer_for(info.group, info.plural) if self._builtin else None
        # the row function, looked up once per request rather than once per row
        self._cells = printer.cells if printer is not None else None

    def column_definitions(self) -> list[Obj]:
        return [c.to_dict() for c in self.columns]

    def cells(self, obj: Obj, now: dt.datetime) -> list[Any]:
        if self._cells is not None:
            return self._cells(obj, now)
        if self.crd_columns is not None:
            return tables.crd_row_cells(self.crd_columns, obj, now)
        if self._builtin:
            return tables.row_cells(self.info.group, self.info.plural, obj, now)
        return tables.default_row_cells(obj, now)

    def row(self, obj: Obj, now: dt.datetime, include_object: str) -> Obj:
        row: Obj = {"cells": self.cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        return row

    def table(
        self,
        objs: list[Obj],
        now: dt.datetime,
        include_object: str,
        list_meta: Obj | None = None,
        with_columns: bool = True,
    ) -> Obj:
        out: Obj = {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta or {},
            "columnDefinitions": self.column_definitions() if with_columns else None,
            "rows": [self.row(o, now, include_object) for o in objs],
        }
        if not with_columns:
            out.pop("columnDefinitions")
        return out
