"""Label and field selectors, with the semantics of apimachinery 1.32.

Label selectors mirror ``k8s.io/apimachinery/pkg/labels`` (``labels.Parse``, the
string syntax of ``?labelSelector=``) and ``metav1.LabelSelectorAsSelector`` (the
``{"matchLabels", "matchExpressions"}`` object form).  Field selectors mirror
``k8s.io/apimachinery/pkg/fields`` (``fields.ParseSelector``).  Error messages are
Kubernetes' own, raised as :class:`~kubelite.api.errors.BadRequest`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from kubelite.api.errors import BadRequest

# ---------------------------------------------------------------------------
# key / value validation (apimachinery util/validation)
# ---------------------------------------------------------------------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_DNS_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_FMT = _DNS_LABEL_FMT + "(\\." + _DNS_LABEL_FMT + ")*"
_DNS_SUBDOMAIN_RE = re.compile(f"^{_DNS_SUBDOMAIN_FMT}$")
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_MAX_NAME = 63
_MAX_SUBDOMAIN = 253


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _dns_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > _MAX_SUBDOMAIN:
        errs.append(_max_len_error(_MAX_SUBDOMAIN))
    if not _DNS_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(_DNS_SUBDOMAIN_MSG, _DNS_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """Why ``value`` is not a qualified name (``IsQualifiedName``); empty when valid."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errs: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns_subdomain_errors(prefix))
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _MAX_NAME:
        errs.append("name part " + _max_len_error(_MAX_NAME))
    if not _QNAME_RE.match(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a label value (``IsValidLabelValue``); empty when valid."""
    errs = []
    if len(value) > _MAX_NAME:
        errs.append(_max_len_error(_MAX_NAME))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _go_string_slice(values: Sequence[str] | None) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _invalid(path: str, bad_value: str, detail: str) -> str:
    """A ``field.Invalid(...).Error()`` string."""
    return f"{path}: Invalid value: {bad_value}: {detail}"


def _aggregate(errs: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message, or ``[a, b]`` de-duplicated."""
    unique = list(dict.fromkeys(errs))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# ---------------------------------------------------------------------------
# label requirements and selectors
# ---------------------------------------------------------------------------


class Operator(StrEnum):
    """``selection.Operator`` values."""

    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    IN = "in"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    EXISTS = "exists"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_INT64_RE = re.compile(r"^[+-]?[0-9]+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(s: str) -> int | None:
    """``strconv.ParseInt(s, 10, 64)``: None when not a base-10 int64."""
    if not _INT64_RE.match(s):
        return None
    n = int(s)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


_COUNT_RULES: tuple[tuple[frozenset[Operator], Callable[[int], bool], str], ...] = (
    (
        frozenset({Operator.IN, Operator.NOT_IN}),
        lambda n: n > 0,
        "for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS}),
        lambda n: n == 1,
        "exact-match compatibility requires one single value",
    ),
    (
        frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST}),
        lambda n: n == 0,
        "values set must be empty for exists and does not exist",
    ),
    (
        frozenset({Operator.GREATER_THAN, Operator.LESS_THAN}),
        lambda n: n == 1,
        "for 'Gt', 'Lt' operators, exactly one value is required",
    ),
)
_NOT_INTEGER = "for 'Gt', 'Lt' operators, the value must be an integer"


def _requirement_errors(key: str, op: Operator, values: Sequence[str] | None) -> list[str]:
    """The checks of ``labels.NewRequirement`` (messages as ``field.Error`` strings)."""
    errs: list[str] = []
    key_problems = qualified_name_errors(key)
    if key_problems:
        errs.append(_invalid("key", _go_quote(key), "; ".join(key_problems)))
    vals = list(values or ())
    for ops, count_ok, detail in _COUNT_RULES:
        if op in ops and not count_ok(len(vals)):
            errs.append(_invalid("values", _go_string_slice(values), detail))
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        errs.extend(
            _invalid(f"values[{i}]", _go_quote(v), _NOT_INTEGER)
            for i, v in enumerate(vals)
            if _parse_int64(v) is None
        )
    for i, v in enumerate(vals):
        problems = label_value_errors(v)
        if problems:
            errs.append(_invalid(f"values[{i}][{key}]", _go_quote(v), "; ".join(problems)))
    return errs


@dataclass(frozen=True)
class Requirement:
    """One ``key op values`` term of a label selector (``labels.Requirement``)."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: Operator, values: Sequence[str] | None = None) -> Requirement:
        """Validated constructor (``labels.NewRequirement``); raises BadRequest."""
        errs = _requirement_errors(key, operator, values)
        if errs:
            raise BadRequest(_aggregate(errs))
        return cls(key, operator, tuple(values or ()))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """``Requirement.Matches``: ``!=``/``notin`` also match objects without the key."""
        op = self.operator
        present = self.key in labels
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        return present and self._compare(labels[self.key])

    def _compare(self, label_value: str) -> bool:
        have = _parse_int64(label_value)
        if have is None or len(self.values) != 1:
            return False
        want = _parse_int64(self.values[0])
        if want is None:
            return False
        return have > want if self.operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({shown})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{shown}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements, sorted by key; ``nothing`` selects no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def match_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @classmethod
    def of(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        """Sorted by key (stable), as ``internalSelector.Add`` and ``labels.Parse`` do."""
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (``Selector.Empty``)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``RequiresExactMatch``), else None."""
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                return r.values[0] if exact and len(r.values) == 1 else None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# ---------------------------------------------------------------------------
# the label selector string parser (labels.Parse)
# ---------------------------------------------------------------------------

_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")
_END = "END"
_IDENT = "IDENT"


@dataclass(frozen=True)
class _Token:
    kind: str  # _END, _IDENT, "in", "notin", or the operator/punctuation text
    text: str

    def as_value(self) -> _Token:
        """Inside values, the keywords ``in``/``notin`` are plain identifiers."""
        return _Token(_IDENT, self.text) if self.kind in ("in", "notin") else self


def _tokenize(s: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append(_Token(_END, ""))
            return tokens
        if s[i] in _SPECIAL:
            width = 2 if s[i : i + 2] in ("!=", "==") else 1
            tokens.append(_Token(s[i : i + width], s[i : i + width]))
            i += width
            continue
        start = i
        while i < n and s[i] not in _SPECIAL and s[i] not in _WHITESPACE:
            i += 1
        word = s[start:i]
        tokens.append(_Token(word if word in ("in", "notin") else _IDENT, word))


class _SyntaxError(Exception):
    pass


@dataclass
class _Parser:
    tokens: list[_Token]
    pos: int = 0

    def peek(self, values: bool = True) -> _Token:
        tok = self.tokens[self.pos]
        return tok.as_value() if values else tok

    def take(self, values: bool = True) -> _Token:
        tok = self.peek(values)
        self.pos += 1
        return tok

    def selector(self) -> list[Requirement]:
        found: list[Requirement] = []
        while True:
            tok = self.peek()
            if tok.kind == _END:
                return found
            if tok.kind not in (_IDENT, "!"):
                raise _SyntaxError(f"found '{tok.text}', expected: !, identifier, or 'end of string'")
            try:
                found.append(self.requirement())
            except _SyntaxError as e:
                raise _SyntaxError(f"unable to parse requirement: {e}") from None
            after = self.take()
            if after.kind == _END:
                return found
            if after.kind != ",":
                raise _SyntaxError(f"found '{after.text}', expected: ',' or 'end of string'")
            nxt = self.peek()
            if nxt.kind not in (_IDENT, "!"):
                raise _SyntaxError(f"found '{nxt.text}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, op = self.key_and_inferred_operator()
        if op is None:
            op = self.operator()
            vals = self.value_set() if op in (Operator.IN, Operator.NOT_IN) else self.exact_value()
        else:
            vals = []
        errs = _requirement_errors(key, op, vals)
        if errs:
            raise _SyntaxError(_aggregate(errs))
        return Requirement(key, op, tuple(vals))

    def key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        tok = self.take()
        op: Operator | None = None
        if tok.kind == "!":
            op = Operator.DOES_NOT_EXIST
            tok = self.take()
        if tok.kind != _IDENT:
            raise _SyntaxError(f"found '{tok.text}', expected: identifier")
        problems = qualified_name_errors(tok.text)
        if problems:
            raise _SyntaxError(_invalid("<nil>", _go_quote(tok.text), "; ".join(problems)))
        if op is None and self.peek().kind in (_END, ","):
            op = Operator.EXISTS
        return tok.text, op

    def operator(self) -> Operator:
        tok = self.take(values=False)
        ops = {
            "in": Operator.IN,
            "notin": Operator.NOT_IN,
            "=": Operator.EQUALS,
            "==": Operator.DOUBLE_EQUALS,
            "!=": Operator.NOT_EQUALS,
            ">": Operator.GREATER_THAN,
            "<": Operator.LESS_THAN,
        }
        if tok.kind not in ops:
            raise _SyntaxError(f"found '{tok.text}', expected: {_BINARY_OPERATORS}")
        return ops[tok.kind]

    def value_set(self) -> list[str]:
        tok = self.take()
        if tok.kind != "(":
            raise _SyntaxError(f"found '{tok.text}' expected: '('")
        tok = self.peek()
        if tok.kind == ")":
            self.take()
            return [""]
        if tok.kind not in (_IDENT, ","):
            raise _SyntaxError(f"found '{tok.text}', expected: ',', ')' or identifier")
        vals = self.identifier_list()
        self.take()  # the ')' that identifier_list stopped at
        return sorted(vals)

    def identifier_list(self) -> set[str]:
        """Comma-separated, possibly empty identifiers; stops before ')'."""
        vals: set[str] = set()
        while True:
            tok = self.take()
            if tok.kind == _IDENT:
                vals.add(tok.text)
                nxt = self.peek()
                if nxt.kind == ")":
                    return vals
                if nxt.kind != ",":
                    raise _SyntaxError(f"found '{nxt.text}', expected: ',' or ')'")
            elif tok.kind == ",":
                if not vals:
                    vals.add("")  # a leading ','
                nxt = self.peek()
                if nxt.kind == ")":
                    vals.add("")  # a trailing ','
                    return vals
                if nxt.kind == ",":
                    self.take()
                    vals.add("")  # ',,'
            else:
                raise _SyntaxError(f"found '{tok.text}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        if self.peek().kind in (_END, ","):
            return [""]
        tok = self.take()
        if tok.kind != _IDENT:
            raise _SyntaxError(f"found '{tok.text}', expected: identifier")
        return [tok.text]


def parse_label_selector(s: str) -> LabelSelector:
    """Parse the ``?labelSelector=`` syntax exactly as ``labels.Parse`` does.

    ``""`` selects everything.  Syntax or validation errors raise BadRequest with
    Kubernetes' message (``unable to parse requirement: ...``, ``found 'x', expected: ...``).
    """
    try:
        found = _Parser(_tokenize(s)).selector()
    except _SyntaxError as e:
        raise BadRequest(str(e)) from None
    return LabelSelector.of(found)


# ---------------------------------------------------------------------------
# metav1.LabelSelector (object form)
# ---------------------------------------------------------------------------

_EXPRESSION_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def from_label_selector_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: None selects nothing, ``{}`` selects everything.

    Invalid keys, values or operators raise BadRequest with Kubernetes' message.
    """
    if sel is None:
        return LabelSelector.match_nothing()
    match_labels: Mapping[str, Any] = sel.get("matchLabels") or {}
    expressions: Sequence[Mapping[str, Any]] = sel.get("matchExpressions") or []
    reqs = [Requirement.new(str(k), Operator.EQUALS, [_as_str(v)]) for k, v in match_labels.items()]
    for expr in expressions:
        name = str(expr.get("operator", ""))
        op = _EXPRESSION_OPERATORS.get(name)
        if op is None:
            raise BadRequest(f"{_go_quote(name)} is not a valid label selector operator")
        raw = expr.get("values")
        values = [_as_str(v) for v in raw] if raw else None
        reqs.append(Requirement.new(str(expr.get("key", "")), op, values))
    return LabelSelector.of(reqs)


def _as_str(v: Any) -> str:
    return "" if v is None else str(v)


def selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """Canonical string of a ``metav1.LabelSelector`` (e.g. Scale ``status.selector``).

    ``app=web,tier in (a,b)``; ``""`` for None/empty selectors.
    """
    return str(from_label_selector_dict(sel))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector`` (kubectl describe): ``<none>`` when empty, ``<error>`` if invalid."""
    try:
        text = selector_to_string(sel)
    except BadRequest:
        return "<error>"
    return text or "<none>"


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """``labels.SelectorFromSet``: every key must equal its value; None/empty selects everything."""
    return LabelSelector.of(Requirement(k, Operator.EQUALS, (v,)) for k, v in (labels or {}).items())


# ---------------------------------------------------------------------------
# field selectors (fields.ParseSelector)
# ---------------------------------------------------------------------------

_FIELD_OPERATORS = ("!=", "==", "=")


class FieldRequirement(NamedTuple):
    """``(field, op, value)`` with op ``=`` or ``!=`` (``==`` is read as ``=``)."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field requirements; a missing field reads as ``""``."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def exact_value(self, name: str) -> str | None:
        """The value ``name`` must equal (``RequiresExactMatch``), e.g. ``spec.nodeName``."""
        for r in self.requirements:
            if r.field == name and r.operator == "=":
                return r.value
        return None

    def fields(self) -> list[str]:
        return [r.field for r in self.requirements]

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    """``fields.EscapeValue``: backslash-escape ``\\``, ``,`` and ``=``."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """``fields.UnescapeValue``; raises BadRequest on a bad escape or a bare ``,``/``=``."""
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    """Split on commas not escaped with a backslash."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(s):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """At the first position where an operator starts: (field, op, raw value)."""
    for i in range(len(term)):
        for op in _FIELD_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(s: str) -> FieldSelector:
    """Parse ``?fieldSelector=`` exactly as ``fields.ParseSelector`` (no whitespace trimming).

    Terms are sorted, empty terms skipped, ``a==b`` equals ``a=b``; a term with an
    empty field and value (``=``) is dropped, as the identity transform does.
    """
    if not s:
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for term in sorted(_split_terms(s)):
        if not term:
            continue
        parts = _split_term(term)
        if parts is None:
            raise BadRequest(f"invalid selector: '{s}'; can't understand '{term}'")
        name, op, raw = parts
        value = unescape_field_value(raw)
        if name or value:
            reqs.append(FieldRequirement(name, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(reqs))


def check_fields(
    selector: FieldSelector,
    allowed: set[str] | frozenset[str],
    resource_label: str = "",
    *,
    registered: bool = True,
    aliases: Mapping[str, str] | None = None,
) -> FieldSelector:
    """Reject field labels the resource does not support; returns the selector with aliases applied.

    Mirrors the API server's field-label conversion: kinds with their own conversion
    (pods, nodes, events, CRDs, ...: ``registered=True``) answer
    ``field label not supported: <name>``; the others use the default metav1
    conversion message.  ``aliases`` maps legacy names (pods' ``spec.host``) to
    current ones.  ``resource_label`` is not part of Kubernetes' message; it is
    accepted for callers that log it.
    """
    del resource_label
    out: list[FieldRequirement] = []
    for r in selector.requirements:
        name = (aliases or {}).get(r.field, r.field)
        if name not in allowed:
            raise BadRequest(_unsupported_field_message(r.field, registered))
        out.append(FieldRequirement(name, r.operator, r.value))
    return FieldSelector(tuple(out))


def _unsupported_field_message(name: str, registered: bool) -> str:
    if registered:
        return f"field label not supported: {name}"
    return f'{_go_quote(name)} is not a known field selector: only "metadata.name", "metadata.namespace"'
