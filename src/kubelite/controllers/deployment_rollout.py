"""One Deployment sync: what ``DeploymentController.syncDeployment`` does for one key.

Mirrors ``pkg/controller/deployment`` (sync.go, rolling.go, recreate.go, progress.go):

* paused Deployments and scaling events only scale (proportionally during a rollout,
  using each set's ``max-replicas`` annotation) and never roll out;
* RollingUpdate grows the new ReplicaSet up to ``replicas + maxSurge`` pods in total and
  shrinks old sets (unhealthy replicas first, then oldest sets first) while at least
  ``replicas - maxUnavailable`` pods stay available;
* Recreate scales every old set to zero, waits for their pods to be gone, then scales the
  new set up;
* the new ReplicaSet is ``<deployment>-<pod-template-hash>``; a template equal to an old
  set's (``kubectl rollout undo``) re-uses that set and gives it the next revision;
* status and the Progressing/Available conditions, with ``progressDeadlineSeconds``;
* old sets beyond ``revisionHistoryLimit`` are deleted once scaled down.

All API writes go through :class:`Ops`, so this module is pure control flow.
"""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Any, Protocol

from kubelite.api import errors
from kubelite.controllers import deployment_util as du
from kubelite.machinery import controller_utils as cu

Obj = dict[str, Any]


class Ops(Protocol):
    """The side effects a sync needs (the controller implements them over the API)."""

    def now(self) -> float: ...

    async def create_rs(self, namespace: str, body: Obj) -> Obj: ...

    async def get_rs(self, namespace: str, name: str) -> Obj | None: ...

    async def update_rs(self, rs: Obj) -> Obj: ...

    async def delete_rs(self, rs: Obj) -> None: ...

    async def update_status(self, d: Obj) -> Obj: ...

    def event(self, d: Obj, type_: str, reason: str, message: str) -> None: ...

    def pods_by_rs(self, d: Obj, sets: list[Obj]) -> dict[str, list[Obj]]: ...


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _name(obj: Obj) -> str:
    return str(cu.meta(obj).get("name", ""))


def _uid(obj: Obj | None) -> str:
    return str(cu.meta(obj).get("uid", "")) if obj is not None else ""


class Rollout:
    """The state of one sync: a private copy of the Deployment and its ReplicaSets."""

    def __init__(self, ops: Ops, deployment: Obj, sets: list[Obj]) -> None:
        self.ops = ops
        self.d = copy.deepcopy(deployment)
        self.d.setdefault("status", {})
        self.sets = list(sets)
        self.now = ops.now()
        self.now_str = _rfc3339(self.now)

    # ------------------------------------------------------------------ entry

    async def run(self) -> float | None:
        """``syncDeployment`` after the ReplicaSets were claimed; returns a requeue delay."""
        if cu.is_being_deleted(self.d):
            return await self.sync_status_only()
        await self.check_paused_conditions()
        if du.spec(self.d).get("paused"):
            return await self.sync()
        if await self.is_scaling_event():
            return await self.sync()
        if not du.is_rolling(self.d):
            return await self.rollout_recreate()
        return await self.rollout_rolling()

    # ------------------------------------------------------------------ bookkeeping

    def _replace(self, rs: Obj) -> Obj:
        uid = _uid(rs)
        self.sets = [rs if _uid(s) == uid else s for s in self.sets]
        if all(_uid(s) != uid for s in self.sets):
            self.sets.append(rs)
        return rs

    def _current(self, rs: Obj | None) -> Obj | None:
        if rs is None:
            return None
        return next((s for s in self.sets if _uid(s) == _uid(rs)), rs)

    def _set_progressing(self, status: str, reason: str, message: str) -> None:
        cond = du.new_condition("Progressing", status, reason, message, self.now_str)
        du.set_condition(self.d["status"], cond)

    async def _write_status(self) -> None:
        out = await self.ops.update_status(self.d)
        self.d.setdefault("metadata", {})["resourceVersion"] = cu.meta(out).get("resourceVersion")

    # ------------------------------------------------------------------ new/old sets

    async def get_all(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``: (new set or None, all old sets)."""
        old = du.find_old(self.d, self.sets)
        new = await self.get_new(old, create)
        old_uids = {_uid(o) for o in old}
        return new, [s for s in self.sets if _uid(s) in old_uids]

    async def get_new(self, old: list[Obj], create: bool) -> Obj | None:
        existing = du.find_new(self.d, self.sets)
        new_revision = str(du.max_revision(old) + 1)
        if existing is not None:
            return await self._sync_existing_new(existing, new_revision)
        if not create:
            return None
        return await self._create_new(old, new_revision)

    async def _sync_existing_new(self, existing: Obj, new_revision: str) -> Obj:
        rs = copy.deepcopy(existing)
        changed = du.set_new_rs_annotations(self.d, rs, new_revision, exists=True)
        min_ready = int(du.spec(self.d).get("minReadySeconds") or 0)
        if changed or int(du.spec(rs).get("minReadySeconds") or 0) != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            return self._replace(await self.ops.update_rs(rs))
        needs_update = self._set_revision(du.annotations_of(rs).get(du.REVISION, ""))
        if du.has_progress_deadline(self.d) and du.get_condition(self.d["status"], "Progressing") is None:
            msg = f'Found new replica set "{_name(rs)}"'
            self._set_progressing("True", du.FOUND_NEW_RS, msg)
            needs_update = True
        if needs_update:
            await self._write_status()
        return rs

    def _set_revision(self, revision: str) -> bool:
        """``SetDeploymentRevision``: True when the Deployment's revision annotation changes."""
        anns = self.d.setdefault("metadata", {}).setdefault("annotations", {})
        if anns.get(du.REVISION) == revision:
            return False
        anns[du.REVISION] = revision
        return True

    def _new_rs_body(self) -> Obj:
        d = self.d
        template = copy.deepcopy(du.spec(d).get("template") or {})
        collision = du.status(d).get("collisionCount")
        pod_hash = cu.compute_hash(template, None if collision is None else int(collision))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), cu.POD_TEMPLATE_HASH_LABEL: pod_hash}
        selector = copy.deepcopy(du.spec(d).get("selector") or {})
        selector["matchLabels"] = {
            **(selector.get("matchLabels") or {}),
            cu.POD_TEMPLATE_HASH_LABEL: pod_hash,
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{_name(d)}-{pod_hash}",
                "namespace": cu.meta(d).get("namespace"),
                "labels": dict(tmeta["labels"]),
                "ownerReferences": [cu.new_controller_ref(d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(du.spec(d).get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }

    async def _create_new(self, old: list[Obj], new_revision: str) -> Obj | None:
        body = self._new_rs_body()
        count = du.new_rs_new_replicas(self.d, [*old, body], body)
        body["spec"]["replicas"] = count
        du.set_new_rs_annotations(self.d, body, new_revision, exists=False)
        ns = str(cu.meta(self.d).get("namespace", ""))
        already = False
        try:
            created = await self.ops.create_rs(ns, body)
        except errors.AlreadyExists:
            already = True
            created = await self._resolve_collision(ns, body)
        except errors.APIError as e:
            await self._report_create_failure(_name(body), e)
            raise
        self._replace(created)
        if not already and count > 0:
            self.ops.event(
                self.d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {_name(created)} from 0 to {count}",
            )
        needs_update = self._set_revision(new_revision)
        if not already and du.has_progress_deadline(self.d):
            msg = f'Created new replica set "{_name(created)}"'
            du.set_condition(
                self.d["status"],
                du.new_condition("Progressing", "True", du.NEW_RS_CREATED, msg, self.now_str),
            )
            needs_update = True
        if needs_update:
            await self._write_status()
        return created

    async def _resolve_collision(self, ns: str, body: Obj) -> Obj:
        """Our own set (slow cache) is fine; anything else bumps ``collisionCount``."""
        rs = await self.ops.get_rs(ns, _name(body))
        if rs is not None:
            ref = cu.controller_ref(rs)
            same_template = du.equal_ignore_hash(
                du.spec(self.d).get("template") or {}, du.spec(rs).get("template") or {}
            )
            if ref is not None and ref.get("uid") == _uid(self.d) and same_template:
                return rs
        self.d["status"]["collisionCount"] = int(self.d["status"].get("collisionCount") or 0) + 1
        await self._write_status()
        raise errors.AlreadyExists(f'replicasets.apps "{_name(body)}" already exists (hash collision)')

    async def _report_create_failure(self, name: str, e: errors.APIError) -> None:
        if isinstance(e, errors.Forbidden) and "being terminated" in str(e):
            return
        msg = f'Failed to create new replica set "{name}": {e}'
        if du.has_progress_deadline(self.d):
            du.set_condition(
                self.d["status"],
                du.new_condition("Progressing", "False", du.FAILED_RS_CREATE, msg, self.now_str),
            )
            with contextlib.suppress(errors.APIError):
                await self._write_status()
        self.ops.event(self.d, "Warning", du.FAILED_RS_CREATE, msg)

    # ------------------------------------------------------------------ scaling primitives

    async def scale_rs(self, rs: Obj, new_scale: int, direction: str) -> tuple[bool, Obj]:
        """``scaleReplicaSet``: write the size and the replica annotations; event on resize."""
        want = du.replicas(self.d)
        max_total = want + du.max_surge(self.d)
        resize = du.replicas(rs) != new_scale
        if not resize and not du.replicas_annotations_need_update(rs, want, max_total):
            return False, rs
        old_scale = du.replicas(rs)
        body = copy.deepcopy(rs)
        body.setdefault("spec", {})["replicas"] = new_scale
        du.set_replicas_annotations(body, want, max_total)
        updated = self._replace(await self.ops.update_rs(body))
        if resize:
            msg = f"Scaled {direction} replica set {_name(updated)} to {new_scale} from {old_scale}"
            self.ops.event(self.d, "Normal", "ScalingReplicaSet", msg)
        return resize, updated

    async def scale_and_record(self, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        """``scaleReplicaSetAndRecordEvent``: nothing to do when the size is already right."""
        if du.replicas(rs) == new_scale:
            return False, rs
        return await self.scale_rs(rs, new_scale, "up" if du.replicas(rs) < new_scale else "down")

    # ------------------------------------------------------------------ sync (scale / paused)

    async def sync_status_only(self) -> float | None:
        new, old = await self.get_all(create=False)
        await self.sync_status([*old, new], new)
        return None

    async def sync(self) -> float | None:
        """``sync``: scaling events and paused Deployments."""
        new, old = await self.get_all(create=False)
        await self.scale(new, old)
        if du.spec(self.d).get("paused"):
            await self.cleanup([s for s in (self._current(o) for o in old) if s is not None])
        new = self._current(new)
        old = [o for o in (self._current(o) for o in old) if o is not None]
        await self.sync_status([*old, new], new)
        return None

    async def is_scaling_event(self) -> bool:
        new, old = await self.get_all(create=False)
        want = du.replicas(self.d)
        for rs in du.active([*old, new]):
            desired = du.desired_replicas_annotation(rs)
            if desired is not None and desired != want:
                return True
        return False

    async def scale(self, new: Obj | None, old: list[Obj]) -> None:
        """``scale``: one active set takes everything; a saturated new set empties the old
        ones; otherwise (rolling) every active set grows or shrinks in proportion."""
        want = du.replicas(self.d)
        only = du.find_active_or_latest(new, old)
        if only is not None:
            if du.replicas(only) != want:
                await self.scale_and_record(only, want)
            return
        if du.is_saturated(self.d, new):
            for rs in du.active(old):
                await self.scale_and_record(rs, 0)
            return
        if not du.is_rolling(self.d):
            return
        ordered, sizes, direction = du.proportional_sizes(self.d, du.active([*old, new]))
        for rs in ordered:
            await self.scale_rs(rs, sizes[_name(rs)], direction)

    async def cleanup(self, old: list[Obj]) -> None:
        """``cleanupDeployment``: delete the oldest scaled-down sets beyond the history limit."""
        limit = du.spec(self.d).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not cu.is_being_deleted(rs)]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        for rs in du.by_revision(alive)[:diff]:
            st = du.status(rs)
            observed = int(st.get("observedGeneration") or 0)
            if int(st.get("replicas") or 0) != 0 or du.replicas(rs) != 0:
                continue
            if int(cu.meta(rs).get("generation") or 0) > observed:
                continue
            await self.ops.delete_rs(rs)

    async def sync_status(self, all_sets: list[Obj | None], new: Obj | None) -> None:
        """``syncDeploymentStatus``: counts and Available only (no progress estimation)."""
        st = du.calculate_status(all_sets, new, self.d, self.now_str)
        if du.prune_status(st) == du.prune_status(du.status(self.d)):
            return
        self.d["status"] = du.prune_status(st)
        await self._write_status()

    async def check_paused_conditions(self) -> None:
        """``checkPausedConditions``: Progressing Unknown DeploymentPaused / DeploymentResumed."""
        if not du.has_progress_deadline(self.d):
            return
        cond = du.get_condition(self.d["status"], "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED
        paused = bool(du.spec(self.d).get("paused"))
        if paused and not paused_cond:
            new = du.new_condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused", self.now_str)
        elif not paused and paused_cond:
            new = du.new_condition(
                "Progressing", "Unknown", du.RESUMED, "Deployment is resumed", self.now_str
            )
        else:
            return
        du.set_condition(self.d["status"], new)
        await self._write_status()

    # ------------------------------------------------------------------ rolling update

    async def rollout_rolling(self) -> float | None:
        new, old = await self.get_all(create=True)
        assert new is not None
        if await self.reconcile_new(new, old):
            return await self.sync_rollout_status()
        new = self._current(new)
        assert new is not None
        if await self.reconcile_old(new, old):
            return await self.sync_rollout_status()
        if du.complete(self.d, du.status(self.d)):
            await self.cleanup([s for s in (self._current(o) for o in old) if s is not None])
        return await self.sync_rollout_status()

    async def reconcile_new(self, new: Obj, old: list[Obj]) -> bool:
        want = du.replicas(self.d)
        if du.replicas(new) == want:
            return False
        if du.replicas(new) > want:
            return (await self.scale_and_record(new, want))[0]
        count = du.new_rs_new_replicas(self.d, [*old, new], new)
        return (await self.scale_and_record(new, count))[0]

    async def reconcile_old(self, new: Obj, old: list[Obj]) -> bool:
        old = [o for o in (self._current(o) for o in old) if o is not None]
        old_count = du.spec_replicas_sum(old)
        if old_count == 0:
            return False
        all_count = du.spec_replicas_sum([*old, new])
        min_available = du.replicas(self.d) - du.max_unavailable(self.d)
        new_unavailable = du.replicas(new) - int(du.status(new).get("availableReplicas") or 0)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = await self.cleanup_unhealthy(du.active(old), max_scaled_down)
        old = [o for o in (self._current(o) for o in old) if o is not None]
        scaled = await self.scale_down_old_for_rolling(new, du.active(old))
        return cleaned + scaled > 0

    async def cleanup_unhealthy(self, old: list[Obj], max_cleanup: int) -> int:
        """``cleanupUnhealthyReplicas``: drop unavailable replicas of old sets first."""
        total = 0
        for rs in du.by_creation(old):
            if total >= max_cleanup:
                break
            available = int(du.status(rs).get("availableReplicas") or 0)
            if du.replicas(rs) == 0 or du.replicas(rs) == available:
                continue
            count = min(max_cleanup - total, du.replicas(rs) - available)
            if count <= 0:
                # more available than wanted: the set's status predates our last scale-down.
                # Kubernetes fails the sync here; it is retried once the cache caught up.
                target = f"{cu.meta(rs).get('namespace')}/{_name(rs)}"
                raise errors.Conflict(
                    "when cleaning up unhealthy replicas, got invalid request to scale down "
                    f"{target} {du.replicas(rs)} -> {du.replicas(rs) - count}"
                )
            await self.scale_and_record(rs, du.replicas(rs) - count)
            total += count
        return total

    async def scale_down_old_for_rolling(self, new: Obj, old: list[Obj]) -> int:
        """``scaleDownOldReplicaSetsForRollingUpdate``: keep ``replicas - maxUnavailable`` available."""
        min_available = du.replicas(self.d) - du.max_unavailable(self.d)
        # a set's status may still count pods of a scale-down just written: never count
        # more available pods than the set is now allowed to have
        available = sum(
            min(int(du.status(rs).get("availableReplicas") or 0), du.replicas(rs)) for rs in [*old, new]
        )
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in du.by_creation(old):
            if total >= budget:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), budget - total)
            await self.scale_and_record(rs, du.replicas(rs) - count)
            total += count
        return total

    # ------------------------------------------------------------------ recreate

    async def rollout_recreate(self) -> float | None:
        new, old = await self.get_all(create=False)
        scaled_down = False
        for rs in du.active(old):
            scaled, _ = await self.scale_and_record(rs, 0)
            scaled_down = scaled_down or scaled
        if scaled_down:
            return await self.sync_rollout_status()
        old = [o for o in (self._current(o) for o in old) if o is not None]
        if self._old_pods_running(new, old):
            return await self.sync_rollout_status()
        if new is None:
            new, old = await self.get_all(create=True)
        assert new is not None
        await self.scale_and_record(new, du.replicas(self.d))
        if du.complete(self.d, du.status(self.d)):
            await self.cleanup(old)
        return await self.sync_rollout_status()

    def _old_pods_running(self, new: Obj | None, old: list[Obj]) -> bool:
        if du.actual_replicas_sum(old) > 0:
            return True
        by_rs = self.ops.pods_by_rs(self.d, self.sets)
        for uid, pods in by_rs.items():
            if new is not None and uid == _uid(new):
                continue
            for pod in pods:
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # ------------------------------------------------------------------ progress

    async def sync_rollout_status(self) -> float | None:
        """``syncRolloutStatus``: status, Progressing (with the deadline), ReplicaFailure."""
        new = du.find_new(self.d, self.sets)
        all_sets: list[Obj | None] = [*(s for s in self.sets if new is None or _uid(s) != _uid(new)), new]
        st = du.calculate_status(all_sets, new, self.d, self.now_str)
        if not du.has_progress_deadline(self.d):
            du.remove_condition(st, "Progressing")
        self._progress(st, new)
        failures = du.rs_failure_conditions(all_sets, new)
        if failures:
            du.set_condition(st, failures[0])
        else:
            du.remove_condition(st, "ReplicaFailure")
        st = du.prune_status(st)
        if st == du.prune_status(du.status(self.d)):
            return self._requeue_stuck(st)
        self.d["status"] = st
        await self._write_status()
        return None

    def _progress(self, st: Obj, new: Obj | None) -> None:
        current = du.get_condition(du.status(self.d), "Progressing")
        done = (
            int(st.get("replicas") or 0) == int(st.get("updatedReplicas") or 0)
            and current is not None
            and current.get("reason") == du.NEW_RS_AVAILABLE
        )
        if not du.has_progress_deadline(self.d) or done:
            return
        subject = f'ReplicaSet "{_name(new)}"' if new is not None else f'Deployment "{_name(self.d)}"'
        if du.complete(self.d, st):
            msg = f"{subject} has successfully progressed."
            du.set_condition(
                st, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE, msg, self.now_str)
            )
        elif du.progressing(self.d, st):
            msg = f"{subject} is progressing."
            cond = du.new_condition("Progressing", "True", du.REPLICASET_UPDATED, msg, self.now_str)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime", self.now_str)
                du.remove_condition(st, "Progressing")
            du.set_condition(st, cond)
        elif du.timed_out(self.d, st, self.now):
            msg = f"{subject} has timed out progressing."
            du.set_condition(st, du.new_condition("Progressing", "False", du.TIMED_OUT, msg, self.now_str))

    def _requeue_stuck(self, st: Obj) -> float | None:
        """``requeueStuckDeployment``: come back when the progress deadline would pass."""
        current = du.get_condition(du.status(self.d), "Progressing")
        if not du.has_progress_deadline(self.d) or current is None:
            return None
        if du.complete(self.d, st) or current.get("reason") == du.TIMED_OUT:
            return None
        left = du.seconds_left(self.d, du.status(self.d), self.now)
        if left is None:
            return None
        return max(left, 0.0) + 0.05
