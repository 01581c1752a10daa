"""A real image registry for tests: Debian's ``docker-registry`` on 127.0.0.1 with its own config."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT"
    proc: subprocess.Popen[bytes]
    root: Path

    def ref(self, repo: str, tag: str) -> str:
        return f"{self.host}/{repo}:{tag}"


CONFIG = """version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{addr: {addr}}}
"""


@contextmanager
def running_registry(workdir: Path) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    port = _free_port()
    root = workdir / "registry-data"
    root.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "registry.yml"
    cfg.write_text(CONFIG.format(root=root, addr=f"127.0.0.1:{port}"))
    log = (workdir / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.02)
        yield Registry(f"127.0.0.1:{port}", proc, root)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
