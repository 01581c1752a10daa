"""Helpers for the workload e2e tests (StatefulSets, DaemonSets, corpus workloads).

* :func:`workload_cluster`: ``kubelite up --simulated-nodes 3`` with fast pods;
* :class:`PodWatch`: ``kubectl get pods --watch`` in the background, recording each event;
* :func:`wait_for`: poll with a deadline.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import KUBECTL, Cluster, start_cluster, stop_cluster

SIM_ARGS = (
    "--simulated-nodes",
    "3",
    "--simulated-pod-start-delay",
    "0.2",
    "--simulated-heartbeat",
    "2",
    "--no-agent",  # exactly the 3 simulated nodes, no real node for this host
)


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@contextmanager
def workload_cluster(data_dir: Path, *extra: str) -> Iterator[Cluster]:
    """``kubelite up`` with 3 simulated nodes (the real scheduler and simulator bind and run
    the pods), once its nodes are Ready."""
    cluster = start_cluster(data_dir, *SIM_ARGS, *extra)
    try:
        wait_for("3 ready nodes", lambda: len(ready_nodes(cluster)) == 3)
        yield cluster
    finally:
        stop_cluster(cluster)


def ready_nodes(cluster: Cluster) -> list[str]:
    out = []
    for n in cluster.json("get", "nodes")["items"]:
        conds = {c["type"]: c["status"] for c in (n.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True":
            out.append(n["metadata"]["name"])
    return out


# ---------------------------------------------------------------------------- pods


def pods(cluster: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.json("get", "pods", "-n", ns, "-l", selector)["items"]
    return items


def is_running_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return status.get("phase") == "Running" and ready and not pod["metadata"].get("deletionTimestamp")


def running_by_node(cluster: Cluster, ns: str, selector: str) -> dict[str, str]:
    """Running+Ready pods: name -> node."""
    return {
        p["metadata"]["name"]: p["spec"].get("nodeName", "")
        for p in pods(cluster, ns, selector)
        if is_running_ready(p)
    }


@dataclass
class PodEvent:
    at: float
    type: str
    name: str
    ready: bool
    deleting: bool


@dataclass
class PodWatch:
    """``kubectl get pods -w --output-watch-events`` in the background."""

    cluster: Cluster
    ns: str
    selector: str
    events: list[PodEvent] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> PodWatch:
        template = (
            '{.type}{"|"}{.object.metadata.name}{"|"}'
            '{.object.status.conditions[?(@.type=="Ready")].status}{"|"}'
            '{.object.metadata.deletionTimestamp}{"\\n"}'
        )
        cmd = [
            KUBECTL,
            "--cache-dir",
            str(self.cluster.cache_dir),
            "get",
            "pods",
            "-n",
            self.ns,
            "-l",
            self.selector,
            "--watch",
            "--output-watch-events",
            "-o",
            f"jsonpath={template}",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.cluster.env()
        )
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.strip().split("|")
            if len(parts) < 4:
                continue
            self.events.append(
                PodEvent(time.monotonic(), parts[0], parts[1], parts[2] == "True", bool(parts[3]))
            )

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)

    def first(self, pred: Callable[[PodEvent], bool]) -> PodEvent | None:
        return next((e for e in list(self.events) if pred(e)), None)

    def first_index(self, pred: Callable[[PodEvent], bool]) -> int:
        for i, e in enumerate(list(self.events)):
            if pred(e):
                return i
        return -1


def dump(cluster: Cluster, ns: str) -> str:
    """Diagnostics for a failed assertion."""
    out = cluster.kubectl("get", "all,pvc,controllerrevisions", "-n", ns, "-o", "wide", check=False).stdout
    ev = cluster.kubectl("get", "events", "-n", ns, check=False).stdout
    return out + "\n" + ev
