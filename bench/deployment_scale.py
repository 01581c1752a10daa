"""A Deployment of 10,000 replicas on 1,000 simulated nodes: time until every pod is Running.

Against a real ``kubelite up --simulated-nodes N`` (API server, controllers, scheduler and
simulated kubelets in one process):

1. wait until the N simulated nodes are registered;
2. create one Deployment with R replicas (one container, 10m cpu / 16Mi requests);
3. follow the namespace's pods on one watch and report the time from the create until R
   pods are ``Running`` (the target: <= 30 s for 10,000 pods on 1,000 nodes), plus the
   time until the Deployment reports R available replicas (``kubectl rollout status``
   would return then).

With ``--split`` (clearly not what ``up`` users run) the simulated nodes come from a
separate ``kubelite simulate`` process against ``kubelite up`` without them, and both
processes' CPU is reported (``server_cpu_s`` is then the control plane alone).

Besides the times it reports the server's CPU per pod, the store writes per pod (the
global revision moved; 3 pod writes at best, plus Lease renewals, events and status
writes of the ReplicaSet and Deployment) and the pod events per pod the watch saw.

Usage: python bench/deployment_scale.py [--nodes 1000] [--replicas 10000]
       [--start-delay 0.5] [--timeout 300] [--split]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from typing import Any

from common import Server, machine, process_cpu_seconds, start_server, start_simulator

NS = "deploy-scale"


class Api:
    def __init__(self, port: int, token: str, ca: str) -> None:
        self.port, self.token, self.ca = port, token, ca
        self.conn = self.connect()

    def connect(self, timeout: float | None = 60) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=self.ca)
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json"}
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, payload, headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, json.loads(data) if data else None
            except (http.client.HTTPException, ConnectionError):
                if attempt == 2:
                    raise
                self.conn.close()  # an idle keep-alive connection the server closed
                self.conn = self.connect()
        raise AssertionError("unreachable")


class RunningWatcher:
    """Counts Running pods of the namespace from one watch (in a thread)."""

    def __init__(self, api: Api, resource_version: str) -> None:
        self.api = api
        self.rv = resource_version
        self.running: set[str] = set()
        self.created: set[str] = set()
        self.bound: set[str] = set()
        self.created_at: list[float] = []  # when each pod was first seen, then first seen bound
        self.bound_at: list[float] = []
        self.events = 0
        self.first: float | None = None
        self.last = 0.0
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn = self.api.connect(timeout=None)
        path = f"/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={self.rv}"
        conn.request("GET", path, headers={"authorization": f"Bearer {self.api.token}"})
        resp = conn.getresponse()
        buf = b""
        while True:
            try:
                chunk = resp.read1(1 << 16)
            except (http.client.HTTPException, OSError):
                return  # the server went away (the run is over)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    self._event(json.loads(line))

    def _event(self, ev: dict[str, Any]) -> None:
        pod = ev["object"]
        name = pod["metadata"]["name"]
        now = time.monotonic()
        with self.lock:
            self.events += ev["type"] != "BOOKMARK"
            if ev["type"] != "DELETED":
                self._stages(name, pod, now)
            if ev["type"] != "DELETED" and (pod.get("status") or {}).get("phase") == "Running":
                if name not in self.running:
                    self.running.add(name)
                    self.first = self.first or now
                    self.last = now
            else:
                self.running.discard(name)

    def _stages(self, name: str, pod: dict[str, Any], now: float) -> None:
        if name not in self.created:
            self.created.add(name)
            self.created_at.append(now)
        if name not in self.bound and (pod.get("spec") or {}).get("nodeName"):
            self.bound.add(name)
            self.bound_at.append(now)

    def count(self) -> int:
        with self.lock:
            return len(self.running)


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "scale"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scale", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/app:1.0",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    }


def wait_nodes(api: Api, nodes: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        _, body = api.call("GET", "/api/v1/nodes?limit=1")
        remaining = int((body.get("metadata") or {}).get("remainingItemCount") or 0)
        if len(body.get("items") or []) + remaining >= nodes:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise TimeoutError(f"{nodes} nodes were not registered in {timeout}s")


def run(nodes: int, replicas: int, start_delay: float, timeout: float, split: bool) -> dict[str, Any]:
    sim_flags = ["--simulated-nodes", str(nodes), "--simulated-pod-start-delay", str(start_delay)]
    server = start_server(None, *(["--no-agent"] if split else sim_flags))
    sim = (
        start_simulator(server, nodes, "--simulated-pod-start-delay", str(start_delay))[0] if split else None
    )
    try:
        result = measure(server, sim, nodes, replicas, timeout)
        return {"mode": "split" if split else "up", "pod_start_delay_s": start_delay, **result, **machine()}
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def measure(
    server: Server, sim: subprocess.Popen[str] | None, nodes: int, replicas: int, timeout: float
) -> dict[str, Any]:
    api = Api(server.port, server.token, server.ca)
    nodes_after = wait_nodes(api, nodes, 300)
    api.call(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    _, listing = api.call("GET", f"/api/v1/namespaces/{NS}/pods")
    rv0 = int(listing["metadata"]["resourceVersion"])
    watcher = RunningWatcher(api, listing["metadata"]["resourceVersion"])
    cpu0 = server.cpu_seconds()
    sim_cpu0 = process_cpu_seconds(sim.pid) if sim is not None else 0.0
    t0 = time.monotonic()
    status, _ = api.call("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment(replicas))
    assert status == 201, status
    if not wait_running(watcher, replicas, t0, timeout):
        return {"nodes": nodes, "replicas": replicas, "timed_out_s": timeout, "running": watcher.count()}
    all_running = watcher.last - t0
    available_after = wait_available(api, replicas, t0, timeout)
    cpu_s = server.cpu_seconds() - cpu0
    sim_cpu = (
        {"simulator_cpu_s": round(process_cpu_seconds(sim.pid) - sim_cpu0, 1)} if sim is not None else {}
    )
    _, listing = api.call("GET", f"/api/v1/namespaces/{NS}/pods?limit=1")
    writes = int(listing["metadata"]["resourceVersion"]) - rv0
    return {
        "nodes": nodes,
        "replicas": replicas,
        "nodes_registered_s": round(nodes_after, 2),
        "first_pod_running_s": round((watcher.first or t0) - t0, 2),
        # pipeline stages: when the last pod was created and bound (creates crowding out
        # binds and starts show as a late bound time)
        "all_pods_created_s": round(watcher.created_at[replicas - 1] - t0, 2),
        "all_pods_bound_s": round(watcher.bound_at[replicas - 1] - t0, 2),
        "all_pods_running_s": round(all_running, 2),
        "pods_running_per_s": round(replicas / all_running, 1),
        "deployment_available_s": round(available_after, 2) if available_after else None,
        "server_cpu_s": round(cpu_s, 1),
        "server_cpu_ms_per_pod": round(1000 * cpu_s / replicas, 2),
        # every write the store took meanwhile (global revision), and the pod events the
        # namespace watch saw (create, bind, status: 3 per pod at best)
        "store_writes_per_pod": round(writes / replicas, 2),
        "pod_events_per_pod": round(watcher.events / replicas, 2),
        **sim_cpu,
        "server_rss_mb": round(server.rss_mb()),
        "target_met": all_running <= 30,
    }


def wait_running(watcher: RunningWatcher, replicas: int, t0: float, timeout: float) -> bool:
    """Until ``replicas`` pods are Running (progress every 5 s on stderr); False on time-out."""
    next_report = 5.0
    while watcher.count() < replicas:
        elapsed = time.monotonic() - t0
        if elapsed > timeout:
            return False
        if elapsed >= next_report:
            print(f"{elapsed:6.1f}s running={watcher.count()}", file=sys.stderr, flush=True)
            next_report += 5.0
        time.sleep(0.1)
    return True


def wait_available(api: Api, replicas: int, t0: float, timeout: float) -> float | None:
    """Seconds from ``t0`` until the Deployment reports ``replicas`` available."""
    while time.monotonic() - t0 < timeout:
        _, dep = api.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/scale")
        if (dep.get("status") or {}).get("availableReplicas") == replicas:
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=10000)
    p.add_argument("--start-delay", type=float, default=0.5, help="--simulated-pod-start-delay")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--split", action="store_true", help="simulated nodes from a separate `kubelite simulate`")
    args = p.parse_args()
    print(json.dumps(run(args.nodes, args.replicas, args.start_delay, args.timeout, args.split), indent=2))


if __name__ == "__main__":
    main()
