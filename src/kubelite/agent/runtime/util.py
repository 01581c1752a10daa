"""Small host helpers shared by the runc runtimes: running commands, unmounting, JSON files."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
from pathlib import Path
from typing import Any

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


async def run_cmd(*argv: str, timeout: float = 30.0, stdin: bytes | None = None) -> tuple[int, str]:
    """Run a command; (exit code, stdout+stderr).  A missing binary is exit code 127."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except FileNotFoundError as e:
        return 127, str(e)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return 124, f"{argv[0]} timed out after {timeout}s"
    return proc.returncode or 0, out.decode(errors="replace").strip()


def is_mounted(path: Path) -> bool:
    """True when ``path`` (a dir or a file) is a mount point, per /proc/self/mountinfo."""
    target = os.path.realpath(path)
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split(" ", 5)[4].encode().decode("unicode_escape")
            if mnt == target:
                return True
    return False


def umount(path: Path) -> None:
    """Lazily unmount ``path`` while it is mounted (stacked mounts too); errors are ignored."""
    for _ in range(8):
        if not is_mounted(path):
            return
        if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
            return


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace ``path`` (readers never see half a file, even across a crash)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
