"""Decode-time checks of built-in objects: JSON types, unknown and duplicate fields."""

from __future__ import annotations

import copy
import time
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.schema.definitions import schema_for_gvk
from kubelite.schema.structural import (
    check_kind,
    check_object,
    decode_error_message,
    drop_unknown,
    field_warnings,
    find_duplicate_keys,
    strict_error_message,
    type_error_message,
)

POD_SCHEMA = schema_for_gvk("", "v1", "Pod")
DEPLOYMENT_SCHEMA = schema_for_gvk("apps", "v1", "Deployment")
assert POD_SCHEMA is not None and DEPLOYMENT_SCHEMA is not None


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "default",
            "creationTimestamp": None,
            "labels": {"app": "web"},
            "annotations": {"a": "b"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {"f:labels": {}}}}],
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "b"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
                    "volumeMounts": [{"name": "v", "mountPath": "/x"}],
                }
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"disk": "ssd"},
            "terminationGracePeriodSeconds": 30,
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        },
    }


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
            **spec,
        },
    }


def test_a_valid_pod_has_no_findings() -> None:
    assert check_object(pod(), POD_SCHEMA) == ([], [])


def test_null_decodes_to_the_zero_value_everywhere() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["ports"] = None
    obj["spec"]["nodeSelector"] = None
    obj["spec"]["terminationGracePeriodSeconds"] = None
    obj["status"] = None
    assert check_object(obj, POD_SCHEMA) == ([], [])


def test_wrong_type_gives_the_go_decoder_message() -> None:
    errors, _ = check_object(deployment(replicas="2"), DEPLOYMENT_SCHEMA)
    assert len(errors) == 1
    assert errors[0].field == "spec.replicas"
    assert errors[0].reason == "FieldValueTypeInvalid"
    assert errors[0].message == (
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    assert decode_error_message("Deployment", "v1", errors[0].message) == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into '
        "Go struct field DeploymentSpec.spec.replicas of type int32"
    )


def test_nested_type_errors_name_the_innermost_struct_and_the_go_path() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "80"}]
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = [1]
    obj["spec"]["template"]["spec"]["containers"].append("oops")
    errors, _ = check_object(obj, DEPLOYMENT_SCHEMA)
    by_field = {e.field: e.message for e in errors}
    assert by_field["spec.template.spec.containers[0].ports[0].containerPort"] == (
        "json: cannot unmarshal string into Go struct field "
        "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"
    )
    assert by_field["spec.template.spec.containers[0].args[0]"] == (
        "json: cannot unmarshal number into Go struct field "
        "Container.spec.template.spec.containers.args of type string"
    )
    assert by_field["spec.template.spec.containers[1]"] == (
        "json: cannot unmarshal string into Go struct field "
        "PodSpec.spec.template.spec.containers of type v1.Container"
    )


def test_objects_arrays_and_maps_must_have_their_json_kind() -> None:
    errors, _ = check_object(deployment(selector="app=web"), DEPLOYMENT_SCHEMA)
    assert errors[0].message.endswith("DeploymentSpec.spec.selector of type v1.LabelSelector")
    obj = pod()
    obj["metadata"]["labels"] = ["a"]
    obj["spec"]["containers"] = {"name": "c"}
    messages = [e.message for e in check_object(obj, POD_SCHEMA)[0]]
    assert (
        "json: cannot unmarshal array into Go struct field "
        "ObjectMeta.metadata.labels of type map[string]string" in messages
    )
    assert (
        "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"
        in messages
    )


def test_map_values_are_checked() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"a": 1}
    errors, _ = check_object(obj, POD_SCHEMA)
    assert errors[0].field == "metadata.labels.a"
    assert (
        errors[0].message
        == "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
    )


def test_scalars() -> None:
    obj = pod()
    spec = obj["spec"]
    spec["hostNetwork"] = "true"  # bool
    spec["terminationGracePeriodSeconds"] = True  # bool is not a number
    spec["priority"] = 2**31  # int32 overflow
    spec["activeDeadlineSeconds"] = 1.5
    by_field = {e.field: e.message for e in check_object(obj, POD_SCHEMA)[0]}
    assert by_field["spec.hostNetwork"].startswith(
        "json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool"
    )
    assert "cannot unmarshal bool" in by_field["spec.terminationGracePeriodSeconds"]
    assert (
        "cannot unmarshal number 2147483648 into Go struct field PodSpec.spec.priority of type int32"
        in by_field["spec.priority"]
    )
    assert "cannot unmarshal number 1.5 into" in by_field["spec.activeDeadlineSeconds"]


def test_int_or_string() -> None:
    for ok in ("25%", 1, 0):
        assert (
            check_object(deployment(strategy={"rollingUpdate": {"maxSurge": ok}}), DEPLOYMENT_SCHEMA)[0] == []
        )
    for bad, got in ((True, "bool"), ({"a": 1}, "object")):
        errors, _ = check_object(deployment(strategy={"rollingUpdate": {"maxSurge": bad}}), DEPLOYMENT_SCHEMA)
        assert errors[0].field == "spec.strategy.rollingUpdate.maxSurge"
        assert errors[0].message == f"json: cannot unmarshal {got} into Go value of type int32"
    errors, _ = check_object(deployment(strategy={"rollingUpdate": {"maxSurge": 1.5}}), DEPLOYMENT_SCHEMA)
    assert errors[0].message == "json: cannot unmarshal number 1.5 into Go value of type int32"


def test_quantities() -> None:
    for ok in ("100m", "1Gi", 1, 0.5, "1e3", " 2 "):
        obj = pod()
        obj["spec"]["containers"][0]["resources"]["limits"]["memory"] = ok
        assert check_object(obj, POD_SCHEMA)[0] == [], ok
    for bad in ("1x", "lots", True, [1]):
        obj = pod()
        obj["spec"]["containers"][0]["resources"]["limits"]["memory"] = bad
        errors, _ = check_object(obj, POD_SCHEMA)
        assert errors[0].field == "spec.containers[0].resources.limits.memory"
        assert errors[0].message.startswith("quantities must match the regular expression")


def test_bytes_are_base64() -> None:
    assert check_kind({"data": {"a": "aGVsbG8="}}, "", "v1", "Secret") == ([], [])
    result = check_kind({"data": {"a": "abc$"}}, "", "v1", "Secret")
    assert result is not None
    assert result[0][0].field == "data.a"
    assert result[0][0].message == "illegal base64 data at input byte 3"


def test_time_fields() -> None:
    obj = pod()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    assert check_object(obj, POD_SCHEMA)[0] == []
    obj["metadata"]["creationTimestamp"] = "yesterday"
    errors, _ = check_object(obj, POD_SCHEMA)
    assert errors[0].field == "metadata.creationTimestamp"
    assert errors[0].message.startswith('parsing time "yesterday"')
    obj["metadata"]["creationTimestamp"] = 5
    assert (
        check_object(obj, POD_SCHEMA)[0][0].message
        == "json: cannot unmarshal number into Go value of type string"
    )


def test_raw_extension_and_fields_v1_take_anything() -> None:
    revision = {"metadata": {"name": "r"}, "revision": 1, "data": {"spec": {"anything": [1, {"x": None}]}}}
    assert check_kind(revision, "apps", "v1", "ControllerRevision") == ([], [])
    obj = pod()
    obj["metadata"]["managedFields"][0]["fieldsV1"] = {"f:spec": {"f:whatever": {".": {}}}}
    assert check_object(obj, POD_SCHEMA) == ([], [])


def test_unknown_fields_are_reported_with_json_paths() -> None:
    obj = deployment(foo=1)
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    obj["metadata"]["bogus"] = {"deep": 1}
    obj["extra"] = True
    errors, unknown = check_object(obj, DEPLOYMENT_SCHEMA)
    assert errors == []
    assert sorted(unknown) == sorted(
        ["spec.foo", "spec.template.spec.containers[0].imagee", "metadata.bogus", "extra"]
    )
    assert "imagee" in obj["spec"]["template"]["spec"]["containers"][0]  # not pruned by default


def test_prune_removes_unknown_fields_in_place() -> None:
    obj = deployment(foo=1)
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    _, unknown = check_object(obj, DEPLOYMENT_SCHEMA, prune=True)
    assert len(unknown) == 2
    assert "foo" not in obj["spec"]
    assert obj["spec"]["template"]["spec"]["containers"][0] == {"name": "c", "image": "x"}
    assert check_object(obj, DEPLOYMENT_SCHEMA) == ([], [])


def test_drop_unknown_returns_the_removed_paths() -> None:
    obj = deployment(foo=1)
    assert drop_unknown(obj, DEPLOYMENT_SCHEMA) == ["spec.foo"]
    assert "foo" not in obj["spec"]


def test_check_kind_unknown_kind_is_none() -> None:
    assert check_kind({}, "example.com", "v1", "Nope") is None


def test_messages() -> None:
    assert type_error_message("Deployment", "v1", "DeploymentSpec.spec.replicas", "int32", "string") == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into '
        "Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    assert strict_error_message("Deployment", "v1", ["spec.template.spec.containers[0].imagee"], []) == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagee"'
    )
    assert field_warnings(["spec.foo"], ["metadata.name"]) == [
        'duplicate field "metadata.name"',
        'unknown field "spec.foo"',
    ]


def test_find_duplicate_keys() -> None:
    raw = b'{"metadata":{"name":"a","name":"b"},"spec":{"ports":[{"port":1,"port":2}]},"kind":"x","kind":"y"}'
    assert find_duplicate_keys(raw) == ["kind", "metadata.name", "spec.ports[0].port"]
    assert find_duplicate_keys(orjson.dumps(pod())) == []
    assert find_duplicate_keys(b"not json") == []
    assert find_duplicate_keys(b"") == []


def test_checking_a_pod_takes_well_under_a_millisecond() -> None:
    obj = pod()
    check_object(obj, POD_SCHEMA)  # compile
    runs = 300
    start = time.perf_counter()
    for _ in range(runs):
        check_object(obj, POD_SCHEMA)
    assert (time.perf_counter() - start) / runs < 0.0005


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "image", "x", "ports", "spec"]), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["containers", "volumes", "hostNetwork", "priority", "nodeSelector", "bogus", "overhead"]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=4))
def test_any_json_is_checked_without_crashing_and_prune_leaves_nothing_unknown(spec: dict[str, Any]) -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": copy.deepcopy(spec)}
    errors, unknown = check_object(obj, POD_SCHEMA, prune=True)
    assert all(e.reason == "FieldValueTypeInvalid" and e.message for e in errors)
    assert ("bogus" in spec) == ("spec.bogus" in unknown)
    assert check_object(obj, POD_SCHEMA)[1] == []
    assert check_object(obj, POD_SCHEMA)[0] == errors
