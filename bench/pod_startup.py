"""Pod startup latency and idle overhead of the node agent (real runc, one node, image cached).

Runs ``kubelite server`` and, as its own process, ``kubelite agent`` (so its CPU and memory are
measured alone), a local ``docker-registry`` with a busybox-static image, then:

1. warms the image cache with one pod;
2. creates N pods at once (bound to the node with ``spec.nodeName``), watches them, and reports
   the Kubernetes pod-startup SLI (creationTimestamp -> all containers running as observed through
   the watch; creationTimestamp has 1 s resolution, so the latency from the create request is
   reported too);
3. with the N pods idle (``sleep``), samples the agent's CPU (% of one core) and RSS, and the
   per-container supervisors (shims) separately.

Usage: ``python bench/pod_startup.py [--pods 100] [--idle-seconds 20]`` (as root, runc installed).
"""

# ruff: noqa: E501  (tables of literals kept one entry per line)

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.common import machine, percentile, start_server
from tests.e2e.agent_helpers import cleanup_agent, runc_ids
from tests.registry import running_registry

from kubelite.agent.images.builder import busybox_image, push

NODE = "bench-node"


def proc_cpu_rss(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def shim_pids(agent_dir: Path) -> list[int]:
    pids = []
    for d in (agent_dir / "containers").glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids.append(int(json.loads(d.read_text())["shim_pid"]))
    return pids


def pod_obj(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "startup"}},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}],
        },
    }


def all_running(pod: dict[str, Any]) -> bool:
    sts = (pod.get("status") or {}).get("containerStatuses") or []
    want = len(pod["spec"]["containers"])
    return len(sts) == want and all("running" in (s.get("state") or {}) for s in sts)


class Watcher(threading.Thread):
    """Records, per pod, the wall time at which the watch first showed all containers running."""

    def __init__(self, url: str, headers: dict[str, str], ca: str) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.ca = url, headers, ca
        self.running: dict[str, float] = {}
        self.created: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server goes away at the end of the run
            self._watch()

    def _watch(self) -> None:
        with httpx.Client(verify=self.ca, headers=self.headers, timeout=None) as c:
            url = f"{self.url}/api/v1/namespaces/default/pods?watch=true&labelSelector=bench%3Dstartup"
            with c.stream("GET", url) as r:
                self.ready.set()
                for line in r.iter_lines():
                    if not line:
                        continue
                    obj = json.loads(line)["object"]
                    name = obj["metadata"]["name"]
                    if name not in self.created and obj["metadata"].get("creationTimestamp"):
                        ts = dt.datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
                        self.created[name] = ts.replace(tzinfo=dt.UTC).timestamp()
                    if name not in self.running and all_running(obj):
                        self.running[name] = time.time()


async def create_all(url: str, headers: dict[str, str], ca: str, image: str, n: int) -> dict[str, float]:
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(verify=ca, headers=headers, timeout=60) as c:

        async def one(i: int) -> None:
            name = f"startup-{i:03d}"
            sent[name] = time.time()
            r = await c.post(f"{url}/api/v1/namespaces/default/pods", json=pod_obj(name, image))
            r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(n)))
    return sent


def wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out: {what}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-podstartup-"))
    with running_registry(tmp / "registry") as reg:
        push(busybox_image(), reg.host, "bench/busybox", "v1")
        image = reg.ref("bench/busybox", "v1")
        server = start_server(tmp / "data", command="server")
        agent_dir = tmp / "agent"
        agent = subprocess.Popen(
            [sys.executable, "-m", "kubelite.cli", "agent", "--kubeconfig", str(tmp / "data" / "kubeconfig.yaml"),
             "--data-dir", str(agent_dir), "--node-name", NODE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {server.token}"}
        try:
            result = run(server.url, headers, server.ca, image, agent, agent_dir, args)
        finally:
            with httpx.Client(verify=server.ca, headers=headers) as c:
                c.delete(f"{server.url}/api/v1/namespaces/default/pods?labelSelector=bench%3Dstartup",
                         params={"gracePeriodSeconds": 0})  # fmt: skip
            with contextlib.suppress(RuntimeError):
                wait(lambda: not runc_ids(agent_dir), 60, "pods removed")
            agent.send_signal(signal.SIGTERM)
            agent.wait(20)
            server.stop()
            cleanup_agent(agent_dir)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


def run(url: str, headers: dict[str, str], ca: str, image: str, agent: subprocess.Popen[bytes],
        agent_dir: Path, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    with httpx.Client(verify=ca, headers=headers) as c:
        wait(lambda: c.get(f"{url}/api/v1/nodes/{NODE}").status_code == 200, 30, "node registered")
        c.post(
            f"{url}/api/v1/namespaces/default/pods",
            json={**pod_obj("warm", image), "metadata": {"name": "warm"}},
        )
        wait(lambda: all_running(c.get(f"{url}/api/v1/namespaces/default/pods/warm").json()), 60, "warm pod")
        c.delete(f"{url}/api/v1/namespaces/default/pods/warm", params={"gracePeriodSeconds": 0})
    watcher = Watcher(url, headers, ca)
    watcher.start()
    watcher.ready.wait(10)
    time.sleep(0.5)
    t0 = time.monotonic()
    sent = asyncio.run(create_all(url, headers, ca, image, args.pods))
    wait(lambda: len(watcher.running) >= args.pods, 300, "all pods running")
    wall = time.monotonic() - t0
    sli = [watcher.running[n] - watcher.created[n] for n in sent]
    from_request = [watcher.running[n] - sent[n] for n in sent]
    time.sleep(3)  # let the status writes settle
    cpu0, _ = proc_cpu_rss(agent.pid)
    shims = shim_pids(agent_dir)
    shim0 = sum(proc_cpu_rss(p)[0] for p in shims)
    time.sleep(args.idle_seconds)
    cpu1, rss = proc_cpu_rss(agent.pid)
    shim_stats = [proc_cpu_rss(p) for p in shims]
    return {
        "pods": args.pods,
        "all_running_after_s": round(wall, 2),
        "sli_creation_to_running_ms": {"p50": round(percentile(sli, 50) * 1000), "p99": round(percentile(sli, 99) * 1000)},
        "request_to_running_ms": {"p50": round(percentile(from_request, 50) * 1000), "p99": round(percentile(from_request, 99) * 1000)},
        "idle": {
            "seconds": args.idle_seconds,
            "agent_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / args.idle_seconds, 2),
            "agent_rss_mb": round(rss, 1),
            "shims": len(shims),
            "shims_cpu_pct_total": round(100 * (sum(s[0] for s in shim_stats) - shim0) / args.idle_seconds, 2),
            "shim_rss_mb_each": round(sum(s[1] for s in shim_stats) / max(1, len(shim_stats)), 1),
        },
    }  # fmt: skip


if __name__ == "__main__":
    main()
