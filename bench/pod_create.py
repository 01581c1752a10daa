"""Pod creates over HTTPS from N concurrent clients against a real `kubelite up`.

Each client is its own process with one keep-alive HTTPS connection (http.client), so the
load generator does not share the server's event loop.  Also runs bench/store_raw.py-style
raw limit in the same run for the ratio.

Usage: python bench/pod_create.py [--clients 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import ssl
import subprocess
import sys
import time
from pathlib import Path

import orjson
from common import machine, percentile, pod, start_server


def client(idx: int, port: int, token: str, ca: str, seconds: float, q: mp.Queue) -> None:  # type: ignore[type-arg]
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    lat: list[float] = []
    errors = 0
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        body = orjson.dumps(pod(f"p-{idx}-{n}"))
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/namespaces/default/pods", body, headers)
        resp = conn.getresponse()
        resp.read()
        lat.append(time.perf_counter() - t0)
        if resp.status != 201:
            errors += 1
        n += 1
    q.put((lat, errors))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    srv = start_server()
    try:
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [
            mp.Process(target=client, args=(i, srv.port, srv.token, srv.ca, args.seconds, q))
            for i in range(args.clients)
        ]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        results = [q.get() for _ in procs]
        wall = time.monotonic() - t0
        for p in procs:
            p.join()
        lat = [x for r in results for x in r[0]]
        errors = sum(r[1] for r in results)
        rate = len(lat) / wall
    finally:
        srv.stop()
    raw = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("store_raw.py"))], capture_output=True, text=True
    )
    raw_line = raw.stdout.strip().splitlines()[-1] if raw.stdout.strip() else "{}"
    raw_data = json.loads(raw_line)
    raw_rate = float(raw_data.get("batched_objects_per_s") or 0)
    print(
        json.dumps(
            {
                "bench": "pod_create_https",
                "clients": args.clients,
                "creates": len(lat),
                "errors": errors,
                "creates_per_s": round(rate, 1),
                "p50_ms": round(percentile(lat, 50) * 1000, 2),
                "p99_ms": round(percentile(lat, 99) * 1000, 2),
                "raw_sqlite_batched_per_s": raw_rate,
                "ratio_to_raw": round(rate / raw_rate, 3) if raw_rate else None,
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
