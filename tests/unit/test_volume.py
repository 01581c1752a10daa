"""PersistentVolume binder and the local-path provisioner against a real in-process API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelite.api import errors
from kubelite.api.volumes import find_best_volume
from kubelite.client.base import Client, Resource
from kubelite.controllers import localpath, volume
from tests.unit.lifecycle_api import PODS, api_server, eventually, pod, running

Obj = dict[str, Any]
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims")
CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
EVENTS = Resource("", "v1", "events")


def _pvc(name: str, size: str = "1Gi", cls: str | None = None, **extra: Any) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **extra}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def _pv(name: str, size: str, cls: str = "manual", labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
            "storageClassName": cls,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/{name}"},
        },
    }


def test_best_fit_prefers_smallest_matching_volume() -> None:
    claim = _pvc("c", "1Gi", "manual")
    claim["metadata"].update(namespace="default", uid="u1")
    vols = [_pv("big", "5Gi"), _pv("small", "512Mi"), _pv("fit", "2Gi"), _pv("other", "1Gi", "fast")]
    best = find_best_volume(vols, claim)
    assert best is not None and best["metadata"]["name"] == "fit"
    claim["spec"]["selector"] = {"matchLabels": {"disk": "ssd"}}
    assert find_best_volume(vols, claim) is None
    assert find_best_volume([*vols, _pv("ssd", "10Gi", labels={"disk": "ssd"})], claim) is not None


async def _phase(c: Client, res: Resource, ns: str, name: str, phase: str) -> Obj:
    async def check() -> Obj:
        obj: Obj = await c.get(res, ns, name)
        assert (obj.get("status") or {}).get("phase") == phase, obj.get("status")
        return obj

    out: Obj = await eventually(check)
    return out


async def test_static_binding(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        for pv in (_pv("big", "5Gi"), _pv("fit", "2Gi")):
            await c.create(PVS, "", pv)
        async with running(c, [volume.new]):
            await _phase(c, PVS, "", "fit", "Available")
            await c.create(PVCS, "default", _pvc("data", "1Gi", "manual"))
            claim = await _phase(c, PVCS, "default", "data", "Bound")
            assert claim["spec"]["volumeName"] == "fit"
            assert claim["status"]["capacity"] == {"storage": "2Gi"}
            assert claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
            pv = await _phase(c, PVS, "", "fit", "Bound")
            assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
            await c.delete(PVCS, "default", "data")
            await _phase(c, PVS, "", "fit", "Released")
            assert (await c.get(PVS, "", "big"))["status"]["phase"] == "Available"


async def test_local_path_wait_for_first_consumer(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client
        async with running(c, [volume.new, localpath.new], {"data_dir": str(tmp_path)}):
            sc = await eventually(lambda: c.get(CLASSES, "", "local-path"))
            assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
            assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
            created = await c.create(PVCS, "default", _pvc("data"))
            assert created["spec"]["storageClassName"] == "local-path"  # DefaultStorageClass admission
            await _phase(c, PVCS, "default", "data", "Pending")

            async def waiting() -> bool:
                evs = (await c.list(EVENTS, "default"))["items"]
                return any(e["reason"] == "WaitForFirstConsumer" for e in evs)

            await eventually(waiting)
            # a pod using the claim is bound to n1 without the scheduler's annotation: fallback
            user = pod("user", node="n1")
            user["spec"]["volumes"] = [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
            await c.create(PODS, "default", user)
            claim = await _phase(c, PVCS, "default", "data", "Bound")
            assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == "n1"
            assert claim["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == (
                "kubelite.io/local-path"
            )
            name = claim["spec"]["volumeName"]
            assert name == f"pvc-{claim['metadata']['uid']}"
            pv = await c.get(PVS, "", name)
            path = Path(pv["spec"]["hostPath"]["path"])
            assert path.is_dir() and path.parent == tmp_path / "storage"
            term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
            assert term["matchExpressions"] == [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}
            ]
            reasons = {e["reason"] for e in (await c.list(EVENTS, "default"))["items"]}
            assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= reasons

            await c.delete(PODS, "default", "user", grace_period_seconds=0)
            await c.delete(PVCS, "default", "data")

            async def reclaimed() -> bool:
                try:
                    await c.get(PVS, "", name)
                except errors.NotFound:
                    return not path.exists()
                return False

            await eventually(reclaimed)
