"""The runc runtime's fast paths (as root, for real): namespaces made with direct syscalls,
supervisors forked by a zygote, signals sent without runc."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.runtime.base import ContainerState
from kubelite.agent.runtime.runc import RuncRuntime
from kubelite.agent.runtime.sandbox import NETNS_DIR, SandboxManager
from kubelite.agent.runtime.util import is_mounted, new_namespaces, ns_pinned, read_json, umount

from .runtime_helpers import container, pod, runc_ids, unpack_busybox


def _nsenter(*args: str) -> str:
    return subprocess.run(["nsenter", *args], capture_output=True, text=True, check=True).stdout


async def test_new_namespaces_are_pinned_and_do_not_leak(tmp_path: Path) -> None:
    pins = {k: tmp_path / k for k in ("ipc", "uts", "net")}
    for p in pins.values():
        p.touch()
    own = {k: os.readlink(f"/proc/self/ns/{k}") for k in pins}
    try:
        await new_namespaces(pins, "fast-pod")
        assert all(is_mounted(p) and ns_pinned(p) for p in pins.values())
        assert _nsenter(f"--uts={pins['uts']}", "hostname").strip() == "fast-pod"
        assert "UP" in _nsenter(f"--net={pins['net']}", "ip", "link", "show", "lo").split(">")[0]
        # the agent itself stays in its own namespaces, with its own hostname
        assert {k: os.readlink(f"/proc/self/ns/{k}") for k in pins} == own
        assert socket.gethostname() != "fast-pod"
        net_inode = os.stat(pins["net"]).st_ino
        assert f"net:[{net_inode}]" != own["net"]
    finally:
        for p in pins.values():
            umount(p)
    assert not any(is_mounted(p) or ns_pinned(p) for p in pins.values())


async def test_sandbox_netns_is_where_ip_netns_finds_it(tmp_path: Path) -> None:
    mgr = SandboxManager(tmp_path)
    sb = await mgr.create(pod("fast-0"))
    try:
        name = Path(sb.netns_path).name
        assert Path(sb.netns_path).parent == NETNS_DIR
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert name in listed.split()
        out = subprocess.run(
            ["ip", "-n", name, "-o", "link"], capture_output=True, text=True, check=True
        ).stdout
        assert "lo:" in out and "UP" in out.split("lo:", 1)[1].split(">")[0]
        assert _nsenter(f"--uts={mgr.path(sb.id) / 'ns/uts'}", "hostname").strip() == "fast-0"
        assert mgr.intact(sb)
    finally:
        await mgr.remove(sb)
    assert not Path(sb.netns_path).exists()
    assert not mgr.path(sb.id).exists()


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_busybox(tmp_path_factory.mktemp("layers") / "busybox")


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


async def test_supervisors_are_forked_by_the_zygote_and_outlive_it(tmp_path: Path, layer: Path) -> None:
    rt = RuncRuntime(tmp_path / "agent")
    sb = await rt.create_sandbox(pod("zyg"))
    try:
        script = "trap 'exit 143' TERM; echo started; sleep 60 & wait $!"
        a = await rt.start_container(sb, container(layer, "a", script))
        shim = int((read_json(rt._bundle(a.id) / "state.json") or {})["shim_pid"])
        zygote = rt.zygote.pid
        assert zygote and _ppid(shim) == zygote
        assert Path(f"/proc/{shim}/comm").read_text().strip() == "kubelite-shim"
        rt.zygote.close()  # the agent went away: the zygote exits, the supervisor stays
        for _ in range(100):
            if (
                not Path(f"/proc/{zygote}").exists()
                or Path(f"/proc/{zygote}/stat").read_text().split()[2] == "Z"
            ):
                break
            await asyncio.sleep(0.02)
        assert (await rt.container_status(a.id)).state == ContainerState.RUNNING
        b = await rt.start_container(sb, container(layer, "b", "exit 7"))  # a new zygote
        assert rt.zygote.pid not in (0, zygote)
        done_b = await asyncio.wait_for(rt.wait_container(b.id), 20)
        assert done_b.exit_code == 7
        stopped = await rt.stop_container(a.id, 5)  # SIGTERM straight to the container's init
        assert stopped.state == ContainerState.EXITED and stopped.exit_code == 143
        assert "started" in Path(rt.log_path(a.id)).read_text()
    finally:
        await rt.remove_sandbox(sb)
    assert runc_ids(tmp_path / "agent") == []


async def test_starts_fall_back_to_a_standalone_supervisor(tmp_path: Path, layer: Path) -> None:
    rt = RuncRuntime(tmp_path / "agent", python="/nonexistent/python")  # no zygote can start
    rt._spawn_shim_process = _real_python(rt._spawn_shim_process)  # type: ignore[method-assign,unused-ignore]
    sb = await rt.create_sandbox(pod("fallback"))
    try:
        c = await rt.start_container(sb, container(layer, "c", "exit 3"))
        assert (await asyncio.wait_for(rt.wait_container(c.id), 20)).exit_code == 3
    finally:
        await rt.remove_sandbox(sb)


def _real_python(spawn: Any) -> Any:
    async def run(argv: list[str], bundle: Path) -> Any:
        rt = spawn.__self__
        rt.python = sys.executable
        try:
            return await spawn(argv, bundle)
        finally:
            rt.python = "/nonexistent/python"

    return run


def test_signal_init_checks_the_start_time_against_runc_state(tmp_path: Path) -> None:
    import json
    import signal

    rt = RuncRuntime(tmp_path / "agent")
    victim = subprocess.Popen(["sleep", "30"])
    try:
        with open(f"/proc/{victim.pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
        state = rt.runc_root / "c1" / "state.json"
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"init_process_pid": victim.pid, "init_process_start": int(start) - 1}))
        assert rt._signal_init("c1", signal.SIGKILL)  # a reused pid: nothing to signal
        assert victim.poll() is None
        state.write_text(json.dumps({"init_process_pid": victim.pid, "init_process_start": int(start)}))
        assert rt._signal_init("c1", signal.SIGKILL)
        assert victim.wait(5) == -signal.SIGKILL
        assert not rt._signal_init("missing", signal.SIGKILL)  # no state: runc decides
    finally:
        victim.kill()
        victim.wait()


def test_supervisor_watch_sees_the_pid_file_appear(tmp_path: Path) -> None:
    """The supervisor sleeps on inotify until runc's pid file is written or renamed in."""
    from kubelite.agent.runtime import shim

    watch = shim.watch_dir(str(tmp_path))
    assert watch >= 0
    try:
        assert select.select([watch], [], [], 0)[0] == []
        (tmp_path / ".pid.tmp").write_text("1234")
        (tmp_path / ".pid.tmp").rename(tmp_path / "pid")  # how runc writes --pid-file
        assert select.select([watch], [], [], 1.0)[0] == [watch]
        shim.wait_change(watch)  # consumes the events
        assert select.select([watch], [], [], 0)[0] == []
    finally:
        os.close(watch)
    assert shim.watch_dir(str(tmp_path / "missing")) == -1  # then the supervisor polls
