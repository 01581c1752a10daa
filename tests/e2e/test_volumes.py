"""Persistent volumes end to end: the default ``local-path`` StorageClass provisions a
directory under the data dir for a WaitForFirstConsumer claim once its pod is scheduled;
a static PV binds to a matching claim; deleting the claim releases and reclaims."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.e2e.lifecycle_helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("volumes"), "--simulated-nodes", "3")
    yield c
    stop_cluster(c)


def _claim(name: str, **spec: Any) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec},
    }
    return yaml.safe_dump(body)


def _phase(c: Cluster, kind: str, name: str, ns: str = "default") -> str:
    args = ["get", kind, name] + (["-n", ns] if kind != "pv" else [])
    res = c.kubectl(*args, "-o", "jsonpath={.status.phase}", check=False)
    return res.stdout if res.returncode == 0 else ""


def test_local_path_provisioning(sim: Cluster) -> None:
    sc = sim.kubectl("get", "storageclass", "--no-headers").stdout
    assert "local-path (default)" in sc and "kubelite.io/local-path" in sc and "WaitForFirstConsumer" in sc
    sim.kubectl("create", "namespace", "vol")
    sim.kubectl("apply", "-n", "vol", "-f", "-", input=_claim("data"))
    assert sim.json("get", "pvc", "data", "-n", "vol")["spec"]["storageClassName"] == "local-path"
    wait_for("Pending claim", lambda: _phase(sim, "pvc", "data", "vol") == "Pending")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "user"},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1.27", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}
            ],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }
    sim.kubectl("apply", "-n", "vol", "-f", "-", input=yaml.safe_dump(pod))
    wait_for("Bound claim", lambda: _phase(sim, "pvc", "data", "vol") == "Bound")
    claim = sim.json("get", "pvc", "data", "-n", "vol")
    node = claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]
    pv = sim.json("get", "pv", claim["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["name"] == "data"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term["values"] == [node]
    path = Path(pv["spec"]["hostPath"]["path"])
    assert path.is_dir() and path.parent == sim.data_dir.resolve() / "storage"
    wait_for(
        "pod on the volume's node",
        lambda: sim.json("get", "pod", "user", "-n", "vol")["spec"].get("nodeName") == node,
    )

    sim.kubectl("delete", "pod", "user", "-n", "vol", "--wait=true")
    sim.kubectl("delete", "pvc", "data", "-n", "vol")
    wait_for("volume deleted", lambda: _phase(sim, "pv", pv["metadata"]["name"]) == "" and not path.exists())


def test_static_volume_binds_and_is_released(sim: Cluster) -> None:
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "manual-5g"},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": "/tmp/manual-5g"},
        },
    }
    sim.kubectl("apply", "-f", "-", input=yaml.safe_dump(pv))
    wait_for("Available volume", lambda: _phase(sim, "pv", "manual-5g") == "Available")
    sim.kubectl("apply", "-n", "default", "-f", "-", input=_claim("manual", storageClassName="manual"))
    wait_for("Bound", lambda: _phase(sim, "pvc", "manual") == "Bound")
    row = sim.kubectl("get", "pvc", "manual", "--no-headers").stdout.split()
    assert row[:4] == ["manual", "Bound", "manual-5g", "5Gi"]
    sim.kubectl("delete", "pvc", "manual")
    wait_for("Released", lambda: _phase(sim, "pv", "manual-5g") == "Released")
