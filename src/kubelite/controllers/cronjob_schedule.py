"""CronJob schedules: parse ``spec.schedule``/``spec.timeZone`` and find the times to run.

Mirrors the CronJob controller's use of ``robfig/cron/v3`` (``ParseStandard``) and its
helpers in ``pkg/controller/cronjob/utils.go``:

* five-field cron expressions and the ``@hourly``-style macros are evaluated by croniter;
  ``@every <duration>`` is a constant delay; ``TZ=``/``CRON_TZ=`` prefixes are honoured (the
  API server refuses them on new objects; the controller warns about old ones);
* ``next(t)`` is the first activation strictly after ``t``, in the schedule's time zone
  (``spec.timeZone``, else the controller's local zone);
* :func:`most_recent` finds the latest activation in ``(earliest, now]`` and roughly how
  many were missed, the way Kubernetes does (interval arithmetic, not enumeration).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from kubelite.registry.validation.cron import schedule_error

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
MAX_FALLBACK_STEPS = 100_000


class ScheduleError(ValueError):
    """The schedule cannot be parsed (message as robfig/cron words it)."""


def load_zone(name: str) -> dt.tzinfo:
    """``time.LoadLocation``: "" and "UTC" are UTC, "Local" the local zone, else IANA names."""
    if name in ("", "UTC"):
        return dt.UTC
    if name == "Local":
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ScheduleError(f"unknown time zone {name}") from e


def local_zone() -> dt.tzinfo:
    """The process' local zone as an IANA zone when it can be named, else a fixed offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        link = Path("/etc/localtime")
        if link.is_symlink():
            target = str(link.resolve())
            if "zoneinfo/" in target:
                name = target.split("zoneinfo/", 1)[1]
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.datetime.now().astimezone().tzinfo or dt.UTC


@dataclass(frozen=True)
class CronSchedule:
    expr: str
    zone: dt.tzinfo

    def next(self, t: dt.datetime) -> dt.datetime:
        start = t.astimezone(self.zone)
        out: dt.datetime = croniter(self.expr, start).get_next(dt.datetime)
        return out


@dataclass(frozen=True)
class EverySchedule:
    """``@every 1h30m``: a constant delay (at least one second) from the previous time."""

    seconds: int

    def next(self, t: dt.datetime) -> dt.datetime:
        return t.replace(microsecond=0) + dt.timedelta(seconds=self.seconds)


Schedule = CronSchedule | EverySchedule


def _duration_seconds(text: str) -> float:
    total = 0.0
    for number, unit in _DURATION_PART.findall(text):
        total += float(number) * _UNITS[unit]
    return total


def parse(spec: str, time_zone: str | None, default_zone: dt.tzinfo) -> Schedule:
    """A schedule from ``spec.schedule`` (with ``spec.timeZone`` when set)."""
    err = schedule_error(spec)
    if err is not None:
        raise ScheduleError(err)
    zone = load_zone(time_zone) if time_zone is not None else default_zone
    text = spec.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, text = text.partition(" ")
        zone = load_zone(prefix.split("=", 1)[1])
        text = text.strip()
    if text.startswith("@every "):
        return EverySchedule(max(1, int(_duration_seconds(text[len("@every ") :]))))
    expr = MACROS.get(text, text)
    if not croniter.is_valid(expr):
        raise ScheduleError(f"unsupported schedule {spec}")
    return CronSchedule(expr, zone)


def most_recent(earliest: dt.datetime, now: dt.datetime, sched: Schedule) -> tuple[dt.datetime | None, int]:
    """The latest activation in ``(earliest, now]`` and the approximate number missed.

    Raises ScheduleError when two activations are less than a second apart."""
    t1 = sched.next(earliest)
    if now < t1:
        return None, 0
    t2 = sched.next(t1)
    if now < t2:
        return t1, 1
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    elapsed = int((now - t1).total_seconds())
    missed = elapsed // between + 1
    found: dt.datetime | None = None
    t = sched.next(t1 + dt.timedelta(seconds=(missed - 2) * between))
    while t <= now:
        found = t
        t = sched.next(t)
    if found is None:  # irregular schedules: the estimate overshot, walk from t1
        t = t1
        for _ in range(MAX_FALLBACK_STEPS):
            if t > now:
                break
            found = t
            t = sched.next(t)
    return found, missed
