"""Names, labels, annotations, selectors and ``metadata``, as apimachinery validates them.

Mirrors ``k8s.io/apimachinery/pkg/util/validation`` (string formats and their messages),
``pkg/api/validation/objectmeta.go`` (ObjectMeta on create and update) and
``pkg/apis/meta/v1/validation`` (labels and label selectors).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kubelite.registry.validation.field import (
    Errs,
    forbidden,
    immutable,
    invalid,
    required,
    too_long,
)

NameFn = Callable[[str, bool], list[str]]

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QNAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"
C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
HTTP_HEADER_FMT = "[-A-Za-z0-9]+"

_DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(DNS1035_LABEL_FMT)
_QNAME = re.compile(QNAME_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)
_CONFIG_KEY = re.compile(CONFIG_KEY_FMT)
_PERCENT = re.compile(PERCENT_FMT)
_C_IDENTIFIER = re.compile(C_IDENTIFIER_FMT)
_HTTP_HEADER = re.compile(HTTP_HEADER_FMT)
_PORT_NAME_CHARS = re.compile("[-a-z0-9]+")
_HAS_LETTER = re.compile("[a-z]")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError``: the message, examples and the regex used."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = " or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {ex}, regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


_DNS1123_LABEL_MSG = regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character",
    DNS1123_LABEL_FMT,
    "my-name",
    "123-abc",
)
_DNS1123_SUBDOMAIN_MSG = regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character",
    DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
_DNS1035_LABEL_MSG = regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character",
    DNS1035_LABEL_FMT,
    "my-name",
    "abc-123",
)
_QNAME_MSG = regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character",
    QNAME_FMT,
    "MyName",
    "my.name",
    "123-abc",
)
_LABEL_VALUE_MSG = regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character",
    LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)
_CONFIG_KEY_MSG = regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    CONFIG_KEY_FMT,
    "key.name",
    "KEY_NAME",
    "key-name",
)
_PERCENT_MSG = regex_error(
    "a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, "1%", "93%"
)
_C_IDENTIFIER_MSG = regex_error(
    "a valid C identifier must start with alphabetic character or '_', followed by a string of "
    "alphanumeric characters or '_'",
    C_IDENTIFIER_FMT,
    "my_name",
    "MY_NAME",
    "MyName",
)
_HTTP_HEADER_MSG = regex_error(
    "a valid HTTP header must consist of alphanumeric characters or '-'", HTTP_HEADER_FMT, "X-Header-Name"
)


# --- string formats (k8s.io/apimachinery/pkg/util/validation) -------------------------------------


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL.fullmatch(value):
        if _DNS1123_SUBDOMAIN.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(_DNS1123_LABEL_MSG)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(_DNS1123_SUBDOMAIN_MSG)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(_DNS1035_LABEL_MSG)
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 chars."""
    if len(value) <= 63 and "/" not in value and _QNAME.fullmatch(value):
        return []
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _QNAME_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QNAME.fullmatch(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def is_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY.fullmatch(value):
        errs.append(_CONFIG_KEY_MSG)
    errs.extend(_chdir_prefix(value))
    return errs


def is_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 characters, a-z0-9 and '-', at least one letter."""
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARS.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_percent(value: str) -> list[str]:
    return [] if _PERCENT.fullmatch(value) else [_PERCENT_MSG]


def is_c_identifier(value: str) -> list[str]:
    return [] if _C_IDENTIFIER.fullmatch(value) else [_C_IDENTIFIER_MSG]


def is_http_header_name(value: str) -> list[str]:
    return [] if _HTTP_HEADER.fullmatch(value) else [_HTTP_HEADER_MSG]


def is_relaxed_env_var_name(value: str) -> list[str]:
    """1.32's relaxed rule: any printable ASCII character except '='."""
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(not (" " <= c <= "~") or c == "=" for c in value):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
        )
    return errs


def is_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """``path.IsValidPathSegmentName`` (RBAC object names)."""
    errs = []
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    if "/" in name:
        errs.append("may not contain '/'")
    if "%" in name:
        errs.append("may not contain '%'")
    return errs


# --- name functions (ValidateNameFunc) -------------------------------------------------------------


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return is_path_segment_name(name, prefix)


def name_any(name: str, prefix: bool) -> list[str]:
    return []


# --- small typed accessors for JSON objects ---------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


# --- labels, annotations, selectors ----------------------------------------------------------------


def validate_label_name(name: str, path: str) -> Errs:
    return [invalid(path, name, m) for m in is_qualified_name(name)]


def validate_qualified_name(value: str, path: str) -> Errs:
    return [invalid(path, value, m) for m in is_qualified_name(value)]


def validate_dns1123_label(value: str, path: str) -> Errs:
    return [invalid(path, value, m) for m in is_dns1123_label(value)]


def validate_dns1123_subdomain(value: str, path: str) -> Errs:
    return [invalid(path, value, m) for m in is_dns1123_subdomain(value)]


# Label (key, value) pairs that passed validate_labels.  Whether a pair is valid depends on
# the pair alone, and the objects of one controller repeat the same labels on every write, so
# known-good pairs skip the name and value checks.  Bounded: cleared when full (hand-written:
# the check runs per label, and a set lookup is what makes skipping it cheaper).
_VALID_LABELS: set[tuple[str, str]] = set()
_VALID_LABELS_MAX = 4096


def validate_labels(labels: Any, path: str) -> Errs:
    """Keys are qualified names, values valid label values (``ValidateLabels``)."""
    if not labels or not isinstance(labels, dict):
        return []
    if all(type(v) is str and (k, v) in _VALID_LABELS for k, v in labels.items()):
        return []
    errs: Errs = []
    for k in sorted(labels):
        v = labels[k]
        pair = validate_label_name(k, path)
        if isinstance(v, str):
            pair.extend(invalid(path, v, m) for m in is_label_value(v))
            if not pair and type(v) is str:
                _remember_label(k, v)
        errs.extend(pair)
    return errs


def _remember_label(key: str, value: str) -> None:
    if len(_VALID_LABELS) >= _VALID_LABELS_MAX:
        _VALID_LABELS.clear()
    _VALID_LABELS.add((key, value))


TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def validate_annotations(annotations: Any, path: str) -> Errs:
    """Keys are qualified names (case-insensitively); keys+values at most 256 KiB in total."""
    if not annotations or not isinstance(annotations, dict):
        return []
    errs: Errs = []
    total = 0
    for k in sorted(annotations):
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k.lower()))
        v = annotations[k]
        total += len(k.encode()) + (len(v.encode()) if isinstance(v, str) else 0)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str, allow_invalid_values: bool = False) -> Errs:
    """``metav1.LabelSelector``: matchLabels are labels, matchExpressions well-formed."""
    if not isinstance(selector, dict):
        return []
    errs = validate_labels(selector.get("matchLabels"), path + ".matchLabels")
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        errs.extend(
            _validate_requirement(as_dict(expr), f"{path}.matchExpressions[{i}]", allow_invalid_values)
        )
    return errs


def _validate_requirement(req: dict[str, Any], path: str, allow_invalid_values: bool) -> Errs:
    errs: Errs = []
    op = req.get("operator")
    values = as_list(req.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(path + ".values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                forbidden(
                    path + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    else:
        errs.append(
            invalid(path + ".operator", op if op is not None else "", "not a valid selector operator")
        )
    errs.extend(validate_label_name(as_str(req.get("key")), path + ".key"))
    if not allow_invalid_values:
        for j, v in enumerate(values):
            if isinstance(v, str):
                errs.extend(invalid(f"{path}.values[{j}]", v, m) for m in is_label_value(v))
    return errs


def selector_is_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a ``metav1.LabelSelector`` matches a label set (an empty selector matches all)."""
    sel = as_dict(selector)
    lbls = as_dict(labels)
    for k, v in as_dict(sel.get("matchLabels")).items():
        if lbls.get(k) != v:
            return False
    for expr in as_list(sel.get("matchExpressions")):
        e = as_dict(expr)
        key, op, values = as_str(e.get("key")), e.get("operator"), as_list(e.get("values"))
        present = key in lbls
        if op == "In" and not (present and lbls[key] in values):
            return False
        if op == "NotIn" and present and lbls[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def map_selector_matches(selector: Any, labels: Any) -> bool:
    """A plain ``map[string]string`` selector (Service, ReplicationController)."""
    lbls = as_dict(labels)
    return all(lbls.get(k) == v for k, v in as_dict(selector).items())


# --- ObjectMeta ------------------------------------------------------------------------------------

_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def validate_finalizers(finalizers: Any, path: str) -> Errs:
    """Qualified names; legacy unqualified names must be standard ones; not orphan+foreground."""
    items = as_list(finalizers)
    errs: Errs = []
    for f in items:
        if isinstance(f, str):
            errs.extend(invalid(path, f, m) for m in is_qualified_name(f))
    if "orphan" in items and "foregroundDeletion" in items:
        errs.append(invalid(path, items, "finalizer orphan and foregroundDeletion cannot be both set"))
    for i, f in enumerate(items):
        if isinstance(f, str) and "/" not in f and f not in _STANDARD_FINALIZERS:
            errs.append(
                invalid(
                    f"{path}[{i}]", f, "name is neither a standard finalizer name nor is it fully qualified"
                )
            )
    return errs


def validate_owner_references(refs: Any, path: str) -> Errs:
    errs: Errs = []
    first_controller = ""
    for ref in as_list(refs):
        r = as_dict(ref)
        api_version, kind = as_str(r.get("apiVersion")), as_str(r.get("kind"))
        version = api_version.rsplit("/", 1)[-1] if api_version.count("/") <= 1 else ""
        if not version:
            errs.append(invalid(path + ".apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(path + ".kind", kind, "kind must not be empty"))
        if not as_str(r.get("name")):
            errs.append(invalid(path + ".name", as_str(r.get("name")), "name must not be empty"))
        if not as_str(r.get("uid")):
            errs.append(invalid(path + ".uid", as_str(r.get("uid")), "uid must not be empty"))
        if api_version == "v1" and kind == "Event":
            errs.append(invalid(path, r, "/v1, Kind=Event is disallowed from being an owner"))
        if r.get("controller") is True:
            current = f"{kind}/{r.get('name', '')}"
            if first_controller:
                errs.append(
                    invalid(
                        path,
                        refs,
                        'Only one reference can have Controller set to true. Found "true" in references for '
                        f"{first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


def validate_object_meta(meta: Any, namespaced: bool, name_fn: NameFn, path: str = "metadata") -> Errs:
    """``ValidateObjectMeta``: name (or generateName), namespace, labels, annotations, owners, finalizers."""
    m = as_dict(meta)
    errs: Errs = []
    gen = as_str(m.get("generateName"))
    if gen:
        errs.extend(invalid(path + ".generateName", gen, msg) for msg in name_fn(gen, True))
    name = as_str(m.get("name"))
    if not name:
        errs.append(required(path + ".name", "name or generateName is required"))
    else:
        errs.extend(invalid(path + ".name", name, msg) for msg in name_fn(name, False))
    ns = as_str(m.get("namespace"))
    if namespaced:
        if not ns:
            errs.append(required(path + ".namespace"))
        else:
            errs.extend(invalid(path + ".namespace", ns, msg) for msg in name_is_dns_label(ns, False))
    elif ns:
        errs.append(forbidden(path + ".namespace", "not allowed on this type"))
    gen_num = as_int(m.get("generation"))
    if gen_num is not None and gen_num < 0:
        errs.append(invalid(path + ".generation", gen_num, "must be greater than or equal to 0"))
    errs.extend(_validate_meta_common(m, path))
    return errs


def _validate_meta_common(m: dict[str, Any], path: str) -> Errs:
    errs: Errs = []
    if m.get("labels"):
        errs.extend(validate_labels(m["labels"], path + ".labels"))
    if m.get("annotations"):
        errs.extend(validate_annotations(m["annotations"], path + ".annotations"))
    if m.get("ownerReferences"):
        errs.extend(validate_owner_references(m["ownerReferences"], path + ".ownerReferences"))
    if m.get("finalizers"):
        errs.extend(validate_finalizers(m["finalizers"], path + ".finalizers"))
    return errs


def validate_object_meta_update(new_meta: Any, old_meta: Any, path: str = "metadata") -> Errs:
    """``ValidateObjectMetaUpdate``: identity fields are immutable; no new finalizers while deleting."""
    new, old = as_dict(new_meta), as_dict(old_meta)
    errs: Errs = []
    if old.get("deletionTimestamp"):
        extra = sorted(set(as_list(new.get("finalizers"))) - set(as_list(old.get("finalizers"))))
        if extra:
            listed = "[]string{" + ", ".join(f'"{f}"' for f in extra) + "}"
            errs.append(
                forbidden(
                    path + ".finalizers",
                    "no new finalizers can be added if the object is being deleted, found new finalizers "
                    + listed,
                )
            )
    new_gen, old_gen = as_int(new.get("generation")) or 0, as_int(old.get("generation")) or 0
    if new_gen < old_gen:
        errs.append(invalid(path + ".generation", new_gen, "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
        errs.extend(immutable(f"{path}.{key}", new.get(key, ""), old.get(key, "")))
    errs.extend(
        immutable(
            path + ".deletionGracePeriodSeconds",
            new.get("deletionGracePeriodSeconds"),
            old.get("deletionGracePeriodSeconds"),
        )
    )
    errs.extend(_validate_meta_common(new, path))
    return errs
