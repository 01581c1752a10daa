"""Indexed Jobs: completion indexes, their interval notation and the pods that carry them.

Mirrors kubernetes ``pkg/controller/job/indexed_job_utils.go``: every pod of an Indexed
Job carries its index in the ``batch.kubernetes.io/job-completion-index`` annotation and
label, ``JOB_COMPLETION_INDEX`` in every container's environment (from the annotation by
the downward API) and hostname ``<job>-<index>``.  ``status.completedIndexes`` and
``status.failedIndexes`` use the interval notation ``"1,3-5,7"`` (two neighbours are
written ``"1,2"``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_GENERATED_PREFIX = 63 - 5  # generateName's random suffix is 5 characters


def is_indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def completions(job: Obj) -> int:
    return int((job.get("spec") or {}).get("completions") or 0)


def pod_index(pod: Obj) -> int | None:
    """The completion index of a pod (annotation first, then label), None when absent or bad."""
    meta = pod.get("metadata") or {}
    for source in (meta.get("annotations") or {}, meta.get("labels") or {}):
        value = source.get(INDEX_KEY)
        if isinstance(value, str) and value.isdigit() and (value == "0" or not value.startswith("0")):
            return int(value)
    return None


def valid_index(pod: Obj, total: int) -> int | None:
    ix = pod_index(pod)
    return ix if ix is not None and ix < total else None


def parse_intervals(text: str | None, limit: int) -> set[int]:
    """Indexes listed in ``"1,3-5"`` below ``limit`` (malformed parts are skipped, as Kubernetes does)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        lo, hi = int(first), int(last or first)
        out.update(range(lo, min(hi, limit - 1) + 1))
    return out


def format_intervals(indexes: Iterable[int]) -> str:
    """``{1,2,3,5}`` -> ``"1-3,5"``; two consecutive indexes are written ``"1,2"`` like Kubernetes."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = ordered[i], ordered[j]
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
        i = j + 1
    return ",".join(parts)


def failure_count(pod: Obj, key: str = FAILURE_COUNT) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key, "0")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def generate_name(job_name: str, index: int) -> str:
    """``<job>-<index>-``, with the job name shortened so the full generated name fits 63."""
    appendix = f"-{index}-"
    prefix = job_name + appendix
    if len(prefix) > MAX_GENERATED_PREFIX:
        prefix = job_name[: MAX_GENERATED_PREFIX - len(appendix)] + appendix
    return prefix


def add_index_env(template: Obj) -> None:
    """``JOB_COMPLETION_INDEX`` from the index annotation in every (init) container without it."""
    spec = template.setdefault("spec", {})
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            env = container.setdefault("env", [])
            if any(e.get("name") == INDEX_ENV for e in env):
                continue
            env.append(
                {
                    "name": INDEX_ENV,
                    "valueFrom": {
                        "fieldRef": {
                            "apiVersion": "v1",
                            "fieldPath": f"metadata.annotations['{INDEX_KEY}']",
                        }
                    },
                }
            )


def for_index(template: Obj, job_name: str, index: int, counts: tuple[int, int] | None = None) -> Obj:
    """A copy of the pod template for one index: annotation, label, hostname, failure counts."""
    out = copy.deepcopy(template)
    meta = out.setdefault("metadata", {})
    meta.setdefault("annotations", {})[INDEX_KEY] = str(index)
    meta.setdefault("labels", {})[INDEX_KEY] = str(index)
    out.setdefault("spec", {})["hostname"] = f"{job_name}-{index}"
    if counts is not None:
        failed, ignored = counts
        meta["annotations"][FAILURE_COUNT] = str(failed)
        if ignored:
            meta["annotations"][IGNORED_FAILURE_COUNT] = str(ignored)
    return out


def first_pending(total: int, count: int, busy: set[int]) -> list[int]:
    """The ``count`` lowest indexes in ``[0, total)`` that are not ``busy``."""
    out: list[int] = []
    for ix in range(total):
        if len(out) >= count:
            break
        if ix not in busy:
            out.append(ix)
    return out
