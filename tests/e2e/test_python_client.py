"""The official ``kubernetes`` Python client against a real ``kubelite up``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield c
    c.close()


def _cm(name: str, data: dict[str, str]) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"suite": "py"}), data=data)


def test_crud(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(ns, _cm("one", {"a": "1"}))
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("one", ns)
    assert got.data == {"a": "1"}
    got.data["b"] = "2"
    updated = core.replace_namespaced_config_map("one", ns, got)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    patched = core.patch_namespaced_config_map("one", ns, {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    core.delete_namespaced_config_map("one", ns)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("one", ns)
    assert exc.value.status == 404


def test_conflict_on_stale_update(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(ns, _cm("stale", {"a": "1"}))
    fresh = core.read_namespaced_config_map("stale", ns)
    fresh.data = {"a": "2"}
    core.replace_namespaced_config_map("stale", ns, fresh)
    first.data = {"a": "3"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("stale", ns, first)
    assert exc.value.status == 409
    assert core.read_namespaced_config_map("stale", ns).data == {"a": "2"}


def test_list_pagination(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(25):
        core.create_namespaced_config_map(ns, _cm(f"page-{i:02d}", {"i": str(i)}))
    names: list[str] = []
    cont = None
    pages = 0
    while True:
        res = core.list_namespaced_config_map(ns, limit=10, _continue=cont, label_selector="suite=py")
        pages += 1
        names.extend(i.metadata.name for i in res.items)
        cont = res.metadata._continue
        if not cont:
            break
    assert pages == 3
    assert names == [f"page-{i:02d}" for i in range(25)]


def test_watch_from_resource_version(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("before", {}))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    import time

    time.sleep(0.5)
    core.create_namespaced_config_map(ns, _cm("after", {}))
    core.patch_namespaced_config_map("after", ns, {"data": {"x": "y"}})
    core.delete_namespaced_config_map("after", ns)
    assert done.wait(15)
    assert seen == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


def test_apps_and_batch_clients(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pyweb"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "pyweb"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "pyweb"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
            ),
        ),
    )
    out = apps.create_namespaced_deployment(ns, dep)
    assert out.spec.strategy.type == "RollingUpdate"
    scale = apps.read_namespaced_deployment_scale("pyweb", ns)
    assert scale.spec.replicas == 2
    apps.patch_namespaced_deployment_scale("pyweb", ns, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("pyweb", ns).spec.replicas == 4
