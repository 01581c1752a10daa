"""Custom resources: served versions, pruning, defaulting and structural-schema validation."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api.errors import invalid
from kubelite.schema.crd import (
    apply_defaults,
    crd_versions,
    kind_schemas,
    prune,
    validate_custom_resource,
    version_schema,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "replicas": {"type": "integer"},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1, "multipleOf": 0.25},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "when": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 2,
                    "x-kubernetes-list-type": "set",
                },
                "ports": {
                    "type": "array",
                    "minItems": 1,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "empty": {"type": "object"},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                },
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def cr(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c", "namespace": "default", "labels": {"a": "b"}},
        "spec": {"size": 3, **spec},
    }


def messages(obj: dict[str, Any]) -> dict[str, str]:
    return {c.field: c.message for c in validate_custom_resource(obj, SCHEMA)}


# -- reading a CRD -----------------------------------------------------------------------------

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "names": {"kind": "CronTab", "plural": "crontabs"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SCHEMA}},
            {
                "name": "v1beta1",
                "served": False,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            },
            {"name": "v2", "served": True, "storage": False},
        ],
    },
}


def test_crd_versions_are_the_served_ones() -> None:
    assert [v["name"] for v in crd_versions(CRD)] == ["v1", "v2"]
    assert crd_versions({"spec": {}}) == []


def test_version_schema_and_kind_schemas() -> None:
    assert version_schema(CRD, "v1") is SCHEMA
    assert version_schema(CRD, "v2") is None
    assert kind_schemas(CRD, "v1") == {"CronTab": SCHEMA}
    assert kind_schemas(CRD, "v2") == {}


# -- validation --------------------------------------------------------------------------------


def test_a_valid_object_has_no_causes() -> None:
    obj = cr(
        mode="slow",
        name="abc",
        ratio=0.5,
        port="http",
        when="2024-01-01T00:00:00Z",
        note=None,
        tags=["a", "b"],
        ports=[{"name": "a", "port": 1}],
        labels={"x": "y"},
        config={"anything": [1, {"deep": None}]},
    )
    assert validate_custom_resource(obj, SCHEMA) == []


def test_type_mismatch_message() -> None:
    causes = validate_custom_resource(cr(replicas="string"), SCHEMA)
    assert len(causes) == 1
    assert causes[0].field == "spec.replicas"
    assert causes[0].reason == "FieldValueTypeInvalid"
    assert (
        causes[0].message
        == 'Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    )
    err = invalid("CronTab", "stable.example.com", "c", causes)
    assert err.message == (
        'CronTab.stable.example.com "c" is invalid: spec.replicas: Invalid value: "string": '
        'spec.replicas in body must be of type integer: "string"'
    )


def test_required_and_bounds() -> None:
    obj = cr()
    del obj["spec"]["size"]
    causes = validate_custom_resource(obj, SCHEMA)
    assert [(c.field, c.message, c.reason) for c in causes] == [
        ("spec.size", "Required value", "FieldValueRequired")
    ]
    assert messages(cr(size=20)) == {
        "spec.size": "Invalid value: 20: spec.size in body should be less than or equal to 10"
    }
    assert messages(cr(size=0)) == {
        "spec.size": "Invalid value: 0: spec.size in body should be greater than or equal to 1"
    }
    assert messages(cr(ratio=1)) == {
        "spec.ratio": "Invalid value: 1: spec.ratio in body should be less than 1"
    }
    assert messages(cr(ratio=0.3)) == {
        "spec.ratio": "Invalid value: 0.3: spec.ratio in body should be a multiple of 0.25"
    }


def test_integral_floats_are_integers() -> None:
    assert validate_custom_resource(cr(size=3.0), SCHEMA) == []
    assert messages(cr(size=2.5)) == {
        "spec.size": 'Invalid value: "number": spec.size in body must be of type integer: "number"'
    }


def test_enum_strings_and_formats() -> None:
    assert messages(cr(mode="medium")) == {
        "spec.mode": 'Unsupported value: "medium": supported values: "fast", "slow"'
    }
    assert messages(cr(name="a")) == {
        "spec.name": 'Invalid value: "a": spec.name in body should be at least 2 chars long'
    }
    long = messages(cr(name="abcdefg"))
    assert long == {"spec.name": "Too long: may not be longer than 5"}
    assert messages(cr(name="AB")) == {
        "spec.name": "Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"
    }
    assert messages(cr(when="tomorrow")) == {
        "spec.when": 'Invalid value: "tomorrow": spec.when in body must be of type date-time: "tomorrow"'
    }


def test_nullable_and_int_or_string() -> None:
    assert messages(cr(replicas=None)) == {
        "spec.replicas": 'Invalid value: "null": spec.replicas in body must be of type integer: "null"'
    }
    assert validate_custom_resource(cr(note=None, port=8080), SCHEMA) == []
    assert "spec.port" in messages(cr(port=True))


def test_arrays_and_list_types() -> None:
    assert messages(cr(tags=["a", "b", "c"])) == {"spec.tags": "Too many: 3: must have at most 2 items"}
    assert messages(cr(tags=["a", "a"])) == {"spec.tags[1]": 'Duplicate value: "a"'}
    assert messages(cr(ports=[])) == {
        "spec.ports": "Invalid value: []: spec.ports in body should have at least 1 items"
    }
    dup = messages(cr(ports=[{"name": "a"}, {"name": "a", "port": 2}]))
    assert list(dup) == ["spec.ports[1]"]
    assert dup["spec.ports[1]"].startswith("Duplicate value:")
    assert messages(cr(ports=[{"port": 1}])) == {"spec.ports[0].name": "Required value"}
    assert messages(cr(ports=[{"name": 5}])) == {
        "spec.ports[0].name": 'Invalid value: "integer": '
        'spec.ports[0].name in body must be of type string: "integer"'
    }


def test_additional_properties() -> None:
    assert messages(cr(labels={"a": 1})) == {
        "spec.labels.a": 'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"'
    }
    assert messages(cr(labels={"a": "1", "b": "2", "c": "3"})) == {
        "spec.labels": "Too many: 3: must have at most 2 items"
    }


def test_combinators() -> None:
    schema = {"type": "object", "properties": {"v": {"oneOf": [{"type": "string"}, {"minLength": 3}]}}}
    assert validate_custom_resource({"v": "ab"}, schema) == []
    causes = validate_custom_resource({"v": "abcd"}, schema)
    assert causes[0].message.endswith('"v" must validate one and only one schema (oneOf)')
    not_schema = {"type": "object", "properties": {"v": {"not": {"type": "string"}}}}
    assert validate_custom_resource({"v": 1}, not_schema) == []
    assert validate_custom_resource({"v": "x"}, not_schema)[0].message.endswith(
        "must not validate the schema (not)"
    )


def test_root_type_meta_is_skipped() -> None:
    schema = {
        "type": "object",
        "required": ["apiVersion", "spec"],
        "properties": {"spec": {"type": "object"}},
    }
    assert (
        validate_custom_resource({"apiVersion": "x/v1", "kind": "K", "metadata": {}, "spec": {}}, schema)
        == []
    )


# -- pruning -----------------------------------------------------------------------------------


def test_prune_removes_unknown_fields_and_reports_paths() -> None:
    obj = cr(bogus=1, ports=[{"name": "a", "extra": True}], config={"kept": 1}, empty={"gone": 1})
    obj["spec"]["template"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x", "junk": 1},
        "spec": {"x": "1", "y": 2},
    }
    obj["status"] = {"ready": True, "phase": "x"}
    obj["top"] = 1
    removed = prune(obj, SCHEMA)
    assert sorted(removed) == sorted(
        [
            "spec.bogus",
            "spec.ports[0].extra",
            "spec.empty.gone",
            "spec.template.metadata.junk",
            "spec.template.spec.y",
            "status.phase",
            "top",
        ]
    )
    assert obj["apiVersion"] == "stable.example.com/v1" and obj["kind"] == "CronTab"
    assert obj["metadata"] == {"name": "c", "namespace": "default", "labels": {"a": "b"}}
    assert obj["spec"]["config"] == {"kept": 1}
    assert obj["spec"]["empty"] == {}
    assert obj["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"x": "1"},
    }


def test_prune_drops_unknown_metadata_fields() -> None:
    obj = cr()
    obj["metadata"]["foo"] = "bar"
    assert prune(obj, SCHEMA) == ["metadata.foo"]
    assert "foo" not in obj["metadata"]


def test_prune_removes_non_nullable_nulls_silently() -> None:
    obj = cr(replicas=None, note=None, mode=None)
    assert prune(obj, SCHEMA) == []
    assert "replicas" not in obj["spec"]
    assert obj["spec"]["note"] is None  # nullable
    assert obj["spec"]["mode"] is None  # has a default: defaulting decides
    assert validate_custom_resource(obj, SCHEMA)[0].field == "spec.mode"


def test_prune_with_preserve_unknown_root_keeps_everything() -> None:
    obj = cr(anything={"goes": 1})
    assert prune(obj, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}) == []
    assert obj["spec"]["anything"] == {"goes": 1}


def test_defaults() -> None:
    obj = cr()
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["mode"] == "fast"
    nested = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}},
            }
        },
    }
    obj2: dict[str, Any] = {"items": [{}, {"n": 5}]}
    apply_defaults(obj2, nested)
    assert obj2 == {"items": [{"n": 1}, {"n": 5}]}


SPEC_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-50, 50) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "port", "x", "spec"]), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["size", "ports", "labels", "config", "empty", "template", "junk", "tags"]),
        SPEC_VALUES,
        max_size=5,
    )
)
def test_prune_is_idempotent_and_validation_never_crashes(spec: dict[str, Any]) -> None:
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n"}, "spec": copy.deepcopy(spec)}
    removed = prune(obj, SCHEMA)
    assert ("junk" in spec) == ("spec.junk" in removed)
    assert prune(obj, SCHEMA) == []
    for cause in validate_custom_resource(obj, SCHEMA):
        assert cause.field.startswith("spec") and cause.message
