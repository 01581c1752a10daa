"""Job policies as pure functions: podFailurePolicy, successPolicy and pod-failure back-off.

Mirrors kubernetes ``pkg/controller/job/pod_failure_policy.go``, ``success_policy.go`` and
``backoff_utils.go``:

* a failed pod is matched against ``spec.podFailurePolicy.rules`` in order; the first
  matching rule decides (``FailJob`` fails the Job with a message naming the container,
  exit code and rule index; ``Ignore`` does not count the failure; ``Count`` counts it;
  ``FailIndex`` fails the pod's index);
* ``spec.successPolicy`` rules are met by ``succeededIndexes`` and/or ``succeededCount``;
* after ``n`` failures since the last success, new pods wait ``base * 2^(n-1)`` seconds
  (capped) after the last failure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kubelite.api.humanize import parse_time
from kubelite.controllers.job_indexed import parse_intervals

Obj = dict[str, Any]

FAIL_JOB = "FailJob"
IGNORE = "Ignore"
COUNT = "Count"
FAIL_INDEX = "FailIndex"


@dataclass(frozen=True)
class PolicyMatch:
    """What the pod failure policy says about one failed pod."""

    fail_job_message: str | None = None
    count_failed: bool = True
    action: str | None = None


def _status(pod: Obj) -> Obj:
    s: Obj = pod.get("status") or {}
    return s


def _terminated_exit(cs: Obj) -> int | None:
    term = (cs.get("state") or {}).get("terminated")
    if not isinstance(term, dict):
        return None
    return int(term.get("exitCode") or 0)


def _exit_code_matches(code: int, req: Obj) -> bool:
    values = [int(v) for v in req.get("values") or []]
    op = req.get("operator")
    if op == "In":
        return code in values
    if op == "NotIn":
        return code not in values
    return False


def match_exit_codes(pod: Obj, req: Obj) -> tuple[str, int] | None:
    """The first terminated, non-zero container (then init container) matching ``req``."""
    status = _status(pod)
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            code = _terminated_exit(cs)
            if code is None or code == 0:
                continue
            name = req.get("containerName")
            if name and name != cs.get("name"):
                continue
            if _exit_code_matches(code, req):
                return str(cs.get("name", "")), code
    return None


def match_pod_conditions(pod: Obj, patterns: list[Obj]) -> str | None:
    for cond in _status(pod).get("conditions") or []:
        for p in patterns:
            if cond.get("type") == p.get("type") and cond.get("status") == (p.get("status") or "True"):
                return str(cond.get("type"))
    return None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> PolicyMatch:
    """Apply ``spec.podFailurePolicy`` to a failed pod (first matching rule wins)."""
    if not policy:
        return PolicyMatch()
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    for index, rule in enumerate(policy.get("rules") or []):
        action = str(rule.get("action", ""))
        message = ""
        if rule.get("onExitCodes") is not None:
            hit = match_exit_codes(pod, rule["onExitCodes"])
            if hit is None:
                continue
            message = (
                f"Container {hit[0]} for pod {where} failed with exit code {hit[1]} "
                f"matching {action} rule at index {index}"
            )
        elif rule.get("onPodConditions") is not None:
            cond = match_pod_conditions(pod, rule["onPodConditions"])
            if cond is None:
                continue
            message = f"Pod {where} has condition {cond} matching {action} rule at index {index}"
        else:
            continue
        if action == IGNORE:
            return PolicyMatch(None, False, IGNORE)
        if action == FAIL_JOB:
            return PolicyMatch(message, True, FAIL_JOB)
        if action in (COUNT, FAIL_INDEX):
            return PolicyMatch(None, True, action)
    return PolicyMatch()


def match_success_policy(policy: Obj | None, total: int, succeeded: set[int]) -> str | None:
    """The SuccessCriteriaMet message when a ``spec.successPolicy`` rule is met, else None."""
    if not policy or not succeeded:
        return None
    for index, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_intervals(str(rule["succeededIndexes"]), total)
            if not required:
                continue
            done = len(required & succeeded)
            if (count is None and done == len(required)) or (count is not None and done >= int(count)):
                return f"Matched rules at index {index}"
        elif count is not None and len(succeeded) >= int(count):
            return f"Matched rules at index {index}"
    return None


# ---------------------------------------------------------------------- back-off


def finish_time(pod: Obj) -> dt.datetime:
    """When a pod finished: last container finishedAt, else Ready=False transition, else deletion,
    else creation (``getFinishedTime`` in Kubernetes)."""
    status = _status(pod)
    latest: dt.datetime | None = None
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            t = parse_time(term.get("finishedAt"))
            if t is not None and (latest is None or t > latest):
                latest = t
    if latest is not None:
        return latest
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "False":
            t = parse_time(cond.get("lastTransitionTime"))
            if t is not None:
                return t
    meta = pod.get("metadata") or {}
    return (
        parse_time(meta.get("deletionTimestamp"))
        or parse_time(meta.get("creationTimestamp"))
        or dt.datetime.now(dt.UTC)
    )


@dataclass(frozen=True)
class BackoffRecord:
    """Failures since the last success and when the last of them happened."""

    failures: int = 0
    last_failure: dt.datetime | None = None


def next_backoff_record(old: BackoffRecord, succeeded: list[Obj], failed: list[Obj]) -> BackoffRecord:
    """Fold newly finished pods into the record (``newBackoffRecord`` in Kubernetes)."""
    failed = sorted(failed, key=finish_time)
    if not succeeded:
        if not failed:
            return old
        return BackoffRecord(old.failures + len(failed), finish_time(failed[-1]))
    last_success = max(finish_time(p) for p in succeeded)
    after = [p for p in failed if finish_time(p) > last_success]
    if not after:
        return BackoffRecord()
    return BackoffRecord(len(after), finish_time(after[-1]))


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """``base * 2^(failures-1)`` capped at ``cap``; 0 without failures."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def remaining_backoff(record: BackoffRecord, now: dt.datetime, base: float, cap: float) -> float:
    """Seconds before a replacement pod may be created (0 when it may be created now)."""
    if record.failures == 0 or record.last_failure is None:
        return 0.0
    delay = backoff_delay(record.failures, base, cap)
    elapsed = (now - record.last_failure).total_seconds()
    return max(0.0, delay - elapsed)
