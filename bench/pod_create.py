"""Pod creates over HTTPS from N concurrent clients against a real `kubelite up`.

Two load generators, each against a fresh server:

* ``python``: N client processes, each with one keep-alive HTTPS connection (http.client);
* ``wrk``: the C load generator (Debian package ``wrk``) with N keep-alive connections on two
  threads and a Lua script that gives every pod a unique name; it steals far less CPU from
  the server on a small machine.

Every create is a full ``POST /api/v1/namespaces/default/pods`` (parse, field validation,
defaults, validation, managedFields, durable group commit, JSON reply).  The raw limit of
the same machine is measured in the same run with bench/store_raw.py (serialising the same
objects and inserting them into SQLite in durable batches) for the ratio.

Usage: python bench/pod_create.py [--clients 8] [--seconds 10] [--client python|wrk|both]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from common import Server, machine, percentile, pod, start_server

PATH = "/api/v1/namespaces/default/pods"

WRK_SCRIPT = """
local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
function init(args)
  n = 0
  body_head = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"wrk-' .. tid .. '-'
  body_tail = '",BODY_TAIL'
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer TOKEN"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
end
function request()
  n = n + 1
  return wrk.format(nil, "PATH", nil, body_head .. n .. body_tail)
end
"""


# ---------------------------------------------------------------------------- python clients


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
        conn.request("POST", PATH, body, headers)
        resp = conn.getresponse()
        resp.read()
        lat.append(time.perf_counter() - t0)
        if resp.status != 201:
            errors += 1
        n += 1
    q.put((lat, errors))


def run_python(srv: Server, clients: int, seconds: float) -> dict[str, Any]:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [
        mp.Process(target=client, args=(i, srv.port, srv.token, srv.ca, seconds, q)) for i in range(clients)
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    wall = time.monotonic() - t0
    for p in procs:
        p.join()
    lat = [x for r in results for x in r[0]]
    return {
        "creates": len(lat),
        "errors": sum(r[1] for r in results),
        "creates_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
    }


# ---------------------------------------------------------------------------- wrk


def _wrk_script(token: str) -> str:
    sample = orjson.dumps(pod("x")).decode()
    tail = sample.split('"name":"x",', 1)[1]  # everything after the name
    return WRK_SCRIPT.replace("TOKEN", token).replace("PATH", PATH).replace("BODY_TAIL'", tail + "'")


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return 0.0
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(srv: Server, clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_wrk_script(srv.token))
        script = f.name
    cmd = [
        "wrk",
        "-t2",
        f"-c{clients}",
        f"-d{int(seconds)}s",
        "--latency",
        "-s",
        script,
        f"{srv.url}{PATH}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    Path(script).unlink()
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    return {
        "creates": total,
        "errors": int(bad.group(1)) if bad else 0,
        "creates_per_s": round(rate, 1),
        "p50_ms": round(_ms(pct.get("50", "")), 2),
        "p99_ms": round(_ms(pct.get("99", "")), 2),
    }


# ---------------------------------------------------------------------------- main


def measured(kind: str, clients: int, seconds: float, command: list[str]) -> dict[str, Any]:
    srv = start_server(None, *command[1:], command=command[0])
    try:
        before = srv.cpu_times()
        result = (run_wrk if kind == "wrk" else run_python)(srv, clients, seconds)
        after = srv.cpu_times()
        user, system = after[0] - before[0], after[1] - before[1]
        result["server_cpu_us_per_create"] = round((user + system) / max(1, result["creates"]) * 1e6)
        result["server_cpu_user_share"] = round(user / max(1e-9, user + system), 2)
        result["server_rss_mb"] = round(srv.rss_mb(), 1)
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
    return result


def raw_limit() -> dict[str, Any]:
    raw = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("store_raw.py"))], capture_output=True, text=True
    )
    lines = raw.stdout.strip().splitlines()
    data: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--client", choices=("python", "wrk", "both"), default="both")
    ap.add_argument(
        "--command",
        default="up --no-scheduler",
        help="what to run (default 'up --no-scheduler': API server, store and controllers; "
        "'server': the API server alone; 'up': with the scheduler too, which then tries to place "
        "every pod on a cluster without nodes and writes a status update and an Event for each)",
    )
    args = ap.parse_args()
    kinds = ["python", "wrk"] if args.client == "both" else [args.client]
    if "wrk" in kinds and shutil.which("wrk") is None:
        kinds.remove("wrk")
    results = {
        f"{kind}_clients": measured(kind, args.clients, args.seconds, args.command.split()) for kind in kinds
    }
    raw = raw_limit()
    raw_rate = float(raw.get("batched_objects_per_s") or 0)
    for r in results.values():
        r["ratio_to_raw"] = round(r["creates_per_s"] / raw_rate, 3) if raw_rate else None
    print(
        json.dumps(
            {
                "bench": "pod_create_https",
                "command": f"kubelite {args.command}",
                "clients": args.clients,
                "seconds": args.seconds,
                **results,
                "raw_sqlite_batched_per_s": raw_rate,
                "raw_sqlite_one_fsync_per_write_per_s": raw.get("single_commit_objects_per_s"),
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
