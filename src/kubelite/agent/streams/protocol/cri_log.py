"""CRI container log files and the ``kubectl logs`` options, as the kubelet applies them.

A CRI log line is ``<RFC3339Nano timestamp> <stdout|stderr> <F|P> <text>``: ``F`` ends a
line, ``P`` is a part of a longer one (no newline is added after it).  The options mirror the
pod ``log`` subresource: ``tailLines`` (the last N file lines), ``sinceSeconds``/``sinceTime``
(entries at or after the time), ``timestamps`` (prefix each entry with its timestamp),
``limitBytes`` (stop after that many bytes of output) and ``follow`` (keep reading the file
until the container has exited).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_FRACTION = re.compile(r"\.(\d+)")
BLOCK = 64 * 1024


class LogFormatError(ValueError):
    """A line that is not in the CRI log format."""


@dataclass(frozen=True)
class LogEntry:
    timestamp: str  # as written (RFC 3339 with nanoseconds)
    stream: str  # "stdout" | "stderr"
    partial: bool
    content: bytes

    @property
    def time(self) -> dt.datetime:
        return parse_time(self.timestamp)


@dataclass(frozen=True)
class LogOptions:
    tail_lines: int | None = None
    since: dt.datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds)."""
    norm = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        return dt.datetime.fromisoformat(norm.replace("Z", "+00:00"))
    except ValueError as e:
        raise LogFormatError(f"invalid timestamp {text!r}") from e


def format_time(t: dt.datetime) -> str:
    """The CRI timestamp form: RFC 3339 in UTC with nine fractional digits."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_line(line: bytes) -> LogEntry:
    """One file line (without its newline)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        raise LogFormatError(f"not a CRI log line: {line[:80]!r}")
    content = parts[3] if len(parts) == 4 else b""
    return LogEntry(parts[0].decode("ascii", "replace"), parts[1].decode(), parts[2] == b"P", content)


def format_line(entry: LogEntry, stream: str, text: bytes, partial: bool = False) -> bytes:
    """Encode one CRI log line (with its newline) - what a runtime's log writer produces."""
    return f"{entry.timestamp} {stream} {'P' if partial else 'F'} ".encode() + text + b"\n"


def render(entry: LogEntry, timestamps: bool) -> bytes:
    """What ``kubectl logs`` shows for one entry."""
    body = entry.content if entry.partial else entry.content + b"\n"
    return (entry.timestamp.encode() + b" " + body) if timestamps else body


def _entries(lines: Iterable[bytes]) -> list[LogEntry]:
    out = []
    for line in lines:
        if not line:
            continue
        try:
            out.append(parse_line(line))
        except LogFormatError:
            continue  # a torn or foreign line: the kubelet skips it too
    return out


def select(entries: list[LogEntry], opts: LogOptions) -> list[LogEntry]:
    """Apply ``since`` and ``tailLines`` to the entries already in the file."""
    if opts.since is not None:
        since = opts.since
        entries = [e for e in entries if _at_or_after(e, since)]
    if opts.tail_lines is not None:
        entries = entries[-opts.tail_lines :] if opts.tail_lines > 0 else []
    return entries


def _at_or_after(entry: LogEntry, since: dt.datetime) -> bool:
    try:
        return entry.time >= since
    except LogFormatError:
        return True


class _Limiter:
    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0


def tail_offset(f: BinaryIO, lines: int) -> int:
    """Where the last ``lines`` complete lines of the file start, read backwards block by block
    (a huge log is never read whole for ``--tail``).  A final line without its newline is still
    being written and does not count."""
    pos = f.seek(0, os.SEEK_END)
    wanted = lines + 1  # the newline ending the last line, then one before each earlier line
    while pos > 0:
        size = min(BLOCK, pos)
        pos -= size
        f.seek(pos)
        block = f.read(size)
        i = len(block)
        while (i := block.rfind(b"\n", 0, i)) >= 0:
            wanted -= 1
            if wanted == 0:
                return pos + i + 1
    return 0


def _read_existing(f: BinaryIO, opts: LogOptions, limiter: _Limiter) -> Iterator[bytes]:
    """Rendered output for what the file holds now (from the tail offset); the file is left at the
    start of any incomplete last line."""
    f.seek(tail_offset(f, opts.tail_lines) if opts.tail_lines is not None else 0)
    since = LogOptions(since=opts.since)
    pending = b""
    while not limiter.done and (chunk := f.read(BLOCK)):
        *complete, pending = (pending + chunk).split(b"\n")
        out = b"".join(render(e, opts.timestamps) for e in select(_entries(complete), since))
        if out:
            yield limiter.take(out)
    f.seek(-len(pending), os.SEEK_CUR)


def read_log(path: str | Path, opts: LogOptions) -> bytes:
    """The whole (non-follow) answer for a log file."""
    with open(path, "rb") as f:
        return b"".join(_read_existing(f, opts, _Limiter(opts.limit_bytes)))


async def stream_log(
    path: str | Path,
    opts: LogOptions,
    running: Callable[[], Awaitable[bool]],
    poll: float = 0.1,
) -> AsyncIterator[bytes]:
    """Chunks of ``kubectl logs [-f]`` output; with ``follow`` it ends once ``running()`` says the
    container has exited and the file has been read to its end."""
    limiter = _Limiter(opts.limit_bytes)
    with open(path, "rb") as f:
        for chunk in _read_existing(f, opts, limiter):
            yield chunk
        if not opts.follow:
            return
        since = LogOptions(since=opts.since)
        pending = b""
        exited = False
        while not limiter.done:
            chunk = f.read(BLOCK)
            if chunk:
                *complete, pending = (pending + chunk).split(b"\n")
                out = b"".join(render(e, opts.timestamps) for e in select(_entries(complete), since))
                if out:
                    yield limiter.take(out)
                continue
            if exited:
                return
            exited = not await running()  # read once more after the exit: nothing is lost
            if not exited:
                await asyncio.sleep(poll)
