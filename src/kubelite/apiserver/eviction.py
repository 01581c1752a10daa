"""The PodDisruptionBudget check of ``POST pods/<name>/eviction``.

Mirrors kube-apiserver's eviction REST (``pkg/registry/core/pod/storage/eviction.go``):

* pods that are terminal, Pending or already terminating are deleted without a budget
  check (they cause no new disruption);
* a pod covered by more than one budget cannot be evicted (500);
* a pod that is not Ready is deleted without consuming the budget when the budget's
  ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow``, or (``IfHealthyBudget``, the default)
  when the budget is currently met;
* otherwise the budget must allow a disruption: ``status.disruptionsAllowed`` is
  decremented and the pod recorded in ``status.disruptedPods`` with one compare-and-swap
  write of the budget's status, or the eviction is refused with 429 TooManyRequests
  ``Cannot evict pod as it would violate the pod's disruption budget.``;
* the pod gets the ``DisruptionTarget`` condition (reason ``EvictionByEvictionAPI``)
  before it is deleted.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import is_pod_ready, matches, selector_of, set_condition
from kubelite.apiserver.context import ServerContext
from kubelite.registry.resources import ResourceInfo

Obj = dict[str, Any]
MAX_DISRUPTED_PODS = 2000
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
CAUSE_TYPE = "DisruptionBudget"


def _info(ctx: ServerContext, group: str, plural: str) -> ResourceInfo:
    info = ctx.index.get(group, "v1", plural)
    assert info is not None, plural
    return info


def can_ignore_budget(pod: Obj) -> bool:
    """``canIgnorePDB``: terminal, Pending or terminating pods disrupt nothing more."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(
        (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def too_many_requests(message: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(VIOLATION, errors.StatusDetails(causes=[errors.Cause(CAUSE_TYPE, message)]))


def check_and_decrement(pdb: Obj, pod_name: str, now: str) -> Obj:
    """The budget after one more disruption, or the error refusing it."""
    meta, status = pdb["metadata"], dict(pdb.get("status") or {})
    name = meta.get("name", "")
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise too_many_requests(f"The disruption budget {name} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.Forbidden(
            f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions allowed is negative'
        )
    disrupted = dict(status.get("disruptedPods") or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise errors.Forbidden(
            f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods map too big - '
            "too many evictions not confirmed by PDB controller"
        )
    if allowed == 0:
        raise too_many_requests(
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
            f"and has {int(status.get('currentHealthy') or 0)} currently"
        )
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        cond = {
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "InsufficientPods",
            "message": "",
            "observedGeneration": int(status.get("observedGeneration") or 0),
        }
        status["conditions"] = set_condition(list(status.get("conditions") or []), cond, now)
    disrupted[pod_name] = now
    status["disruptedPods"] = disrupted
    out = dict(pdb)
    out["status"] = status
    return out


def _unhealthy_pod_may_go(pdb: Obj) -> bool:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


async def matching_budgets(ctx: ServerContext, pod: Obj) -> list[Obj]:
    namespace = pod["metadata"].get("namespace", "")
    page = await ctx.objects.list(_info(ctx, "policy", "poddisruptionbudgets"), namespace)
    return [p for p in page.items if matches(selector_of((p.get("spec") or {}).get("selector")), pod)]


async def _consume(ctx: ServerContext, pdb: Obj, pod_name: str) -> None:
    info = _info(ctx, "policy", "poddisruptionbudgets")
    meta = pdb["metadata"]
    now = ctx.now()

    def mutate(cur: Obj) -> Obj | None:
        return check_and_decrement(cur, pod_name, now)

    await ctx.objects.guaranteed_update(info, meta.get("namespace", ""), meta["name"], mutate)


async def _mark_disruption_target(ctx: ServerContext, pod: Obj) -> None:
    info = _info(ctx, "", "pods")
    meta = pod["metadata"]
    now = ctx.now()
    cond = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "lastProbeTime": None,
    }

    def mutate(cur: Obj) -> Obj | None:
        status = cur.setdefault("status", {})
        status["conditions"] = set_condition(list(status.get("conditions") or []), cond, now)
        return cur

    with contextlib.suppress(errors.NotFound):
        await ctx.objects.guaranteed_update(info, meta.get("namespace", ""), meta["name"], mutate)


async def eviction_check(ctx: ServerContext, pod: Obj) -> None:
    """Raise when evicting ``pod`` would violate its PodDisruptionBudget; else consume it."""
    if can_ignore_budget(pod):
        return
    budgets = await matching_budgets(ctx, pod)
    if len(budgets) > 1:
        raise errors.InternalError(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        )
    if budgets:
        pdb = budgets[0]
        if is_pod_ready(pod) or not _unhealthy_pod_may_go(pdb):
            await _consume(ctx, pdb, pod["metadata"]["name"])
    await _mark_disruption_target(ctx, pod)
