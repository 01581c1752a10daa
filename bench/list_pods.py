"""LIST of N pods from a real `kubelite up`, as plain JSON and as a Table (what kubectl asks for).

Loads N pods through the API (HTTPS, several client processes), then times full LIST
responses (request sent until the last byte is read) over one keep-alive connection:
``GET /api/v1/namespaces/default/pods`` with ``Accept: application/json`` and with kubectl's
Table ``Accept`` header.  Also reports a kubectl-style paged walk (``limit=500``).

Usage: python bench/list_pods.py [--pods 10000] [--runs 7]
Prints one JSON line (median / min / max seconds per representation).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import ssl
import statistics
import time

import orjson
from common import Server, machine, pod, start_server

TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
PATH = "/api/v1/namespaces/default/pods"


def connect(srv_port: int, ca: str) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", srv_port, context=ssl.create_default_context(cafile=ca))


def loader(idx: int, count: int, port: int, token: str, ca: str) -> None:
    conn = connect(port, ca)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for n in range(count):
        conn.request("POST", PATH, orjson.dumps(pod(f"list-{idx}-{n:05d}")), headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 201:
            raise RuntimeError(f"create failed: {resp.status}")


def load(srv: Server, pods: int, procs: int = 8) -> float:
    per = pods // procs
    workers = [mp.Process(target=loader, args=(i, per, srv.port, srv.token, srv.ca)) for i in range(procs)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode:
            raise RuntimeError("loader failed")
    return time.monotonic() - t0


def settle(srv: Server, limit: float = 120.0) -> None:
    """Wait until the server is idle (its controllers have caught up with the load)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        before = srv.cpu_seconds()
        time.sleep(1.0)
        if srv.cpu_seconds() - before < 0.05:
            return


def timed_get(conn: http.client.HTTPSConnection, path: str, headers: dict[str, str]) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    took = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    return took, body


def paged(conn: http.client.HTTPSConnection, headers: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    cont, rows = "", 0
    while True:
        path = f"{PATH}?limit=500" + (f"&continue={cont}" if cont else "")
        _, body = timed_get(conn, path, headers)
        doc = json.loads(body)
        rows += len(doc.get("rows") or doc.get("items") or [])
        cont = doc["metadata"].get("continue", "")
        if not cont:
            return time.perf_counter() - t0, rows


def stats(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


def measure(srv: Server, pods: int, runs: int) -> dict[str, object]:
    conn = connect(srv.port, srv.ca)
    auth = {"Authorization": f"Bearer {srv.token}"}
    json_h = {**auth, "Accept": "application/json"}
    table_h = {**auth, "Accept": TABLE_ACCEPT}
    json_t, table_t, sizes = [], [], {}
    json_cpu, table_cpu = [], []
    for _ in range(runs):
        cpu0 = srv.cpu_seconds()
        took, body = timed_get(conn, PATH, json_h)
        json_cpu.append(srv.cpu_seconds() - cpu0)
        json_t.append(took)
        sizes["json_bytes"] = len(body)
        cpu0 = srv.cpu_seconds()
        took, body = timed_get(conn, PATH, table_h)
        table_cpu.append(srv.cpu_seconds() - cpu0)
        table_t.append(took)
        sizes["table_bytes"] = len(body)
    doc = json.loads(body)
    if len(doc["rows"]) != pods:
        raise RuntimeError(f"table has {len(doc['rows'])} rows, expected {pods}")
    cpu0 = srv.cpu_seconds()
    paged_t, rows = paged(conn, table_h)
    paged_cpu = srv.cpu_seconds() - cpu0
    return {
        "json": stats(json_t),
        "table": stats(table_t),
        # server CPU (user + system, all threads) per complete LIST, clock-tick resolution
        "json_server_cpu_s": stats(json_cpu),
        "table_server_cpu_s": stats(table_cpu),
        "table_paged_500_server_cpu_s": round(paged_cpu, 3),
        "table_paged_500_s": round(paged_t, 3),
        "table_paged_rows": rows,
        **sizes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--server-args",
        default="--no-scheduler",
        help="extra arguments of kubelite up (default --no-scheduler: with no nodes the scheduler "
        "would write a status update and an Event for every pod)",
    )
    args = ap.parse_args()
    srv = start_server(None, *args.server_args.split())
    try:
        load_s = load(srv, args.pods)
        settle(srv)
        result = measure(srv, args.pods, args.runs)
        rss = srv.rss_mb()
    finally:
        srv.stop()
    print(
        json.dumps(
            {
                "bench": "list_pods",
                "command": f"kubelite up {args.server_args}",
                "pods": args.pods,
                "load_s": round(load_s, 1),
                **result,
                "server_rss_mb": round(rss, 1),
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
