"""Local-path dynamic provisioner behind the default StorageClass ``local-path``.

Like rancher's local-path-provisioner (the default in k3s), run as an external
provisioner:

* at start it creates the StorageClass ``local-path`` if absent: provisioner
  ``kubelite.io/local-path``, default class annotation, reclaim policy Delete,
  ``WaitForFirstConsumer`` binding;
* a claim annotated by the binder with ``volume.kubernetes.io/storage-provisioner:
  kubelite.io/local-path`` gets a directory ``<data dir>/storage/pvc-<uid>_<ns>_<name>``
  and a PersistentVolume ``pvc-<uid>`` pre-bound to it (``claimRef``), with a hostPath
  source and, for ``WaitForFirstConsumer``, node affinity to the node the scheduler
  chose (``volume.kubernetes.io/selected-node``).  Events ``Provisioning`` and
  ``ProvisioningSucceeded`` on the claim;
* a ``Released`` volume it provisioned with reclaim policy Delete loses its directory,
  then the volume object is deleted;
* should a pod using a waiting claim be bound to a node without the scheduler having
  named it, the claim is annotated with that node here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kubelite.api import errors
from kubelite.api import volumes as vol
from kubelite.api.podhealth import meta, node_name_index
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.localpath")
Obj = dict[str, Any]
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims")
CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
PODS = Resource("", "v1", "pods")
PROVISIONER = "kubelite.io/local-path"
CLASS_NAME = "local-path"


def default_data_dir() -> Path:
    """Where ``kubelite up`` keeps its state when ``--data-dir`` is not given."""
    if os.geteuid() == 0:
        return Path("/var/lib/kubelite")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kubelite"


def storage_class() -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": CLASS_NAME, "annotations": {vol.DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def volume_for(pvc: Obj, cls: Obj, path: Path, node: str) -> Obj:
    m, spec = meta(pvc), pvc.get("spec") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    pv_spec: Obj = {
        "capacity": {"storage": requests.get("storage", "0")},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": cls.get("reclaimPolicy") or "Delete",
        "storageClassName": meta(cls)["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "claimRef": vol.claim_ref_of(pvc),
        "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
    }
    if node:
        pv_spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": vol.HOSTNAME_LABEL, "operator": "In", "values": [node]}]}
                ]
            }
        }
    annotations = {vol.PROVISIONED_BY: PROVISIONER}
    if node:
        annotations["local.path.provisioner/selected-node"] = node
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{m['uid']}", "annotations": annotations},
        "spec": pv_spec,
    }


class LocalPathProvisioner:
    def __init__(
        self,
        client: Client,
        recorder: EventRecorder,
        root: Path,
        informers: dict[Resource, Informer],
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.root = root
        self.pvs = informers[PVS]
        self.pvcs = informers[PVCS]
        self.classes = informers[CLASSES]
        self.pods = informers[PODS]
        self.ctrl = Controller("local-path-provisioner", self.reconcile, workers=2)
        self.pvs.add_handler(lambda key, old, new: self.ctrl.queue.add(f"pv:{key}"))
        self.pvcs.add_handler(lambda key, old, new: self.ctrl.queue.add(f"pvc:{key}"))
        self.pods.add_indexer("nodeName", node_name_index)
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        bound_now = bool(((new or {}).get("spec") or {}).get("nodeName"))
        if bound_now and not ((old or {}).get("spec") or {}).get("nodeName"):
            self.ctrl.queue.add(f"pod:{key}")

    async def start(self) -> None:
        if self.classes.get(CLASS_NAME) is None:
            with contextlib.suppress(errors.AlreadyExists):
                await self.client.create(CLASSES, "", storage_class())
        for key in list(self.pvcs.cache):
            self.ctrl.queue.add(f"pvc:{key}")
        for key in list(self.pvs.cache):
            self.ctrl.queue.add(f"pv:{key}")
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def reconcile(self, key: str) -> float | None:
        kind, _, name = key.partition(":")
        if kind == "pvc":
            await self.provision(name)
        elif kind == "pv":
            await self.reclaim(name)
        else:
            await self.select_node_for(name)
        return None

    def _our_class(self, pvc: Obj) -> Obj | None:
        cls = self.classes.get(vol.claim_class(pvc))
        if cls is None or cls.get("provisioner") != PROVISIONER:
            return None
        return cls

    # ------------------------------------------------------------------ provision

    async def provision(self, key: str) -> None:
        pvc = self.pvcs.get(key)
        if pvc is None or meta(pvc).get("deletionTimestamp") or (pvc.get("spec") or {}).get("volumeName"):
            return
        ann = meta(pvc).get("annotations") or {}
        cls = self._our_class(pvc)
        if cls is None or ann.get(vol.STORAGE_PROVISIONER) != PROVISIONER:
            return
        node = str(ann.get(vol.SELECTED_NODE) or "")
        if cls.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
            return
        name = f"pvc-{meta(pvc)['uid']}"
        if self.pvs.get(name) is not None:
            return
        ref = f"{meta(pvc)['namespace']}/{meta(pvc)['name']}"
        self.recorder.event(
            pvc, "Normal", "Provisioning", f'External provisioner is provisioning volume for claim "{ref}"'
        )
        path = self.root / f"{name}_{meta(pvc)['namespace']}_{meta(pvc)['name']}"
        await asyncio.to_thread(path.mkdir, mode=0o777, parents=True, exist_ok=True)
        with contextlib.suppress(errors.AlreadyExists):
            await self.client.create(PVS, "", volume_for(pvc, cls, path, node))
            self.recorder.event(
                pvc, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {name}"
            )
            log.info("volume provisioned volume=%s claim=%s node=%s", name, ref, node)

    # ------------------------------------------------------------------ reclaim

    async def reclaim(self, name: str) -> None:
        pv = self.pvs.get(name)
        if pv is None or meta(pv).get("deletionTimestamp"):
            return
        if (meta(pv).get("annotations") or {}).get(vol.PROVISIONED_BY) != PROVISIONER:
            return
        spec = pv.get("spec") or {}
        if (pv.get("status") or {}).get("phase") != "Released" or spec.get(
            "persistentVolumeReclaimPolicy"
        ) != "Delete":
            return
        path = Path(str((spec.get("hostPath") or {}).get("path") or ""))
        if path.name and path.resolve().parent == self.root.resolve():
            await asyncio.to_thread(shutil.rmtree, path, True)
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(PVS, "", name)
        log.info("volume deleted volume=%s", name)

    # ------------------------------------------------------------------ fallback

    async def select_node_for(self, pod_key: str) -> None:
        """A bound pod names the node of its waiting claims when the scheduler did not."""
        pod = self.pods.get(pod_key)
        if pod is None:
            return
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        ns = meta(pod)["namespace"]
        for v in (pod.get("spec") or {}).get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            pvc = self.pvcs.get(f"{ns}/{claim}") if claim else None
            if pvc is None or (pvc.get("spec") or {}).get("volumeName"):
                continue
            cls = self._our_class(pvc)
            ann = meta(pvc).get("annotations") or {}
            if (
                cls is None
                or cls.get("volumeBindingMode") != "WaitForFirstConsumer"
                or ann.get(vol.SELECTED_NODE)
            ):
                continue
            patch = {"metadata": {"annotations": {vol.SELECTED_NODE: node}}}
            with contextlib.suppress(errors.NotFound):
                await self.client.patch(PVCS, ns, str(claim), patch)


def new(ctx: Any) -> LocalPathProvisioner:
    data_dir = ctx.option("data_dir", "") or default_data_dir()
    root = Path(data_dir) / "storage"
    informers = {r: ctx.informers.get(r) for r in (PVS, PVCS, CLASSES, PODS)}
    return LocalPathProvisioner(ctx.client, ctx.recorder(PROVISIONER), root, informers)
