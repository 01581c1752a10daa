"""StatefulSets end to end: a real ``kubelite up --simulated-nodes 3`` and the real kubectl.

Ordered start and reverse stop observed through ``kubectl get pods --watch``, stable
identity, one PVC per pod kept after scale-down (or deleted per the retention policy),
Parallel pod management, a partitioned rolling update, and ``kubectl rollout
status|history|undo``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.workloads import PodWatch, dump, pods, running_by_node, wait_for, workload_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with workload_cluster(Path(tmp_path_factory.mktemp("sts"))) as c:
        yield c


@pytest.fixture
def ns(sim: Cluster, request: pytest.FixtureRequest) -> str:
    name = "sts-" + request.node.name.lower().replace("_", "-")[5:30].strip("-")
    sim.kubectl("create", "namespace", name)
    return name


def statefulset(
    name: str, replicas: int = 3, image: str = "nginx:1.27", claims: bool = True, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "nginx", "image": image}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    if not claims:
        del body["spec"]["volumeClaimTemplates"]
    body["spec"].update(spec)
    return body


def wait_ready(c: Cluster, ns: str, name: str, n: int, timeout: float = 25) -> dict[str, str]:
    try:
        return wait_for(  # type: ignore[no-any-return]
            f"{n} running pods of {name}",
            lambda: (lambda r: r if len(r) == n else None)(running_by_node(c, ns, f"app={name}")),
            timeout,
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\n{dump(c, ns)}") from None


def images(c: Cluster, ns: str, name: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods(c, ns, f"app={name}")}


def test_ordered_start_reverse_stop_and_kept_claims(sim: Cluster, ns: str) -> None:
    with PodWatch(sim, ns, "app=web") as watch:
        time.sleep(0.5)
        sim.apply(statefulset("web"), "-n", ns)
        wait_ready(sim, ns, "web", 3)

        # created in order: each pod only after its predecessor was Running and Ready
        for i in (1, 2):
            added = watch.first_index(lambda e, i=i: e.type == "ADDED" and e.name == f"web-{i}")
            ready = watch.first_index(lambda e, i=i: e.name == f"web-{i - 1}" and e.ready)
            assert 0 <= ready < added, [vars(e) for e in watch.events]

        # stable identity
        web1 = sim.json("get", "pod", "web-1", "-n", ns)
        assert web1["spec"]["hostname"] == "web-1" and web1["spec"]["subdomain"] == "web"
        labels = web1["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
        assert labels["apps.kubernetes.io/pod-index"] == "1"
        sts = sim.json("get", "sts", "web", "-n", ns)
        assert labels["controller-revision-hash"] == sts["status"]["updateRevision"]
        vols = {v["name"]: v for v in web1["spec"]["volumes"]}
        assert vols["www"]["persistentVolumeClaim"]["claimName"] == "www-web-1"
        st = sts["status"]
        assert (st["replicas"], st["readyReplicas"], st["currentReplicas"], st["updatedReplicas"]) == (
            3,
            3,
            3,
            3,
        )
        assert st["currentRevision"] == st["updateRevision"] and st["observedGeneration"] == 1
        out = sim.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=20s").stdout
        # apps/v1 defaults partition to 0, which kubectl reports as a partitioned roll out
        assert "partitioned roll out complete: 3 new pods have been updated..." in out

        # stopped in reverse order, one at a time
        sim.kubectl("scale", "sts/web", "--replicas=0", "-n", ns)
        wait_for("no pods left", lambda: not pods(sim, ns, "app=web"), 25)
        gone = [
            watch.first_index(lambda e, i=i: e.name == f"web-{i}" and (e.deleting or e.type == "DELETED"))
            for i in (2, 1, 0)
        ]
        deleted = [
            watch.first_index(lambda e, i=i: e.name == f"web-{i}" and e.type == "DELETED") for i in (2, 1)
        ]
        assert gone == sorted(gone) and min(gone) >= 0, [vars(e) for e in watch.events]
        assert deleted[0] < gone[1] and deleted[1] < gone[2], [vars(e) for e in watch.events]

    claims = sim.kubectl("get", "pvc", "-n", ns, "-o", "name").stdout.split()
    assert claims == [f"persistentvolumeclaim/www-web-{i}" for i in range(3)]
    events = sim.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.kind=StatefulSet"
    ).stdout
    assert "create Pod web-0 in StatefulSet web successful" in events
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in events
    assert "delete Pod web-2 in StatefulSet web successful" in events


def test_parallel_creates_all_at_once_ordered_waits(sim: Cluster, ns: str) -> None:
    nowhere = {"nodeSelector": {"kubelite.test/none": "x"}, "containers": [{"name": "c", "image": "nginx"}]}
    for name, policy in (("par", "Parallel"), ("ord", "OrderedReady")):
        body = statefulset(name, claims=False, podManagementPolicy=policy)
        body["spec"]["template"]["spec"] = nowhere
        sim.apply(body, "-n", ns)
    wait_for("3 parallel pods", lambda: len(pods(sim, ns, "app=par")) == 3)
    time.sleep(1.0)
    assert [p["metadata"]["name"] for p in pods(sim, ns, "app=ord")] == ["ord-0"]
    assert all(p["status"]["phase"] == "Pending" for p in pods(sim, ns, "app=par"))


def test_claim_retention_policy_delete(sim: Cluster, ns: str) -> None:
    policy = {"whenScaled": "Delete", "whenDeleted": "Delete"}
    sim.apply(statefulset("db", replicas=2, persistentVolumeClaimRetentionPolicy=policy), "-n", ns)
    wait_ready(sim, ns, "db", 2)
    claim = sim.json("get", "pvc", "www-db-0", "-n", ns)
    (ref,) = claim["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("StatefulSet", "db", True)

    sim.kubectl("scale", "sts/db", "--replicas=1", "-n", ns)

    def claims() -> list[str]:
        return sim.kubectl("get", "pvc", "-n", ns, "-o", "name").stdout.split()

    wait_for("www-db-1 deleted with its pod", lambda: claims() == ["persistentvolumeclaim/www-db-0"], 25)
    sim.kubectl("delete", "sts", "db", "-n", ns)
    wait_for("www-db-0 deleted with the set", lambda: claims() == [], 25)


def test_partitioned_rolling_update_history_and_undo(sim: Cluster, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    sim.apply(statefulset("app", claims=False, updateStrategy=strategy), "-n", ns)
    wait_ready(sim, ns, "app", 3)
    first = sim.json("get", "sts", "app", "-n", ns)["status"]["updateRevision"]

    sim.kubectl("annotate", "sts/app", "-n", ns, "kubernetes.io/change-cause=image 1.28")
    sim.kubectl("set", "image", "sts/app", "nginx=nginx:1.28", "-n", ns)
    wait_for(
        "app-2 updated",
        lambda: (
            images(sim, ns, "app") == {"app-0": "nginx:1.27", "app-1": "nginx:1.27", "app-2": "nginx:1.28"}
        ),
        25,
    )
    wait_ready(sim, ns, "app", 3)
    out = sim.kubectl("rollout", "status", "sts/app", "-n", ns, "--timeout=20s").stdout
    assert "partitioned roll out complete: 1 new pods have been updated..." in out
    st = sim.json("get", "sts", "app", "-n", ns)["status"]
    assert st["currentRevision"] == first and st["updateRevision"] != first
    assert (st["currentReplicas"], st["updatedReplicas"]) == (2, 1)

    sim.kubectl(
        "patch", "sts/app", "-n", ns, "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
    )
    out = sim.kubectl("rollout", "status", "sts/app", "-n", ns, "--timeout=30s").stdout
    # kubectl reports any explicit partition (even 0) as a partitioned roll out
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    assert set(images(sim, ns, "app").values()) == {"nginx:1.28"}
    st = wait_for(
        "update revision current",
        lambda: (lambda s: s if s["currentRevision"] == s["updateRevision"] else None)(
            sim.json("get", "sts", "app", "-n", ns)["status"]
        ),
    )
    second = st["updateRevision"]
    assert (st["currentReplicas"], st["updatedReplicas"]) == (3, 3)

    history = sim.kubectl("rollout", "history", "sts/app", "-n", ns).stdout
    rows = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    assert rows == [["1", "<none>"], ["2", "image 1.28"]], history
    detail = sim.kubectl("rollout", "history", "sts/app", "-n", ns, "--revision=1").stdout
    assert "nginx:1.27" in detail and "nginx:1.28" not in detail
    revs = sim.json("get", "controllerrevisions", "-n", ns)["items"]
    assert sorted((r["metadata"]["name"], r["revision"]) for r in revs) == sorted([(first, 1), (second, 2)])

    sim.kubectl("rollout", "undo", "sts/app", "-n", ns)
    wait_for("rolled back", lambda: set(images(sim, ns, "app").values()) == {"nginx:1.27"}, 30)
    sim.kubectl("rollout", "status", "sts/app", "-n", ns, "--timeout=30s")
    st = sim.json("get", "sts", "app", "-n", ns)["status"]
    assert st["updateRevision"] == first == st["currentRevision"]
    revs = sim.json("get", "controllerrevisions", "-n", ns)["items"]
    assert {r["metadata"]["name"]: r["revision"] for r in revs} == {first: 3, second: 2}
