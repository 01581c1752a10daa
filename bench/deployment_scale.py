"""A Deployment of 10,000 replicas on 1,000 simulated nodes: time until every pod is Running.

Against a real ``kubelite up --simulated-nodes N`` (API server, controllers, scheduler and
simulated kubelets in one process):

1. wait until the N simulated nodes are registered;
2. create one Deployment with R replicas (one container, 10m cpu / 16Mi requests);
3. follow the namespace's pods on one watch and report the time from the create until R
   pods are ``Running`` (the target: <= 30 s for 10,000 pods on 1,000 nodes), plus the
   time until the Deployment reports R available replicas (``kubectl rollout status``
   would return then).

Usage: python bench/deployment_scale.py [--nodes 1000] [--replicas 10000]
       [--start-delay 0.5] [--timeout 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import threading
import time
from typing import Any

from common import machine, start_server

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
            if ev["type"] != "DELETED" and (pod.get("status") or {}).get("phase") == "Running":
                if name not in self.running:
                    self.running.add(name)
                    self.first = self.first or now
                    self.last = now
            else:
                self.running.discard(name)

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


def run(nodes: int, replicas: int, start_delay: float, timeout: float) -> dict[str, Any]:
    server = start_server(
        None, "--simulated-nodes", str(nodes), "--simulated-pod-start-delay", str(start_delay)
    )
    try:
        api = Api(server.port, server.token, server.ca)
        nodes_after = wait_nodes(api, nodes, 300)
        api.call(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        )
        _, listing = api.call("GET", f"/api/v1/namespaces/{NS}/pods")
        watcher = RunningWatcher(api, listing["metadata"]["resourceVersion"])
        cpu0 = server.cpu_seconds()
        t0 = time.monotonic()
        status, _ = api.call("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment(replicas))
        assert status == 201, status
        next_report = 5.0
        while watcher.count() < replicas:
            elapsed = time.monotonic() - t0
            if elapsed > timeout:
                return {
                    "nodes": nodes,
                    "replicas": replicas,
                    "timed_out_s": timeout,
                    "running": watcher.count(),
                }
            if elapsed >= next_report:
                print(f"{elapsed:6.1f}s running={watcher.count()}", file=sys.stderr, flush=True)
                next_report += 5.0
            time.sleep(0.1)
        all_running = watcher.last - t0
        available_after = None
        while time.monotonic() - t0 < timeout:
            _, dep = api.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/scale")
            if (dep.get("status") or {}).get("availableReplicas") == replicas:
                available_after = time.monotonic() - t0
                break
            time.sleep(0.2)
        return {
            "nodes": nodes,
            "replicas": replicas,
            "pod_start_delay_s": start_delay,
            "nodes_registered_s": round(nodes_after, 2),
            "first_pod_running_s": round((watcher.first or t0) - t0, 2),
            "all_pods_running_s": round(all_running, 2),
            "pods_running_per_s": round(replicas / all_running, 1),
            "deployment_available_s": round(available_after, 2) if available_after else None,
            "server_cpu_s": round(server.cpu_seconds() - cpu0, 1),
            "server_rss_mb": round(server.rss_mb()),
            "target_met": all_running <= 30,
            **machine(),
        }
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=10000)
    p.add_argument("--start-delay", type=float, default=0.5, help="--simulated-pod-start-delay")
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args()
    print(json.dumps(run(args.nodes, args.replicas, args.start_delay, args.timeout), indent=2))


if __name__ == "__main__":
    main()
