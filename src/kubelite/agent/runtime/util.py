"""Small host helpers shared by the runc runtimes: running commands, unmounting, JSON files, and
creating namespaces with direct syscalls (no ``unshare``/``ip netns`` subprocesses)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Any

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)
# the same functions called *holding* the GIL: for the short syscall bursts of a helper thread,
# which would otherwise wait for the busy event loop to hand the GIL back after every call
_libc_gil = ctypes.PyDLL(None, use_errno=True)


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


def ns_pinned(path: Path) -> bool:
    """True when a namespace is bind-mounted on ``path``: it is then a file of ``nsfs`` (the
    filesystem of /proc/self/ns/*), a single stat instead of reading the whole mount table."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def umount(path: Path) -> None:
    """Lazily unmount ``path`` while it is mounted (stacked mounts too); errors are ignored.
    ``umount2`` itself says when nothing is mounted there any more (EINVAL), so the mount table
    is not read."""
    for _ in range(8):
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


# ------------------------------------------------------------------- namespaces without subprocesses
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount_bind(source: str, target: Path) -> None:
    _check(_libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None), f"bind {target}")


def make_shared_mount_dir(path: Path) -> None:
    """Make ``path`` a shared mount point (bind-mounting it onto itself first when it is not a mount
    point), as ``ip netns add`` does for /var/run/netns so namespace mounts propagate."""
    path.mkdir(parents=True, exist_ok=True)
    if _libc.mount(b"none", os.fsencode(path), None, MS_SHARED | MS_REC, None) == 0:
        return
    mount_bind(str(path), path)
    _check(_libc.mount(b"none", os.fsencode(path), None, MS_SHARED | MS_REC, None), f"share {path}")


def _loopback_up() -> None:
    """``ip link set lo up`` in the calling thread's network namespace (SIOCSIFFLAGS)."""
    fd = _libc_gil.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    if fd < 0:
        _check(-1, "socket")
    try:
        req = ctypes.create_string_buffer(struct.pack("16sH22x", b"lo", 0))
        _check(_libc_gil.ioctl(fd, ctypes.c_ulong(_SIOCGIFFLAGS), req), "SIOCGIFFLAGS lo")
        flags = struct.unpack_from("16sH", req.raw)[1]
        struct.pack_into("H", req, 16, flags | _IFF_UP)
        _check(_libc_gil.ioctl(fd, ctypes.c_ulong(_SIOCSIFFLAGS), req), "SIOCSIFFLAGS lo")
    finally:
        _libc_gil.close(fd)


def _unshare_and_pin(flags: int, hostname: str, pins: dict[str, Path]) -> None:
    """In the calling thread: new namespaces per ``flags``, the hostname (new UTS), ``lo`` up (new
    net), then each namespace bind-mounted onto its file so it outlives the thread.  Each call
    keeps the GIL (they take microseconds), so the thread finishes in one go."""
    _check(_libc_gil.unshare(flags), "unshare")
    if flags & CLONE_NEWUTS and hostname:
        name = hostname.encode()
        _check(_libc_gil.sethostname(name, len(name)), "sethostname")
    if flags & CLONE_NEWNET:
        _loopback_up()
    for kind, target in pins.items():
        src, dst = f"/proc/thread-self/ns/{kind}".encode(), os.fsencode(target)
        _check(_libc_gil.mount(src, dst, None, MS_BIND, None), f"bind {target}")


async def new_namespaces(pins: dict[str, Path], hostname: str = "") -> None:
    """Create persistent ``ipc``/``uts``/``net`` namespaces pinned on the files in ``pins`` (which
    must exist), without a subprocess: a short-lived thread unshares them (namespaces are per
    thread), pins them with bind mounts and exits, so no thread of the agent stays inside."""
    bits = {"ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS, "net": CLONE_NEWNET}
    flags = 0
    for kind in pins:
        flags |= bits[kind]
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish(err: BaseException | None) -> None:
        if done.done():
            return
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(err)

    def work() -> None:
        try:
            _unshare_and_pin(flags, hostname, pins)
        except BaseException as e:  # reported to the awaiting coroutine
            loop.call_soon_threadsafe(finish, e)
        else:
            loop.call_soon_threadsafe(finish, None)

    threading.Thread(target=work, name="kubelite-unshare", daemon=True).start()
    await done
