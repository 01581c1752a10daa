"""Rootless runc, for real: an unprivileged user the test creates runs containers with the runtime."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import kubelite
from kubelite.agent.runtime.base import ContainerConfig, SecurityConfig
from kubelite.agent.runtime.bundle import BundleSpec, config_json

from .runtime_helpers import unpack_busybox

SRC = str(Path(kubelite.__file__).resolve().parents[1])

SCRIPT = r"""
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from kubelite.agent.runtime.base import ContainerConfig, ContainerRuntimeError, SandboxConfig, SecurityConfig
from kubelite.agent.runtime.rootless import RootlessRuncRuntime
from kubelite.agent.runtime.detect import best_runtime

def cfg(name, script, **kw):
    return ContainerConfig(name=name, image_ref="busybox", rootfs_layers=(sys.argv[3],),
                           args=("sh", "-c", script), env=(("GREETING", "hello"),), **kw)

async def main():
    rt = best_runtime(Path(sys.argv[2]))
    assert isinstance(rt, RootlessRuncRuntime)
    out = {"name": rt.name, "limitations": list(rt.limitations)}
    pod = SandboxConfig(pod_uid="r00t1e55-0000", namespace="d", name="rl", hostname="rl")
    sb = await rt.create_sandbox(pod)
    c = await rt.start_container(sb, cfg("main", "echo $GREETING; id -u; hostname; echo oops >&2; exit 3"))
    done = await rt.wait_container(c.id)
    out["exit"] = [done.exit_code, done.reason]
    out["log"] = Path(rt.log_path(c.id)).read_text().splitlines()
    polite = await rt.start_container(sb, cfg("polite", "trap 'exit 42' TERM; while :; do sleep 0.1; done"))
    await asyncio.sleep(0.3)
    out["term"] = (await rt.stop_container(polite.id, 5)).exit_code
    sleeper = await rt.start_container(sb, cfg("sleeper", "exec sleep 1000"))
    res = await rt.exec_sync(sleeper.id, ["sh", "-c", "echo in-exec; exit 7"], 10)
    out["exec"] = [res.exit_code, res.output.decode()]
    out["stats"] = await rt.stats(sleeper.id)
    out["kill"] = (await rt.stop_container(sleeper.id, 0)).exit_code
    try:
        await rt.start_container(sb, cfg("u", "true", security=SecurityConfig(run_as_user=1000)))
    except ContainerRuntimeError as e:
        out["run_as_user"] = str(e)
    out["listed"] = sorted(s.name for s in await rt.list_containers(sb))
    await rt.remove_sandbox(sb)
    out["left"] = [p.name for p in (Path(sys.argv[2]) / "containers").iterdir()]
    print(json.dumps(out))

asyncio.run(main())
"""


def _python_for(user: str) -> str:
    """The test's interpreter when the user can run it (the venv may live under /root), else python3."""
    for exe in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            ["runuser", "-u", user, "--", exe, "-c", "import asyncio"], capture_output=True
        )
        if probe.returncode == 0:
            return exe
    raise AssertionError(f"no Python interpreter is usable by {user}")


def _pids_of(uid: int, live_only: bool = False) -> list[int]:
    """Processes of ``uid``; ``live_only`` leaves out zombies (exited shims that this machine's
    init reaps lazily)."""
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
                if not (live_only and zombie):
                    pids.append(int(entry.name))
    return pids


@pytest.fixture
def unprivileged() -> Iterator[tuple[str, Path]]:
    """A throw-away system user and a directory it owns; removed afterwards (with its processes)."""
    user = f"klrl{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false", user], check=True)
    work = Path(tempfile.mkdtemp(prefix="kubelite-rootless-", dir="/tmp"))
    os.chmod(work, 0o755)
    uid = int(subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout)
    try:
        os.chown(work, uid, uid)
        yield user, work
    finally:
        for pid in _pids_of(uid):  # only processes of the user this test created
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["userdel", user], check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_rootless_lifecycle_as_unprivileged_user(unprivileged: tuple[str, Path]) -> None:
    user, work = unprivileged
    layer = unpack_busybox(work / "layer")
    (work / "agent").mkdir()
    shutil.chown(work / "agent", user, user)
    proc = subprocess.run(
        ["runuser", "-u", user, "--", _python_for(user), "-c", SCRIPT, SRC, str(work / "agent"), str(layer)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["name"] == "runc-rootless" and any("limits" in lim for lim in out["limitations"])
    assert out["exit"] == [3, "Error"]
    texts = [line.split(" ", 3)[1:] for line in out["log"]]
    assert sorted(texts) == [
        ["stderr", "F", "oops"],
        ["stdout", "F", "0"],
        ["stdout", "F", "hello"],
        ["stdout", "F", "rl"],
    ]
    assert out["term"] == 42 and out["kill"] == 137
    assert out["exec"] == [7, "in-exec\n"]
    assert out["stats"] is None
    assert "runAsUser: 1000" in out["run_as_user"]
    assert out["listed"] == ["main", "polite", "sleeper"]
    assert out["left"] == []
    assert _pids_of(uid_of(user), live_only=True) == []  # no supervisor or container process left


def uid_of(user: str) -> int:
    return int(subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout)


def test_rootless_bundle_maps_user_and_drops_cgroups() -> None:
    cfg = ContainerConfig(
        name="c", image_ref="b", rootfs_layers=(), args=("true",), env=(), security=SecurityConfig()
    )
    spec = BundleSpec(
        hostname="h",
        etc_files={},
        namespaces=[{"type": "user"}],
        rootless=True,
        uid_mappings=[{"containerID": 0, "hostID": 1234, "size": 1}],
        gid_mappings=[{"containerID": 0, "hostID": 1234, "size": 1}],
    )
    doc = config_json(cfg, spec)
    assert doc["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1234, "size": 1}]
    assert "resources" not in doc["linux"] and "cgroupsPath" not in doc["linux"]
    assert "rlimits" not in doc["process"]
    assert {"destination": "/sys", "type": "none", "source": "/sys"}.items() <= next(
        m for m in doc["mounts"] if m["destination"] == "/sys"
    ).items()
