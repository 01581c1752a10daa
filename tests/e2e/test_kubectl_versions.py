"""The smoke subset (apply, get with Tables, patch, delete, explain) with kubectl 1.28 and 1.33.

The google-cloud-cli installation ships the versioned binaries the ``kubectl`` dispatcher picks
from; they are invoked directly so the server-version-based dispatch is bypassed. The expected
columns are what these kubectl versions print against a real 1.32 cluster (the columns come from
the server's Table, so they are the same for both clients).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.e2e.conftest import SDK_BIN, Cluster

pytestmark = pytest.mark.e2e

VERSIONS = {"1.28": SDK_BIN / "kubectl.1.28", "1.33": SDK_BIN / "kubectl.1.33"}

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  a: "1"
  b: "2"
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: lone
spec:
  containers:
  - name: c
    image: busybox:1.36
"""


@pytest.fixture(params=sorted(VERSIONS), ids=lambda v: f"kubectl-{v}")
def binary(request: pytest.FixtureRequest) -> str:
    path = VERSIONS[request.param]
    assert path.exists(), f"{path} is missing from the google-cloud-cli installation"
    return str(path)


@pytest.fixture
def ns(cluster: Cluster, binary: str) -> str:
    """A fresh namespace per test and kubectl version (the shared fixture's name would carry the
    parametrize id's brackets)."""
    name = f"v{binary.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def _run(cluster: Cluster, binary: str, *args: str, stdin: str | None = None) -> str:
    return cluster.kubectl(*args, input=stdin, binary=binary).stdout


def test_client_version_is_the_one_asked_for(cluster: Cluster, binary: str) -> None:
    out = json.loads(_run(cluster, binary, "version", "-o", "json"))
    want = binary.rsplit(".", 2)[-2:]
    assert out["clientVersion"]["minor"].rstrip("+") == want[1]
    assert out["serverVersion"]["gitVersion"].startswith("v1.32.")


def test_apply_get_patch_delete(cluster: Cluster, binary: str, ns: str) -> None:
    out = _run(cluster, binary, "apply", "-n", ns, "-f", "-", stdin=MANIFEST).splitlines()
    assert out == ["deployment.apps/web created", "service/web created", "configmap/web-config created"]
    out = _run(cluster, binary, "apply", "-n", ns, "-f", "-", stdin=MANIFEST).splitlines()
    assert out == ["deployment.apps/web unchanged", "service/web unchanged", "configmap/web-config unchanged"]
    changed = MANIFEST.replace("replicas: 2", "replicas: 3")
    out = _run(cluster, binary, "apply", "-n", ns, "-f", "-", stdin=changed).splitlines()
    assert out[0] == "deployment.apps/web configured"

    rows = _run(cluster, binary, "get", "deploy", "-n", ns).splitlines()
    assert rows[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1].split()[0] == "web" and rows[1].split()[1].endswith("/3")
    wide = _run(cluster, binary, "get", "deploy", "-n", ns, "-o", "wide").splitlines()
    assert wide[0].split() == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert wide[1].split()[5:] == ["nginx", "nginx:1.27", "app=web"]
    svc = _run(cluster, binary, "get", "svc", "web", "-n", ns).splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1].split()[:2] == ["web", "ClusterIP"] and svc[1].split()[3:5] == ["<none>", "80/TCP"]
    cm = _run(cluster, binary, "get", "cm", "web-config", "-n", ns).splitlines()
    assert cm[0].split() == ["NAME", "DATA", "AGE"] and cm[1].split()[:2] == ["web-config", "2"]
    listed = _run(cluster, binary, "get", "deploy,svc,cm", "-n", ns, "-o", "name").split()
    assert {"deployment.apps/web", "service/web", "configmap/web-config"} <= set(listed)

    _run(cluster, binary, "apply", "-n", ns, "-f", "-", stdin=POD)
    pods = _run(cluster, binary, "get", "pods", "-n", ns, "-o", "wide").splitlines()
    assert pods[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    assert any(line.split()[0] == "lone" for line in pods[1:])

    out = _run(cluster, binary, "patch", "deploy", "web", "-n", ns, "-p", '{"spec":{"replicas":1}}')
    assert out.strip() == "deployment.apps/web patched"
    out = _run(
        cluster, binary, "patch", "cm", "web-config", "-n", ns, "--type=merge", "-p", '{"data":{"c":"3"}}'
    )
    assert out.strip() == "configmap/web-config patched"
    out = _run(
        cluster,
        binary,
        "patch",
        "svc",
        "web",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"add","path":"/metadata/labels","value":{"patched":"yes"}}]',
    )
    assert out.strip() == "service/web patched"
    dep = json.loads(_run(cluster, binary, "get", "deploy", "web", "-n", ns, "-o", "json"))
    assert dep["spec"]["replicas"] == 1
    assert _run(cluster, binary, "get", "cm", "web-config", "-n", ns, "-o", "jsonpath={.data.c}") == "3"
    assert "patched=yes" in _run(cluster, binary, "get", "svc", "web", "-n", ns, "--show-labels")

    out = _run(cluster, binary, "delete", "-n", ns, "-f", "-", stdin=MANIFEST).splitlines()
    assert out == [
        'deployment.apps "web" deleted',
        'service "web" deleted',
        'configmap "web-config" deleted',
    ]
    out = _run(cluster, binary, "delete", "pod", "lone", "-n", ns, "--grace-period=0", "--force")
    assert 'pod "lone" force deleted' in out
    res = cluster.kubectl("get", "deploy", "web", "-n", ns, binary=binary, check=False)
    assert res.returncode != 0 and 'deployments.apps "web" not found' in res.stderr


def test_explain(cluster: Cluster, binary: str) -> None:
    out = _run(cluster, binary, "explain", "deployment.spec.strategy")
    assert "KIND:" in out and "Deployment" in out and "VERSION:" in out and "v1" in out
    assert "rollingUpdate" in out and "type" in out
    out = _run(cluster, binary, "explain", "pods.spec.containers.image")
    assert "image" in out and "<string>" in out
    out = _run(cluster, binary, "explain", "configmap", "--recursive")
    assert "binaryData" in out and "metadata" in out


def test_unknown_version_is_not_served_to_old_clients(cluster: Cluster, binary: str, ns: str) -> None:
    old = MANIFEST.split("---")[0].replace("apps/v1", "extensions/v1beta1")
    res = subprocess.run(
        [binary, "--cache-dir", str(cluster.cache_dir), "apply", "-n", ns, "-f", "-"],
        input=old,
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=60,
    )
    assert res.returncode != 0
    assert 'no matches for kind "Deployment" in version "extensions/v1beta1"' in res.stderr
