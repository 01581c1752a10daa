"""Shared helpers for the benchmark scripts: start a real ``kubelite up`` and talk to it."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[str]
    data_dir: Path
    port: int
    ready_after: float

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "pki" / "admin.token").read_text().strip()

    @property
    def ca(self) -> str:
        return str(self.data_dir / "pki" / "ca.crt")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        user, system = self.cpu_times()
        return user + system

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the server process, all threads."""
        return process_cpu_times(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def process_cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid``, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def process_cpu_seconds(pid: int) -> float:
    return sum(process_cpu_times(pid))


def start_simulator(srv: Server, nodes: int, *flags: str) -> tuple[subprocess.Popen[str], float]:
    """``kubelite simulate --nodes N [flags]`` against ``srv``; (process, seconds until ready)."""
    kubeconfig = str(srv.data_dir / "kubeconfig.yaml")
    cmd = [
        sys.executable,
        "-m",
        "kubelite.cli",
        "simulate",
        "--kubeconfig",
        kubeconfig,
        "--nodes",
        str(nodes),
    ]
    return spawn_until_ready([*cmd, *flags], 600, "simulator")


def spawn_until_ready(cmd: list[str], timeout: float, what: str) -> tuple[subprocess.Popen[str], float]:
    """Start ``cmd`` and wait for its line containing ``ready``; returns (process, seconds).
    A process that fails or times out is killed before the error is raised."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()
    out: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if "ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or proc.poll() is not None:
        proc.kill()
        raise RuntimeError(f"{what} did not start:\n" + "".join(out))
    return proc, time.monotonic() - t0


def start_server(data_dir: Path | None = None, *extra: str, command: str = "up") -> Server:
    """``kubelite <command>`` (``up``: the all-in-one cluster; ``server``: the API server
    alone) on a fresh data dir and a free port, once it printed its ready line."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="kubelite-bench-"))
    port = free_port()
    if command == "up" and not {"--network", "--no-agent"} & set(extra):
        # pod networking changes the host's bridges, routes and nftables: benches that need it
        # ask for it (and run inside a network namespace of their own)
        extra = (*extra, "--network", "none")
    # KUBELITE_BENCH_PROFILE=FILE: run the server under cProfile (main thread: the event
    # loop), stats written to FILE when it exits
    profile = os.environ.get("KUBELITE_BENCH_PROFILE")
    cmd = [
        sys.executable,
        *(["-m", "cProfile", "-o", profile] if profile else []),
        "-m",
        "kubelite.cli",
        command,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        *extra,
    ]
    proc, took = spawn_until_ready(cmd, 60, "server")
    return Server(proc, data_dir, port, took)


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict[str, Any]:
    """Where the numbers came from, with the load average at the end of the run (other
    processes on the machine compete for the same cores)."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "loadavg_1m": os.getloadavg()[0],
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def pod(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench", "idx": name[-1]}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/bench:1.0",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "MODE", "value": "bench"}],
                }
            ]
        },
    }
