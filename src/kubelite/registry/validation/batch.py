"""Validation of ``batch/v1`` Job and CronJob, as ``pkg/apis/batch/validation`` does it.

Jobs: counters, completion modes, pod failure / success / replacement policies, the
generated selector and labels, restartPolicy OnFailure|Never, and on update the immutable
selector, template (mutable scheduling directives only while suspended and never started),
completions (elastic only for Indexed jobs) and policies. CronJobs: schedule syntax, time zone,
concurrency policy, history limits, the 52-character name limit and the job template.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from kubelite.registry.validation.common import (
    as_dict,
    as_int,
    as_list,
    as_str,
    is_dns1123_label,
    name_is_dns_subdomain,
    selector_matches,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
    validate_qualified_name,
)
from kubelite.registry.validation.core import validate_pod_template_spec
from kubelite.registry.validation.cron import schedule_error
from kubelite.registry.validation.field import (
    OMIT,
    Errs,
    duplicate,
    immutable,
    immutable_selector,
    invalid,
    nonnegative,
    not_supported,
    required,
    selector_value,
    too_many,
)

Obj = dict[str, Any]
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
_FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
_CONCURRENCY = ("Allow", "Forbid", "Replace")
_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def _spec(obj: Obj) -> dict[str, Any]:
    return as_dict(obj.get("spec"))


# --- Job --------------------------------------------------------------------------------------------


def validate_job(obj: Obj, old: Obj | None) -> Errs:
    meta = as_dict(obj.get("metadata"))
    spec = _spec(obj)
    if old is not None:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        errs.extend(validate_job_spec(spec, "spec"))
        errs.extend(_job_update(spec, _spec(old), as_dict(old.get("status"))))
        return errs
    errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    errs.extend(_generated_selector(meta, spec))
    errs.extend(validate_job_spec(spec, "spec"))
    completions = as_int(spec.get("completions"))
    if spec.get("completionMode") == "Indexed" and completions is not None and completions > 0:
        hostname = f"{as_str(meta.get('name'))}-{completions - 1}"
        if is_dns1123_label(hostname):
            errs.append(
                invalid(
                    "metadata.name",
                    as_str(meta.get("name")),
                    f"will not able to create pod with invalid DNS label: {hostname}",
                )
            )
    return errs


def _generated_selector(meta: dict[str, Any], spec: dict[str, Any]) -> Errs:
    """The auto-generated selector must select the uid/name labels present on the template."""
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    errs: Errs = []
    uid, name = as_str(meta.get("uid")), as_str(meta.get("name"))
    if not uid:
        errs.append(required("metadata.uid"))
    labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    expected = {LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name, CONTROLLER_UID: uid, JOB_NAME: name}
    for key, value in expected.items():
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            errs.append(required(path, f"must be '{value}'"))
        elif labels[key] != value:
            errs.append(invalid(path, labels, f"must be '{value}'"))
    if not selector_matches(spec.get("selector"), expected):
        errs.append(
            invalid("spec.selector", selector_value(spec.get("selector")), "`selector` not auto-generated")
        )
    return errs


def validate_job_spec(spec: dict[str, Any], path: str) -> Errs:
    """``ValidateJobSpec``: the spec, its selector, and selector/template agreement."""
    errs = _job_spec_common(spec, path)
    selector = spec.get("selector")
    if selector is None:
        errs.append(required(path + ".selector"))
    else:
        errs.extend(validate_label_selector(selector, path + ".selector"))
    labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    if selector is None or not selector_matches(selector, labels):
        errs.append(
            invalid(path + ".template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    return errs


def _job_spec_common(spec: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ):
        errs.extend(nonnegative(f"{path}.{key}", spec.get(key)))
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errs.append(required(path + ".backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    errs.extend(_completion_mode(spec, path))
    if spec.get("podFailurePolicy") is not None:
        errs.extend(_pod_failure_policy(spec, path + ".podFailurePolicy"))
    if spec.get("successPolicy") is not None and spec.get("completionMode") != "Indexed":
        errs.append(
            invalid(path + ".successPolicy", spec["successPolicy"], "requires indexed completion mode")
        )
    errs.extend(_pod_replacement_policy(spec, path + ".podReplacementPolicy"))
    errs.extend(validate_pod_template_spec(spec.get("template"), path + ".template"))
    errs.extend(_job_restart_policy(spec, path))
    return errs


def _completion_mode(spec: dict[str, Any], path: str) -> Errs:
    mode = spec.get("completionMode")
    errs: Errs = []
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(path + ".completionMode", mode, ("NonIndexed", "Indexed")))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errs.append(required(path + ".completions", "when completion mode is Indexed"))
        parallelism = as_int(spec.get("parallelism"))
        if parallelism is not None and parallelism > 100000:
            errs.append(
                invalid(
                    path + ".parallelism",
                    parallelism,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                )
            )
    if mode in (None, "NonIndexed"):
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errs.append(invalid(f"{path}.{key}", spec[key], "requires indexed completion mode"))
    return errs


def _job_restart_policy(spec: dict[str, Any], path: str) -> Errs:
    policy = as_dict(as_dict(spec.get("template")).get("spec")).get("restartPolicy") or ""
    rp = path + ".template.spec.restartPolicy"
    if policy in ("Always", ""):
        return [required(rp, 'valid values: "OnFailure", "Never"')]
    if policy not in ("OnFailure", "Never"):
        return [not_supported(rp, policy, ("OnFailure", "Never"))]
    if spec.get("podFailurePolicy") is not None and policy != "Never":
        return [invalid(rp, policy, 'only "Never" is supported when podFailurePolicy is specified')]
    return []


def _pod_replacement_policy(spec: dict[str, Any], path: str) -> Errs:
    policy = spec.get("podReplacementPolicy")
    if policy is None:
        return []
    if spec.get("podFailurePolicy") is not None:
        return [] if policy == "Failed" else [not_supported(path, policy, ("Failed",))]
    if policy not in ("Failed", "TerminatingOrFailed"):
        return [not_supported(path, policy, ("Failed", "TerminatingOrFailed"))]
    return []


def _pod_failure_policy(spec: dict[str, Any], path: str) -> Errs:
    rules = as_list(as_dict(spec.get("podFailurePolicy")).get("rules"))
    errs: Errs = []
    if len(rules) > 20:
        errs.append(too_many(path + ".rules", len(rules), 20))
    tspec = as_dict(as_dict(spec.get("template")).get("spec"))
    names = {
        as_str(as_dict(c).get("name"))
        for c in (*as_list(tspec.get("containers")), *as_list(tspec.get("initContainers")))
    }
    for i, rule in enumerate(rules):
        errs.extend(_pod_failure_rule(as_dict(rule), spec, f"{path}.rules[{i}]", names))
    return errs


def _pod_failure_rule(rule: dict[str, Any], spec: dict[str, Any], path: str, names: set[str]) -> Errs:
    errs: Errs = []
    action = rule.get("action")
    if not action:
        errs.append(required(path + ".action", 'valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'))
    elif action == "FailIndex":
        if spec.get("backoffLimitPerIndex") is None:
            errs.append(invalid(path + ".action", action, "requires the backoffLimitPerIndex to be set"))
    elif action not in _FAILURE_ACTIONS:
        errs.append(not_supported(path + ".action", action, _FAILURE_ACTIONS))
    exit_codes, conditions = rule.get("onExitCodes"), as_list(rule.get("onPodConditions"))
    if exit_codes is not None:
        errs.extend(_on_exit_codes(as_dict(exit_codes), path + ".onExitCodes", names))
    for j, pattern in enumerate(conditions):
        p = as_dict(pattern)
        errs.extend(validate_qualified_name(as_str(p.get("type")), f"{path}.onPodConditions[{j}].type"))
        status = p.get("status") or ""
        if status not in ("False", "True", "Unknown"):
            errs.append(
                not_supported(f"{path}.onPodConditions[{j}].status", status, ("False", "True", "Unknown"))
            )
    if exit_codes is not None and conditions:
        errs.append(invalid(path, OMIT, "specifying both OnExitCodes and OnPodConditions is not supported"))
    if exit_codes is None and not conditions:
        errs.append(invalid(path, OMIT, "specifying one of OnExitCodes and OnPodConditions is required"))
    return errs


def _on_exit_codes(req: dict[str, Any], path: str, names: set[str]) -> Errs:
    errs: Errs = []
    op = req.get("operator")
    if not op:
        errs.append(required(path + ".operator", 'valid values: ["In" "NotIn"]'))
    elif op not in ("In", "NotIn"):
        errs.append(not_supported(path + ".operator", op, ("In", "NotIn")))
    container = req.get("containerName")
    if container is not None and container not in names:
        errs.append(
            invalid(
                path + ".containerName",
                container,
                "must be one of the container or initContainer names in the pod template",
            )
        )
    values = [v for v in as_list(req.get("values")) if isinstance(v, int)]
    if not values:
        errs.append(invalid(path + ".values", values, "at least one value is required"))
    seen: set[int] = set()
    for j, value in enumerate(values):
        if op == "In" and value == 0:
            errs.append(invalid(f"{path}.values[{j}]", value, "must not be 0 for the In operator"))
        if value in seen:
            errs.append(duplicate(f"{path}.values[{j}]", value))
        seen.add(value)
    if values != sorted(values):
        errs.append(invalid(path + ".values", values, "must be ordered"))
    return errs


def _job_update(new: dict[str, Any], old: dict[str, Any], old_status: dict[str, Any]) -> Errs:
    errs: Errs = []
    if new.get("completionMode") == "Indexed" and new.get("completions") != old.get("completions"):
        if new.get("completions") is not None and new.get("completions") != new.get("parallelism"):
            errs.append(
                invalid(
                    "spec.completions",
                    new.get("completions"),
                    "can only be modified in tandem with spec.parallelism",
                )
            )
    else:
        errs.extend(immutable("spec.completions", new.get("completions"), old.get("completions")))
    errs.extend(immutable_selector("spec.selector", new.get("selector"), old.get("selector")))
    errs.extend(_template_update(new, old, old_status))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        errs.extend(immutable(f"spec.{key}", new.get(key), old.get(key)))
    return errs


def _template_update(new: dict[str, Any], old: dict[str, Any], old_status: dict[str, Any]) -> Errs:
    template, old_template = as_dict(new.get("template")), as_dict(old.get("template"))
    if old.get("suspend") is True and old_status.get("startTime") is None:
        # scheduling directives are mutable while the job is suspended and never started
        old_template = _with_scheduling_of(old_template, template)
    return immutable("spec.template", template, old_template)


def _with_scheduling_of(old_t: dict[str, Any], new_t: dict[str, Any]) -> dict[str, Any]:
    out = dict(old_t)
    old_meta, new_meta = as_dict(old_t.get("metadata")), as_dict(new_t.get("metadata"))
    meta = {k: v for k, v in old_meta.items() if k not in ("labels", "annotations")}
    meta.update({k: new_meta[k] for k in ("labels", "annotations") if k in new_meta})
    out["metadata"] = meta
    spec = {
        k: v
        for k, v in as_dict(old_t.get("spec")).items()
        if k not in ("nodeSelector", "tolerations", "schedulingGates")
    }
    new_spec = as_dict(new_t.get("spec"))
    spec.update({k: new_spec[k] for k in ("nodeSelector", "tolerations", "schedulingGates") if k in new_spec})
    old_aff = {k: v for k, v in as_dict(spec.get("affinity")).items() if k != "nodeAffinity"}
    new_aff = as_dict(new_spec.get("affinity"))
    if "nodeAffinity" in new_aff:
        old_aff["nodeAffinity"] = new_aff["nodeAffinity"]
    spec.pop("affinity", None)
    if old_aff or "affinity" in new_spec:
        spec["affinity"] = old_aff
    out["spec"] = spec
    return out


# --- CronJob ----------------------------------------------------------------------------------------


def validate_cronjob(obj: Obj, old: Obj | None) -> Errs:
    meta = as_dict(obj.get("metadata"))
    spec = _spec(obj)
    old_spec = _spec(old) if old is not None else None
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(meta, old.get("metadata"))
    errs.extend(_cronjob_spec(spec, old_spec))
    name = as_str(meta.get("name"))
    if old is None and len(name) > 52:
        errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    return errs


def _cronjob_spec(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> Errs:
    errs: Errs = []
    schedule = as_str(spec.get("schedule"))
    if not schedule:
        errs.append(required("spec.schedule"))
    else:
        allow_tz = old_spec is not None and "TZ" in as_str(old_spec.get("schedule"))
        errs.extend(_schedule_format(schedule, allow_tz, spec.get("timeZone")))
    errs.extend(nonnegative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds")))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs.extend(validate_time_zone(spec.get("timeZone"), "spec.timeZone"))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errs.append(required("spec.concurrencyPolicy"))
    elif policy not in _CONCURRENCY:
        errs.append(not_supported("spec.concurrencyPolicy", policy, _CONCURRENCY))
    job_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
    errs.extend(_job_spec_common(job_spec, "spec.jobTemplate.spec"))
    if job_spec.get("selector") is not None:
        errs.append(
            invalid(
                "spec.jobTemplate.spec.selector",
                selector_value(job_spec["selector"]),
                "`selector` will be auto-generated",
            )
        )
    if job_spec.get("manualSelector") is True:
        errs.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false")))
    errs.extend(nonnegative("spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit")))
    errs.extend(nonnegative("spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit")))
    return errs


def _schedule_format(schedule: str, allow_tz: bool, tz: Any) -> Errs:
    errs: Errs = []
    err = schedule_error(schedule)
    if err is not None:
        errs.append(invalid("spec.schedule", schedule, err))
    if allow_tz and "TZ" in schedule and tz is not None:
        errs.append(
            invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
        )
    elif not allow_tz and "TZ" in schedule:
        errs.append(
            invalid(
                "spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return errs


def validate_time_zone(tz: Any, path: str) -> Errs:
    """An explicit IANA zone name that this machine's zone database knows."""
    if tz is None:
        return []
    value = as_str(tz)
    if not value:
        return [invalid(path, value, "timeZone must be nil or non-empty string")]
    for part in value.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.fullmatch(part):
            return [invalid(path, value, f"unknown time zone {value}")]
    if value.lower() == "local":
        return [
            invalid(
                path,
                value,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        ]
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid(path, value, f"unknown time zone {value}")]
    return []
