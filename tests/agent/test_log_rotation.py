"""Container log rotation by the supervisor, for real with runc: the kubelet's containerLogMaxSize /
containerLogMaxFiles (rename to ``<log>.<YYYYMMDD-HHMMSS>``, keep MaxFiles files, gzip all rotated
files but the newest), no record lost or split, and the log endpoint reading across a rotation."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubelite.agent.agent import _log_limits
from kubelite.agent.runtime.base import ContainerState
from kubelite.agent.runtime.runc import RuncRuntime
from kubelite.agent.runtime.shim import LogWriter
from kubelite.agent.streams.logs import follow_rotated, log_options
from kubelite.cli import build_parser

from .runtime_helpers import container, mounts_under, pod, runc_ids, unpack_busybox

CRI_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stdout F line (\d+) x+$")
ROTATED = re.compile(r"^0\.log\.\d{8}-\d{6}(\.gz)?$")
MAX_SIZE = 64 * 1024
PAD = "x" * 80
# bursts of ~100 KiB (> MAX_SIZE) a second apart: at least one rotation per burst
BURSTS = (
    f"i=0; for b in 1 2 3 4 5 6; do n=0; while [ $n -lt 800 ]; do echo line $i {PAD}; "
    f"i=$((i+1)); n=$((n+1)); done; sleep 1; done; echo line $i {PAD}"
)
TOTAL = 6 * 800 + 1


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_busybox(tmp_path_factory.mktemp("layers") / "busybox")


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[RuncRuntime]:
    runtime = RuncRuntime(tmp_path / "agent", container_log_max_size=MAX_SIZE, container_log_max_files=3)
    yield runtime
    for sb in await runtime.list_sandboxes():
        await runtime.remove_sandbox(sb)
    assert mounts_under(tmp_path) == []
    assert runc_ids(tmp_path / "agent") == []


def numbers(data: bytes) -> list[int]:
    """The line numbers of complete CRI records (every line must be one)."""
    out = []
    for line in data.splitlines():
        m = CRI_LINE.match(line)
        assert m, line
        out.append(int(m.group(1)))
    return out


async def test_rotation_keeps_max_files_gzips_older_and_loses_nothing(
    rt: RuncRuntime, layer: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    sb = await rt.create_sandbox(pod())
    c = await rt.start_container(sb, container(layer, "c", BURSTS, log_path=str(logs / "0.log")))
    done = await rt.wait_container(c.id)
    assert done.exit_code == 0
    rotated = sorted(p.name for p in logs.iterdir() if p.name != "0.log")
    assert all(ROTATED.match(n) for n in rotated), rotated
    # MaxFiles 3: the current file and two rotated ones; all but the newest rotated are gzipped
    assert len(rotated) == 2 and rotated[0].endswith(".gz") and not rotated[1].endswith(".gz")
    older, newest = gzip.decompress((logs / rotated[0]).read_bytes()), (logs / rotated[1]).read_bytes()
    assert len(older) > MAX_SIZE and len(newest) > MAX_SIZE  # rotated only once over the limit
    current = (logs / "0.log").read_bytes()
    seen = numbers(older) + numbers(newest) + numbers(current)
    # oldest files were deleted, but what is kept is contiguous up to the last line: nothing lost
    assert seen == list(range(seen[0], TOTAL)) and seen[0] > 0
    # kubectl logs reads the current file, as the kubelet's ReadLogs does
    opts = log_options({}, dt.datetime.now(dt.UTC))

    async def exited() -> bool:
        return False

    out = b"".join([chunk async for chunk in follow_rotated(str(logs / "0.log"), opts, exited)])
    assert out.splitlines() == [f"line {n} {PAD}".encode() for n in numbers(current)]
    assert out.endswith(f"line {TOTAL - 1} {PAD}\n".encode())


async def test_follow_reads_across_rotations(rt: RuncRuntime, layer: Path, tmp_path: Path) -> None:
    """``kubectl logs -f`` from the start: every line once, in order, although the file it
    opened was rotated away (and later deleted) while it followed."""
    path = tmp_path / "logs" / "0.log"
    sb = await rt.create_sandbox(pod())
    c = await rt.start_container(
        sb, container(layer, "c", "echo line 0 x; sleep 1; " + BURSTS, log_path=str(path))
    )

    async def running() -> bool:
        return (await rt.container_status(c.id)).state is ContainerState.RUNNING

    opts = log_options({"follow": ["true"]}, dt.datetime.now(dt.UTC))
    out = b"".join([chunk async for chunk in follow_rotated(str(path), opts, running)])
    lines = out.splitlines()
    assert lines[0] == b"line 0 x"
    assert lines[1:] == [f"line {n} {PAD}".encode() for n in range(TOTAL)]
    assert (await rt.wait_container(c.id)).exit_code == 0


def test_writer_rotates_at_record_boundaries_and_clears_leftovers(tmp_path: Path) -> None:
    """Without runc: leftovers of an interrupted clean-up (``.tmp``, a plain file whose ``.gz``
    exists) are removed at the next rotation; records are never split across files."""
    path = tmp_path / "0.log"
    (tmp_path / "0.log.20000101-000000.gz.tmp").write_bytes(b"half")
    (tmp_path / "0.log.20000101-000001").write_bytes(b"plain")
    (tmp_path / "0.log.20000101-000001.gz").write_bytes(gzip.compress(b"plain"))
    w = LogWriter(str(path), max_size=100, max_files=5)
    for n in range(3):
        w.record("stdout", "F", f"line {n} {'x' * 100}".encode())  # the first rotates
    w.drain(5.0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "0.log.20000101-000000.gz.tmp" not in names and "0.log.20000101-000001" not in names
    assert "0.log.20000101-000001.gz" in names  # the older one is kept (5 files allowed)
    new = [n for n in names if ROTATED.match(n) and not n.startswith("0.log.2000")]
    # one rotation per second at most (the kubelet's name resolution): later records stay in
    # the current file until the next second; the newest rotated file stays plain
    assert 1 <= len(new) <= 2 and not new[-1].endswith(".gz")
    kept = [tmp_path / n for n in new]
    parts = [gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes() for p in kept]
    seen = [n for p in parts for n in numbers(p)]
    assert numbers(parts[0]) == [0] and [*seen, *numbers(path.read_bytes())] == [0, 1, 2]


def test_agent_flags() -> None:
    parser = build_parser()
    args = parser.parse_args(["agent", "--container-log-max-size", "64Ki", "--container-log-max-files", "3"])
    assert _log_limits(args) == (64 * 1024, 3)
    assert _log_limits(parser.parse_args(["agent"])) == (10 * 1024 * 1024, 5)
    assert _log_limits(parser.parse_args(["up", "--container-log-max-size", "1.5Mi"])) == (1572864, 5)
    for bad in (
        ["--container-log-max-size", "ten"],
        ["--container-log-max-size", "0"],
        ["--container-log-max-files", "0"],
        ["--container-log-max-files", "1"],
    ):
        with pytest.raises(SystemExit):
            _log_limits(parser.parse_args(["agent", *bad]))
