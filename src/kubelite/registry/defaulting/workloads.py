"""Defaults of ``apps/v1`` and ``batch/v1`` kinds (``pkg/apis/{apps,batch}/v1/defaults.go``).

Also the Job strategy's selector generation (``generateSelector`` in ``PrepareForCreate``):
it needs ``metadata.uid``, so the caller must assign the uid before applying defaults.
"""

from __future__ import annotations

from typing import Any

from kubelite.registry.defaulting.core import default_pvc_spec
from kubelite.registry.defaulting.pods import default_template

Obj = dict[str, Any]

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"


def _dict(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _setdefault(obj: Obj, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


def default_deployment(dep: Obj) -> None:
    spec = _dict(dep, "spec")
    _setdefault(spec, "replicas", 1)
    strategy = _dict(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        _setdefault(ru, "maxUnavailable", "25%")
        _setdefault(ru, "maxSurge", "25%")
    _setdefault(spec, "revisionHistoryLimit", 10)
    _setdefault(spec, "progressDeadlineSeconds", 600)
    default_template(_dict(spec, "template"))


def default_replica_set(rs: Obj) -> None:
    spec = _dict(rs, "spec")
    _setdefault(spec, "replicas", 1)
    default_template(_dict(spec, "template"))


def default_daemonset(ds: Obj) -> None:
    spec = _dict(ds, "spec")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        _setdefault(ru, "maxUnavailable", 1)
        _setdefault(ru, "maxSurge", 0)
    _setdefault(spec, "revisionHistoryLimit", 10)
    default_template(_dict(spec, "template"))


def default_statefulset(sts: Obj) -> None:
    spec = _dict(sts, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _dict(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        _setdefault(strategy["rollingUpdate"], "partition", 0)
    retention = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    if not retention.get("whenDeleted"):
        retention["whenDeleted"] = "Retain"
    if not retention.get("whenScaled"):
        retention["whenScaled"] = "Retain"
    _setdefault(spec, "replicas", 1)
    _setdefault(spec, "revisionHistoryLimit", 10)
    default_template(_dict(spec, "template"))
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            default_pvc_spec(_dict(claim, "spec"))
            status = _dict(claim, "status")
            if not status.get("phase"):
                status["phase"] = "Pending"


def default_job(job: Obj) -> None:
    """``SetDefaults_Job``, after generating the selector and labels when the uid is known."""
    spec = _dict(job, "spec")
    generate_job_selector(job)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _setdefault(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2**31 - 1 if spec.get("backoffLimitPerIndex") is not None else 6
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    meta = _dict(job, "metadata")
    if isinstance(labels, dict) and labels and not meta.get("labels"):
        meta["labels"] = dict(labels)
    _setdefault(spec, "completionMode", "NonIndexed")
    _setdefault(spec, "suspend", False)
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in policy.get("rules") or []:
            for pattern in (rule or {}).get("onPodConditions") or []:
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if isinstance(policy, dict) else "TerminatingOrFailed"
    default_template(_dict(spec, "template"))


def generate_job_selector(job: Obj) -> None:
    """The Job strategy's ``generateSelector`` (skipped with ``manualSelector: true`` or no uid)."""
    meta = job.get("metadata") or {}
    spec = _dict(job, "spec")
    uid, name = meta.get("uid"), meta.get("name")
    if spec.get("manualSelector") is True or not uid:
        return
    template = _dict(spec, "template")
    labels = _dict(_dict(template, "metadata"), "labels")
    for key in ("job-name", JOB_NAME):
        labels.setdefault(key, name or "")
    for key in ("controller-uid", CONTROLLER_UID):
        labels.setdefault(key, uid)
    match_labels = _dict(_dict(spec, "selector"), "matchLabels")
    match_labels.setdefault(CONTROLLER_UID, uid)


def default_cronjob(cj: Obj) -> None:
    spec = _dict(cj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    _setdefault(spec, "suspend", False)
    _setdefault(spec, "successfulJobsHistoryLimit", 3)
    _setdefault(spec, "failedJobsHistoryLimit", 1)
    default_template(_dict(_dict(_dict(spec, "jobTemplate"), "spec"), "template"))
