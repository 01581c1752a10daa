"""CronJob schedule syntax, as ``robfig/cron/v3``'s ``ParseStandard`` accepts it.

Five fields (minute hour day-of-month month day-of-week) with ``*``, ``?``, ranges, steps,
lists and month/weekday names, or a descriptor (``@hourly``, ``@every 1h30m`` ...).
:func:`schedule_error` returns the parser's error message, or None when the spec parses.
"""

from __future__ import annotations

import re

_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("dom", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
            )
        },
    ),
    ("dow", 0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_DURATION = re.compile(r"([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+")


def schedule_error(spec: str) -> str | None:
    """The error ``cron.ParseStandard(spec)`` would return, or None."""
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        _, _, spec = spec.partition(" ")
        spec = spec.strip()
    if spec.startswith("@"):
        return _descriptor_error(spec)
    fields = spec.split()
    if len(fields) != 5:
        listed = "[" + " ".join(fields) + "]"
        return f"expected exactly 5 fields, found {len(fields)}: {listed}"
    for text, (_, lo, hi, names) in zip(fields, _FIELDS, strict=True):
        for part in text.split(","):
            err = _range_error(part, lo, hi, names)
            if err is not None:
                return err
    return None


def _descriptor_error(spec: str) -> str | None:
    if spec in _DESCRIPTORS:
        return None
    if spec.startswith("@every "):
        duration = spec[len("@every ") :]
        if not _DURATION.fullmatch(duration):
            return f'failed to parse duration {spec}: time: invalid duration "{duration}"'
        return None
    return f"unrecognized descriptor: {spec}"


def _number(text: str, names: dict[str, int]) -> tuple[int | None, str | None]:
    if text.lower() in names:
        return names[text.lower()], None
    if not text.isdigit():
        return None, f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
    return int(text), None


def _bounds(low_and_high: list[str], expr: str, names: dict[str, int]) -> tuple[int, int] | str:
    start, err = _number(low_and_high[0], names)
    if start is None:
        return err or expr
    if len(low_and_high) == 1:
        return start, start
    if len(low_and_high) > 2:
        return f"too many hyphens: {expr}"
    end, err = _number(low_and_high[1], names)
    if end is None:
        return err or expr
    return start, end


def _range_error(expr: str, lo: int, hi: int, names: dict[str, int]) -> str | None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    if low_and_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        bounds = _bounds(low_and_high, expr, names)
        if isinstance(bounds, str):
            return bounds
        start, end = bounds
    if len(range_and_step) == 2:
        step, err = _number(range_and_step[1], {})
        if step is None:
            return err
        if len(low_and_high) == 1 and low_and_high[0] not in ("*", "?"):
            end = hi
        if step <= 0:
            return f"step of range should be a positive number: {expr}"
    if start < lo:
        return f"beginning of range ({start}) below minimum ({lo}): {expr}"
    if end > hi:
        return f"end of range ({end}) above maximum ({hi}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None
