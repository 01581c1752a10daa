"""Scheduler throughput shaped like kube-scheduler's scheduler_perf ``SchedulingBasic``.

Against a real ``kubelite up`` (API server, controllers and scheduler in one process):

1. create N Node objects through the API (scheduler_perf's node-default: 4 cpu, 32Gi,
   110 pods), or let ``--simulated-nodes`` register them when ``--simulator`` is given;
2. create the initial pods and wait until all are bound;
3. create the measured pods as fast as the API takes them (several client processes,
   one keep-alive HTTPS connection each) and time until every one has
   ``spec.nodeName`` - seen on a watch - reporting the average pods bound per second.

Pods are scheduler_perf's pod-default (pause, 100m cpu / 500Mi requests).  Anchors:
kube-scheduler's CI threshold for 5000 nodes / 10000 pods is 270 pods/s.

``--split`` is the Kubernetes shape of scheduler_perf: ``kubelite server`` (API server
only) and ``kubelite scheduler --kubeconfig`` (leader-elected, over HTTPS) as two
processes, no controllers - each process's CPU is reported.  Without it the scheduler
runs inside ``kubelite up`` with every controller.

``--client wrk`` (the default when ``wrk`` is installed) creates the pods with the C load
generator: two threads, ``--clients`` keep-alive connections, a Lua script that gives
every pod a unique name and stops each thread after its share, so the clients cost
little next to the server and the scheduler.  ``--client python`` uses ``--clients``
processes with one ``http.client`` connection each.

``--in-memory`` measures the scheduling cycle alone (no API server): the cache is filled
with the same nodes and every pod is scheduled and assumed, CPU time per pod reported.

``--drain`` measures the scheduler alone: nodes and all pods are created with
``--no-scheduler``, then the server restarts with the scheduler and the time from its
"ready" line until every pod is bound is taken (pods bound per second of draining).

Usage: python bench/scheduler_perf.py [--nodes 5000] [--init-pods 1000] [--pods 10000]
       [--clients 8] [--client wrk|python] [--split] [--simulator] [--drain | --in-memory]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from common import Server, free_port, machine, spawn_until_ready, start_server

NS = "sched-perf"
# Node objects made here never heartbeat: keep the node lifecycle controller from marking
# them unreachable (and tainting them) during the run, as scheduler_perf has no such controller.
QUIET_NODES = ("--node-monitor-grace-period", "86400")


def node(name: str) -> dict[str, Any]:
    res = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "capacity": res,
            "allocatable": res,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "phase": "Running",
        },
    }


def pod(name: str) -> dict[str, Any]:
    req = {"cpu": "100m", "memory": "500Mi"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "containers": [
                {
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": req, "requests": req},
                }
            ]
        },
    }


class Conn:
    def __init__(self, port: int, token: str, ca: str) -> None:
        self.conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ssl.create_default_context(cafile=ca)
        )
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def post(self, path: str, obj: dict[str, Any]) -> int:
        self.conn.request("POST", path, orjson.dumps(obj), self.headers)
        resp = self.conn.getresponse()
        resp.read()
        return resp.status


def creator(kind: str, names: list[str], port: int, token: str, ca: str, q: mp.Queue) -> None:  # type: ignore[type-arg]
    c = Conn(port, token, ca)
    bad = 0
    for name in names:
        if kind == "node":
            status = c.post("/api/v1/nodes", node(name))
        else:
            status = c.post(f"/api/v1/namespaces/{NS}/pods", pod(name))
        bad += status != 201
    q.put(bad)


def create_all(kind: str, names: list[str], clients: int, port: int, token: str, ca: str) -> float:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    chunks = [names[i::clients] for i in range(clients)]
    procs = [mp.Process(target=creator, args=(kind, ch, port, token, ca, q)) for ch in chunks if ch]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    bad = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    if bad:
        raise RuntimeError(f"{bad} {kind} creates failed")
    return time.monotonic() - t0


# Each wrk thread POSTs pods named PREFIX-<thread>-<n> until its share of creates has been
# answered, prints "done <thread>" and then holds its connections idle (delay()).  The
# counter advances per request() call, and wrk calls request() again when a TLS handshake
# was still in progress, so numbers may be skipped and a few creates in flight when the
# share completes still land: the exact total is printed by done() at the end.
WRK_SCRIPT = """
local counter = 0
local quotas = QUOTAS
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  posted, created, failed, finished = 0, 0, 0, false
  quota = quotas[tid]
  head = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"PREFIX-' .. tid .. '-'
  tail = '",BODY_TAIL'
  post = {Authorization = "Bearer TOKEN", ["Content-Type"] = "application/json",
          Accept = "application/json"}
end
function delay()
  if finished then return 3600000 end
  return 0
end
function request()
  posted = posted + 1
  return wrk.format("POST", "PATH", post, head .. posted .. tail)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else failed = failed + 1 end
  if not finished and created + failed >= quota then
    finished = true
    io.write("done " .. tid .. "\\n")
    io.flush()
  end
end
function done(summary, latency, requests)
  local c, f = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    f = f + t:get("failed")
  end
  io.write("total " .. c .. " " .. f .. "\\n")
end
"""
WRK_THREADS = 2


def wrk_script(prefix: str, count: int, token: str) -> str:
    quotas = [count // WRK_THREADS + (t < count % WRK_THREADS) for t in range(WRK_THREADS)]
    sample = orjson.dumps(pod("x")).decode()
    tail = sample.split('"name":"x",', 1)[1]
    return (
        WRK_SCRIPT.replace("QUOTAS", "{" + ",".join(map(str, quotas)) + "}")
        .replace("PREFIX", prefix)
        .replace("TOKEN", token)
        .replace("PATH", f"/api/v1/namespaces/{NS}/pods")
        .replace("BODY_TAIL'", tail + "'")
    )


def create_wrk(prefix: str, count: int, clients: int, srv: Server) -> tuple[int, float]:
    """Create about ``count`` pods with wrk: (pods created, seconds until the share was done)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(wrk_script(prefix, count, srv.token))
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{max(clients, WRK_THREADS)}", "-d3600s", "-s", f.name, srv.url]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(1200, proc.send_signal, (signal.SIGINT,))  # a broken script ends too
    watchdog.start()
    try:
        assert proc.stdout is not None
        done = _first_lines(proc.stdout, "done ", WRK_THREADS)
        took = time.monotonic() - t0
        time.sleep(0.5)  # the last creates in flight
    finally:
        # wrk's main thread sleeps for the whole -d; SIGINT ends the run (and calls done())
        watchdog.cancel()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        os.unlink(f.name)
    total = next((line.split() for line in rest.splitlines() if line.startswith("total ")), None)
    if len(done) < WRK_THREADS or total is None or int(total[2]):
        raise RuntimeError(f"wrk: pod creates failed or did not finish: {done} {total}")
    return int(total[1]), took


def _first_lines(stream: Any, prefix: str, count: int) -> list[str]:
    out: list[str] = []
    for line in stream:
        if line.startswith(prefix):
            out.append(line)
            if len(out) == count:
                break
    return out


def create_pods(client: str, prefix: str, count: int, clients: int, srv: Server) -> tuple[int, float]:
    """Create ``count`` pods named ``<prefix>-...`` with the chosen client: (pods created, seconds)."""
    if client == "wrk":
        return create_wrk(prefix, count, clients, srv)
    names = [f"{prefix}-{i}" for i in range(count)]
    return count, create_all("pod", names, clients, srv.port, srv.token, srv.ca)


class BoundWatcher:
    """Counts pods of the namespace that have ``spec.nodeName`` (one watch, in a thread)."""

    def __init__(self, port: int, token: str, ca: str) -> None:
        self.bound: set[str] = set()
        self.first_bound: dict[str, float] = {}
        self.per_prefix: dict[str, int] = {}  # "pod" of "pod-1-17": bound pods so named
        self.last_bound: dict[str, float] = {}
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.port, self.token, self.ca = port, token, ca
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=ssl.create_default_context(cafile=self.ca), timeout=3600
        )
        conn.request(
            "GET",
            f"/api/v1/namespaces/{NS}/pods?watch=true",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        resp = conn.getresponse()
        buf = b""
        while True:
            try:
                chunk = resp.read1(65536)
            except (http.client.HTTPException, OSError):
                return  # the server went away (end of the run)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.monotonic()
            with self.cond:
                for line in lines:
                    if not line.strip():
                        continue
                    obj = orjson.loads(line)["object"]
                    if (obj.get("spec") or {}).get("nodeName"):
                        name = obj["metadata"]["name"]
                        if name not in self.bound:
                            self.bound.add(name)
                            self.first_bound[name] = now
                            prefix = name.split("-", 1)[0]
                            self.per_prefix[prefix] = self.per_prefix.get(prefix, 0) + 1
                            self.last_bound[prefix] = now
                self.cond.notify_all()

    def wait(self, prefix: str, count: int, timeout: float) -> float:
        """When the ``count``-th pod named ``<prefix>-...`` was bound (raises on timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while (bound := self.per_prefix.get(prefix, 0)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{count - bound} of {count} {prefix} pods not bound")
                self.cond.wait(min(left, 1.0))
            return self.last_bound[prefix]


def start_split() -> tuple[Server, subprocess.Popen[str]]:
    """``kubelite server`` and ``kubelite scheduler --kubeconfig`` as two processes."""
    srv = start_server(None, command="server")
    kubeconfig = srv.data_dir / "kubeconfig.yaml"
    cmd = [sys.executable, "-m", "kubelite.cli", "scheduler", "--kubeconfig", str(kubeconfig)]
    try:
        sched, _ = spawn_until_ready(cmd, 60, "scheduler")
    except BaseException:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
        raise
    return srv, sched


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    nodes: int, init_pods: int, pods: int, clients: int, simulator: bool, split: bool, client: str
) -> dict[str, Any]:
    sched: subprocess.Popen[str] | None = None
    if split:
        srv, sched = start_split()
    else:
        extra = [
            "--simulated-nodes",
            str(nodes),
            "--simulated-node-cpu",
            "4",
            "--simulated-node-memory",
            "32Gi",
        ]
        srv = start_server(None, *(extra if simulator else QUIET_NODES))
    try:
        port, token, ca = srv.port, srv.token, srv.ca
        c = Conn(port, token, ca)
        c.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        t_nodes = 0.0
        if split or not simulator:
            t_nodes = create_all("node", [f"node-{i}" for i in range(nodes)], clients, port, token, ca)
        watcher = BoundWatcher(port, token, ca)
        init, _ = create_pods(client, "init", init_pods, clients, srv)
        watcher.wait("init", init, 600)
        cpu0 = srv.cpu_seconds()
        sched_cpu0 = proc_cpu(sched.pid) if sched else 0.0
        t0 = time.monotonic()
        pods, t_create = create_pods(client, "pod", pods, clients, srv)
        last = watcher.wait("pod", pods, 1200)
        took = last - t0
        cpu = srv.cpu_seconds() - cpu0
        sched_cpu = proc_cpu(sched.pid) - sched_cpu0 if sched else 0.0
        out: dict[str, Any] = {
            "bench": "scheduler_perf SchedulingBasic",
            "mode": "split: kubelite server + kubelite scheduler" if split else "kubelite up (all in one)",
            "client": client,
            "nodes": nodes,
            "init_pods": init_pods,
            "measured_pods": pods,
            "clients": clients,
            "node_source": "simulator" if simulator and not split else "api",
            "node_create_s": round(t_nodes, 2),
            "create_s": round(t_create, 2),
            "create_pods_per_s": round(pods / t_create, 1),
            "schedule_s": round(took, 2),
            "pods_bound_per_s": round(pods / took, 1),
            "server_cpu_s": round(cpu, 1),
            "server_cpu_ms_per_pod": round(cpu / pods * 1000, 3),
            "rss_mb": round(srv.rss_mb(), 1),
        }
        if sched is not None:
            out["scheduler_cpu_s"] = round(sched_cpu, 1)
            out["scheduler_cpu_ms_per_pod"] = round(sched_cpu / pods * 1000, 3)
        return {**out, **machine()}
    finally:
        if sched is not None:
            sched.send_signal(signal.SIGTERM)
            try:
                sched.wait(20)
            except subprocess.TimeoutExpired:
                sched.kill()
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


def restart_server(data_dir: Path, timeout: float = 900) -> Server:
    """``kubelite up`` on an existing data dir; a big one takes a while to load and sync."""
    port = free_port()
    t0 = time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "kubelite.cli",
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        *QUIET_NODES,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "ready" in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return Server(proc, data_dir, port, time.monotonic() - t0)
        if time.monotonic() - t0 > timeout:
            break
    proc.kill()
    raise RuntimeError("kubelite up did not restart")


def drain(nodes: int, pods: int, clients: int) -> dict[str, Any]:
    srv = start_server(None, "--no-scheduler", *QUIET_NODES)
    try:
        port, token, ca = srv.port, srv.token, srv.ca
        Conn(port, token, ca).post(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        )
        create_all("node", [f"node-{i}" for i in range(nodes)], clients, port, token, ca)
        create_all("pod", [f"pod-{i}" for i in range(pods)], clients, port, token, ca)
    except BaseException:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
        raise
    srv.stop()
    t0 = time.monotonic()
    srv = restart_server(srv.data_dir)
    try:
        ready = time.monotonic()
        watcher = BoundWatcher(srv.port, srv.token, srv.ca)
        cpu0 = srv.cpu_seconds()
        last = watcher.wait("pod", pods, 1200)
        took = last - ready
        return {
            "bench": "scheduler drain (pods pending before the scheduler starts)",
            "nodes": nodes,
            "pods": pods,
            "restart_s": round(ready - t0, 2),
            "drain_s": round(took, 2),
            "pods_bound_per_s": round(pods / took, 1),
            "pods_bound_per_s_incl_restart": round(pods / (last - t0), 1),
            "server_cpu_s": round(srv.cpu_seconds() - cpu0, 1),
            **machine(),
        }
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


class _NoListers:
    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        return None

    def pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def pv(self, name: str) -> dict[str, Any] | None:
        return None

    def storage_class(self, name: str) -> dict[str, Any] | None:
        return None


def in_memory(nodes: int, init_pods: int, pods: int) -> dict[str, Any]:
    """Schedule-and-assume in a loop over a filled cache: the algorithm's own cost."""
    import random

    from kubelite.scheduler.cache import Cache
    from kubelite.scheduler.plugins import default_plugins
    from kubelite.scheduler.podinfo import parse_pod
    from kubelite.scheduler.schedule_one import Algorithm

    cache = Cache()
    for i in range(nodes):
        cache.set_node(node(f"node-{i}"))
    algo = Algorithm(cache.snapshot, default_plugins(_NoListers()), rng=random.Random(1))

    def place(names: list[str]) -> float:
        t0 = time.process_time()
        for name in names:
            obj = pod(name)
            obj["metadata"]["uid"] = name
            info = parse_pod(obj)
            cache.assume(info, algo.schedule(info).node)
        return time.process_time() - t0

    place([f"init-{i}" for i in range(init_pods)])
    cpu = place([f"pod-{i}" for i in range(pods)])
    return {
        "bench": "scheduling cycle in memory (parse + filter + score + assume)",
        "nodes": nodes,
        "init_pods": init_pods,
        "measured_pods": pods,
        "cpu_us_per_pod": round(cpu / pods * 1e6),
        "pods_per_cpu_s": round(pods / cpu),
        **machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--init-pods", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="what creates the pods (default: wrk when installed)",
    )
    ap.add_argument("--split", action="store_true", help="kubelite server + kubelite scheduler processes")
    ap.add_argument("--simulator", action="store_true", help="register the nodes with --simulated-nodes")
    ap.add_argument("--drain", action="store_true", help="time the scheduler draining pre-created pods")
    ap.add_argument("--in-memory", action="store_true", help="time the scheduling cycle without an API")
    args = ap.parse_args()
    if args.in_memory:
        print(json.dumps(in_memory(args.nodes, args.init_pods, args.pods)))
        return
    if args.drain:
        print(json.dumps(drain(args.nodes, args.pods, args.clients)))
        return
    result = run(args.nodes, args.init_pods, args.pods, args.clients, args.simulator, args.split, args.client)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
