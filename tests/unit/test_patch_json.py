"""RFC 6902 JSON patch, with kube-apiserver's error mapping and evanphx/json-patch v4 leniencies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.api.errors import BadRequest, Invalid, RequestEntityTooLarge
from kubelite.apiserver.patch import apply_json_patch, json_clone, json_equal
from kubelite.apiserver.patch.json_patch import REJECTED

# ---------------------------------------------------------------- the six operations


def test_add_object_member_and_array_element() -> None:
    doc = {"foo": ["bar", "baz"]}
    out = apply_json_patch(
        doc, [{"op": "add", "path": "/foo/1", "value": "qux"}, {"op": "add", "path": "/x", "value": 1}]
    )
    assert out == {"foo": ["bar", "qux", "baz"], "x": 1}


def test_add_dash_appends_and_index_len_appends() -> None:
    out = apply_json_patch(
        {"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}, {"op": "add", "path": "/a/2", "value": 3}]
    )
    assert out == {"a": [1, 2, 3]}


def test_add_replaces_an_existing_member() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "add", "path": "/a", "value": {"b": None}}]) == {
        "a": {"b": None}
    }


def test_add_at_root_replaces_the_document() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}]) == {"b": 2}


def test_remove_member_and_element() -> None:
    doc = {"a": 1, "b": [1, 2, 3]}
    out = apply_json_patch(doc, [{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/b/1"}])
    assert out == {"b": [1, 3]}


def test_replace_member_and_element() -> None:
    doc = {"a": 1, "b": [1, 2]}
    out = apply_json_patch(
        doc, [{"op": "replace", "path": "/a", "value": "x"}, {"op": "replace", "path": "/b/0", "value": 9}]
    )
    assert out == {"a": "x", "b": [9, 2]}


def test_replace_root_must_be_object_or_array() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    with pytest.raises(Invalid):
        apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": 3}])


def test_move_and_copy() -> None:
    doc = {"a": {"b": 1}, "l": [1, 2, 3]}
    out = apply_json_patch(
        doc,
        [
            {"op": "move", "from": "/a/b", "path": "/c"},
            {"op": "move", "from": "/l/0", "path": "/l/-"},
            {"op": "copy", "from": "/l", "path": "/m"},
        ],
    )
    assert out == {"a": {}, "c": 1, "l": [2, 3, 1], "m": [2, 3, 1]}


def test_copy_is_deep_so_later_ops_do_not_alias() -> None:
    out = apply_json_patch(
        {"a": {"x": [1]}},
        [{"op": "copy", "from": "/a", "path": "/b"}, {"op": "add", "path": "/b/x/-", "value": 2}],
    )
    assert out == {"a": {"x": [1]}, "b": {"x": [1, 2]}}


def test_move_into_own_child_fails() -> None:
    with pytest.raises(Invalid):
        apply_json_patch({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}])


def test_test_op_passes_and_fails_with_422() -> None:
    doc = {"a": [1, {"b": True}]}
    assert apply_json_patch(doc, [{"op": "test", "path": "/a", "value": [1.0, {"b": True}]}]) == doc
    with pytest.raises(Invalid) as exc:
        apply_json_patch(doc, [{"op": "test", "path": "/a/1/b", "value": 1}])
    status = exc.value.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == REJECTED
    cause = status["details"]["causes"][0]
    assert cause["field"] == "/a/1/b" and "testing value /a/1/b failed" in cause["message"]


def test_test_of_missing_member_against_null_passes() -> None:
    assert apply_json_patch({}, [{"op": "test", "path": "/nope", "value": None}]) == {}
    with pytest.raises(Invalid):
        apply_json_patch({}, [{"op": "test", "path": "/nope", "value": 0}])


# ---------------------------------------------------------------- pointers


def test_pointer_escapes() -> None:
    doc = {"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}}
    out = apply_json_patch(
        doc,
        [
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/annotations/m~0n"},
            {"op": "add", "path": "/metadata/annotations/~01", "value": "y"},
        ],
    )
    assert out == {"metadata": {"annotations": {"a/b": "x", "~1": "y"}}}


def test_negative_index_counts_from_end_like_kubernetes() -> None:
    assert apply_json_patch({"l": [1, 2, 3]}, [{"op": "remove", "path": "/l/-1"}]) == {"l": [1, 2]}


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("doc", "op", "fragment"),
    [
        ({}, {"op": "add", "path": "/a/b", "value": 1}, "add operation does not apply: doc is missing path"),
        ({"a": [1]}, {"op": "add", "path": "/a/5", "value": 1}, "Unable to access invalid index: 5"),
        ({"a": [1]}, {"op": "add", "path": "/a/x", "value": 1}, "value was not a proper array index"),
        ({}, {"op": "remove", "path": "/a"}, "Unable to remove nonexistent key: a"),
        ({"a": []}, {"op": "remove", "path": "/a/0"}, "Unable to access invalid index: 0"),
        ({"a": [1]}, {"op": "replace", "path": "/a/3", "value": 1}, "doc is missing key: /a/3"),
        ({}, {"op": "move", "from": "/x", "path": "/y"}, "Unable to remove nonexistent key: x"),
        ({}, {"op": "copy", "from": "/x", "path": "/y"}, "doc is missing from path: /x"),
        ({}, {"op": "frobnicate", "path": "/x"}, "Unexpected kind: frobnicate"),
        ({}, {"path": "/x"}, "Unexpected kind: unknown"),
        ({}, {"op": "add", "value": 1}, "add operation failed to decode path"),
        ({"a": 1}, {"op": "add", "path": "a", "value": 1}, "invalid JSON pointer"),
        ({"a": "s"}, {"op": "add", "path": "/a/b", "value": 1}, "doc is missing path"),
    ],
)
def test_operations_that_do_not_apply_are_422(doc: Any, op: dict[str, Any], fragment: str) -> None:
    with pytest.raises(Invalid) as exc:
        apply_json_patch(doc, [op])
    assert exc.value.message == REJECTED
    assert exc.value.details is not None
    assert fragment in exc.value.details.causes[0].message


@pytest.mark.parametrize("patch", [{"op": "add"}, "x", None, [1], [["op"]]])
def test_malformed_patch_documents_are_400(patch: Any) -> None:
    with pytest.raises(BadRequest) as exc:
        apply_json_patch({}, patch)
    assert exc.value.to_status()["code"] == 400


def test_too_many_operations_is_413() -> None:
    with pytest.raises(RequestEntityTooLarge) as exc:
        apply_json_patch({}, [{"op": "test", "path": "", "value": {}}] * 10001)
    assert "The allowed maximum operations in a JSON patch is 10000, got 10001" in exc.value.message


def test_replace_of_missing_member_adds_it_like_kubernetes() -> None:
    # evanphx/json-patch v4 (what kube-apiserver uses) treats this as an add.
    out = apply_json_patch(
        {"metadata": {}}, [{"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}}]
    )
    assert out == {"metadata": {"annotations": {"a": "b"}}}


def test_failed_patch_leaves_input_untouched() -> None:
    doc = {"a": {"b": [1]}}
    with pytest.raises(Invalid):
        apply_json_patch(
            doc, [{"op": "add", "path": "/a/b/-", "value": 2}, {"op": "test", "path": "/a", "value": 0}]
        )
    assert doc == {"a": {"b": [1]}}


# ---------------------------------------------------------------- what kubectl sends

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "3"}, "generation": 3},
    "spec": {
        "replicas": 2,
        "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "t"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.28"}]},
        },
    },
}


def test_kubectl_rollout_undo_body() -> None:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }
    body = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": {"deployment.kubernetes.io/revision": "2"},
        },
    ]
    before = json_clone(DEPLOYMENT)
    out = apply_json_patch(DEPLOYMENT, body)
    assert out["spec"]["template"] == template
    assert out["spec"]["replicas"] == 2
    assert out["metadata"] == {
        "name": "web",
        "annotations": {"deployment.kubernetes.io/revision": "2"},
        "generation": 3,
    }
    assert before == DEPLOYMENT
    # the value is copied, not aliased
    template["spec"]["containers"].append({"name": "x"})
    assert len(out["spec"]["template"]["spec"]["containers"]) == 1


def test_kubectl_patch_type_json_add_label() -> None:
    out = apply_json_patch(DEPLOYMENT, [{"op": "add", "path": "/metadata/labels", "value": {"tier": "web"}}])
    assert out["metadata"]["labels"] == {"tier": "web"}
    assert "labels" not in DEPLOYMENT["metadata"]


def test_untouched_subtrees_are_shared_not_copied() -> None:
    out = apply_json_patch(DEPLOYMENT, [{"op": "replace", "path": "/spec/replicas", "value": 5}])
    assert out["spec"]["template"] is DEPLOYMENT["spec"]["template"]
    assert out["spec"] is not DEPLOYMENT["spec"]


# ---------------------------------------------------------------- json_equal


def test_json_equal_keeps_booleans_apart_from_numbers() -> None:
    assert not json_equal(True, 1)
    assert not json_equal([0], [False])
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal({"a": 1}, {"a": 1, "b": None})


# ---------------------------------------------------------------- properties

keys = st.text(min_size=1, max_size=6)
scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(keys, json_values, max_size=6)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@given(json_objects, keys, json_values)
def test_add_then_remove_member_roundtrips(doc: dict[str, Any], key: str, value: Any) -> None:
    doc.pop(key, None)
    before = json_clone(doc)
    path = "/" + _escape(key)
    added = apply_json_patch(doc, [{"op": "add", "path": path, "value": value}])
    assert json_equal(added[key], value)
    assert apply_json_patch(added, [{"op": "remove", "path": path}]) == before
    assert json_equal(doc, before)


@given(st.lists(json_values, max_size=6), st.data(), json_values)
def test_add_then_remove_element_roundtrips(items: list[Any], data: st.DataObject, value: Any) -> None:
    doc = {"l": items}
    before = json_clone(doc)
    idx = data.draw(st.integers(0, len(items)))
    added = apply_json_patch(doc, [{"op": "add", "path": f"/l/{idx}", "value": value}])
    assert len(added["l"]) == len(items) + 1
    assert apply_json_patch(added, [{"op": "test", "path": f"/l/{idx}", "value": value}]) == added
    assert json_equal(apply_json_patch(added, [{"op": "remove", "path": f"/l/{idx}"}]), before)
    assert json_equal(doc, before)


@given(json_objects, keys, keys)
def test_move_there_and_back_roundtrips(doc: dict[str, Any], a: str, b: str) -> None:
    if a == b or a not in doc or b in doc:
        doc = {**{k: v for k, v in doc.items() if k != b}, a: 1}
        if a == b:
            return
    there = apply_json_patch(doc, [{"op": "move", "from": "/" + _escape(a), "path": "/" + _escape(b)}])
    back = apply_json_patch(there, [{"op": "move", "from": "/" + _escape(b), "path": "/" + _escape(a)}])
    assert json_equal(back, doc)
