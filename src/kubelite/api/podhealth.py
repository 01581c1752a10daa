"""Pure pod/node helpers shared by node lifecycle, disruption, endpoints and HPA.

They mirror client-go / kubernetes ``podutil`` and ``v1helper`` semantics: a pod is
ready when its ``Ready`` condition is True, terminal when Succeeded/Failed, and a
toleration tolerates a taint by key/operator/value/effect matching.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kubelite.api.humanize import parse_time
from kubelite.api.selectors import LabelSelector, from_label_selector_dict

Obj = dict[str, Any]


def now_rfc3339(now: dt.datetime | None = None) -> str:
    t = now or dt.datetime.now(dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 field, None when absent or malformed."""
    t = parse_time(value)
    return t.timestamp() if t is not None else None


def meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def condition(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def pod_ip(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def set_condition(conditions: list[Obj], new: Obj, now: str) -> list[Obj]:
    """Replace the condition of ``new['type']``; keep lastTransitionTime unless status changes."""
    out = [dict(c) for c in conditions if c.get("type") != new["type"]]
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    cond = dict(new)
    if old is not None and old.get("status") == new.get("status") and old.get("lastTransitionTime"):
        cond["lastTransitionTime"] = old["lastTransitionTime"]
    else:
        cond["lastTransitionTime"] = now
    out.append(cond)
    return out


def selector_of(sel: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector: null matches nothing, ``{}`` everything; invalid matches nothing."""
    try:
        return from_label_selector_dict(sel)
    except Exception:
        return LabelSelector.match_nothing()


def matches(selector: LabelSelector, obj: Obj) -> bool:
    labels: dict[str, str] = meta(obj).get("labels") or {}
    return selector.matches(labels)


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1helper ``ToleratesTaint``: effect (empty = all), key (empty + Exists = all), value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def namespace_index(obj: Obj) -> list[str]:
    """Informer index function: objects by namespace (index name ``namespace``)."""
    ns = meta(obj).get("namespace")
    return [str(ns)] if ns else []


def node_name_index(pod: Obj) -> list[str]:
    """Informer index function: pods by ``spec.nodeName`` (index name ``nodeName``)."""
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []
