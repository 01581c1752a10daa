"""Cold pull + start of a small image from a local registry, end to end (issue 4: <= 500 ms).

Each run starts ``kubelite agent`` on a fresh data dir (an empty image store: nothing pulled,
no layer unpacked) as a new Node, waits until it is registered, then creates one pod bound to it
whose image (busybox-static, ~1 MB, on a local ``docker-registry`` over plain HTTP on 127.0.0.1)
the node has never seen, and measures, through a watch, the time from the create request to the
pod's container running.  A second pod with the same image on the same agent then gives the
warm start (image present), so ``cold - warm`` is what the pull adds.  The agent's own phase
timings (``kubelite.agent.timing``: sandbox, image = the pull, config, start = runc through the
supervisor, status write) are reported for both, and the pull itself is broken down in-process
(resolve, manifest, config, layer download, unpack) against a fresh store.  Since wall times
depend on what else runs, the CPU the start cost (the agent in a cpuacct cgroup of its own, which
holds its supervisors, runc and the containers too) and the time the agent's main thread spent
waiting for a CPU are reported with them.

Usage: ``python bench/cold_start.py [--runs 5]`` (as root, runc installed; agent with
``--network none``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, start_server
from bench.pod_startup import TreeCPU, all_running, phase_summary
from tests.e2e.agent_helpers import cleanup_agent, runc_ids
from tests.registry import running_registry

from kubelite.agent.images import builder
from kubelite.agent.images.distribution import RegistryClient
from kubelite.agent.images.service import LocalImageService

POD_STARTUP = Path(__file__).resolve().with_name("pod_startup.py")


def pod_obj(name: str, node: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "cold-start"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
            ],
        },
    }


class Watch(threading.Thread):
    """Wall time at which the watch first showed each pod with all containers running."""

    def __init__(self, url: str, headers: dict[str, str], ca: str) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.ca = url, headers, ca
        self.running: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        url = f"{self.url}/api/v1/namespaces/default/pods?watch=true&labelSelector=bench%3Dcold-start"
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(verify=self.ca, headers=self.headers, timeout=None) as c,
            c.stream("GET", url) as r,
        ):
            self.ready.set()
            for line in r.iter_lines():
                obj = json.loads(line)["object"] if line else None
                if obj and obj["metadata"]["name"] not in self.running and all_running(obj):
                    self.running[obj["metadata"]["name"]] = time.time()


def wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.02)


def start_pod(c: httpx.Client, url: str, watch: Watch, name: str, node: str, image: str) -> float:
    sent = time.time()
    c.post(f"{url}/api/v1/namespaces/default/pods", json=pod_obj(name, node, image)).raise_for_status()
    wait(lambda: name in watch.running, 60, f"{name} running")
    return watch.running[name] - sent


def runq_wait_s(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (schedstat)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9
    return 0.0


@contextlib.contextmanager
def agent_on(tmp: Path, kubeconfig: Path, node: str) -> Iterator[tuple[Path, Path, int, TreeCPU]]:
    agent_dir, log_path = tmp / node, tmp / f"{node}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(POD_STARTUP), "--run-agent", "agent", "--kubeconfig", str(kubeconfig),
             "--data-dir", str(agent_dir), "--node-name", node, "--agent-port", "0", "--network", "none"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        tree = TreeCPU(proc.pid)
        try:
            yield agent_dir, log_path, proc.pid, tree
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            cleanup_agent(agent_dir)
            tree.remove()


def one_run(c: httpx.Client, url: str, watch: Watch, tmp: Path, image: str, i: int) -> dict[str, Any]:
    node, kubeconfig = f"cold-{i}", tmp / "data" / "kubeconfig.yaml"
    with agent_on(tmp, kubeconfig, node) as (agent_dir, log_path, pid, tree):
        wait(lambda: c.get(f"{url}/api/v1/nodes/{node}").status_code == 200, 30, "node registered")
        time.sleep(1.0)  # the agent's informers are synced and it is idle
        cpu0, wait0 = tree.seconds(), runq_wait_s(pid)
        cold = start_pod(c, url, watch, f"cold-{i}", node, image)
        cpu1, wait1 = tree.seconds(), runq_wait_s(pid)
        warm = start_pod(c, url, watch, f"warm-{i}", node, image)
        cpu2, wait2 = tree.seconds(), runq_wait_s(pid)
        for name in (f"cold-{i}", f"warm-{i}"):
            c.delete(f"{url}/api/v1/namespaces/default/pods/{name}", params={"gracePeriodSeconds": 0})
        with contextlib.suppress(RuntimeError):
            wait(lambda: not runc_ids(agent_dir), 30, "pods removed")
    lines = log_path.read_text(errors="replace").splitlines()
    phases = [line for line in lines if "pod started uid=" in line]
    return {
        "cold_s": cold, "warm_s": warm, "phase_lines": phases,
        "cold_cpu_s": cpu1 - cpu0, "warm_cpu_s": cpu2 - cpu1,  # agent + supervisor + runc + container
        "cold_runq_s": wait1 - wait0, "warm_runq_s": wait2 - wait1,  # the agent waiting for a CPU
    }  # fmt: skip


class PullTimer:
    """Wraps the registry client and the store to time each step of one pull (bench-side only)."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    def wrap(self, obj: Any, attr: str, step: str) -> None:
        inner = getattr(obj, attr)
        is_async = asyncio.iscoroutinefunction(inner)

        @functools.wraps(inner)
        async def timed_async(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await inner(*a, **kw)
            finally:
                self.steps[step] = self.steps.get(step, 0.0) + time.perf_counter() - t

        @functools.wraps(inner)
        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                self.steps[step] = self.steps.get(step, 0.0) + time.perf_counter() - t

        setattr(obj, attr, timed_async if is_async else timed)


async def pull_breakdown(ref: str, work: Path, runs: int) -> dict[str, dict[str, float]]:
    """Median ms per pull step over ``runs`` pulls, each into a fresh store."""
    per_step: dict[str, list[float]] = {}
    await LocalImageService(work / "warmup").pull(ref)  # imports, first connection
    for i in range(runs):
        timer = PullTimer()
        svc = LocalImageService(work / f"pull{i}")
        timer.wrap(RegistryClient, "resolve", "resolve (HEAD)")
        timer.wrap(RegistryClient, "manifest", "manifest")
        timer.wrap(RegistryClient, "download_blob", "blobs (config + layers)")
        timer.wrap(svc.store, "unpack", "unpack (gunzip, verify, extract)")
        t0 = time.perf_counter()
        try:
            await svc.pull(ref)
        finally:
            for attr in ("resolve", "manifest", "download_blob"):
                setattr(RegistryClient, attr, getattr(RegistryClient, attr).__wrapped__)
        total = time.perf_counter() - t0
        for step, secs in {**timer.steps, "total": total}.items():
            per_step.setdefault(step, []).append(secs * 1000)
    return {k: {"p50": round(statistics.median(v), 1), "max": round(max(v), 1)} for k, v in per_step.items()}


def summary(ms: list[float]) -> dict[str, int]:
    return {"p50": round(statistics.median(ms)), "min": round(min(ms)), "max": round(max(ms))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-coldstart-"))
    image_obj = builder.busybox_image()
    with running_registry(tmp / "registry") as reg:
        builder.push(image_obj, reg.host, "bench/busybox", "v1")
        image = reg.ref("bench/busybox", "v1")
        server = start_server(tmp / "data", command="server")
        headers = {"Authorization": f"Bearer {server.token}"}
        runs: list[dict[str, Any]] = []
        try:
            watch = Watch(server.url, headers, server.ca)
            watch.start()
            watch.ready.wait(10)
            with httpx.Client(verify=server.ca, headers=headers, timeout=30) as c:
                for i in range(args.runs):
                    runs.append(one_run(c, server.url, watch, tmp, image, i))
        finally:
            server.stop()
        pull = asyncio.run(pull_breakdown(image, tmp / "pulls", args.runs))
    cold = [r["cold_s"] * 1000 for r in runs]
    warm = [r["warm_s"] * 1000 for r in runs]
    lines = tmp / "phases.log"
    lines.write_text("\n".join(r["phase_lines"][0] for r in runs if r["phase_lines"]))
    warm_lines = tmp / "phases-warm.log"
    warm_lines.write_text("\n".join(r["phase_lines"][1] for r in runs if len(r["phase_lines"]) > 1))
    size = sum(len(b.data) for b in image_obj.layers)
    result = {
        "image": {"layers": len(image_obj.layers), "compressed_mb": round(size / 1e6, 2)},
        "runs": args.runs,
        "cold_pull_and_start_ms": {**summary(cold), "all": [round(x) for x in cold]},
        "warm_start_ms": summary(warm),
        "cpu_ms_agent_tree": {  # the agent, its supervisor, runc and the container (cgroup)
            "cold": summary([r["cold_cpu_s"] * 1000 for r in runs]),
            "warm": summary([r["warm_cpu_s"] * 1000 for r in runs]),
        },
        "agent_waiting_for_cpu_ms": {  # main thread runnable, not running (other load)
            "cold": summary([r["cold_runq_s"] * 1000 for r in runs]),
            "warm": summary([r["warm_runq_s"] * 1000 for r in runs]),
        },
        "agent_phases_cold_ms": phase_summary(lines),
        "agent_phases_warm_ms": phase_summary(warm_lines),
        "pull_in_process_ms": pull,
        "target": "cold pull + start <= 500 ms: " + ("met" if statistics.median(cold) <= 500 else "MISSED"),
        "load_avg_1m_at_end": os.getloadavg()[0],
        "machine": machine(),
        "logs": str(tmp),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
