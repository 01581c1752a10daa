"""Pod startup latency and idle overhead of the node agent (real runc, one node, image cached).

Runs ``kubelite server`` and, as its own process, ``kubelite agent`` (so its CPU and memory are
measured alone), a local ``docker-registry`` with a busybox-static image, then:

1. warms the image cache with one pod;
2. creates N pods at once (bound to the node with ``spec.nodeName``), watches them, and reports
   the Kubernetes pod-startup SLI (creationTimestamp -> all containers running as observed through
   the watch; creationTimestamp has 1 s resolution, so the latency from the create request is
   reported too);
3. with the N pods idle (``sleep``), samples the agent's CPU (% of one core) and RSS/PSS, and the
   per-container supervisors (shims, with their zygote: PSS, shared pages counted once) separately.

Also reported: the CPU seconds the agent, the API server and the whole machine used until all pods
ran (runc and the supervisors are in the machine's share; the load average says how much other work
was running), and the p50/p99 of each startup phase the agent logged (``kubelite.agent.timing``:
sandbox, volumes, image, config, start, status; waits for a start/sandbox turn are included).
The agent runs in a cpuacct cgroup of its own, and runc nests the containers' cgroups under it, so
``agent_tree_s`` is the exact CPU of the agent, its supervisors, runc and the containers, whatever
else the machine runs; with the API server's share it gives the CPU cost per pod, and from that the
best p50/p99 two cores allow when the pods start one after another (``floor_on_2_cores_ms``).

Usage: ``python bench/pod_startup.py [--pods 100] [--idle-seconds 20] [--network none|cni]``
(as root, runc installed).  ``--network none`` (default) runs ``kubelite server`` and an agent with
loopback-only pod namespaces; ``--network cni`` runs ``kubelite up --no-agent --no-dns`` (the
nodeipam controller gives the node its podCIDR) and an agent on its own bridge and pod range
(``--bridge-name kubelitebench``, 10.251.0.0/16), so it does not disturb another cluster on the
machine's default bridge.  ``--profile FILE`` runs the agent under cProfile; the agent's log goes to
``<tmp>/agent.log`` (its path is in the result).
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
SERVER_CMD = {"none": "server", "cni": "up"}
SERVER_ARGS = {
    "none": [],
    "cni": ["--no-agent", "--no-dns", "--cluster-cidr", "10.251.0.0/16", "--service-cidr", "10.112.0.0/16"],
}
AGENT_ARGS = {
    "none": ["--network", "none"],
    "cni": ["--network", "cni", "--bridge-name", "kubelitebench", "--cluster-cidr", "10.251.0.0/16",
            "--service-cidr", "10.112.0.0/16"],
}  # fmt: skip


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


def smaps(pid: int) -> dict[str, float]:
    """MB from /proc/<pid>/smaps_rollup: Rss, Pss (shared pages divided among their users), and
    the anonymous/file-backed parts of the Pss."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Pss_Anon", "Pss_File"):
                out[key] = int(rest.split()[0]) / 1024
    return out


def zygote_pids(agent_dir: Path) -> list[int]:
    """The agent's supervisor zygote (``shim.py --zygote <agent dir>``), if any."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (d / "cmdline").read_bytes().split(b"\0")
            if (
                b"--zygote" in argv
                and os.fsencode(agent_dir) in argv
                and int(d.name) not in shim_pids(agent_dir)
            ):
                pids.append(int(d.name))
    return pids


def shim_pids(agent_dir: Path) -> list[int]:
    pids = []
    for d in (agent_dir / "containers").glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids.append(int(json.loads(d.read_text())["shim_pid"]))
    return pids


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class TreeCPU:
    """A cpuacct cgroup for the agent (cgroup v1): its usage covers the agent and every process it
    starts, containers included (runc nests relative cgroupsPaths under the caller's cgroup)."""

    def __init__(self, pid: int) -> None:
        self.dir = CPUACCT / f"kubelite-bench-{pid}"
        try:
            self.dir.mkdir()
            (self.dir / "cgroup.procs").write_text(str(pid))
        except OSError:
            self.dir = Path()

    def seconds(self) -> float:
        with contextlib.suppress(OSError, ValueError):
            return int((self.dir / "cpuacct.usage").read_text()) / 1e9
        return 0.0

    def remove(self) -> None:
        """rmdir the cgroup and what is left below it, deepest first (the agent has exited)."""
        if self.dir == Path():
            return
        for _ in range(50):
            try:
                for d in sorted((d for d in self.dir.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
                    d.rmdir()
                self.dir.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def floor_ms(cpu_per_pod_s: float, n: int, cores: int = 2) -> dict[str, int]:
    """p50/p99 if the pods started one after another with every core busy: pod k runs at
    k * cpu / cores (no waiting anywhere else)."""
    at = sorted(k * cpu_per_pod_s / cores for k in range(1, n + 1))
    return {"p50": round(percentile(at, 50) * 1000), "p99": round(percentile(at, 99) * 1000)}


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


def run_agent(argv: list[str]) -> None:
    """``kubelite agent`` with the per-pod startup timings logged (kubelite.agent.timing)."""
    import logging

    from kubelite.cli import main as cli_main

    logging.getLogger("kubelite.agent.timing").setLevel(logging.INFO)
    if trace := os.environ.get("POD_STARTUP_TRACEMALLOC"):  # --tracemalloc: top allocations on SIGUSR2
        import tracemalloc

        tracemalloc.start(8)

        def dump(*_: Any) -> None:
            stats = tracemalloc.take_snapshot().statistics("traceback")
            with open(trace, "w") as f:
                total = sum(st.size for st in stats)
                f.write(f"traced {total / 1e6:.1f} MB\n")
                for st in stats[:25]:
                    f.write(
                        f"{st.size / 1e6:.2f} MB {st.count} blocks\n  "
                        + "\n  ".join(st.traceback.format())
                        + "\n"
                    )

        signal.signal(signal.SIGUSR2, dump)
    sys.exit(cli_main(argv))


def phase_summary(log: Path) -> dict[str, dict[str, float]]:
    """p50/p99 of each startup phase the agent logged (``pod started ... name=12ms``)."""
    phases: dict[str, list[float]] = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if "pod started uid=" not in line:
                continue
            for word in line.split("msg=", 1)[-1].split():
                key, _, val = word.partition("=")
                if val.endswith("ms"):
                    phases.setdefault(key, []).append(float(val[:-2]))
    return {k: {"p50": round(percentile(v, 50)), "p99": round(percentile(v, 99))} for k, v in phases.items()}


def main() -> None:
    if sys.argv[1:2] == ["--run-agent"]:
        run_agent(sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument("--network", choices=["none", "cni"], default="none")
    ap.add_argument("--profile", default="", help="run the agent under cProfile, stats to this file")
    ap.add_argument("--tracemalloc", default="", help="trace the agent's allocations; top ones to this file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-podstartup-"))
    with running_registry(tmp / "registry") as reg:
        push(busybox_image(), reg.host, "bench/busybox", "v1")
        image = reg.ref("bench/busybox", "v1")
        server = start_server(tmp / "data", *SERVER_ARGS[args.network], command=SERVER_CMD[args.network])
        agent_dir = tmp / "agent"
        agent_log = open(tmp / "agent.log", "wb")  # noqa: SIM115 (closed with the run)
        if args.tracemalloc:
            os.environ["POD_STARTUP_TRACEMALLOC"] = str(Path(args.tracemalloc).resolve())
        agent = subprocess.Popen(
            [sys.executable, *(["-m", "cProfile", "-o", args.profile] if args.profile else []),
             str(Path(__file__).resolve()), "--run-agent", "agent", "--kubeconfig", str(tmp / "data" / "kubeconfig.yaml"),
             "--data-dir", str(agent_dir), "--node-name", NODE, "--agent-port", "0", *AGENT_ARGS[args.network]],
            stdout=agent_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        tree = TreeCPU(agent.pid)
        headers = {"Authorization": f"Bearer {server.token}"}
        try:
            result = run(server.url, headers, server.ca, image, agent, agent_dir, args, server.proc.pid, tree)
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
            tree.remove()
            agent_log.close()
    result["network"] = args.network
    result["agent_phases_ms"] = phase_summary(tmp / "agent.log")
    result["agent_log"] = str(tmp / "agent.log")
    result["load_avg_1m_at_end"] = os.getloadavg()[0]
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


def run(url: str, headers: dict[str, str], ca: str, image: str, agent: subprocess.Popen[bytes],
        agent_dir: Path, args: argparse.Namespace, server_pid: int, tree: TreeCPU) -> dict[str, Any]:  # fmt: skip
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
    agent_cpu0, server_cpu0, busy0 = proc_cpu_rss(agent.pid)[0], proc_cpu_rss(server_pid)[0], machine_busy()
    tree0 = tree.seconds()
    t0 = time.monotonic()
    sent = asyncio.run(create_all(url, headers, ca, image, args.pods))
    wait(lambda: len(watcher.running) >= args.pods, 300, "all pods running")
    wall = time.monotonic() - t0
    busy1 = machine_busy()
    agent_s, api_s, tree_s = (
        proc_cpu_rss(agent.pid)[0] - agent_cpu0,
        proc_cpu_rss(server_pid)[0] - server_cpu0,
        tree.seconds() - tree0,
    )
    per_pod = (tree_s + api_s) / args.pods
    burst_cpu = {
        "agent_s": round(agent_s, 2),
        "agent_tree_s": round(tree_s, 2),  # agent + supervisors + runc + containers (its cgroup)
        "supervisors_runc_containers_s": round(tree_s - agent_s, 2),
        "api_server_s": round(api_s, 2),
        "per_pod_ms": round(per_pod * 1000, 1),  # agent tree + API server
        "floor_on_2_cores_ms": floor_ms(per_pod, args.pods),
        "machine_busy_s": round(busy1[0] - busy0[0], 2),
        "machine_total_s": round(busy1[1] - busy0[1], 2),  # all CPUs: wall x cores
    }
    sli = [watcher.running[n] - watcher.created[n] for n in sent]
    from_request = [watcher.running[n] - sent[n] for n in sent]
    time.sleep(3)  # let the status writes settle
    cpu0, _ = proc_cpu_rss(agent.pid)
    shims = shim_pids(agent_dir)
    shim0 = sum(proc_cpu_rss(p)[0] for p in shims)
    time.sleep(args.idle_seconds)
    cpu1, rss = proc_cpu_rss(agent.pid)
    if args.tracemalloc:
        agent.send_signal(signal.SIGUSR2)
        time.sleep(2)
    shim_stats = [proc_cpu_rss(p) for p in shims]
    agent_mem = smaps(agent.pid)
    supervisors = shims + zygote_pids(agent_dir)
    shim_pss = sum(smaps(p).get("Pss", 0.0) for p in supervisors)
    return {
        "pods": args.pods,
        "all_running_after_s": round(wall, 2),
        "cpu_until_all_running": burst_cpu,  # runc and the supervisors are in the machine's share
        "sli_creation_to_running_ms": {"p50": round(percentile(sli, 50) * 1000), "p99": round(percentile(sli, 99) * 1000)},
        "request_to_running_ms": {"p50": round(percentile(from_request, 50) * 1000), "p99": round(percentile(from_request, 99) * 1000)},
        "idle": {
            "seconds": args.idle_seconds,
            "agent_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / args.idle_seconds, 2),
            "agent_rss_mb": round(rss, 1),
            "agent_pss_mb": {k: round(v, 1) for k, v in agent_mem.items()},
            "shims": len(shims),
            "shims_cpu_pct_total": round(100 * (sum(s[0] for s in shim_stats) - shim0) / args.idle_seconds, 2),
            "shim_rss_mb_each": round(sum(s[1] for s in shim_stats) / max(1, len(shim_stats)), 1),
            "supervisors_pss_mb_total": round(shim_pss, 1),  # the shims and their zygote, shared pages counted once
        },
    }  # fmt: skip


if __name__ == "__main__":
    main()
