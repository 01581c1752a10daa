"""A DaemonSet on N nodes: the DaemonSet controller creates one pod per node and the
scheduler binds each to its pinned node (kube-scheduler's scheduler_perf
``SchedulingDaemonset`` shape; anchor: its CI threshold is 390 pods/s).

Against a real ``kubelite up`` (API server, controllers and scheduler in one process):
N Node objects are created through the API (4 cpu, 32Gi, 110 pods, Ready), then one
DaemonSet; the clock runs from the DaemonSet's creation until every one of its N pods is
bound (seen on a watch).  Reported: pods bound per second, and when the controller had
created all pods.

``--controller-only`` runs without the scheduler and times only the DaemonSet controller:
from the DaemonSet's creation until all N pods exist.

Usage: python bench/daemonset_perf.py [--nodes 5000] [--clients 4] [--controller-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from typing import Any

from common import machine, start_server
from scheduler_perf import NS, BoundWatcher, Conn, create_all


def daemonset() -> dict[str, Any]:
    req = {"cpu": "100m", "memory": "500Mi"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "bench-ds", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "bench-ds"}},
            "template": {
                "metadata": {"labels": {"app": "bench-ds"}},
                "spec": {
                    "containers": [
                        {
                            "name": "pause",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"limits": req, "requests": req},
                        }
                    ]
                },
            },
        },
    }


def count_pods(port: int, token: str, ca: str) -> int:
    import http.client
    import ssl

    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
    conn.request(
        "GET",
        f"/api/v1/namespaces/{NS}/pods?limit=1",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    body = json.loads(conn.getresponse().read())
    meta = body.get("metadata") or {}
    return int(meta.get("remainingItemCount", 0)) + len(body.get("items") or [])


def run(nodes: int, clients: int, controller_only: bool) -> dict[str, Any]:
    # no kubelet heartbeats here: keep node lifecycle from tainting the nodes unreachable
    # (and no node agent for this host: exactly N nodes)
    extra = ["--no-scheduler"] if controller_only else []
    srv = start_server(None, "--node-monitor-grace-period", "36000", "--no-agent", *extra)
    try:
        port, token, ca = srv.port, srv.token, srv.ca
        c = Conn(port, token, ca)
        c.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        t_nodes = create_all("node", [f"node-{i}" for i in range(nodes)], clients, port, token, ca)
        watcher = BoundWatcher(port, token, ca)
        time.sleep(1.0)  # let the informers see the last nodes
        created_all: list[float] = []

        def poll_created() -> None:
            while count_pods(port, token, ca) < nodes:
                time.sleep(0.2)
            created_all.append(time.monotonic())

        cpu0 = srv.cpu_seconds()
        t0 = time.monotonic()
        status = c.post(f"/apis/apps/v1/namespaces/{NS}/daemonsets", daemonset())
        if status != 201:
            raise RuntimeError(f"DaemonSet create failed: {status}")
        poller = threading.Thread(target=poll_created, daemon=True)
        poller.start()
        deadline = time.monotonic() + 1200
        if controller_only:
            poller.join(1200)
            took = created_all[0] - t0
            return {
                "bench": "DaemonSet controller alone: N pods created",
                "nodes": nodes,
                "pods_created_seconds": round(took, 2),
                "pods_created_per_second": round(nodes / took, 1),
                "server_cpu_seconds": round(srv.cpu_seconds() - cpu0, 1),
                **machine(),
            }
        while len(watcher.bound) < nodes:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{nodes - len(watcher.bound)} pods not bound")
            time.sleep(0.1)
        last = max(watcher.first_bound.values())
        poller.join(5)
        took = last - t0
        return {
            "bench": "DaemonSet on N nodes (scheduler_perf SchedulingDaemonset shape)",
            "nodes": nodes,
            "node_create_seconds": round(t_nodes, 2),
            "pods_created_seconds": round(created_all[0] - t0, 2) if created_all else None,
            "all_bound_seconds": round(took, 2),
            "pods_bound_per_second": round(nodes / took, 1),
            "server_cpu_seconds": round(srv.cpu_seconds() - cpu0, 1),
            "server_rss_mb": round(srv.rss_mb(), 1),
            **machine(),
        }
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--controller-only", action="store_true", help="no scheduler: time pod creation only")
    args = ap.parse_args()
    print(json.dumps(run(args.nodes, args.clients, args.controller_only), indent=2))


if __name__ == "__main__":
    main()
