"""Helpers for the node-lifecycle, drain, endpoints, volume and HPA end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.e2e.conftest import Cluster

Obj = dict[str, Any]


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def deployment(name: str, replicas: int, cpu: str = "100m", annotations: dict[str, str] | None = None) -> str:
    template_meta: Obj = {"labels": {"app": name}}
    if annotations:
        template_meta["annotations"] = annotations
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {"requests": {"cpu": cpu}},
                        }
                    ]
                },
            },
        },
    }
    return yaml.safe_dump(doc)


def is_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def ready_pods(c: Cluster, ns: str, selector: str) -> list[Obj]:
    items: list[Obj] = c.json("get", "pods", "-n", ns, "-l", selector)["items"]
    return [p for p in items if is_ready(p)]


def node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")
