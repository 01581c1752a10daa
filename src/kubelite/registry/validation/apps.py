"""Validation of ``apps/v1`` kinds, as ``pkg/apis/apps/validation`` and the apps strategies do it.

Deployment, ReplicaSet, StatefulSet, DaemonSet and ControllerRevision, including the
``apps/v1`` rule that ``spec.selector`` is immutable and StatefulSet's short list of
mutable spec fields.
"""

from __future__ import annotations

from typing import Any

from kubelite.registry.validation.common import (
    as_dict,
    as_int,
    is_percent,
    name_is_dns_label,
    name_is_dns_subdomain,
    selector_is_empty,
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.registry.validation.core import validate_template_for_controller
from kubelite.registry.validation.field import (
    Errs,
    Raw,
    forbidden,
    immutable,
    immutable_selector,
    invalid,
    nonnegative,
    not_supported,
    required,
    selector_value,
)

Obj = dict[str, Any]


def _spec(obj: Obj) -> dict[str, Any]:
    return as_dict(obj.get("spec"))


def _template_labels(spec: dict[str, Any]) -> dict[str, Any]:
    return as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))


def _selector_rules(spec: dict[str, Any], kind_word: str) -> Errs:
    """Selector required and non-empty, and it must match the template's labels."""
    selector = spec.get("selector")
    errs: Errs = []
    if selector is None:
        errs.append(required("spec.selector"))
    else:
        errs.extend(validate_label_selector(selector, "spec.selector"))
        if selector_is_empty(selector):
            errs.append(
                invalid(
                    "spec.selector", selector_value(selector), f"empty selector is invalid for {kind_word}"
                )
            )
    return errs


def _template_match(spec: dict[str, Any]) -> Errs:
    selector = spec.get("selector")
    labels = _template_labels(spec)
    # a nil selector matches nothing; an empty one matches everything and is not checked
    if selector is None or (not selector_is_empty(selector) and not selector_matches(selector, labels)):
        return [
            invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        ]
    return []


def validate_positive_int_or_percent(value: Any, path: str) -> Errs:
    if isinstance(value, str):
        return [invalid(path, Raw(value), m) for m in is_percent(value)]
    return nonnegative(path, value)


def _not_more_than_100(value: Any, path: str) -> Errs:
    if isinstance(value, str) and not is_percent(value) and int(value[:-1]) > 100:
        return [invalid(path, Raw(value), "must not be greater than 100%")]
    return []


def _iop_value(value: Any) -> int:
    if isinstance(value, str):
        return int(value[:-1]) if not is_percent(value) else 0
    return value if isinstance(value, int) else 0


def _raw(value: Any) -> Raw:
    return Raw(str(value if value is not None else 0))


# --- Deployment / ReplicaSet ------------------------------------------------------------------------


def _validate_deployment_strategy(strategy: dict[str, Any]) -> Errs:
    stype = strategy.get("type")
    path = "spec.strategy"
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [
                forbidden(path + ".rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
            ]
        return []
    if stype != "RollingUpdate":
        return [not_supported(path, strategy, ("Recreate", "RollingUpdate"))]
    ru = strategy.get("rollingUpdate")
    if ru is None:
        return [required(path + ".rollingUpdate", "this should be defaulted and never be nil")]
    ru = as_dict(ru)
    rp = path + ".rollingUpdate"
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    errs = validate_positive_int_or_percent(mu, rp + ".maxUnavailable")
    errs.extend(validate_positive_int_or_percent(ms, rp + ".maxSurge"))
    if _iop_value(mu) == 0 and _iop_value(ms) == 0:
        errs.append(invalid(rp + ".maxUnavailable", _raw(mu), "may not be 0 when `maxSurge` is 0"))
    errs.extend(_not_more_than_100(mu, rp + ".maxUnavailable"))
    return errs


def validate_deployment(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    spec = _spec(obj)
    errs.extend(nonnegative("spec.replicas", spec.get("replicas")))
    errs.extend(_selector_rules(spec, "deployment"))
    errs.extend(_template_match(spec))
    errs.extend(validate_template_for_controller(spec.get("template"), "spec.template", "ReplicaSet", True))
    errs.extend(_validate_deployment_strategy(as_dict(spec.get("strategy"))))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    pds = as_int(spec.get("progressDeadlineSeconds"))
    if pds is not None:
        errs.extend(nonnegative("spec.progressDeadlineSeconds", pds))
        if pds <= (as_int(spec.get("minReadySeconds")) or 0):
            errs.append(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(immutable_selector("spec.selector", spec.get("selector"), _spec(old).get("selector")))
    return errs


def validate_replica_set(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    spec = _spec(obj)
    errs.extend(nonnegative("spec.replicas", spec.get("replicas")))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(_selector_rules(spec, "deployment"))
    errs.extend(_template_match(spec))
    errs.extend(validate_template_for_controller(spec.get("template"), "spec.template", "ReplicaSet", True))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(immutable_selector("spec.selector", spec.get("selector"), _spec(old).get("selector")))
    return errs


# --- StatefulSet ------------------------------------------------------------------------------------


def _statefulset_strategy(strategy: dict[str, Any]) -> Errs:
    stype = strategy.get("type")
    path = "spec.updateStrategy"
    if not stype:
        return [required(path)]
    if stype == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            return [
                invalid(
                    path + ".rollingUpdate",
                    strategy["rollingUpdate"],
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            ]
        return []
    if stype != "RollingUpdate":
        return [invalid(path, strategy, "must be 'RollingUpdate' or 'OnDelete'")]
    ru = as_dict(strategy.get("rollingUpdate"))
    errs = nonnegative(path + ".rollingUpdate.partition", ru.get("partition"))
    mu = ru.get("maxUnavailable")
    if mu is not None:
        errs.extend(validate_positive_int_or_percent(mu, path + ".rollingUpdate.maxUnavailable"))
        if _iop_value(mu) == 0:
            errs.append(invalid(path + ".rollingUpdate.maxUnavailable", _raw(mu), "cannot be 0"))
        errs.extend(_not_more_than_100(mu, path + ".rollingUpdate.maxUnavailable"))
    return errs


def validate_statefulset(obj: Obj, old: Obj | None) -> Errs:
    if old is None:
        errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_label)
    else:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = _spec(obj)
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    errs.extend(_statefulset_strategy(as_dict(spec.get("updateStrategy"))))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            value = retention.get(key) or ""
            if value not in ("Retain", "Delete"):
                errs.append(
                    not_supported(
                        f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, ("Retain", "Delete")
                    )
                )
    errs.extend(nonnegative("spec.replicas", spec.get("replicas")))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(nonnegative("spec.ordinals.start", as_dict(spec.get("ordinals")).get("start")))
    errs.extend(_selector_rules(spec, "statefulset"))
    errs.extend(_template_match(spec))
    meta = as_dict(as_dict(spec.get("template")).get("metadata"))
    errs.extend(validate_labels(meta.get("labels"), "spec.template.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "spec.template.annotations"))
    tspec = as_dict(as_dict(spec.get("template")).get("spec"))
    if tspec.get("restartPolicy") != "Always":
        errs.append(
            not_supported("spec.template.spec.restartPolicy", tspec.get("restartPolicy") or "", ("Always",))
        )
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    if old is not None:
        errs.extend(_statefulset_update(spec, _spec(old)))
    return errs


_STS_MUTABLE = (
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "persistentVolumeClaimRetentionPolicy",
)


def _statefulset_update(new: dict[str, Any], old: dict[str, Any]) -> Errs:
    strip_new = {k: v for k, v in new.items() if k not in _STS_MUTABLE}
    strip_old = {k: v for k, v in old.items() if k not in _STS_MUTABLE}
    if strip_new != strip_old:
        return [
            forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                "'minReadySeconds' are forbidden",
            )
        ]
    return []


# --- DaemonSet --------------------------------------------------------------------------------------


def _daemonset_strategy(strategy: dict[str, Any]) -> Errs:
    stype = strategy.get("type")
    path = "spec.updateStrategy"
    if stype == "OnDelete":
        return []
    if stype != "RollingUpdate":
        return [not_supported(path, strategy, ("RollingUpdate", "OnDelete"))]
    if strategy.get("rollingUpdate") is None:
        return [required(path + ".rollingUpdate")]
    ru, rp = as_dict(strategy["rollingUpdate"]), path + ".rollingUpdate"
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    errs = validate_positive_int_or_percent(mu, rp + ".maxUnavailable")
    errs.extend(validate_positive_int_or_percent(ms, rp + ".maxSurge"))
    errs.extend(_not_more_than_100(mu, rp + ".maxUnavailable"))
    errs.extend(_not_more_than_100(ms, rp + ".maxSurge"))
    has_unavailable, has_surge = _iop_value(mu) != 0, _iop_value(ms) != 0
    if has_unavailable and has_surge:
        errs.append(invalid(rp + ".maxSurge", _raw(ms), "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(required(rp + ".maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


def validate_daemonset(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    spec = _spec(obj)
    selector = spec.get("selector")
    errs.extend(validate_label_selector(selector, "spec.selector"))
    labels = _template_labels(spec)
    if selector is None or not selector_matches(selector, labels):
        errs.append(
            invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    if selector is not None and selector_is_empty(selector):
        errs.append(
            invalid("spec.selector", selector_value(selector), "empty selector is invalid for daemonset")
        )
    errs.extend(validate_template_for_controller(spec.get("template"), "spec.template", "DaemonSet", True))
    errs.extend(nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    errs.extend(_daemonset_strategy(as_dict(spec.get("updateStrategy"))))
    errs.extend(nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(immutable_selector("spec.selector", selector, _spec(old).get("selector")))
    return errs


# --- ControllerRevision -----------------------------------------------------------------------------


def validate_controller_revision(obj: Obj, old: Obj | None) -> Errs:
    errs = validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    errs.extend(nonnegative("revision", obj.get("revision")))
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + errs
        errs.extend(immutable("data", obj.get("data"), old.get("data")))
    return errs


# --- status -----------------------------------------------------------------------------------------

_STATUS_COUNTERS = (
    "replicas",
    "readyReplicas",
    "availableReplicas",
    "updatedReplicas",
    "currentReplicas",
    "fullyLabeledReplicas",
    "unavailableReplicas",
    "observedGeneration",
    "collisionCount",
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
)


def validate_workload_status(obj: Obj) -> Errs:
    """Non-negative counters and ready/available not above replicas (apps status validation)."""
    status = as_dict(obj.get("status"))
    errs: Errs = []
    for key in _STATUS_COUNTERS:
        errs.extend(nonnegative(f"status.{key}", status.get(key)))
    replicas = as_int(status.get("replicas"))
    if replicas is not None:
        for key in (
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
            "currentReplicas",
        ):
            value = as_int(status.get(key))
            if value is not None and value > replicas:
                errs.append(invalid(f"status.{key}", value, "cannot be greater than status.replicas"))
    return errs


def validate_collision_count(obj: Obj, old: Obj) -> Errs:
    new_cc = as_int(as_dict(obj.get("status")).get("collisionCount"))
    old_cc = as_int(as_dict(old.get("status")).get("collisionCount"))
    if old_cc is not None and (new_cc or 0) < old_cc:
        return [invalid("status.collisionCount", new_cc or 0, "cannot be decremented")]
    return []
