"""Control-plane CPU at rest with thousands of simulated nodes heartbeating.

Usage:
  python bench/idle_nodes.py [--nodes 5000] [--heartbeat 10] [--warmup 15] [--seconds 60] [--split]
                             [--pyspy FILE]

Default: one ``kubelite up --no-agent --simulated-nodes N`` process (API server,
controllers, scheduler and the simulator together, as users run it; no real node agent);
the CPU reported is the whole process.  With
``--split`` the simulator runs as a separate ``kubelite simulate`` process against
``kubelite up`` and the two are reported separately (``control_plane_cpu_pct`` is then
the API server + controllers alone).  CPU is user+system time of the process over the
measured window, in percent of one core; ``writes_per_s`` is the store's revision rate over
the window (should be ~nodes/heartbeat: a starved process renews less and looks cheaper),
and ``*_ms_per_write`` is each process's CPU milliseconds per write.
``--pyspy FILE`` samples the control-plane process with py-spy (raw format) during the
measured window (and the simulator, with ``--split``, into ``FILE.sim``), to see where
the CPU goes (py-spy runs as its own process, non-blocking).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import Server, machine, process_cpu_seconds, start_server, start_simulator

PROGRESS_EVERY = 2.0


def revision(srv: Server) -> int:
    """The store's current revision (every write bumps it): from a one-item list."""
    import httpx

    with httpx.Client(verify=srv.ca, headers={"Authorization": f"Bearer {srv.token}"}) as c:
        r = c.get(f"{srv.url}/api/v1/namespaces", params={"limit": "1"})
        return int(r.json()["metadata"]["resourceVersion"])


def start_pyspy(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes]:
    """py-spy over the measured window (next to the venv's python, else on PATH)."""
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy") or "py-spy"
    cmd = [exe, "record", "--pid", str(pid), "-r", "50", "-d", str(int(seconds)), "-f", "raw", "-o", out]
    return subprocess.Popen([*cmd, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(srv: Server, pids: dict[str, int], seconds: float, pyspy: str = "") -> dict[str, float]:
    """CPU % of one core per process, and API writes per second (to show the
    heartbeats kept up: 5,000 nodes every 10 s is 500 Lease writes/s)."""
    spies = []
    if pyspy:  # the first process to FILE, the simulator (split mode) to FILE.sim
        for i, pid in enumerate(pids.values()):
            spies.append(start_pyspy(pid, seconds, pyspy + (".sim" if i else "")))
    rev0 = revision(srv)
    before = {k: process_cpu_seconds(p) for k, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - t0
    out = {k: round(100 * (process_cpu_seconds(p) - before[k]) / took, 1) for k, p in pids.items()}
    writes = (revision(srv) - rev0) / took
    for spy in spies:
        spy.wait(60)
    out["writes_per_s"] = round(writes, 1)
    for k in pids:  # CPU milliseconds per API write (nearly all of them Lease renewals)
        out[k.replace("_cpu_pct", "_ms_per_write")] = round(10 * out[k] / writes, 3) if writes else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--heartbeat", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds after registration before measuring")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured window")
    ap.add_argument("--split", action="store_true", help="run the simulator as its own process")
    ap.add_argument("--pyspy", default="", help="write a py-spy raw profile of the control plane here")
    args = ap.parse_args()

    result: dict[str, Any] = {"bench": "idle_nodes", "nodes": args.nodes, "heartbeat_s": args.heartbeat}
    sim: subprocess.Popen[str] | None = None
    if args.split:
        srv = start_server(None, "--no-agent")
        sim, reg = start_simulator(srv, args.nodes, "--simulated-heartbeat", str(args.heartbeat))
        pids = {"control_plane_cpu_pct": srv.proc.pid, "simulator_cpu_pct": sim.pid}
    else:
        sim_args = ["--simulated-nodes", str(args.nodes), "--simulated-heartbeat", str(args.heartbeat)]
        srv = start_server(None, "--no-agent", *sim_args)
        reg = srv.ready_after
        pids = {"process_cpu_pct": srv.proc.pid}
    result["mode"] = "split" if args.split else "all-in-one"
    result["ready_with_nodes_s"] = round(reg, 2)
    try:
        time.sleep(args.warmup)
        result.update(measure(srv, pids, args.seconds, args.pyspy))
        result["measured_s"] = args.seconds
        result["rss_mb"] = round(srv.rss_mb(), 1)
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
    print(json.dumps({**result, **machine()}))


if __name__ == "__main__":
    main()
