"""Pod-like objects for the store benches (about 1.3 KB of JSON each)."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from typing import Any


def pod(i: int) -> dict[str, Any]:
    name = f"bench-{i:07d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"6f1c2a1e-0000-4000-8000-{i:012d}",
            "resourceVersion": str(i + 1),
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": "bench", "tier": "backend", "pod-template-hash": "5d8f7c9b6"},
            "annotations": {"kubelite.io/bench": "true"},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/bench/app:1.2.3",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": "MODE", "value": "bench"}],
                    "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    return {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
