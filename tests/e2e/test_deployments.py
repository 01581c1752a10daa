"""Deployments, ReplicaSets and the real kubectl against ``kubelite up`` with simulated nodes.

The scheduler binds pods to 3 simulated nodes and the simulator makes them Running/Ready
after 0.2 s, so `kubectl rollout status|history|undo|restart|pause|resume`, `set image`
and `scale` run exactly as against a real cluster.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # a long node-monitor grace period: on a starved CI machine late simulated heartbeats
    # must not turn nodes NotReady (node failure is tested elsewhere)
    c = start_cluster(
        tmp_path_factory.mktemp("deployments"),
        "--simulated-nodes",
        "3",
        "--simulated-pod-start-delay",
        "0.2",
        "--node-monitor-grace-period",
        "600",
    )
    yield c
    stop_cluster(c)


@pytest.fixture
def ns(sim: Cluster, request: pytest.FixtureRequest) -> str:
    name = "d-" + str(request.node.name).lower().replace("_", "-")[5:30].strip("-")
    sim.kubectl("create", "namespace", name)
    return name


def manifest(name: str, replicas: int, image: str = "nginx:1", **spec: Any) -> str:
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": f"create {image}"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **spec,
        },
    }
    return yaml.safe_dump(doc)


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def rollout_status(sim: Cluster, ns: str, name: str, timeout: str = "90s") -> str:
    out = sim.kubectl("rollout", "status", f"deploy/{name}", "-n", ns, f"--timeout={timeout}", timeout=120)
    assert f'deployment "{name}" successfully rolled out' in out.stdout
    return out.stdout


def replicasets(sim: Cluster, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = sim.json("get", "rs", "-n", ns)["items"]
    return items


def images(sim: Cluster, ns: str, selector: str) -> list[str]:
    pods = sim.json("get", "pods", "-n", ns, "-l", selector)["items"]
    return sorted(
        p["spec"]["containers"][0]["image"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"
    )


class ReplicaSetWatch:
    """Follows every ReplicaSet of a namespace through a watch and records each state."""

    def __init__(self, sim: Cluster, ns: str) -> None:
        self.sim = sim
        self.ns = ns
        self.state: dict[str, tuple[int, int]] = {}  # name -> (spec.replicas, status.availableReplicas)
        self.history: list[dict[str, tuple[int, int]]] = []
        self._stop = threading.Event()
        self._client = httpx.Client(
            verify=ssl.create_default_context(cafile=str(sim.ca())),
            headers={"authorization": f"Bearer {sim.token()}"},
            timeout=None,
        )
        self._base = f"{sim.url()}/apis/apps/v1/namespaces/{ns}/replicasets"
        listing = self._client.get(self._base).json()
        for rs in listing["items"]:
            self._record(rs)
        self._rv = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _record(self, rs: dict[str, Any]) -> None:
        name = rs["metadata"]["name"]
        self.state[name] = (
            rs["spec"].get("replicas", 1),
            (rs.get("status") or {}).get("availableReplicas", 0),
        )
        self.history.append(dict(self.state))

    def _run(self) -> None:
        # short server-side timeouts: the thread notices ``close`` within a second and never
        # leaves a watch open that would delay the server's shutdown
        while not self._stop.is_set():
            url = f"{self._base}?watch=true&timeoutSeconds=1&resourceVersion={self._rv}"
            with self._client.stream("GET", url) as resp:
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    self._rv = ev["object"]["metadata"].get("resourceVersion", self._rv)
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._record(ev["object"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()


def test_rolling_update_respects_max_surge_and_max_unavailable(sim: Cluster, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}}
    sim.kubectl("apply", "-n", ns, "-f", "-", input=manifest("web", 6, strategy=strategy))
    rollout_status(sim, ns, "web")
    watch = ReplicaSetWatch(sim, ns)
    try:
        out = sim.kubectl("set", "image", "deploy/web", "app=nginx:2", "-n", ns).stdout
        assert out.strip() == "deployment.apps/web image updated"
        rollout_status(sim, ns, "web")
        time.sleep(0.5)
    finally:
        watch.close()
    assert len(watch.history) > 6, "the rollout must go through intermediate ReplicaSet states"
    both_active = False
    for step in watch.history:
        total = sum(spec for spec, _ in step.values())
        available = sum(avail for _, avail in step.values())
        assert total <= 6 + 2, f"maxSurge exceeded: {step}"
        assert available >= 6 - 1, f"maxUnavailable exceeded: {step}"
        both_active = both_active or sum(1 for spec, _ in step.values() if spec > 0) == 2
    assert both_active, "old and new ReplicaSets were never scaled at the same time"
    final = watch.history[-1]
    assert sorted(final.values()) == [(0, 0), (6, 6)]
    assert images(sim, ns, "app=web") == ["nginx:2"] * 6
    events = sim.kubectl("get", "events", "-n", ns, "--field-selector", "reason=ScalingReplicaSet").stdout
    assert "Scaled up replica set web-" in events and "Scaled down replica set web-" in events


def test_history_and_undo(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=manifest("app", 2))
    rollout_status(sim, ns, "app")
    sim.kubectl("set", "image", "deploy/app", "app=nginx:2", "-n", ns)
    sim.kubectl("annotate", "deploy/app", "-n", ns, "--overwrite", "kubernetes.io/change-cause=upgrade to 2")
    rollout_status(sim, ns, "app")
    history = sim.kubectl("rollout", "history", "deploy/app", "-n", ns).stdout
    rows = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    assert rows == [["1", "create nginx:1"], ["2", "upgrade to 2"]]
    detail = sim.kubectl("rollout", "history", "deploy/app", "-n", ns, "--revision=1").stdout
    assert "nginx:1" in detail and "pod-template-hash" in detail
    out = sim.kubectl("rollout", "undo", "deploy/app", "-n", ns).stdout
    assert out.strip() == "deployment.apps/app rolled back"
    rollout_status(sim, ns, "app")
    assert images(sim, ns, "app=app") == ["nginx:1"] * 2
    history = sim.kubectl("rollout", "history", "deploy/app", "-n", ns).stdout
    rows = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    assert rows == [["2", "upgrade to 2"], ["3", "create nginx:1"]]
    sets = replicasets(sim, ns)
    assert len(sets) == 2, "undo re-uses the revision's ReplicaSet"
    reused = next(rs for rs in sets if rs["spec"]["replicas"] == 2)
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    dep = sim.json("get", "deploy/app", "-n", ns)
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    out = sim.kubectl("rollout", "undo", "deploy/app", "-n", ns, "--to-revision=2").stdout
    assert "rolled back" in out
    rollout_status(sim, ns, "app")
    assert images(sim, ns, "app=app") == ["nginx:2"] * 2


def test_pause_resume_and_restart(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=manifest("p", 2))
    rollout_status(sim, ns, "p")
    assert sim.kubectl("rollout", "pause", "deploy/p", "-n", ns).stdout.strip() == "deployment.apps/p paused"
    sim.kubectl("set", "image", "deploy/p", "app=nginx:3", "-n", ns)
    sim.kubectl("scale", "deploy/p", "--replicas=3", "-n", ns)

    def observed() -> bool:
        d = sim.json("get", "deploy/p", "-n", ns)
        return bool(d["status"].get("observedGeneration") == d["metadata"]["generation"])

    wait_until("paused spec observed", observed)
    wait_until("paused deployment still scales", lambda: images(sim, ns, "app=p") == ["nginx:1"] * 3)
    assert len(replicasets(sim, ns)) == 1, "no rollout while paused"
    cond = {c["type"]: c for c in sim.json("get", "deploy/p", "-n", ns)["status"]["conditions"]}
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == ("Unknown", "DeploymentPaused")
    assert (
        sim.kubectl("rollout", "resume", "deploy/p", "-n", ns).stdout.strip() == "deployment.apps/p resumed"
    )
    rollout_status(sim, ns, "p")
    assert images(sim, ns, "app=p") == ["nginx:3"] * 3
    out = sim.kubectl("rollout", "restart", "deploy/p", "-n", ns).stdout
    assert out.strip() == "deployment.apps/p restarted"
    rollout_status(sim, ns, "p")
    sets = replicasets(sim, ns)
    assert len(sets) == 3
    newest = next(rs for rs in sets if rs["spec"]["replicas"] == 3)
    assert "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]


def test_scale_deployment_and_replicaset(sim: Cluster, ns: str) -> None:
    sim.kubectl("create", "deployment", "s", "--image=nginx:1", "--replicas=1", "-n", ns)
    rollout_status(sim, ns, "s")
    assert (
        sim.kubectl("scale", "deploy/s", "--replicas=5", "-n", ns).stdout.strip()
        == "deployment.apps/s scaled"
    )
    rollout_status(sim, ns, "s")
    assert len(images(sim, ns, "app=s")) == 5
    sim.kubectl("scale", "deploy/s", "--replicas=2", "-n", ns)
    wait_until("scale down", lambda: len(images(sim, ns, "app=s")) == 2)
    dep = sim.json("get", "deploy/s", "-n", ns)["status"]
    assert (dep["replicas"], dep["availableReplicas"], dep["updatedReplicas"]) == (2, 2, 2)
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "plain"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "plain"}},
            "template": {
                "metadata": {"labels": {"app": "plain"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
        },
    }
    sim.apply(rs, "-n", ns)
    sim.kubectl("scale", "rs/plain", "--replicas=3", "-n", ns)

    def rs_ready() -> bool:
        st = sim.json("get", "rs/plain", "-n", ns).get("status") or {}
        return bool(st.get("readyReplicas") == 3 and st.get("availableReplicas") == 3)

    wait_until("replicaset ready", rs_ready)
    row = sim.kubectl("get", "rs/plain", "-n", ns, "--no-headers").stdout.split()
    assert row[:4] == ["plain", "3", "3", "3"]


def test_recreate_strategy(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=manifest("r", 2, strategy={"type": "Recreate"}))
    rollout_status(sim, ns, "r")
    watch = ReplicaSetWatch(sim, ns)
    try:
        sim.kubectl("set", "image", "deploy/r", "app=nginx:2", "-n", ns)
        rollout_status(sim, ns, "r")
        time.sleep(0.3)
    finally:
        watch.close()
    for step in watch.history:
        assert sum(1 for spec, _ in step.values() if spec > 0) <= 1, f"Recreate overlapped: {step}"
    assert images(sim, ns, "app=r") == ["nginx:2"] * 2


def test_rollout_that_never_gets_ready_exceeds_its_progress_deadline(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=manifest("stuck", 2, progressDeadlineSeconds=3))
    rollout_status(sim, ns, "stuck")
    # a node selector no simulated node has: the new pods stay Pending, never Ready
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"kubelite.io/no-such-node": "true"}}}}}
    sim.kubectl("patch", "deploy/stuck", "-n", ns, "-p", json.dumps(patch))
    res = sim.kubectl(
        "rollout", "status", "deploy/stuck", "-n", ns, "--timeout=90s", check=False, timeout=120
    )
    assert res.returncode == 1
    assert 'error: deployment "stuck" exceeded its progress deadline' in res.stderr
    cond = {c["type"]: c for c in sim.json("get", "deploy/stuck", "-n", ns)["status"]["conditions"]}
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == (
        "False",
        "ProgressDeadlineExceeded",
    )
    assert cond["Progressing"]["message"].endswith("has timed out progressing.")
    assert images(sim, ns, "app=stuck") == ["nginx:1"] * 2  # the old pods keep serving
    assert Path(sim.kubeconfig).exists()
