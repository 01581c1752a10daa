"""CRI log parsing and the kubectl logs options (tail, since, timestamps, limitBytes, follow)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.agent.streams.protocol import cri_log
from kubelite.agent.streams.protocol.cri_log import LogEntry, LogOptions

T0 = dt.datetime(2026, 11, 22, 9, 0, 0, tzinfo=dt.UTC)


def line(sec: int, stream: str, text: str, partial: bool = False) -> bytes:
    ts = cri_log.format_time(T0 + dt.timedelta(seconds=sec))
    return f"{ts} {stream} {'P' if partial else 'F'} {text}\n".encode()


def write(tmp_path: Path, *lines: bytes) -> Path:
    p = tmp_path / "0.log"
    p.write_bytes(b"".join(lines))
    return p


def test_parse_line() -> None:
    e = cri_log.parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1")
    assert e == LogEntry("2016-10-06T00:17:09.669794202Z", "stdout", False, b"log content 1")
    assert e.time == dt.datetime(2016, 10, 6, 0, 17, 9, 669794, tzinfo=dt.UTC)
    assert cri_log.parse_line(b"2016-10-06T00:17:09Z stderr P ").content == b""
    for bad in (b"garbage", b"2016-10-06T00:17:09Z stdin F x", b"2016-10-06T00:17:09Z stdout X x"):
        with pytest.raises(cri_log.LogFormatError):
            cri_log.parse_line(bad)


def test_options(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        line(0, "stdout", "one"),
        line(1, "stderr", "two"),
        line(2, "stdout", "thr", partial=True),
        line(2, "stdout", "ee"),
        b"torn line without format\n",
        line(3, "stdout", "four"),
    )
    assert cri_log.read_log(p, LogOptions()) == b"one\ntwo\nthree\nfour\n"
    assert cri_log.read_log(p, LogOptions(tail_lines=3)) == b"ee\nfour\n"  # file lines, as the kubelet
    assert cri_log.read_log(p, LogOptions(tail_lines=2)) == b"four\n"  # counts: the torn one too
    assert cri_log.read_log(p, LogOptions(tail_lines=0)) == b""
    assert cri_log.read_log(p, LogOptions(limit_bytes=6)) == b"one\ntw"
    assert cri_log.read_log(p, LogOptions(since=T0 + dt.timedelta(seconds=2))) == b"three\nfour\n"
    stamped = cri_log.read_log(p, LogOptions(timestamps=True, tail_lines=1))
    assert stamped == b"2026-11-22T09:00:03.000000000Z four\n"


@given(
    st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30), max_size=20),
    st.integers(0, 25),
)
def test_tail_is_a_suffix(texts: list[str], tail: int) -> None:
    entries = [cri_log.parse_line(line(i, "stdout", t)[:-1]) for i, t in enumerate(texts)]
    picked = cri_log.select(entries, LogOptions(tail_lines=tail))
    assert picked == (entries[-tail:] if tail else [])


@given(st.binary(max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b))
def test_render_roundtrip(content: bytes) -> None:
    raw = b"2026-11-22T09:00:00.000000001Z stdout F " + content
    e = cri_log.parse_line(raw)
    assert cri_log.render(e, False) == content + b"\n"
    assert cri_log.render(e, True) == b"2026-11-22T09:00:00.000000001Z " + content + b"\n"


def test_follow_reads_until_the_container_exits(tmp_path: Path) -> None:
    p = write(tmp_path, line(0, "stdout", "first"))
    state = {"running": True}

    async def running() -> bool:
        return state["running"]

    async def scenario() -> bytes:
        chunks: list[bytes] = []

        async def writer() -> None:
            await asyncio.sleep(0.05)
            whole = line(1, "stdout", "second")
            with p.open("ab") as f:
                f.write(whole[:-5])  # a torn line: nothing is sent until its newline arrives
                f.flush()
                await asyncio.sleep(0.05)
                f.write(whole[-5:])
            with p.open("ab") as f:
                f.write(line(2, "stderr", "third"))
            await asyncio.sleep(0.05)
            state["running"] = False

        task = asyncio.create_task(writer())
        async for chunk in cri_log.stream_log(p, LogOptions(follow=True), running, poll=0.01):
            chunks.append(chunk)
        await task
        return b"".join(chunks)

    assert asyncio.run(scenario()) == b"first\nsecond\nthird\n"


def test_follow_respects_limit_bytes(tmp_path: Path) -> None:
    p = write(tmp_path, line(0, "stdout", "abcdef"), line(1, "stdout", "ghijkl"))

    async def running() -> bool:
        return True  # never exits: the byte limit must end the stream

    async def collect() -> bytes:
        return b"".join(
            [c async for c in cri_log.stream_log(p, LogOptions(follow=True, limit_bytes=9), running)]
        )

    assert asyncio.run(collect()) == b"abcdef\ngh"


def test_tail_of_a_large_file_reads_from_the_end(tmp_path: Path) -> None:
    body = b"".join(line(i % 50, "stdout", f"n{i}") for i in range(20_000))  # ~1 MB, > BLOCK
    p = write(tmp_path, body, b"2026-11-22T09:00:00Z stdout F partial-without-newline")
    assert cri_log.read_log(p, LogOptions(tail_lines=2)) == b"n19998\nn19999\n"
    assert cri_log.read_log(p, LogOptions(tail_lines=0)) == b""
    assert cri_log.read_log(p, LogOptions()).count(b"\n") == 20_000


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    st.booleans(),
    st.integers(0, 35),
)
def test_tail_offset_property(lines: list[bytes], torn: bool, n: int) -> None:
    import io

    data = b"".join(x + b"\n" for x in lines) + (b"partial" if torn else b"")
    off = cri_log.tail_offset(io.BytesIO(data), n)
    expected = b"".join(x + b"\n" for x in lines[len(lines) - n :]) if n else b""
    if n > len(lines):
        expected = b"".join(x + b"\n" for x in lines)
    assert data[off:].removesuffix(b"partial" if torn else b"") == expected
