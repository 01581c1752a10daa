"""Selectable fields: what a field selector compares against, per resource.

Mirrors the API server's ``GetAttrs``/``ToSelectableFields`` functions
(``pkg/registry/*/strategy.go``) and its field-label conversion functions
(``pkg/apis/*/v1/conversion.go``, ``runtime.DefaultMetaV1FieldSelectorConversion``
and the CRD converter): which labels a resource accepts and the string each one
has for a given object.  A field with no value reads as ``""``; booleans read
``true``/``false`` and counters read ``0`` when unset, as Go's zero values print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.selectors import FieldSelector, check_fields, parse_field_selector
from kubelite.registry.resources import ResourceInfo

META_FIELDS = ("metadata.name", "metadata.namespace")

# legacy labels the conversion renames, per (group, kind)
_ALIASES: dict[tuple[str, str], dict[str, str]] = {("", "Pod"): {"spec.host": "spec.nodeName"}}


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return ""


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path as a selector sees it; missing or non-scalar -> ``""``."""
    return _text(_lookup(obj, path))


def _bool_field(path: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda obj: "true" if _lookup(obj, path) is True else "false"


def _int_field(path: str) -> Callable[[Mapping[str, Any]], str]:
    def read(obj: Mapping[str, Any]) -> str:
        v = _lookup(obj, path)
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else "0"

    return read


def _pod_ip(obj: Mapping[str, Any]) -> str:
    """The primary IP: ``status.podIPs[0].ip``, else the legacy ``status.podIP``."""
    ips = _lookup(obj, "status.podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], Mapping):
        return _text(ips[0].get("ip"))
    return field_value(obj, "status.podIP")


def _event_source(obj: Mapping[str, Any]) -> str:
    """Events: ``source.component``, else ``reportingComponent``."""
    return field_value(obj, "source.component") or field_value(obj, "reportingComponent")


# fields whose value is not just the text at the same dotted path
_SPECIAL: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "spec.hostNetwork": _bool_field("spec.hostNetwork"),
    "spec.unschedulable": _bool_field("spec.unschedulable"),
    "status.replicas": _int_field("status.replicas"),
    "status.successful": _int_field("status.succeeded"),
    "status.podIP": _pod_ip,
    # accepted as a label for pods but absent from their field set: always ""
    "status.podIPs": lambda obj: "",
    "source": _event_source,
}


def field_values(obj: Mapping[str, Any], fields: Iterable[str]) -> dict[str, str]:
    """``fields.Set`` of ``obj`` for the given selectable field names."""
    return {name: _SPECIAL[name](obj) if name in _SPECIAL else field_value(obj, name) for name in fields}


@dataclass(frozen=True)
class FieldLabelPolicy:
    """Which field labels a resource accepts and how a rejection is worded."""

    allowed: frozenset[str]
    registered: bool  # the kind has its own conversion (message: "field label not supported")
    aliases: Mapping[str, str] = field(default_factory=dict)


def field_label_policy(info: ResourceInfo) -> FieldLabelPolicy:
    """The field labels ``info`` accepts, as the 1.32 API server decides them.

    Kinds with their own selectable fields (and custom resources) accept
    ``metadata.name``, ``metadata.namespace`` only when namespaced, and their own
    fields; every other kind accepts exactly ``metadata.name`` and ``metadata.namespace``.
    """
    registered = bool(info.field_selectors) or info.crd
    if not registered:
        return FieldLabelPolicy(frozenset(META_FIELDS), False)
    meta = META_FIELDS if info.namespaced else META_FIELDS[:1]
    aliases = _ALIASES.get((info.group, info.kind), {})
    return FieldLabelPolicy(frozenset((*meta, *info.field_selectors)), True, aliases)


def parse_field_selector_for(s: str, info: ResourceInfo) -> FieldSelector:
    """Parse ``?fieldSelector=`` and check its labels against ``info`` (BadRequest if unsupported)."""
    policy = field_label_policy(info)
    return check_fields(
        parse_field_selector(s),
        policy.allowed,
        info.qualified,
        registered=policy.registered,
        aliases=policy.aliases,
    )


def selectable_fields(obj: Mapping[str, Any], info: ResourceInfo) -> dict[str, str]:
    """Every selectable field of ``obj`` (an object of resource ``info``) with its value."""
    return field_values(obj, sorted(field_label_policy(info).allowed))


def matches_fields(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` satisfies ``selector`` (reading only the fields the selector names)."""
    if selector.empty:
        return True
    return selector.matches(field_values(obj, selector.fields()))
