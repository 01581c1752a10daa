"""The floor under pod startup on this machine: what runc alone, and the agent's runtime without
the API, cost per container, one at a time and N at once (issue 4: 100 pods, p50 <= 150 ms,
p99 <= 1 s).

* **runc**: ``runc run -d`` of a busybox ``sleep`` with the very ``config.json`` the agent writes
  (overlay rootfs, the pod's IPC/UTS/network namespaces joined, cgroup limits path);
* **runtime**: :class:`~kubelite.agent.runtime.runc.RuncRuntime` as the agent drives it, per pod
  ``create_sandbox`` (namespaces, /etc files) + ``start_container`` (bundle, overlay mount,
  supervisor forked by the zygote, ``runc run``), no API server and no pod worker.

This process, and so everything it starts, runs in a cpuacct cgroup of its own (runc nests the
containers' cgroups under it), so the CPU per container is exact whatever else the machine runs;
the latencies are wall clock and depend on that other load (the load average is printed).  With
``c`` CPU-seconds per pod, two cores cannot start pod k earlier than ``k * c / 2``: that bounds
the p50/p99 of any burst.

Usage: ``python bench/runc_floor.py [--pods 100] [--parallel 100,4,2]`` (as root, runc installed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, percentile
from bench.pod_startup import floor_ms
from tests.e2e.agent_helpers import cleanup_agent

from kubelite.agent.images import builder
from kubelite.agent.images.unpack import Whiteouts, unpack_layer
from kubelite.agent.runtime import cgroups
from kubelite.agent.runtime.base import ContainerConfig, SandboxConfig
from kubelite.agent.runtime.runc import RuncRuntime

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
_libc = ctypes.CDLL(None, use_errno=True)
Result = dict[str, Any]


class Cgroup:
    """This process in a cpuacct cgroup of its own; ``seconds()`` is the CPU of the whole tree."""

    def __init__(self) -> None:
        self.dir = CPUACCT / f"kubelite-floor-{os.getpid()}"
        self.dir.mkdir()
        (self.dir / "cgroup.procs").write_text(str(os.getpid()))

    def seconds(self) -> float:
        return int((self.dir / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
        for _ in range(50):
            with contextlib.suppress(OSError):
                for d in sorted((d for d in self.dir.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
                    d.rmdir()
                self.dir.rmdir()
                return
            time.sleep(0.1)


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Floor:
    def __init__(self, root: Path, cg: Cgroup) -> None:
        self.root, self.cg = root, cg
        self.layer = root / "layer"
        blob = root / "layer.tar.gz"
        blob.write_bytes(builder.busybox_image().layers[0].data)
        unpack_layer(blob, self.layer, mode=Whiteouts.OVERLAY)
        self.rt = RuncRuntime(root / "agent")
        self.runc_root = root / "runc"
        self.template: dict[str, Any] = {}
        self.pods = 0

    def config(self, name: str) -> ContainerConfig:
        return ContainerConfig(
            name=name, image_ref="busybox", rootfs_layers=(str(self.layer),), args=("sleep", "3600"),
            env=(("PATH", "/bin"),), log_path=str(self.root / "logs" / f"{name}.log"),
        )  # fmt: skip

    async def runtime_pod(self) -> None:
        """One pod through the agent's runtime: sandbox + container."""
        self.pods += 1
        uid = f"floor-{self.pods}"
        sb = await self.rt.create_sandbox(SandboxConfig(pod_uid=uid, namespace="d", name=uid, hostname=uid))
        await self.rt.start_container(sb, self.config("c"))

    async def make_template(self) -> None:
        """The agent's config.json for one container; its sandbox stays for the runc runs to join."""
        sb = await self.rt.create_sandbox(
            SandboxConfig(pod_uid="tpl", namespace="d", name="tpl", hostname="tpl")
        )
        st = await self.rt.start_container(sb, self.config("tpl"))
        self.template = json.loads((self.rt.containers_dir / st.id / "config.json").read_text())
        await self.rt.remove_container(st.id)

    def bundle(self, i: int) -> Path:
        b = self.root / "bundles" / str(i)
        for d in ("upper", "work", "rootfs"):
            (b / d).mkdir(parents=True, exist_ok=True)
        opts = f"lowerdir={self.layer},upperdir={b / 'upper'},workdir={b / 'work'}"
        if _libc.mount(b"overlay", os.fsencode(b / "rootfs"), b"overlay", 0, opts.encode()) != 0:
            raise OSError(ctypes.get_errno(), "overlay mount")
        cfg = json.loads(json.dumps(self.template))
        cfg["root"]["path"] = str(b / "rootfs")
        cfg["linux"]["cgroupsPath"] = f"floor/c{i}"
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    async def runc_run(self, i: int, bundle: Path) -> None:
        argv = ["runc", "--root", str(self.runc_root), "run", "-d", "--bundle", str(bundle), f"c{i}"]
        null = asyncio.subprocess.DEVNULL
        proc = await asyncio.create_subprocess_exec(*argv, stdin=null, stdout=null, stderr=null)
        if await proc.wait() != 0:
            raise RuntimeError(f"runc run failed for c{i}")

    def runc_cleanup(self, n: int) -> None:
        for i in range(n):
            subprocess.run(
                ["runc", "--root", str(self.runc_root), "delete", "-f", f"c{i}"], capture_output=True
            )
            _libc.umount2(os.fsencode(self.root / "bundles" / str(i) / "rootfs"), 2)
        shutil.rmtree(self.root / "bundles", ignore_errors=True)
        cgroups.remove_pod_cgroups("floor")  # the parent runc made in every hierarchy

    async def remove_pods(self) -> None:
        for sb in await self.rt.list_sandboxes():
            if sb.config.pod_uid != "tpl":
                await self.rt.remove_sandbox(sb)

    async def burst(self, kind: str, n: int, parallel: int) -> Result:
        """``n`` starts requested at once, ``parallel`` at a time (first come first served)."""
        bundles = [self.bundle(i) for i in range(n)] if kind == "runc" else []
        sem = asyncio.Semaphore(parallel)
        done: list[float] = []

        async def one(i: int) -> None:
            t0 = time.monotonic()
            async with sem:
                await (self.runc_run(i, bundles[i]) if kind == "runc" else self.runtime_pod())
            done.append(time.monotonic() - t0)

        cpu0, own0, t0 = self.cg.seconds(), own_cpu(), time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall, cpu, own = time.monotonic() - t0, self.cg.seconds() - cpu0, own_cpu() - own0
        per_pod = cpu / n
        if kind == "runc":
            self.runc_cleanup(n)
        else:
            await self.remove_pods()
        return {
            "what": kind, "pods": n, "parallel": parallel, "wall_ms": round(wall * 1000),
            "p50_ms": round(percentile(done, 50) * 1000), "p99_ms": round(percentile(done, 99) * 1000),
            "cpu_ms_per_pod": round(cpu / n * 1000, 1), "of_which_this_python_ms": round(own / n * 1000, 1),
            "floor_2_cores_ms": floor_ms(per_pod, n),
            "load_1m": round(os.getloadavg()[0], 2),
        }  # fmt: skip

    async def alone(self, kind: str, times: int) -> Result:
        runs = [await self.burst(kind, 1, 1) for _ in range(times)]
        return {
            "what": kind, "alone_times": times,
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "cpu_ms_per_pod": statistics.median(r["cpu_ms_per_pod"] for r in runs),
            "load_1m": round(os.getloadavg()[0], 2),
        }  # fmt: skip


async def run(args: argparse.Namespace, root: Path, cg: Cgroup) -> list[Result]:
    floor = Floor(root, cg)
    out = []
    try:
        await floor.make_template()
        for kind in ("runc", "runtime"):
            out.append(await floor.alone(kind, 10))
            print(json.dumps(out[-1]), flush=True)
        for parallel in args.parallel:
            for kind in ("runc", "runtime"):
                out.append(await floor.burst(kind, args.pods, parallel))
                print(json.dumps(out[-1]), flush=True)
    finally:
        for sb in await floor.rt.list_sandboxes():
            with contextlib.suppress(Exception):
                await floor.rt.remove_sandbox(sb)
        floor.rt.zygote.close()
        cleanup_agent(root / "agent")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--parallel", type=lambda s: [int(x) for x in s.split(",")], default=[100, 4, 2])
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kubelite-floor-"))
    cg = Cgroup()
    try:
        results = asyncio.run(run(args, root, cg))
    finally:
        cg.remove()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"results": results, "machine": machine()}, indent=1))


if __name__ == "__main__":
    main()
