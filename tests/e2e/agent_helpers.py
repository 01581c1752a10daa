"""Helpers for the node-agent e2e tests: waiting on pods, reading agent state, cleaning up."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubelite.agent.runtime import cgroups
from kubelite.agent.runtime.util import umount
from tests.e2e.conftest import Cluster

T = TypeVar("T")


def wait_for(
    fn: Callable[[], T | None], timeout: float = 30, what: str = "condition", step: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = cluster.json("get", "pod", "-n", ns, name)
    return out


def cstatus(p: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for s in (p.get("status") or {}).get(key) or []:
        if s["name"] == name:
            return dict(s)
    return {}


def condition(p: dict[str, Any], type_: str) -> str:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return str(c["status"])
    return ""


def events(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    items = cluster.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return list(items)


def event_text(cluster: Cluster, ns: str, name: str) -> str:
    return "\n".join(f"{e['reason']}: {e['message']}" for e in events(cluster, ns, name))


def runc_ids(agent_dir: Path) -> list[str]:
    out = subprocess.run(
        ["runc", "--root", str(agent_dir / "runc"), "list", "-q"], capture_output=True, text=True
    )
    return sorted(out.stdout.split())


def container_pid(agent_dir: Path, cid: str) -> int:
    state = json.loads((agent_dir / "containers" / cid / "state.json").read_text())
    return int(state["pid"])


def cleanup_agent(agent_dir: Path) -> None:
    """Kill and delete every container, unmount rootfs/namespaces, remove netns and cgroups."""
    for cid in runc_ids(agent_dir):
        subprocess.run(["runc", "--root", str(agent_dir / "runc"), "kill", cid, "KILL"], capture_output=True)
        subprocess.run(["runc", "--root", str(agent_dir / "runc"), "delete", "-f", cid], capture_output=True)
    containers = agent_dir / "containers"
    if containers.is_dir():
        for d in containers.iterdir():
            state = d / "state.json"
            with contextlib.suppress(OSError, ValueError, KeyError):
                os.kill(int(json.loads(state.read_text())["shim_pid"]), 9)
            umount(d / "rootfs")
    sandboxes = agent_dir / "sandboxes"
    if sandboxes.is_dir():
        for d in sandboxes.iterdir():
            for t in ("ipc", "uts"):
                umount(d / "ns" / t)
            data = d / "sandbox.json"
            with contextlib.suppress(OSError, ValueError):
                netns = json.loads(data.read_text()).get("netns_path")
                if netns:
                    subprocess.run(["ip", "netns", "del", Path(netns).name], capture_output=True)
    pods = agent_dir / "pods"
    if pods.is_dir():
        for d in pods.glob("*/volumes/kubernetes.io~empty-dir/*"):
            umount(d)
    for base in cgroups.proc_cgroups().values():
        cgroups.remove_tree(base / "kubelite")
