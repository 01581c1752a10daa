"""``kubelite up`` with full pod networking (agent + CNI + proxy + NetworkPolicy + DNS): time from
spawning the process to the first ``/healthz`` answer and to its ready line.

The node is a network namespace this script creates (``tests/e2e/netns_helpers.create_host``), so
the machine's own network is never touched; everything is removed afterwards.
Usage (root, from the repository root): ``python bench/startup_network.py [--runs 5]``.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the e2e netns helpers

from common import machine, percentile
from tests.e2e.conftest import free_port
from tests.e2e.netns_helpers import HostNetns, as_host, create_host, force_cleanup


def _healthz(url: str, ctx: ssl.SSLContext) -> bool:
    try:
        urllib.request.urlopen(url, context=ctx, timeout=0.5).read()
    except OSError:
        return False
    return True


def one_run(host: HostNetns, data: Path) -> tuple[float, float]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    port = free_port()
    argv = [sys.executable, "-m", "kubelite.cli", "up", "--data-dir", str(data), "--port", str(port)]
    argv += ["--bind", host.ip, "--node-ip", host.ip]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        as_host(host.name, *argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        while not _healthz(f"https://{host.ip}:{port}/healthz", ctx):
            if time.monotonic() - t0 > 30 or proc.poll() is not None:
                raise RuntimeError("kubelite up did not answer")
            time.sleep(0.005)
        api = time.monotonic() - t0
        assert proc.stdout is not None
        for line in proc.stdout:
            if " ready in " in line:
                return api, time.monotonic() - t0
        raise RuntimeError("kubelite up ended without its ready line")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    api: list[float] = []
    ready: list[float] = []
    for _ in range(args.runs):
        host = create_host()
        data = Path(tempfile.mkdtemp(prefix="kubelite-bench-")) / "data"
        try:
            a, r = one_run(host, data)
            api.append(a)
            ready.append(r)
        finally:
            force_cleanup(data / "agent")
            host.delete()
    print(
        json.dumps(
            {
                "bench": "startup_network",
                "runs": args.runs,
                "api_answers_median_s": round(percentile(api, 50), 3),
                "api_answers_min_s": round(min(api), 3),
                "api_answers_max_s": round(max(api), 3),
                "ready_line_median_s": round(percentile(ready, 50), 3),
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
