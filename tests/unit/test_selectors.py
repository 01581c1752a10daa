"""Label selectors, field selectors and selectable fields, checked against apimachinery 1.32 behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.api.errors import BadRequest
from kubelite.api.fieldpath import (
    field_label_policy,
    field_value,
    field_values,
    matches_fields,
    parse_field_selector_for,
    selectable_fields,
)
from kubelite.api.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    check_fields,
    escape_field_value,
    format_label_selector,
    from_label_selector_dict,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
    selector_to_string,
    unescape_field_value,
)
from kubelite.registry.resources import BUILTIN, ResourceInfo

QNAME_REGEX = "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'"
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
    f"regex used for validation is {QNAME_REGEX})"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _info(group: str, kind: str) -> ResourceInfo:
    return next(r for r in BUILTIN if r.group == group and r.kind == kind)


# --------------------------------------------------------------------------- label selector parsing


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a", "a"),
        ("!a", "!a"),
        ("a>1", "a>1"),
        ("a<10", "a<10"),
        ("a in (x,y)", "a in (x,y)"),
        ("a notin (y, x)", "a notin (x,y)"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("  b = 2 ,\ta\n", "a,b=2"),
        ("z=1,a=2,m", "a=2,m,z=1"),
        ("a=", "a="),
        ("a=,b", "a=,b"),
        ("k in (in,notin)", "k in (in,notin)"),
        ("a=in", "a=in"),
        ("example.com/app=web", "example.com/app=web"),
        ("a in (b,b)", "a in (b)"),
    ],
)
def test_parse_label_selector_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a_", f'unable to parse requirement: <nil>: Invalid value: "a_": {QNAME_MSG}'),
        ("a=-b", f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_MSG}'),
        (
            "a>x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
    ],
)
def test_parse_label_selector_errors_use_kubernetes_messages(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_label_selector(text)
    assert exc.value.message == message
    assert exc.value.to_status()["code"] == 400


def test_key_validation_limits() -> None:
    parse_label_selector("a" * 63)
    parse_label_selector("x.example.com/" + "a" * 63)
    for bad in ("a" * 64, "Upper.example/a", "/a", "a/b/c", "a/"):
        with pytest.raises(BadRequest, match="unable to parse requirement: <nil>: Invalid value"):
            parse_label_selector(bad)
    with pytest.raises(BadRequest, match="must be no more than 63 characters"):
        parse_label_selector("a=" + "v" * 64)


# --------------------------------------------------------------------------- label matching


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {}, True),  # != matches objects without the key
        ("a!=b", {"a": "b"}, False),
        ("a notin (x)", {}, True),  # notin too
        ("a notin (x)", {"a": "x"}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a>5", {"a": "x"}, False),
        ("a>5", {}, False),
        ("a<5", {"a": "-7"}, True),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a=b,c", {"a": "b", "c": "1"}, True),
        ("a=b,c", {"a": "b"}, False),
        ("", {}, True),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_matches_none_labels_and_empty() -> None:
    assert parse_label_selector("").empty
    assert parse_label_selector("").matches(None)
    assert parse_label_selector("!a").matches(None)
    assert not parse_label_selector("a").empty


def test_requires_exact_match() -> None:
    sel = parse_label_selector("a=1,b in (x),c in (x,y),d!=2")
    assert sel.requires_exact_match("a") == "1"
    assert sel.requires_exact_match("b") == "x"
    assert sel.requires_exact_match("c") is None
    assert sel.requires_exact_match("d") is None
    assert sel.requires_exact_match("zz") is None


# --------------------------------------------------------------------------- metav1.LabelSelector


def test_from_dict_none_matches_nothing_and_empty_matches_everything() -> None:
    nothing = from_label_selector_dict(None)
    assert not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert not nothing.empty
    everything = from_label_selector_dict({})
    assert everything.empty and everything.matches({"x": "y"})
    assert from_label_selector_dict({"matchLabels": {}, "matchExpressions": []}).empty


def test_from_dict_match_labels_and_expressions() -> None:
    sel = from_label_selector_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "x", "operator": "Exists"},
                {"key": "y", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert str(sel) == "app=web,env notin (prod),tier in (a,b),x,!y"
    assert sel.matches({"app": "web", "tier": "a", "x": ""})
    assert not sel.matches({"app": "web", "tier": "a", "x": "", "y": "1"})
    assert not sel.matches({"app": "web", "tier": "c", "x": ""})


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        (
            {"matchExpressions": [{"key": "t", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "t", "operator": "Exists", "values": ["a"]}]},
            'values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist',
        ),
        (
            {"matchExpressions": [{"key": "t", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        ({"matchLabels": {"a b": "c"}}, f'key: Invalid value: "a b": {QNAME_MSG}'),
        ({"matchLabels": {"a": "c d"}}, f'values[0][a]: Invalid value: "c d": {VALUE_MSG}'),
    ],
)
def test_from_dict_errors(sel: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest) as exc:
        from_label_selector_dict(sel)
    assert exc.value.message == message


def test_multiple_requirement_errors_are_aggregated() -> None:
    with pytest.raises(BadRequest) as exc:
        from_label_selector_dict({"matchExpressions": [{"key": "a_", "operator": "Exists", "values": ["v"]}]})
    assert exc.value.message.startswith('[key: Invalid value: "a_"')
    assert exc.value.message.endswith("values set must be empty for exists and does not exist]")


def test_selector_to_string_and_format() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
    }
    assert selector_to_string(sel) == "app=web,tier in (a,b)"
    assert selector_to_string({}) == ""
    assert selector_to_string(None) == ""
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Nope"}]}) == "<error>"


def test_selector_from_set() -> None:
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert selector_from_set(None).empty


def test_requirement_new_validates() -> None:
    assert str(Requirement.new("a", Operator.IN, ["x"])) == "a in (x)"
    with pytest.raises(BadRequest, match="exact-match compatibility requires one single value"):
        Requirement.new("a", Operator.EQUALS, ["x", "y"])
    with pytest.raises(BadRequest, match="exactly one value is required"):
        Requirement.new("a", Operator.GREATER_THAN, [])


# --------------------------------------------------------------------------- property tests

_name = st.from_regex(r"\A[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?\Z", fullmatch=True)
_key = st.one_of(_name, st.builds(lambda p, n: f"{p}.io/{n}", st.from_regex(r"\A[a-z]{1,8}\Z"), _name))
_value = st.one_of(st.just(""), _name)
_requirement = st.one_of(
    st.builds(
        lambda k, v, op: Requirement(k, op, (v,)),
        _key,
        _value,
        st.sampled_from([Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS]),
    ),
    st.builds(
        lambda k, vs, op: Requirement(k, op, tuple(sorted(set(vs)))),
        _key,
        st.lists(_value, min_size=1, max_size=3),
        st.sampled_from([Operator.IN, Operator.NOT_IN]),
    ),
    st.builds(
        lambda k, op: Requirement(k, op), _key, st.sampled_from([Operator.EXISTS, Operator.DOES_NOT_EXIST])
    ),
    st.builds(
        lambda k, n, op: Requirement(k, op, (str(n),)),
        _key,
        st.integers(0, 10**6),
        st.sampled_from([Operator.GREATER_THAN, Operator.LESS_THAN]),
    ),
)
_labels = st.dictionaries(st.one_of(_key, st.sampled_from(["a", "b", "x.io/a"])), _value, max_size=5)


@given(st.lists(_requirement, max_size=5))
def test_string_form_reparses_to_the_same_selector(reqs: list[Requirement]) -> None:
    sel = LabelSelector.of(reqs)
    again = parse_label_selector(str(sel))
    assert again == sel
    assert str(again) == str(sel)


@given(st.lists(_requirement, max_size=4), _labels)
def test_selector_is_the_conjunction_of_its_requirements(
    reqs: list[Requirement], labels: dict[str, str]
) -> None:
    sel = parse_label_selector(str(LabelSelector.of(reqs)))
    assert sel.matches(labels) == all(r.matches(labels) for r in reqs)


@given(_key, _value, _labels)
def test_negative_operators_complement_positive_ones(key: str, value: str, labels: dict[str, str]) -> None:
    eq = parse_label_selector(f"{key}={value}").matches(labels)
    assert parse_label_selector(f"{key}!={value}").matches(labels) is not eq
    assert parse_label_selector(f"{key} notin ({value})").matches(labels) is not eq
    assert parse_label_selector(f"!{key}").matches(labels) is not parse_label_selector(key).matches(labels)


# --------------------------------------------------------------------------- field selectors


def test_parse_field_selector_basics() -> None:
    sel = parse_field_selector("status.phase!=Running,spec.nodeName==n1,metadata.name=web")
    assert sel.requirements and [(r.field, r.operator, r.value) for r in sel.requirements] == [
        ("metadata.name", "=", "web"),
        ("spec.nodeName", "=", "n1"),
        ("status.phase", "!=", "Running"),
    ]
    assert str(sel) == "metadata.name=web,spec.nodeName=n1,status.phase!=Running"
    assert sel.exact_value("spec.nodeName") == "n1"
    assert sel.exact_value("status.phase") is None
    assert sel.matches({"metadata.name": "web", "spec.nodeName": "n1", "status.phase": "Pending"})
    assert not sel.matches({"metadata.name": "web", "spec.nodeName": "n1", "status.phase": "Running"})
    assert parse_field_selector("").empty
    assert parse_field_selector("=").empty
    assert str(parse_field_selector(",a=b,,")) == "a=b"


def test_field_selector_missing_field_reads_empty() -> None:
    assert parse_field_selector("spec.nodeName=").matches({})
    assert parse_field_selector("spec.nodeName!=").matches({"spec.nodeName": "n1"})
    assert not parse_field_selector("spec.nodeName!=").matches({})


def test_field_selector_escaping() -> None:
    sel = parse_field_selector(r"a=x\,y\=z\\w,b=1")
    assert sel.exact_value("a") == "x,y=z\\w"
    assert str(sel) == r"a=x\,y\=z\\w,b=1"
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        (r"a=b\q", r"invalid field selector: invalid escape sequence: \q"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_field_selector(text)
    assert exc.value.message == message


@given(st.text(max_size=20))
def test_field_value_escape_round_trip(value: str) -> None:
    assert unescape_field_value(escape_field_value(value)) == value
    sel = parse_field_selector("f=" + escape_field_value(value))
    assert sel.matches({"f": value})


def test_check_fields_messages_and_aliases() -> None:
    sel = parse_field_selector("spec.host=n1")
    out = check_fields(sel, {"spec.nodeName"}, "pods", aliases={"spec.host": "spec.nodeName"})
    assert out.exact_value("spec.nodeName") == "n1"
    with pytest.raises(BadRequest) as exc:
        check_fields(parse_field_selector("spec.foo=1"), {"metadata.name"}, "pods")
    assert exc.value.message == "field label not supported: spec.foo"
    with pytest.raises(BadRequest) as exc:
        check_fields(parse_field_selector("foo=1"), {"metadata.name"}, "configmaps", registered=False)
    assert (
        exc.value.message == '"foo" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


# --------------------------------------------------------------------------- selectable fields


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
    "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}]},
}


def test_pod_selectable_fields() -> None:
    fields = selectable_fields(POD, _info("", "Pod"))
    assert fields["metadata.name"] == "web-1"
    assert fields["metadata.namespace"] == "default"
    assert fields["spec.nodeName"] == "n1"
    assert fields["spec.hostNetwork"] == "false"
    assert fields["spec.serviceAccountName"] == ""
    assert fields["status.podIP"] == "10.0.0.9"
    assert fields["status.podIPs"] == ""  # accepted label, but not in Kubernetes' pod field set
    assert fields["status.nominatedNodeName"] == ""
    host = {"spec": {"hostNetwork": True}}
    assert field_values(host, ["spec.hostNetwork"]) == {"spec.hostNetwork": "true"}
    assert field_values({"status": {"podIP": "1.2.3.4"}}, ["status.podIP"]) == {"status.podIP": "1.2.3.4"}


def test_event_source_falls_back_to_reporting_component() -> None:
    ev = {
        "involvedObject": {"uid": "u1", "kind": "Pod"},
        "reason": "Started",
        "reportingComponent": "kubelet",
    }
    got = field_values(ev, ["source", "reportingComponent", "involvedObject.uid", "type"])
    assert got == {
        "source": "kubelet",
        "reportingComponent": "kubelet",
        "involvedObject.uid": "u1",
        "type": "",
    }
    ev["source"] = {"component": "scheduler"}
    assert field_values(ev, ["source"]) == {"source": "scheduler"}


def test_zero_values_print_like_go() -> None:
    assert field_values({}, ["status.replicas", "spec.unschedulable", "status.successful"]) == {
        "status.replicas": "0",
        "spec.unschedulable": "false",
        "status.successful": "0",
    }
    assert field_values(
        {"status": {"replicas": 3, "succeeded": 2}}, ["status.replicas", "status.successful"]
    ) == {
        "status.replicas": "3",
        "status.successful": "2",
    }
    assert field_value({"type": "kubernetes.io/tls"}, "type") == "kubernetes.io/tls"
    assert field_value({"spec": {"unschedulable": True}}, "spec.unschedulable") == "true"
    assert field_value({"spec": "x"}, "spec.nodeName") == ""
    assert field_value({"spec": {"nodeName": {"x": 1}}}, "spec.nodeName") == ""


def test_field_label_policy_follows_the_conversion_functions() -> None:
    node = field_label_policy(_info("", "Node"))
    assert node.allowed == {"metadata.name", "spec.unschedulable"} and node.registered
    ns = field_label_policy(_info("", "Namespace"))
    assert ns.allowed == {"metadata.name", "status.phase"}
    pod = field_label_policy(_info("", "Pod"))
    assert {"metadata.namespace", "spec.nodeName", "status.podIPs"} <= pod.allowed
    assert pod.aliases == {"spec.host": "spec.nodeName"}
    cm = field_label_policy(_info("", "ConfigMap"))
    assert cm.allowed == {"metadata.name", "metadata.namespace"} and not cm.registered


def test_parse_field_selector_for_resource() -> None:
    pods = _info("", "Pod")
    sel = parse_field_selector_for("spec.host=n1,status.phase=Running", pods)
    assert matches_fields(sel, POD)
    assert not matches_fields(parse_field_selector_for("spec.nodeName=n2", pods), POD)
    assert matches_fields(parse_field_selector_for("", pods), POD)
    with pytest.raises(BadRequest, match=r"^field label not supported: metadata\.namespace$"):
        parse_field_selector_for("metadata.namespace=x", _info("", "Node"))
    with pytest.raises(BadRequest, match=r'^"data" is not a known field selector'):
        parse_field_selector_for("data=x", _info("", "ConfigMap"))


def test_field_requirements_unpack_as_triples() -> None:
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert [tuple(r) for r in sel.requirements] == [
        ("spec.nodeName", "=", "n1"),
        ("status.phase", "!=", "Failed"),
    ]
    assert sel.fields() == ["spec.nodeName", "status.phase"]
