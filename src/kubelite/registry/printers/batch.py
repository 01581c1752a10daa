"""Tables for ``batch/v1``: jobs and cron jobs.

Mirrors ``printJob``: STATUS is ``Complete``, ``Failed``, ``Terminating``,
``Suspended``, ``FailureTarget`` or ``Running`` (first true condition in that order,
deletion between Failed and Suspended); COMPLETIONS is ``succeeded/completions``
(``1 of N`` parallelism when completions is unset); DURATION runs from
``status.startTime`` to ``completionTime`` (or now while running, empty before the
start). And ``printCronJob``: SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubelite.api.humanize import human_duration, parse_time, translate_timestamp_since

from ._base import (
    NONE,
    UNSET,
    Obj,
    Printer,
    age,
    age_col,
    col,
    containers_cols,
    dicts,
    dig,
    doc,
    format_label_selector,
    layout_container_cells,
    lst,
    name_col,
    name_of,
    num,
    opt_int,
    txt,
)


def _condition(job: Obj, cond_type: str) -> bool:
    """``hasJobCondition``: the first condition of that type decides."""
    for cond in dicts(job, "status", "conditions"):
        if txt(cond, "type") == cond_type:
            return txt(cond, "status") == "True"
    return False


def job_status(job: Obj) -> str:
    if _condition(job, "Complete"):
        return "Complete"
    if _condition(job, "Failed"):
        return "Failed"
    if dig(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if _condition(job, "Suspended"):
        return "Suspended"
    if _condition(job, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(job: Obj) -> str:
    succeeded = num(job, "status", "succeeded")
    completions = opt_int(job, "spec", "completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = opt_int(job, "spec", "parallelism") or 0
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(job: Obj, now: datetime) -> str:
    start = parse_time(dig(job, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(dig(job, "status", "completionTime"))
    if end is None:
        return translate_timestamp_since(start, now)
    return human_duration(end - start)


def _job_cells(job: Obj, now: datetime) -> list[Any]:
    names, images = layout_container_cells(lst(job, "spec", "template", "spec", "containers"))
    return [
        name_of(job),
        job_status(job),
        job_completions(job),
        job_duration(job, now),
        age(job, now),
        names,
        images,
        format_label_selector(dig(job, "spec", "selector")),
    ]


JOB = Printer(
    (
        name_col(),
        col("Status", "string", "Status of the job."),
        col("Completions", "string", doc("batch.v1.JobStatus", "succeeded")),
        col("Duration", "string", "Time required to complete the job."),
        age_col(),
        *containers_cols(),
        col("Selector", "string", doc("batch.v1.JobSpec", "selector"), 1),
    ),
    _job_cells,
)


def bool_ptr(value: Any) -> str:
    """``printBoolPtr``: ``True``/``False``, ``<unset>`` for nil."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return UNSET


def _cron_job_cells(cj: Obj, now: datetime) -> list[Any]:
    job_spec = dig(cj, "spec", "jobTemplate", "spec")
    job_spec = job_spec if isinstance(job_spec, Mapping) else {}
    names, images = layout_container_cells(lst(job_spec, "template", "spec", "containers"))
    last = dig(cj, "status", "lastScheduleTime")
    return [
        name_of(cj),
        txt(cj, "spec", "schedule"),
        txt(cj, "spec", "timeZone") or NONE,
        bool_ptr(dig(cj, "spec", "suspend")),
        len(lst(cj, "status", "active")),
        translate_timestamp_since(last, now) if last else NONE,
        age(cj, now),
        names,
        images,
        format_label_selector(dig(job_spec, "selector")),
    ]


CRON_JOB = Printer(
    (
        name_col(),
        col("Schedule", "string", doc("batch.v1.CronJobSpec", "schedule")),
        col("Timezone", "string", doc("batch.v1.CronJobSpec", "timeZone")),
        col("Suspend", "boolean", doc("batch.v1.CronJobSpec", "suspend")),
        col("Active", "integer", doc("batch.v1.CronJobStatus", "active")),
        col("Last Schedule", "string", doc("batch.v1.CronJobStatus", "lastScheduleTime")),
        age_col(),
        *containers_cols(),
        col("Selector", "string", doc("batch.v1.JobSpec", "selector"), 1),
    ),
    _cron_job_cells,
)

PRINTERS = {("batch", "jobs"): JOB, ("batch", "cronjobs"): CRON_JOB}
