"""Human-readable ages and durations, as ``kubectl get`` shows them.

Mirrors apimachinery ``pkg/util/duration``: :func:`human_duration` is ``HumanDuration``
(the AGE column, about 2-3 significant figures: ``"5s"``, ``"2m3s"``, ``"5m"``,
``"3h4m"``, ``"2d3h"``, ``"45d"``, ``"2y10d"``), :func:`short_human_duration` is
``ShortHumanDuration`` (one unit only). :func:`translate_timestamp_since` is the
printers' ``translateTimestampSince``: the age of an RFC 3339 timestamp, or
``"<unknown>"`` when the timestamp is missing.

Durations are truncated toward zero like Go's integer ``time.Duration`` arithmetic;
a duration of -2 s or less (clock skew beyond tolerance) prints ``"<invalid>"``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_US_PER_S = 1_000_000
_US_PER_MIN = 60 * _US_PER_S
_US_PER_H = 60 * _US_PER_MIN
_HOURS_PER_DAY = 24
_DAYS_PER_YEAR = 365

UNKNOWN = "<unknown>"
INVALID = "<invalid>"


def _micros(d: timedelta | float) -> int:
    """A duration as whole microseconds (floats are seconds)."""
    if isinstance(d, timedelta):
        return (d.days * 86_400 + d.seconds) * _US_PER_S + d.microseconds
    return int(d * _US_PER_S)


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, like Go."""
    q = abs(a) // b
    return q if a >= 0 else -q


def _skew(us: int) -> str | None:
    """The answer for negative or tiny durations, or None when the duration is normal."""
    seconds = _trunc_div(us, _US_PER_S)
    if seconds < -1:
        return INVALID
    if us < 0:  # within the 2 s tolerance: "now"
        return "0s"
    return None


def human_duration(d: timedelta | float) -> str:
    """apimachinery ``duration.HumanDuration``: a succinct age with ~2-3 significant figures."""
    us = _micros(d)
    skew = _skew(us)
    if skew is not None:
        return skew
    seconds = us // _US_PER_S
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = us // _US_PER_MIN
    if minutes < 10:
        return _pair(minutes, "m", seconds % 60, "s")
    if minutes < 60 * 3:
        return f"{minutes}m"
    return _human_hours(us // _US_PER_H, minutes % 60)


def _human_hours(hours: int, minutes: int) -> str:
    if hours < 8:
        return _pair(hours, "h", minutes, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // _HOURS_PER_DAY
    if hours < _HOURS_PER_DAY * 8:
        return _pair(days, "d", hours % _HOURS_PER_DAY, "h")
    if hours < _HOURS_PER_DAY * _DAYS_PER_YEAR * 2:
        return f"{days}d"
    years = days // _DAYS_PER_YEAR
    if hours < _HOURS_PER_DAY * _DAYS_PER_YEAR * 8:
        return _pair(years, "y", days % _DAYS_PER_YEAR, "d")
    return f"{years}y"


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    """``"2m3s"``, or ``"2m"`` when the minor part is zero."""
    if minor == 0:
        return f"{major}{major_unit}"
    return f"{major}{major_unit}{minor}{minor_unit}"


def short_human_duration(d: timedelta | float) -> str:
    """apimachinery ``duration.ShortHumanDuration``: one unit, truncated (``"90s"`` -> ``"1m"``)."""
    us = _micros(d)
    skew = _skew(us)
    if skew is not None:
        return skew
    seconds = us // _US_PER_S
    if seconds < 60:
        return f"{seconds}s"
    minutes = us // _US_PER_MIN
    if minutes < 60:
        return f"{minutes}m"
    hours = us // _US_PER_H
    if hours < _HOURS_PER_DAY:
        return f"{hours}h"
    if hours < _HOURS_PER_DAY * _DAYS_PER_YEAR:
        return f"{hours // _HOURS_PER_DAY}d"
    return f"{hours // _HOURS_PER_DAY // _DAYS_PER_YEAR}y"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 ``metav1.Time``/``MicroTime`` string as an aware datetime; None if absent or bad.

    A datetime passes through (made aware, UTC assumed).
    """
    if isinstance(value, datetime):
        return _aware(value)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _clip_fraction(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _clip_fraction(text: str) -> str:
    """Keep at most 6 fractional digits (Go accepts nanoseconds, Python microseconds)."""
    dot = text.find(".")
    if dot < 0:
        return text
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[dot + 1 : end][:6] or "0"
    return text[: dot + 1] + digits + text[end:]


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def since(value: object, now: datetime) -> timedelta | None:
    """``now - value`` for a timestamp string; None when it is missing or unparsable."""
    parsed = parse_time(value)
    if parsed is None:
        return None
    return _aware(now) - parsed


def translate_timestamp_since(value: object, now: datetime) -> str:
    """The printers' ``translateTimestampSince``: ``HumanDuration(now - t)``, ``"<unknown>"`` if unset."""
    delta = since(value, now)
    if delta is None:
        return UNKNOWN
    return human_duration(delta)


def translate_timestamp_until(value: object, now: datetime) -> str:
    """The printers' ``translateTimestampUntil``: ``HumanDuration(t - now)``."""
    delta = since(value, now)
    if delta is None:
        return UNKNOWN
    return human_duration(-delta)
