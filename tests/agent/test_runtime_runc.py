"""The runc runtime as root, for real: lifecycle, exit codes, logs, limits, sandboxes, exec, adoption."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubelite.agent.runtime import cgroups
from kubelite.agent.runtime.base import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    Mount,
    Resources,
    Sandbox,
    SecurityConfig,
)
from kubelite.agent.runtime.bundle import DEFAULT_CAPS, BundleSpec, capability_set, config_json
from kubelite.agent.runtime.detect import best_runtime
from kubelite.agent.runtime.runc import RuncRuntime, container_id
from kubelite.agent.runtime.sandbox import cgroup_parent

from .runtime_helpers import container, mounts_under, pod, runc_ids, unpack_busybox, unpack_layer

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] (.*)$")


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_busybox(tmp_path_factory.mktemp("layers") / "busybox")


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[RuncRuntime]:
    runtime = RuncRuntime(tmp_path / "agent")
    yield runtime
    cleaner = RuncRuntime(tmp_path / "agent")
    sandboxes = await cleaner.list_sandboxes()
    for sb in sandboxes:
        await cleaner.remove_sandbox(sb)
    assert mounts_under(tmp_path) == []
    assert runc_ids(tmp_path / "agent") == []
    for sb in sandboxes:
        assert not any(d.exists() for d in cgroups.pod_dirs(cgroup_parent(sb.config)))
        assert not sb.netns_path or not Path(sb.netns_path).exists()


def log_lines(rt: RuncRuntime, cid: str) -> list[tuple[str, str]]:
    lines = Path(rt.log_path(cid)).read_text().splitlines()
    parsed = [CRI_LINE.match(line) for line in lines]
    assert all(parsed), lines
    return [(m.group(1), m.group(2)) for m in parsed if m]


async def test_exit_codes_and_cri_logs(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    ok = await rt.start_container(sb, container(layer, "ok", "echo hello; echo oops >&2"))
    assert ok.state is ContainerState.RUNNING and ok.id == container_id(sb.id, "ok", 0)
    bad = await rt.start_container(sb, container(layer, "bad", "exit 3", attempt=2))
    assert bad.id.endswith("-bad-2")
    done_ok, done_bad = await rt.wait_container(ok.id), await rt.wait_container(bad.id)
    assert (done_ok.exit_code, done_ok.reason, done_ok.state) == (0, "Completed", ContainerState.EXITED)
    assert (done_bad.exit_code, done_bad.reason) == (3, "Error")
    assert done_ok.started_at and done_ok.finished_at >= done_ok.started_at
    assert sorted(log_lines(rt, ok.id)) == [("stderr", "oops"), ("stdout", "hello")]
    statuses = await rt.list_containers(sb)
    assert {s.name: s.exit_code for s in statuses} == {"ok": 0, "bad": 3}


async def test_cannot_run_missing_binary(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    cfg = container(layer, "x", "")
    cfg = type(cfg)(**{**cfg.__dict__, "args": ("/no/such/binary",)})
    with pytest.raises(ContainerRuntimeError, match="no/such/binary"):
        await rt.start_container(sb, cfg)
    status = await rt.container_status(container_id(sb.id, "x", 0))
    assert status.state is ContainerState.EXITED and status.reason == "ContainerCannotRun"


async def test_sigterm_honoured_then_sigkill(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    polite = await rt.start_container(
        sb,
        container(layer, "polite", "trap 'echo bye; exit 42' TERM; echo ready; while :; do sleep 0.1; done"),
    )
    stubborn = await rt.start_container(sb, container(layer, "stubborn", "exec sleep 1000"))
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    done = await rt.stop_container(polite.id, 5)
    assert (done.exit_code, done.state) == (42, ContainerState.EXITED)
    assert time.monotonic() - t0 < 3
    assert ("stdout", "bye") in log_lines(rt, polite.id)
    t0 = time.monotonic()
    killed = await rt.stop_container(stubborn.id, 1)  # PID 1 without a handler ignores SIGTERM
    assert killed.exit_code == 137 and killed.reason == "Error"
    assert 0.9 < time.monotonic() - t0 < 8
    assert runc_ids(rt.root) == []  # the supervisors ran `runc delete` and unmounted the rootfs
    assert mounts_under(rt.containers_dir) == []


async def test_kill_without_grace_is_137(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    c = await rt.start_container(sb, container(layer, "c", "sleep 1000"))
    assert (await rt.stop_container(c.id, 0)).exit_code == 137


async def test_oom_killed(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    res = Resources(memory_limit_bytes=32 << 20)
    c = await rt.start_container(
        sb, container(layer, "hog", "exec dd if=/dev/zero of=/dev/null bs=100M count=1", resources=res)
    )
    done = await asyncio.wait_for(rt.wait_container(c.id), 20)
    assert (done.exit_code, done.oom_killed, done.reason) == (137, True, "OOMKilled")


async def test_cpu_quota_throttles(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    res = Resources(cpu_shares=1024, cpu_quota_us=20_000, cpu_period_us=100_000)
    c = await rt.start_container(sb, container(layer, "busy", "while :; do :; done", resources=res))
    await asyncio.sleep(0.3)
    first = await rt.stats(c.id)
    t0 = time.monotonic()
    await asyncio.sleep(1.5)
    second = await rt.stats(c.id)
    elapsed = time.monotonic() - t0
    assert first is not None and second is not None
    cores = (second.cpu_usage_ns - first.cpu_usage_ns) / 1e9 / elapsed
    assert 0.03 < cores < 0.3, cores  # unthrottled, the loop would use a whole core
    assert second.cpu_periods > first.cpu_periods >= first.cpu_throttled_periods
    if cores > 0.15:  # it reached its quota (not starved by a busy machine): the kernel throttled it
        assert second.cpu_throttled_periods > 0
    assert second.memory_working_set_bytes > 0
    dirs = cgroups.proc_cgroups(json.loads((rt.containers_dir / c.id / "state.json").read_text())["pid"])
    assert (dirs["cpu"] / "cpu.shares").read_text().strip() == "1024"
    assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "20000"
    assert str(dirs["cpu"]).endswith(f"{cgroup_parent(sb.config)}/{c.id}")


async def test_pod_shares_ipc_uts_and_volume(rt: RuncRuntime, layer: Path, tmp_path: Path) -> None:
    shared = tmp_path / "emptydir"
    shared.mkdir()
    sb = await rt.create_sandbox(pod("web-0"))
    assert sb.netns_path and Path(sb.netns_path).exists()
    vol = (Mount(str(shared), "/shared"),)
    script = (
        "for t in uts ipc net pid; do readlink /proc/self/ns/$t; done > /shared/$N; "
        "hostname >> /shared/$N; cat /etc/hostname >> /shared/$N; "
        "while [ ! -f /shared/$O ]; do sleep 0.05; done"  # both alive at once: ns inodes are recycled
    )
    started = []
    for n, o in (("a", "b"), ("b", "a")):
        cfg = container(layer, n, script.replace("$N", n).replace("$O", o), mounts=vol)
        started.append(await rt.start_container(sb, cfg))
    for c in started:
        assert (await asyncio.wait_for(rt.wait_container(c.id), 10)).exit_code == 0
    a, b = ((shared / n).read_text().split() for n in ("a", "b"))
    assert a[:3] == b[:3]  # uts, ipc, net: the pod's
    assert a[3] != b[3]  # pid: each its own
    assert a[4:6] == b[4:6] == ["web-0", "web-0"]
    host_uts = os.readlink("/proc/self/ns/uts")
    assert a[0] != host_uts


async def test_share_process_namespace(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod(share_process_namespace=True))
    first = await rt.start_container(sb, container(layer, "first", "exec sleep 1000"))
    second = await rt.start_container(sb, container(layer, "second", "exec sleep 1000"))
    out = await rt.exec_sync(second.id, ["ps", "-o", "comm"], 10)
    assert out.output.decode().count("sleep") == 2
    for c in (first, second):
        await rt.stop_container(c.id, 0)


async def test_host_network_pod(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod(host_network=True))
    assert sb.netns_path == ""
    c = await rt.start_container(sb, container(layer, "c", "readlink /proc/self/ns/net; hostname"))
    await rt.wait_container(c.id)
    net, hostname = (text for _s, text in log_lines(rt, c.id))
    assert net == os.readlink("/proc/self/ns/net")
    assert hostname == os.uname().nodename


async def test_security_config(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    sec = SecurityConfig(
        run_as_user=65534, run_as_group=65534, read_only_root=True, capabilities_drop=("ALL",)
    )
    c = await rt.start_container(
        sb,
        container(
            layer,
            "c",
            "id -u; id -g; grep CapEff /proc/self/status; touch /x 2>/dev/null || echo ro",
            security=sec,
        ),
    )
    await rt.wait_container(c.id)
    assert [t for _s, t in log_lines(rt, c.id)] == ["65534", "65534", "CapEff:\t0000000000000000", "ro"]
    priv = await rt.start_container(
        sb,
        container(
            layer,
            "p",
            "grep CapEff /proc/self/status; ls /dev/loop-control",
            security=SecurityConfig(privileged=True),
        ),
    )
    await rt.wait_container(priv.id)
    lines = [t for _s, t in log_lines(rt, priv.id)]
    assert int(lines[0].split()[1], 16) > 0x3FFFFFFFFF >> 10
    if os.path.exists("/dev/loop-control"):  # a host device only privileged containers see
        assert lines[1] == "/dev/loop-control"


async def test_termination_message(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    cfg = container(layer, "c", "echo -n 'last words' > /dev/termination-log; exit 1")
    cfg = type(cfg)(**{**cfg.__dict__, "termination_message_path": "/dev/termination-log"})
    c = await rt.start_container(sb, cfg)
    done = await rt.wait_container(c.id)
    assert (done.exit_code, done.message) == (1, "last words")


async def test_exec_sync(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    c = await rt.start_container(sb, container(layer, "c", "exec sleep 1000"))
    res = await rt.exec_sync(c.id, ["sh", "-c", "echo out; echo err >&2; exit 7"], 10)
    assert res.exit_code == 7 and b"out" in res.output and b"err" in res.output
    with pytest.raises(TimeoutError):
        await rt.exec_sync(c.id, ["sleep", "30"], 0.5)
    ps = await rt.exec_sync(c.id, ["ps", "-o", "comm"], 10)
    assert b"sleep" in ps.output and ps.output.count(b"sleep") == 1  # the timed-out exec was killed
    await rt.stop_container(c.id, 0)
    with pytest.raises(ContainerRuntimeError, match="not running"):
        await rt.exec_sync(c.id, ["true"], 10)


async def test_exec_stream_pipes_and_tty(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    c = await rt.start_container(sb, container(layer, "c", "exec sleep 1000"))
    session = rt.exec_stream(c.id, ["sh", "-c", "cat; echo done >&2; exit 5"], tty=False, stdin=True)
    await session.start()
    await session.write_stdin(b"ping\n")
    await session.close_stdin()
    chunks = [chunk async for chunk in session.output()]
    assert await session.wait() == 5
    assert b"".join(d for ch, d in chunks if ch == 1) == b"ping\n"
    assert b"".join(d for ch, d in chunks if ch == 2) == b"done\n"
    tty = rt.exec_stream(
        c.id, ["sh", "-c", "read line; stty size; tty; echo got $line; exit 2"], tty=True, stdin=True
    )
    await tty.start()
    await tty.resize(100, 33)
    await asyncio.sleep(0.3)  # runc applies the size on SIGWINCH
    await tty.write_stdin(b"hi\r")
    out = b"".join([d async for _ch, d in tty.output()])
    assert await tty.wait() == 2
    assert b"33 100" in out and b"/dev/pts/" in out and b"got hi" in out


async def test_adoption_after_agent_restart(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod())
    cfg = container(layer, "app", "echo up; exec sleep 1000")
    c = await rt.start_container(sb, cfg)
    restarted = RuncRuntime(rt.root)
    sandboxes = await restarted.list_sandboxes()
    assert [s.id for s in sandboxes] == [sb.id] and sandboxes[0].config == sb.config
    assert await restarted.create_sandbox(sb.config) == sandboxes[0]
    assert restarted.sandboxes.intact(sandboxes[0])
    listed = await restarted.list_containers(sandboxes[0])
    assert [(s.id, s.state) for s in listed] == [(c.id, ContainerState.RUNNING)]
    again = await restarted.start_container(sandboxes[0], cfg)  # the pod worker re-syncing: no duplicate
    assert again.id == c.id and again.started_at == c.started_at
    assert runc_ids(rt.root) == [c.id]
    assert (await restarted.stop_container(c.id, 0)).exit_code == 137


ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from kubelite.agent.runtime.base import ContainerConfig, SandboxConfig
from kubelite.agent.runtime.runc import RuncRuntime

async def main():
    rt = RuncRuntime(Path(sys.argv[1]))
    sb = await rt.create_sandbox(SandboxConfig(pod_uid="0rphan-0000", namespace="d", name="o", hostname="o"))
    c = await rt.start_container(sb, ContainerConfig(name="c", image_ref="b", rootfs_layers=(sys.argv[2],),
                                 args=("sh", "-c", "sleep 0.5; exit 5"), env=()))
    print(c.id)

asyncio.run(main())
"""


async def test_exit_code_recorded_while_agent_is_down(rt: RuncRuntime, layer: Path) -> None:
    """The agent process starts a container and dies; the exit code is there when it comes back."""
    proc = subprocess.run(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(rt.root), str(layer)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.strip()
    await asyncio.sleep(0.3)
    sb = (await rt.list_sandboxes())[0]
    assert [s.state for s in await rt.list_containers(sb)] in (
        [ContainerState.RUNNING],
        [ContainerState.EXITED],
    )
    done = await asyncio.wait_for(rt.wait_container(cid), 10)
    assert done.exit_code == 5


async def test_remove_sandbox_cleans_up(rt: RuncRuntime, layer: Path) -> None:
    sb = await rt.create_sandbox(pod(cgroup_parent="kubelite-test/podx"))
    res = Resources(memory_limit_bytes=64 << 20)
    c = await rt.start_container(sb, container(layer, "c", "exec sleep 1000", resources=res))
    assert any(d.exists() for d in cgroups.pod_dirs("kubelite-test/podx"))
    assert mounts_under(rt.root)
    await rt.remove_sandbox(sb)
    assert (await rt.container_status(c.id)).state is ContainerState.UNKNOWN
    assert await rt.list_sandboxes() == []
    assert not any(d.exists() for d in cgroups.pod_dirs("kubelite-test/podx"))
    assert not any(d.exists() for d in cgroups.pod_dirs("kubelite-test"))
    assert mounts_under(rt.root) == [] and runc_ids(rt.root) == []
    assert not Path(sb.netns_path).exists()


async def test_network_setup_hook(tmp_path: Path, layer: Path) -> None:
    calls: list[tuple[str, str]] = []

    async def setup(config: object, netns: str) -> str:
        calls.append(("setup", netns))
        return "10.88.0.9"

    async def teardown(sandbox: Sandbox) -> None:
        calls.append(("teardown", sandbox.netns_path))

    runtime = RuncRuntime(tmp_path / "agent", network_setup=setup, network_teardown=teardown)
    sb = await runtime.create_sandbox(pod("h"))
    assert sb.ip == "10.88.0.9"
    assert "10.88.0.9\th" in (runtime.sandboxes.path(sb.id) / "hosts").read_text()
    await runtime.remove_sandbox(sb)
    assert calls == [("setup", sb.netns_path), ("teardown", sb.netns_path)]


def _cfg(**kw: object) -> ContainerConfig:
    return ContainerConfig(name="c", image_ref="b", rootfs_layers=(), args=("true",), env=(("A", "1"),), **kw)  # type: ignore[arg-type]


def _spec(**kw: object) -> BundleSpec:
    base: dict[str, object] = {"hostname": "h", "etc_files": {"/etc/hosts": "/x/hosts"}, "namespaces": []}
    return BundleSpec(**{**base, **kw})  # type: ignore[arg-type]


def test_bundle_defaults_and_clamps() -> None:
    doc = config_json(_cfg(resources=Resources(oom_score_adj=-997)), _spec(cgroups_path="kubelite/podx/c"))
    proc = doc["process"]
    assert proc["oomScoreAdj"] == 0  # Guaranteed pods' -997 cannot be set without CAP_SYS_RESOURCE
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert all(r["hard"] <= hard for r in proc["rlimits"] if hard != resource.RLIM_INFINITY)
    assert proc["env"][0].startswith("PATH=") and "A=1" in proc["env"]
    assert set(proc["capabilities"]["bounding"]) <= {f"CAP_{c}" for c in DEFAULT_CAPS}
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["effective"]
    assert doc["linux"]["cgroupsPath"] == "kubelite/podx/c"
    assert doc["linux"]["resources"]["cpu"] == {"shares": 2}
    assert "/proc/kcore" in doc["linux"]["maskedPaths"]
    dests = [m["destination"] for m in doc["mounts"]]
    assert dests[:6] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    assert {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/x/hosts",
        "options": ["rbind", "rw"],
    } in doc["mounts"]


def test_bundle_resources_security_and_mounts() -> None:
    res = Resources(cpu_shares=256, cpu_quota_us=50_000, cpu_period_us=100_000, memory_limit_bytes=64 << 20)
    sec = SecurityConfig(
        capabilities_add=("NET_ADMIN",), capabilities_drop=("chown", "CAP_KILL"), no_new_privileges=True
    )
    mounts = (Mount("/data", "/d", read_only=True), Mount("/etc-hosts-override", "/etc/hosts"))
    doc = config_json(
        _cfg(resources=res, security=sec, mounts=mounts, termination_message_path="/dev/termination-log"),
        _spec(cgroups_path="p/c", termination_log="/b/termination-log"),
    )
    lin = doc["linux"]["resources"]
    assert lin["cpu"] == {"shares": 256, "quota": 50_000, "period": 100_000}
    assert lin["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    caps = doc["process"]["capabilities"]["effective"]
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_KILL" not in caps
    assert doc["process"]["noNewPrivileges"] is True
    binds = {m["destination"]: m for m in doc["mounts"] if m["type"] == "bind"}
    assert binds["/d"]["options"] == ["rbind", "ro"]
    assert binds["/etc/hosts"]["source"] == "/etc-hosts-override"  # a volume at /etc/hosts wins
    assert binds["/dev/termination-log"]["source"] == "/b/termination-log"
    priv = config_json(_cfg(security=SecurityConfig(privileged=True)), _spec(cgroups_path="p/c"))
    assert "maskedPaths" not in priv["linux"] and priv["linux"]["resources"]["devices"][0]["allow"] is True
    assert len(priv["process"]["capabilities"]["bounding"]) > 30
    assert "ro" not in next(m for m in priv["mounts"] if m["destination"] == "/sys")["options"]
    assert capability_set(
        SecurityConfig(capabilities_drop=("ALL",), capabilities_add=("NET_BIND_SERVICE",))
    ) == ["CAP_NET_BIND_SERVICE"]


def test_container_ids_are_deterministic_and_short() -> None:
    assert container_id("abc123", "web", 4) == "abc123-web-4"
    long_a, long_b = (
        container_id("abc123def456", "x" * 63, 10),
        container_id("abc123def456", "x" * 62 + "y", 10),
    )
    assert len(long_a) <= 64 and long_a != long_b and long_a.endswith("-10")


async def test_sandbox_recreated_when_namespaces_are_lost(rt: RuncRuntime) -> None:
    """After a reboot the namespace files are no longer mounted: create_sandbox rebuilds them."""
    sb = await rt.create_sandbox(pod("again"))
    subprocess.run(["umount", str(rt.sandboxes.path(sb.id) / "ns" / "uts")], check=True)
    assert not rt.sandboxes.intact(sb)
    again = await rt.create_sandbox(sb.config)
    assert again.id == sb.id and rt.sandboxes.intact(again)
    assert len([m for m in mounts_under(rt.root) if m.endswith("/ns/uts")]) == 1


def test_best_runtime_as_root(tmp_path: Path) -> None:
    runtime = best_runtime(tmp_path)
    assert isinstance(runtime, RuncRuntime) and runtime.name == "runc" and runtime.limitations == ()


async def test_overlay_stacks_layers_with_whiteouts(rt: RuncRuntime, layer: Path, tmp_path: Path) -> None:
    upper = unpack_layer(tmp_path / "layer2", {"etc/motd": b"from layer 2\n"}, whiteouts=("etc/group",))
    sb = await rt.create_sandbox(pod())
    cfg = container(layer, "c", "cat /etc/motd; test -e /etc/group || echo no-group; echo new > /etc/motd")
    cfg = type(cfg)(**{**cfg.__dict__, "rootfs_layers": (str(layer), str(upper))})
    c = await rt.start_container(sb, cfg)
    assert (await rt.wait_container(c.id)).exit_code == 0
    assert [t for _s, t in log_lines(rt, c.id)] == ["from layer 2", "no-group"]
    assert (upper / "etc/motd").read_bytes() == b"from layer 2\n"  # the writes went to the upper dir
    assert (layer / "etc/group").exists()
