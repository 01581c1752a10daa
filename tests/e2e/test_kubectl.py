"""The real kubectl (1.32 through the dispatcher) against a real ``kubelite up`` process."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import yaml

from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

DEPLOYMENT = """
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
"""


def test_version_reports_1_32(cluster: Cluster) -> None:
    out = cluster.json("version")
    assert out["serverVersion"]["minor"] == "32"
    assert out["serverVersion"]["gitVersion"].startswith("v1.32.")
    assert out["clientVersion"]["gitVersion"].startswith("v1.32.")


def test_unauthenticated_requests_are_rejected(cluster: Cluster) -> None:
    import httpx

    with httpx.Client(verify=str(cluster.ca())) as c:
        assert c.get(cluster.url() + "/api/v1/namespaces").status_code == 401
        assert c.get(cluster.url() + "/version").status_code == 200
        assert c.get(cluster.url() + "/healthz").text == "ok"
        bad = c.get(cluster.url() + "/api/v1/pods", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["reason"] == "Unauthorized"


def test_api_resources_lists_builtin_kinds(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources").stdout
    for line in ("pods  ", "deployments ", "customresourcedefinitions", "horizontalpodautoscalers"):
        assert line.strip() in out
    row = next(line for line in out.splitlines() if line.startswith("deployments"))
    assert row.split()[:4] == ["deployments", "deploy", "apps/v1", "true"]
    assert "Deployment" in row


def test_system_namespaces_and_kubernetes_service(cluster: Cluster) -> None:
    names = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in names
    svc = cluster.json("get", "svc", "kubernetes", "-n", "default")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"


def test_apply_create_unchanged_configured(cluster: Cluster, ns: str) -> None:
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT).stdout
    assert out.strip() == "deployment.apps/web created"
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT).stdout
    assert out.strip() == "deployment.apps/web unchanged"
    changed = DEPLOYMENT.replace("nginx:1.27", "nginx:1.28").replace("replicas: 2", "replicas: 3")
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=changed).stdout
    assert out.strip() == "deployment.apps/web configured"
    dep = cluster.json("get", "deploy", "web", "-n", ns)
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert dep["metadata"]["generation"] == 2
    # defaults as kube-apiserver sets them
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert dep["spec"]["revisionHistoryLimit"] == 10
    assert (
        dep["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    )


def test_apply_unknown_field_is_rejected_strictly(cluster: Cluster, ns: str) -> None:
    bad = DEPLOYMENT.replace("replicas: 2", "replicas: 2\n  replicaz: 3")
    res = cluster.kubectl("apply", "-n", ns, "-f", "-", input=bad, check=False)
    assert res.returncode != 0
    assert 'unknown field "spec.replicaz"' in res.stderr


def test_server_side_apply_and_conflict(cluster: Cluster, ns: str) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "namespace": ns},
        "data": {"a": "1"},
    }
    out = cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(cm)).stdout
    assert "serverside-applied" in out
    cm2 = {**cm, "data": {"a": "2"}}
    res = cluster.kubectl(
        "apply", "--server-side", "--field-manager=other", "-f", "-", input=yaml.safe_dump(cm2), check=False
    )
    assert res.returncode != 0
    assert "conflict" in res.stderr.lower() and ".data.a" in res.stderr
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump(cm2),
    )
    got = cluster.json("get", "cm", "ssa", "-n", ns, "--show-managed-fields")
    assert got["data"] == {"a": "2"}
    managers = {m["manager"] for m in got["metadata"]["managedFields"]}
    assert "other" in managers


def test_create_generators_send_protobuf(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "gen", "--image=busybox", "-n", ns)
    cluster.kubectl("create", "job", "j1", "--image=busybox", "-n", ns, "--", "echo", "hi")
    cluster.kubectl("create", "configmap", "c1", "--from-literal=k=v", "-n", ns)
    cluster.kubectl("create", "secret", "generic", "s1", "--from-literal=pw=hunter2", "-n", ns)
    dep = cluster.json("get", "deploy", "gen", "-n", ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    job = cluster.json("get", "job", "j1", "-n", ns)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert cluster.json("get", "cm", "c1", "-n", ns)["data"] == {"k": "v"}
    import base64

    assert base64.b64decode(cluster.json("get", "secret", "s1", "-n", ns)["data"]["pw"]) == b"hunter2"


def test_get_tables_and_output_formats(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    deadline = time.time() + 20
    while True:  # the deployment controller creates the ReplicaSet (no nodes here: pods stay Pending)
        out = cluster.kubectl("get", "deploy", "-n", ns).stdout.splitlines()
        if out[1].split()[2] == "2" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:4] == ["web", "0/2", "2", "0"]
    wide = cluster.kubectl("get", "deploy", "-n", ns, "-o", "wide").stdout.splitlines()
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
    assert "nginx:1.27" in wide[1] and "app=web" in wide[1]
    assert cluster.kubectl("get", "deploy", "-n", ns, "-o", "name").stdout.strip() == "deployment.apps/web"
    assert cluster.kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout == "2"
    labels = cluster.kubectl("get", "deploy", "-n", ns, "--show-labels").stdout
    assert "app=web" in labels
    y = yaml.safe_load(cluster.kubectl("get", "deploy", "web", "-n", ns, "-o", "yaml").stdout)
    assert y["kind"] == "Deployment"
    all_ns = cluster.kubectl("get", "deploy", "-A").stdout.splitlines()
    assert all_ns[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [ns, "web"] for line in all_ns[1:])


def test_label_selector_and_sort_by(cluster: Cluster, ns: str) -> None:
    for name, tier, n in (("a", "front", "3"), ("b", "back", "1"), ("c", "front", "2")):
        cluster.kubectl("create", "configmap", name, f"--from-literal=n={n}", "-n", ns)
        cluster.kubectl("label", "configmap", name, f"tier={tier}", "-n", ns)
    front = cluster.kubectl("get", "cm", "-n", ns, "-l", "tier=front", "-o", "name").stdout.split()
    assert front == ["configmap/a", "configmap/c"]
    notfront = cluster.kubectl("get", "cm", "-n", ns, "-l", "tier notin (front)", "-o", "name").stdout.split()
    assert "configmap/b" in notfront and "configmap/a" not in notfront
    rows = cluster.kubectl("get", "cm", "-n", ns, "-l", "tier", "--sort-by", ".data.n").stdout.splitlines()
    assert [r.split()[0] for r in rows[1:]] == ["b", "c", "a"]


def test_label_annotate_patch_replace(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    cluster.kubectl("label", "deploy", "web", "env=prod", "-n", ns)
    cluster.kubectl("annotate", "deploy", "web", "owner=team-a", "-n", ns)
    dep = cluster.json("get", "deploy", "web", "-n", ns)
    assert dep["metadata"]["labels"]["env"] == "prod"
    assert dep["metadata"]["annotations"]["owner"] == "team-a"
    cluster.kubectl("label", "deploy", "web", "env-", "-n", ns)
    assert "env" not in cluster.json("get", "deploy", "web", "-n", ns)["metadata"]["labels"]
    # strategic (default): containers merged by name
    cluster.kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        ns,
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}',
    )
    names = [
        c["name"]
        for c in cluster.json("get", "deploy", "web", "-n", ns)["spec"]["template"]["spec"]["containers"]
    ]
    assert names == ["nginx", "sidecar"] or names == ["sidecar", "nginx"]
    cluster.kubectl("patch", "deploy", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":5}}')
    assert cluster.json("get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 5
    cluster.kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":1}]',
    )
    assert cluster.json("get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 1
    # replace with optimistic concurrency, on an object no controller writes to
    cluster.kubectl("create", "configmap", "rep", "--from-literal=k=v1", "-n", ns)
    cm = cluster.json("get", "cm", "rep", "-n", ns)
    cm["data"]["k"] = "v2"
    cluster.kubectl("replace", "-f", "-", input=json.dumps(cm))
    assert cluster.json("get", "cm", "rep", "-n", ns)["data"] == {"k": "v2"}
    cm["data"]["k"] = "v3"  # still carries the old resourceVersion
    res = cluster.kubectl("replace", "-f", "-", input=json.dumps(cm), check=False)
    assert res.returncode != 0 and "the object has been modified" in res.stderr
    assert cluster.json("get", "cm", "rep", "-n", ns)["data"] == {"k": "v2"}


def test_diff_and_dry_run_do_not_change(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    generation = cluster.json("get", "deploy", "web", "-n", ns)["metadata"]["generation"]
    same = cluster.kubectl("diff", "-n", ns, "-f", "-", input=DEPLOYMENT, check=False)
    assert same.returncode == 0, same.stdout + same.stderr
    changed = cluster.kubectl(
        "diff", "-n", ns, "-f", "-", input=DEPLOYMENT.replace("replicas: 2", "replicas: 7"), check=False
    )
    assert changed.returncode == 1 and "replicas: 7" in changed.stdout
    cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        ns,
        "-f",
        "-",
        input=DEPLOYMENT.replace("replicas: 2", "replicas: 9"),
    )
    after = cluster.json("get", "deploy", "web", "-n", ns)
    assert after["spec"]["replicas"] == 2 and after["metadata"]["generation"] == generation
    # a dry run writes nothing: the resourceVersion of an object no controller touches stays
    cluster.kubectl("create", "configmap", "dry", "--from-literal=k=v", "-n", ns)
    rv = cluster.json("get", "cm", "dry", "-n", ns)["metadata"]["resourceVersion"]
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "dry", "namespace": ns},
        "data": {"k": "changed"},
    }
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(cm))
    after_cm = cluster.json("get", "cm", "dry", "-n", ns)
    assert after_cm["metadata"]["resourceVersion"] == rv and after_cm["data"] == {"k": "v"}


def test_scale_subresource(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    cluster.kubectl("scale", "deploy", "web", "--replicas=6", "-n", ns)
    assert cluster.json("get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 6
    res = cluster.kubectl(
        "scale", "deploy", "web", "--replicas=2", "--current-replicas=3", "-n", ns, check=False
    )
    assert res.returncode != 0


def test_explain(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "deployment.spec.strategy").stdout
    assert "KIND:" in out and "Deployment" in out
    assert "rollingUpdate" in out
    out = cluster.kubectl("explain", "pods.spec.containers.image").stdout
    assert "FIELD: image" in out or "image" in out


def test_auth_can_i(cluster: Cluster) -> None:
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    assert (
        cluster.kubectl("auth", "can-i", "delete", "deployments.apps", "-n", "kube-system").stdout.strip()
        == "yes"
    )
    out = cluster.kubectl("auth", "can-i", "--list").stdout
    assert "*.*" in out


def test_describe_shows_events(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "described", "--from-literal=a=b", "-n", ns)
    cm = cluster.json("get", "cm", "described", "-n", ns)
    ev = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "described.1", "namespace": ns},
        "involvedObject": {
            "kind": "ConfigMap",
            "name": "described",
            "namespace": ns,
            "uid": cm["metadata"]["uid"],
            "apiVersion": "v1",
        },
        "reason": "Tested",
        "message": "hello from the test",
        "type": "Normal",
        "source": {"component": "e2e"},
        "count": 1,
    }
    other = json.loads(json.dumps(ev))
    other["metadata"]["name"] = "other.1"
    other["involvedObject"]["name"] = "someone-else"
    other["involvedObject"]["uid"] = "00000000-0000-0000-0000-000000000000"
    other["message"] = "not mine"
    cluster.kubectl("create", "-f", "-", input=json.dumps(ev))
    cluster.kubectl("create", "-f", "-", input=json.dumps(other))
    out = cluster.kubectl("describe", "cm", "described", "-n", ns).stdout
    assert "hello from the test" in out
    assert "not mine" not in out


def test_get_watch_prints_changes(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "w1", "--from-literal=a=b", "-n", ns)
    proc = subprocess.Popen(
        ["kubectl", "--cache-dir", str(cluster.cache_dir), "get", "cm", "-n", ns, "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    )
    try:
        time.sleep(1.5)
        cluster.kubectl("create", "configmap", "w2", "--from-literal=a=b", "-n", ns)
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["w1", "1"] for line in lines)
    assert any(line.split()[:2] == ["w2", "1"] for line in lines)


def test_delete_modes_and_wait(cluster: Cluster, ns: str) -> None:
    def owned_cm(name: str, owner: dict[str, str]) -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "name": owner["name"],
                            "uid": owner["uid"],
                            "blockOwnerDeletion": True,
                            "controller": True,
                        }
                    ],
                },
            }
        )

    for mode in ("background", "foreground", "orphan"):
        cluster.kubectl("create", "configmap", f"owner-{mode}", "-n", ns)
        owner = cluster.json("get", "cm", f"owner-{mode}", "-n", ns)["metadata"]
        cluster.kubectl("create", "-f", "-", input=owned_cm(f"dep-{mode}", owner))
        out = cluster.kubectl(
            "delete", "cm", f"owner-{mode}", "-n", ns, f"--cascade={mode}", "--wait=true", timeout=60
        ).stdout
        assert f'configmap "owner-{mode}" deleted' in out
        assert cluster.kubectl("get", "cm", f"owner-{mode}", "-n", ns, check=False).returncode != 0
        deadline = time.time() + 15
        present = True
        while time.time() < deadline:
            present = cluster.kubectl("get", "cm", f"dep-{mode}", "-n", ns, check=False).returncode == 0
            if present == (mode == "orphan"):
                break
            time.sleep(0.2)
        if mode == "orphan":
            assert present
            assert "ownerReferences" not in cluster.json("get", "cm", f"dep-{mode}", "-n", ns)["metadata"]
        else:
            assert not present, f"dependent survived {mode} deletion"


def test_wait_for_delete_and_namespace_deletion(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("create", "configmap", "x", "-n", "doomed")
    cluster.kubectl("delete", "namespace", "doomed", "--wait=false")
    cluster.kubectl("wait", "--for=delete", "namespace/doomed", "--timeout=30s", timeout=40)
    assert cluster.kubectl("get", "ns", "doomed", check=False).returncode != 0


def test_terminating_namespace_refuses_new_content(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "closing")
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "keep", "namespace": "closing", "finalizers": ["example.com/hold"]},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(cm))
    cluster.kubectl("delete", "namespace", "closing", "--wait=false")
    res = cluster.kubectl("create", "configmap", "late", "-n", "closing", check=False)
    assert res.returncode != 0 and "being terminated" in res.stderr
    cluster.kubectl(
        "patch", "cm", "keep", "-n", "closing", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    cluster.kubectl("wait", "--for=delete", "namespace/closing", "--timeout=30s", timeout=40)


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              image: {type: string}
              replicas: {type: integer, minimum: 1, maximum: 10}
          status:
            type: object
            properties:
              replicas: {type: integer}
"""

CRONTAB = """
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-cron
spec:
  cronSpec: "* * * * */5"
  image: my-cron-image
  replicas: 2
"""


def test_crd_and_custom_resources(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=CRD)
    cluster.kubectl("wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=20s")
    assert "crontabs" in cluster.kubectl("api-resources", "--api-group=stable.example.com").stdout
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=CRONTAB)
    rows = cluster.kubectl("get", "ct", "-n", ns).stdout.splitlines()
    assert rows[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert rows[1].split()[:2] == ["my-cron", "*"]
    bad = CRONTAB.replace("replicas: 2", "replicas: 20")
    res = cluster.kubectl("apply", "-n", ns, "-f", "-", input=bad, check=False)
    assert res.returncode != 0 and "spec.replicas" in res.stderr
    cluster.kubectl("scale", "crontab", "my-cron", "--replicas=3", "-n", ns)
    assert cluster.json("get", "crontab", "my-cron", "-n", ns)["spec"]["replicas"] == 3
    cluster.kubectl("delete", "crontab", "my-cron", "-n", ns)


def test_removed_api_version_gets_a_clear_error(cluster: Cluster, ns: str) -> None:
    old = DEPLOYMENT.replace("apps/v1", "extensions/v1beta1")
    res = cluster.kubectl("apply", "-n", ns, "-f", "-", input=old, check=False)
    assert res.returncode != 0
    assert re.search(r'no matches for kind "Deployment" in version "extensions/v1beta1"', res.stderr), (
        res.stderr
    )


def test_get_all(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    res = cluster.kubectl("get", "all", "-n", ns)
    assert "deployment.apps/web" in res.stdout
