"""The Deployment controller: roll a pod template out through ReplicaSets.

Mirrors kube-controller-manager's ``pkg/controller/deployment``: Deployments, their
ReplicaSets (adopted by selector, released when they stop matching) and, for Recreate,
their pods are watched; each sync is level-triggered and runs
:class:`~kubelite.controllers.deployment_rollout.Rollout`.  A Deployment with an empty
selector gets the ``SelectingAll`` warning and is otherwise left alone, as in Kubernetes.

The revision annotation lives in the Deployment's metadata: Kubernetes writes it through
the ``/status`` subresource together with the conditions; here it is also patched onto
the main resource (a metadata-only change, so ``generation`` does not move).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from typing import Any

from kubelite.api import errors
from kubelite.api.selectors import LabelSelector, from_label_selector_dict
from kubelite.client.base import Client, Resource
from kubelite.controllers import deployment_util as du
from kubelite.controllers.deployment_rollout import Rollout
from kubelite.machinery import controller_utils as cu
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.deployment")
Obj = dict[str, Any]

DEPLOYMENTS = Resource("apps", "v1", "deployments")
REPLICASETS = Resource("apps", "v1", "replicasets")
PODS = Resource("", "v1", "pods")
COMPONENT = "deployment-controller"
CONFLICT_RETRY = 0.02


def selector_of(d: Obj) -> LabelSelector:
    try:
        return from_label_selector_dict(du.spec(d).get("selector"))
    except errors.APIError:
        return LabelSelector.match_nothing()


class DeploymentController:
    def __init__(
        self,
        client: Client,
        deployments: Informer,
        replicasets: Informer,
        pods: Informer,
        recorder: EventRecorder,
        workers: int = 5,
        clock: Any = time.time,
    ) -> None:
        self.client = client
        self.deployments = deployments
        self.replicasets = replicasets
        self.pods = pods
        self.recorder = cu.SpamFilteredRecorder(recorder)
        self.clock = clock
        self.ctrl = Controller(COMPONENT, self._reconcile, workers=workers)
        for informer in (deployments, replicasets, pods):
            cu.add_workload_indexes(informer)
        deployments.add_handler(self._on_deployment)
        replicasets.add_handler(self._on_replicaset)
        pods.add_handler(self._on_pod)

    async def start(self) -> None:
        self.ctrl.start()
        for d in self.deployments.list():
            self.ctrl.queue.add(cu.key_of(d))

    async def stop(self) -> None:
        await self.ctrl.stop()
        await self.recorder.flush()

    # ------------------------------------------------------------------ handlers

    def _on_deployment(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self.ctrl.queue.add(key)

    def _deployment_key_of(self, rs: Obj) -> str | None:
        ref = cu.controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        owners = self.deployments.by_index(cu.UID_INDEX, str(ref.get("uid", "")))
        return cu.key_of(owners[0]) if owners else None

    def _matching_deployments(self, rs: Obj) -> list[str]:
        ns = str(cu.meta(rs).get("namespace", ""))
        labels = cu.meta(rs).get("labels") or {}
        return [
            cu.key_of(d) for d in self.deployments.by_index(cu.NS_INDEX, ns) if selector_of(d).matches(labels)
        ]

    def _on_replicaset(self, key: str, old: Obj | None, new: Obj | None) -> None:
        keys: set[str] = set()
        for rs in (old, new):
            if rs is None:
                continue
            owner = self._deployment_key_of(rs)
            if owner is not None:
                keys.add(owner)
            elif cu.controller_ref(rs) is None:
                keys.update(self._matching_deployments(rs))
        for k in keys:
            self.ctrl.queue.add(k)

    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        """Recreate waits for old pods to be gone: a pod deletion may unblock it."""
        if new is not None or old is None:
            return
        ref = cu.controller_ref(old)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        sets = self.replicasets.by_index(cu.UID_INDEX, str(ref.get("uid", "")))
        if not sets:
            return
        d_key = self._deployment_key_of(sets[0])
        d = self.deployments.get(d_key) if d_key else None
        if d is not None and not du.is_rolling(d):
            self.ctrl.queue.add(cu.key_of(d))

    # ------------------------------------------------------------------ reconcile

    async def _reconcile(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        d = cu.with_kind(cached, "apps/v1", "Deployment")
        if (du.spec(d).get("selector") or {}) == {}:
            await self._selecting_all(d)
            return None
        sets = await self._claim_replicasets(d)
        try:
            return await Rollout(_Ops(self), d, sets).run()
        except errors.Conflict:
            # a write raced the informer cache: retry once the cache caught up (quietly;
            # kube-controller-manager logs these only at high verbosity)
            log.debug("deployment sync conflict key=%s; retrying", key)
            return CONFLICT_RETRY

    async def _selecting_all(self, d: Obj) -> None:
        msg = "This deployment is selecting all pods. A non-empty selector is required."
        self.recorder.event(d, "Warning", "SelectingAll", msg)
        generation = int(cu.meta(d).get("generation") or 0)
        if int(du.status(d).get("observedGeneration") or 0) < generation:
            body = copy.deepcopy(d)
            body.setdefault("status", {})["observedGeneration"] = generation
            await self.client.update(DEPLOYMENTS, str(cu.meta(d)["namespace"]), body, subresource="status")

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        """``getReplicaSetsForDeployment``: owned sets plus adoptable orphans."""
        ns = str(cu.meta(d).get("namespace", ""))
        owned = self.replicasets.by_index(cu.OWNER_INDEX, str(cu.meta(d).get("uid", "")))
        orphans = self.replicasets.by_index(cu.ORPHAN_INDEX, ns)
        ref = cu.new_controller_ref(d, "apps/v1", "Deployment")

        async def can_adopt() -> bool:
            try:
                fresh = await self.client.get(DEPLOYMENTS, ns, str(cu.meta(d)["name"]))
            except errors.NotFound:
                return False
            return cu.meta(fresh).get("uid") == cu.meta(d).get("uid") and not cu.is_being_deleted(fresh)

        claimer = cu.Claimer(self.client, REPLICASETS, d, ref, selector_of(d), can_adopt)
        return await claimer.claim(owned + orphans)


class _Ops:
    """The controller's side effects for one :class:`Rollout`."""

    def __init__(self, ctl: DeploymentController) -> None:
        self.ctl = ctl

    def now(self) -> float:
        return float(self.ctl.clock())

    async def create_rs(self, namespace: str, body: Obj) -> Obj:
        return await self.ctl.client.create(REPLICASETS, namespace, body)

    async def get_rs(self, namespace: str, name: str) -> Obj | None:
        cached = self.ctl.replicasets.get(f"{namespace}/{name}")
        if cached is not None:
            return cached
        try:
            return await self.ctl.client.get(REPLICASETS, namespace, name)
        except errors.NotFound:
            return None

    async def update_rs(self, rs: Obj) -> Obj:
        return await self.ctl.client.update(REPLICASETS, str(cu.meta(rs).get("namespace", "")), rs)

    async def delete_rs(self, rs: Obj) -> None:
        with contextlib.suppress(errors.NotFound):
            await self.ctl.client.delete(
                REPLICASETS, str(cu.meta(rs).get("namespace", "")), str(cu.meta(rs)["name"])
            )

    async def update_status(self, d: Obj) -> Obj:
        ns = str(cu.meta(d).get("namespace", ""))
        out = await self.ctl.client.update(DEPLOYMENTS, ns, d, subresource="status")
        revision = du.annotations_of(d).get(du.REVISION)
        if revision is not None and du.annotations_of(out).get(du.REVISION) != revision:
            patch = {"metadata": {"annotations": {du.REVISION: revision}}}
            out = await self.ctl.client.patch(DEPLOYMENTS, ns, str(cu.meta(d)["name"]), patch)
        return out

    def event(self, d: Obj, type_: str, reason: str, message: str) -> None:
        self.ctl.recorder.event(d, type_, reason, message)

    def pods_by_rs(self, d: Obj, sets: list[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for rs in sets:
            uid = str(cu.meta(rs).get("uid", ""))
            out[uid] = self.ctl.pods.by_index(cu.OWNER_INDEX, uid)
        return out


def new(ctx: Any) -> DeploymentController:
    """The Deployment controller (``deployment`` in the controller table)."""
    return DeploymentController(
        ctx.client,
        ctx.informers.get(DEPLOYMENTS),
        ctx.informers.get(REPLICASETS),
        ctx.informers.get(PODS),
        ctx.recorder(COMPONENT),
        workers=int(ctx.option("deployment_workers", 5)),
    )
