"""PersistentVolume binder: claims meet volumes.

Mirrors ``pkg/controller/volume/persistentvolume`` (``persistentvolume-binder``):

* an unbound claim is bound to a pre-bound or the smallest fitting Available volume
  (same StorageClass and volume mode, access modes, capacity, selector): the volume gets
  ``spec.claimRef`` and phase ``Bound``, the claim ``spec.volumeName``, the
  ``pv.kubernetes.io/bind-completed`` / ``bound-by-controller`` annotations, phase
  ``Bound`` and the volume's access modes and capacity;
* a claim of a ``WaitForFirstConsumer`` class waits (event ``WaitForFirstConsumer``)
  until the scheduler names a node in ``volume.kubernetes.io/selected-node``;
* with nothing to bind, a claim whose class has a provisioner is annotated
  ``volume.kubernetes.io/storage-provisioner`` (event ``ExternalProvisioning``) for
  that provisioner to create a volume; otherwise ``FailedBinding``;
* a claim without a class gets the default StorageClass (retroactive assignment);
* a volume whose claim is gone becomes ``Released`` (the provisioner deletes those with
  reclaim policy Delete); a bound claim whose volume is gone becomes ``Lost``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kubelite.api import errors
from kubelite.api import volumes as vol
from kubelite.api.podhealth import meta
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.volume")
Obj = dict[str, Any]
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims")
CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
NODES = Resource("", "v1", "nodes", namespaced=False)
RESYNC = 15.0


def _external_message(provisioner: str) -> str:
    return (
        f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or "
        "manually by the system administrator. If volume creation is delayed, please verify that the "
        "provisioner is running and correctly registered."
    )


def _refers_to(ref: Obj, pvc: Obj) -> bool:
    m = meta(pvc)
    if ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == m.get("uid")


class PersistentVolumeBinder:
    def __init__(
        self,
        client: Client,
        recorder: EventRecorder,
        pvs: Informer,
        pvcs: Informer,
        classes: Informer,
        nodes: Informer,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.pvs = pvs
        self.pvcs = pvcs
        self.classes = classes
        self.nodes = nodes
        self.ctrl = Controller("persistentvolume-binder", self.reconcile, workers=2)
        pvs.add_handler(self._on_volume)
        pvcs.add_handler(self._on_claim)
        classes.add_handler(self._on_class)

    def _on_volume(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.ctrl.queue.add(f"pv:{key}")
        for pv in (old, new):
            ref = ((pv or {}).get("spec") or {}).get("claimRef")
            if ref:
                self.ctrl.queue.add(f"pvc:{ref.get('namespace')}/{ref.get('name')}")
        if new is not None and (new.get("status") or {}).get("phase") in (None, "", "Available"):
            for key2, pvc in self.pvcs.cache.items():  # a new volume may satisfy a waiting claim
                if not (pvc.get("spec") or {}).get("volumeName"):
                    self.ctrl.queue.add(f"pvc:{key2}")

    def _on_claim(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.ctrl.queue.add(f"pvc:{key}")
        for pvc in (old, new):
            volume_name = ((pvc or {}).get("spec") or {}).get("volumeName")
            if volume_name:
                self.ctrl.queue.add(f"pv:{volume_name}")

    def _on_class(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for key2, pvc in self.pvcs.cache.items():
            if not (pvc.get("spec") or {}).get("volumeName"):
                self.ctrl.queue.add(f"pvc:{key2}")

    async def start(self) -> None:
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
            return await self.sync_claim(name)
        return await self.sync_volume(name)

    # ------------------------------------------------------------------ claims

    async def sync_claim(self, key: str) -> float | None:
        pvc = self.pvcs.get(key)
        if pvc is None or meta(pvc).get("deletionTimestamp"):
            return None
        spec = pvc.get("spec") or {}
        if "storageClassName" not in spec or spec.get("storageClassName") is None:
            default = vol.default_class(self.classes.list())
            if default is not None:
                await self._patch_claim(pvc, {"spec": {"storageClassName": meta(default)["name"]}})
                return None
        if spec.get("volumeName"):
            return await self._sync_bound_claim(pvc)
        return await self._sync_unbound_claim(pvc)

    async def _sync_unbound_claim(self, pvc: Obj) -> float | None:
        await self._ensure_claim_phase(pvc, "Pending")
        cls = self.classes.get(vol.claim_class(pvc)) if vol.claim_class(pvc) else None
        ann = meta(pvc).get("annotations") or {}
        node_name = str(ann.get(vol.SELECTED_NODE) or "")
        delayed = cls is not None and cls.get("volumeBindingMode") == "WaitForFirstConsumer"
        if delayed and not node_name:
            self.recorder.event(
                pvc,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
            return None
        pv = vol.find_best_volume(self.pvs.list(), pvc, self.nodes.get(node_name), node_name)
        if pv is not None:
            await self._bind(pv, pvc)
            return None
        provisioner = str((cls or {}).get("provisioner") or "")
        if cls is not None and provisioner and provisioner != vol.NO_PROVISIONER:
            if ann.get(vol.STORAGE_PROVISIONER) != provisioner:
                patch = {
                    "metadata": {
                        "annotations": {
                            vol.STORAGE_PROVISIONER: provisioner,
                            vol.BETA_STORAGE_PROVISIONER: provisioner,
                        }
                    }
                }
                await self._patch_claim(pvc, patch)
            self.recorder.event(pvc, "Normal", "ExternalProvisioning", _external_message(provisioner))
            return None
        if vol.claim_class(pvc) and cls is None:
            self.recorder.event(
                pvc,
                "Warning",
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{vol.claim_class(pvc)}" not found',
            )
        else:
            self.recorder.event(
                pvc,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
        return RESYNC

    async def _sync_bound_claim(self, pvc: Obj) -> float | None:
        volume_name = str((pvc.get("spec") or {}).get("volumeName"))
        pv = self.pvs.get(volume_name)
        ann = meta(pvc).get("annotations") or {}
        if pv is None:
            if ann.get(vol.BIND_COMPLETED) == "yes":
                if (pvc.get("status") or {}).get("phase") != "Lost":
                    self.recorder.event(
                        pvc,
                        "Warning",
                        "ClaimLost",
                        "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
                    )
                await self._ensure_claim_phase(pvc, "Lost")
            else:
                await self._ensure_claim_phase(pvc, "Pending")
            return None
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None or _refers_to(ref, pvc):
            await self._bind(pv, pvc)
            return None
        await self._ensure_claim_phase(pvc, "Pending")  # the volume belongs to another claim
        return None

    # ------------------------------------------------------------------ binding

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        """Volume first (claimRef, phase Bound), then the claim (volumeName, phase Bound)."""
        pv = await self._bind_volume(pv, pvc)
        await self._bind_claim(pv, pvc)

    async def _bind_volume(self, pv: Obj, pvc: Obj) -> Obj:
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None or ref.get("uid") != meta(pvc).get("uid"):
            body = dict(pv)
            body["spec"] = dict(pv.get("spec") or {}, claimRef=vol.claim_ref_of(pvc))
            if ref is None:
                body["metadata"] = dict(meta(pv))
                body["metadata"]["annotations"] = dict(
                    meta(pv).get("annotations") or {}, **{vol.BOUND_BY_CONTROLLER: "yes"}
                )
            pv = await self.client.update(PVS, "", body)
        if (pv.get("status") or {}).get("phase") != "Bound":
            body = dict(pv)
            body["status"] = dict(pv.get("status") or {}, phase="Bound")
            pv = await self.client.update(PVS, "", body, subresource="status")
        return pv

    async def _bind_claim(self, pv: Obj, pvc: Obj) -> None:
        ann = dict(meta(pvc).get("annotations") or {})
        spec = pvc.get("spec") or {}
        if spec.get("volumeName") != meta(pv)["name"] or ann.get(vol.BIND_COMPLETED) != "yes":
            body = dict(pvc)
            if spec.get("volumeName") != meta(pv)["name"]:
                ann[vol.BOUND_BY_CONTROLLER] = "yes"
            ann[vol.BIND_COMPLETED] = "yes"
            body["metadata"] = dict(meta(pvc), annotations=ann)
            body["spec"] = dict(spec, volumeName=meta(pv)["name"])
            pvc = await self.client.update(PVCS, meta(pvc)["namespace"], body)
        pv_spec = pv.get("spec") or {}
        want = {
            "phase": "Bound",
            "accessModes": pv_spec.get("accessModes") or [],
            "capacity": pv_spec.get("capacity") or {},
        }
        status = pvc.get("status") or {}
        if any(status.get(k) != v for k, v in want.items()):
            body = dict(pvc)
            body["status"] = dict(status, **want)
            await self.client.update(PVCS, meta(pvc)["namespace"], body, subresource="status")
            log.info(
                "claim bound claim=%s/%s volume=%s",
                meta(pvc)["namespace"],
                meta(pvc)["name"],
                meta(pv)["name"],
            )

    async def _ensure_claim_phase(self, pvc: Obj, phase: str) -> None:
        if (pvc.get("status") or {}).get("phase") == phase:
            return
        body = dict(pvc)
        body["status"] = dict(pvc.get("status") or {}, phase=phase)
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            await self.client.update(PVCS, meta(pvc)["namespace"], body, subresource="status")

    async def _patch_claim(self, pvc: Obj, patch: Obj) -> None:
        patch.setdefault("metadata", {})["resourceVersion"] = meta(pvc)["resourceVersion"]
        await self.client.patch(PVCS, meta(pvc)["namespace"], meta(pvc)["name"], patch)

    # ------------------------------------------------------------------ volumes

    async def sync_volume(self, name: str) -> float | None:
        pv = self.pvs.get(name)
        if pv is None or meta(pv).get("deletionTimestamp"):
            return None
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None or not ref.get("uid"):
            await self._volume_phase(pv, "Available")
            return None
        key = f"{ref.get('namespace')}/{ref.get('name')}"
        pvc = self.pvcs.get(key)
        if pvc is None:
            pvc = await self._live_claim(str(ref.get("namespace")), str(ref.get("name")))
        if pvc is None or meta(pvc).get("uid") != ref.get("uid"):
            await self._volume_phase(pv, "Released")
            return None
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        if volume_name == name:
            await self._volume_phase(pv, "Bound")
        elif volume_name:
            await self._unbind_or_release(pv)
        return None

    async def _live_claim(self, namespace: str, name: str) -> Obj | None:
        """The informer may lag a claim that was just created: ask the API before releasing."""
        try:
            return await self.client.get(PVCS, namespace, name)
        except errors.NotFound:
            return None

    async def _unbind_or_release(self, pv: Obj) -> None:
        if (meta(pv).get("annotations") or {}).get(vol.BOUND_BY_CONTROLLER) == "yes":
            body = dict(pv)
            body["spec"] = {k: v for k, v in (pv.get("spec") or {}).items() if k != "claimRef"}
            await self.client.update(PVS, "", body)
        else:
            await self._volume_phase(pv, "Released")

    async def _volume_phase(self, pv: Obj, phase: str) -> None:
        if (pv.get("status") or {}).get("phase") == phase:
            return
        body = dict(pv)
        body["status"] = dict(pv.get("status") or {}, phase=phase)
        await self.client.update(PVS, "", body, subresource="status")
        if phase == "Released":
            log.info("volume released volume=%s", meta(pv)["name"])


def new(ctx: Any) -> PersistentVolumeBinder:
    inf = ctx.informers
    return PersistentVolumeBinder(
        ctx.client,
        ctx.recorder("persistentvolume-controller"),
        inf.get(PVS),
        inf.get(PVCS),
        inf.get(CLASSES),
        inf.get(NODES),
    )
