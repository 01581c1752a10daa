"""The Event table: ``LAST SEEN TYPE REASON OBJECT MESSAGE | SUBOBJECT SOURCE FIRST SEEN COUNT NAME``.

Mirrors ``printEvent``: LAST SEEN falls back to FIRST SEEN, which falls back to
``eventTime``; an event series uses ``series.lastObservedTime`` and ``series.count``;
a singleton event without a count counts 1. OBJECT is ``<kind lowercased>/<name>``.
SOURCE is ``component, host`` (falling back to ``reportingController``,
``reportingInstance``). The Name column comes last and is wide-only.

``events.k8s.io/v1`` Events are the same objects under other field names
(``regarding``, ``note``, ``deprecated*``); the real server prints them with the same
table, so they are mapped to core field names first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubelite.api.humanize import parse_time, translate_timestamp_since

from ._base import Obj, Printer, col, dig, doc, mp, name_col, name_of, num, opt_int, txt

EVENT_COLUMNS = (
    col("Last Seen", "string", doc("core.v1.Event", "lastTimestamp")),
    col("Type", "string", doc("core.v1.Event", "type")),
    col("Reason", "string", doc("core.v1.Event", "reason")),
    col("Object", "string", doc("core.v1.Event", "involvedObject")),
    col("Subobject", "string", doc("core.v1.ObjectReference", "fieldPath"), 1),
    col("Source", "string", doc("core.v1.Event", "source"), 1),
    col("Message", "string", doc("core.v1.Event", "message")),
    col("First Seen", "string", doc("core.v1.Event", "firstTimestamp"), 1),
    col("Count", "string", doc("core.v1.Event", "count"), 1),
    name_col(priority=1),
)


def _since_or_none(value: Any, now: datetime) -> str | None:
    """The age of a timestamp, or None when it is unset (Go's ``IsZero``)."""
    return translate_timestamp_since(value, now) if parse_time(value) is not None else None


def _timestamps(ev: Obj, now: datetime) -> tuple[str, str]:
    first = _since_or_none(dig(ev, "firstTimestamp"), now)
    if first is None:
        first = translate_timestamp_since(dig(ev, "eventTime"), now)
    last = _since_or_none(dig(ev, "lastTimestamp"), now) or first
    if isinstance(dig(ev, "series"), Mapping):
        last = translate_timestamp_since(dig(ev, "series", "lastObservedTime"), now)
    return first, last


def _count(ev: Obj) -> int:
    if isinstance(dig(ev, "series"), Mapping):
        return num(ev, "series", "count")
    count = opt_int(ev, "count") or 0
    return count if count != 0 else 1


def _target(ev: Obj) -> str:
    kind = txt(ev, "involvedObject", "kind").lower()
    name = txt(ev, "involvedObject", "name")
    return f"{kind}/{name}" if name else kind


def _source(ev: Obj) -> str:
    component = txt(ev, "source", "component") or txt(ev, "reportingComponent")
    host = txt(ev, "source", "host") or txt(ev, "reportingInstance")
    return f"{component}, {host}" if host else component


def event_cells(ev: Obj, now: datetime) -> list[Any]:
    first, last = _timestamps(ev, now)
    return [
        last,
        txt(ev, "type"),
        txt(ev, "reason"),
        _target(ev),
        txt(ev, "involvedObject", "fieldPath"),
        _source(ev),
        txt(ev, "message").strip(),
        first,
        _count(ev),
        name_of(ev),
    ]


def core_event_from_events_v1(ev: Obj) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event with its fields renamed to their ``core/v1`` names."""
    return {
        "metadata": mp(ev, "metadata"),
        "involvedObject": mp(ev, "regarding"),
        "message": txt(ev, "note"),
        "type": txt(ev, "type"),
        "reason": txt(ev, "reason"),
        "firstTimestamp": dig(ev, "deprecatedFirstTimestamp"),
        "lastTimestamp": dig(ev, "deprecatedLastTimestamp"),
        "count": dig(ev, "deprecatedCount"),
        "source": mp(ev, "deprecatedSource"),
        "eventTime": dig(ev, "eventTime"),
        "series": dig(ev, "series"),
        "reportingComponent": txt(ev, "reportingController"),
        "reportingInstance": txt(ev, "reportingInstance"),
    }


PRINTERS = {
    ("", "events"): Printer(EVENT_COLUMNS, event_cells),
    ("events.k8s.io", "events"): Printer(
        EVENT_COLUMNS, lambda ev, now: event_cells(core_event_from_events_v1(ev), now)
    ),
}
