"""Clean shutdown and restart of a real ``kubelite up``, as kube-apiserver does it.

SIGTERM (and SIGINT) finish the shutdown (controllers and store closed) and exit 0 without
alarming output; started again on the same data dir, the cluster has the same objects, the same
CA and credentials, and resource versions keep growing from where they were.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e

ALARMING = re.compile(r"traceback|exception|error|warning|critical|panic|killed", re.IGNORECASE)

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: keep}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: keep, labels: {tier: config}}
data: {mode: durable}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: keep}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"""

GADGET = """
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g1, namespace: keep}
spec: {size: 3}
"""


def _rv_of(obj: dict[str, object]) -> int:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return int(meta["resourceVersion"])


def _stop_quietly(cluster: Cluster, sig: signal.Signals) -> None:
    """Stop with ``sig``: exit code 0 and nothing alarming printed during the shutdown."""
    printed = len(cluster.output)
    code = stop_cluster(cluster, sig)
    time.sleep(0.3)  # let the reader thread drain the last lines
    shutdown_output = "".join(cluster.output[printed:])
    assert code == 0, "".join(cluster.output)
    assert not ALARMING.search(shutdown_output), shutdown_output


def _integrity_ok(data_dir: Path) -> None:
    con = sqlite3.connect(data_dir / "state.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def test_signals_shut_down_cleanly_and_restart_resumes(tmp_path: Path) -> None:
    """SIGTERM stops the first run, SIGINT (Ctrl-C) the second."""
    data_dir = tmp_path / "data"
    first = start_cluster(data_dir)
    try:
        first.kubectl("apply", "-f", "-", input=MANIFESTS)
        first.kubectl("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=20s")
        first.kubectl("apply", "-f", "-", input=GADGET)
        before = first.json("get", "configmap,deployment,gadget", "-n", "keep")
        ca = first.ca().read_bytes()
        token = first.token()
        kubeconfig = yaml.safe_load(first.kubeconfig.read_text())
    finally:
        _stop_quietly(first, signal.SIGTERM)
    _integrity_ok(data_dir)

    second = start_cluster(data_dir, port=first.port)
    try:
        assert second.ca().read_bytes() == ca
        assert second.token() == token
        assert yaml.safe_load(second.kubeconfig.read_text()) == kubeconfig
        after = second.json("get", "configmap,deployment,gadget", "-n", "keep")
        by_name = {(i["kind"], i["metadata"]["name"]): i for i in after["items"]}
        for item in before["items"]:
            got = by_name[(item["kind"], item["metadata"]["name"])]
            assert got["metadata"]["uid"] == item["metadata"]["uid"]
            # controllers may still have written the Deployment's status before the shutdown
            assert _rv_of(got) >= _rv_of(item)
            if item["kind"] != "Deployment":
                assert got["metadata"]["resourceVersion"] == item["metadata"]["resourceVersion"]
            assert got.get("spec") == item.get("spec") and got.get("data") == item.get("data")
        assert {k for k, _ in by_name} == {"ConfigMap", "Deployment", "Gadget"}
        newest = max(_rv_of(i) for i in after["items"])
        second.kubectl("label", "configmap", "settings", "-n", "keep", "restarted=yes")
        assert _rv_of(second.json("get", "configmap", "settings", "-n", "keep")) > newest
        assert second.kubectl("get", "gadgets", "-n", "keep", "-o", "name").stdout.split() == [
            "gadget.example.com/g1"
        ]
    finally:
        _stop_quietly(second, signal.SIGINT)
    _integrity_ok(data_dir)
