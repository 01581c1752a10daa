"""End-to-end fixtures: a real ``kubelite up`` process and the real kubectl against it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    data_dir: Path
    port: int
    proc: subprocess.Popen[str]
    cache_dir: Path
    ready_line: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.cache_dir)
        return env

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
        binary: str = KUBECTL,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [binary, "--cache-dir", str(self.cache_dir), *args]
        res = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({res.returncode}):\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}"
            )
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: str | dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.kubectl("apply", "-f", "-", *extra, input=text)

    def token(self) -> str:
        return (self.data_dir / "pki" / "admin.token").read_text().strip()

    def ca(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _pump(proc: subprocess.Popen[str], sink: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line)
        if "ready" in line:
            ready.set()
    ready.set()


def start_cluster(
    data_dir: Path, *extra: str, port: int | None = None, agent: bool = False, network: bool = False
) -> Cluster:
    """A real ``kubelite up``.  Without ``agent=True`` no real node agent runs (API-level tests
    and simulated nodes must not get pods scheduled onto this machine's real runc node).  Agent
    tests get ``--network none`` (loopback-only pods) unless ``network=True``: pod networking
    changes the host's bridges, routes and nftables, so only the networking tests (which run the
    cluster inside a network namespace of their own) and the demo test turn it on."""
    port = port or free_port()
    if not agent and "--no-agent" not in extra:
        extra = (*extra, "--no-agent")
    if agent and not network and "--network" not in extra:
        extra = (*extra, "--network", "none")
    cmd = [
        sys.executable,
        "-m",
        "kubelite.cli",
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    cache = Path(tempfile.mkdtemp(prefix="kubectl-cache-"))
    cluster = Cluster(data_dir, port, proc, cache)
    ready = threading.Event()
    threading.Thread(target=_pump, args=(proc, cluster.output, ready), daemon=True).start()
    if not ready.wait(30) or proc.poll() is not None:
        stop_cluster(cluster)
        raise RuntimeError("kubelite up did not become ready:\n" + "".join(cluster.output))
    cluster.ready_line = next(line for line in cluster.output if "ready" in line)
    return cluster


def stop_cluster(cluster: Cluster, sig: int = signal.SIGTERM) -> int:
    if cluster.proc.poll() is None:
        cluster.proc.send_signal(sig)
        try:
            cluster.proc.wait(20)
        except subprocess.TimeoutExpired:
            cluster.proc.kill()
            cluster.proc.wait(5)
    shutil.rmtree(cluster.cache_dir, ignore_errors=True)
    return cluster.proc.returncode


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("kubelite"))
    yield c
    stop_cluster(c)


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test."""
    name = (
        "t-"
        + request.node.name.lower().replace("_", "-")[:40].strip("-")
        + f"-{int(time.time() * 1000) % 100000}"
    )
    cluster.kubectl("create", "namespace", name)
    yield name
