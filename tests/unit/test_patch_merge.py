"""RFC 7386 JSON merge patch, as kube-apiserver applies it (label, annotate, scale, patch --type=merge)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.apiserver.patch import apply_merge_patch, create_merge_patch, json_clone, json_equal

# The RFC 7386 appendix A cases (target, patch, result), re-stated.
RFC_CASES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_CASES)
def test_rfc7386_examples(target: Any, patch: Any, result: Any) -> None:
    before = json_clone(target)
    assert apply_merge_patch(target, patch) == result
    assert target == before


def test_kubectl_label_adds_and_removes() -> None:
    pod = {
        "metadata": {"name": "p", "labels": {"app": "x", "env": "dev"}},
        "spec": {"containers": [{"name": "c"}]},
    }
    out = apply_merge_patch(pod, {"metadata": {"labels": {"env": "prod"}}})
    assert out["metadata"]["labels"] == {"app": "x", "env": "prod"}
    out = apply_merge_patch(out, {"metadata": {"labels": {"env": None}}})
    assert out["metadata"]["labels"] == {"app": "x"}
    assert pod["metadata"]["labels"] == {"app": "x", "env": "dev"}  # type: ignore[index]
    assert out["spec"] is pod["spec"]  # untouched subtrees are shared


def test_kubectl_annotate_on_object_without_annotations() -> None:
    out = apply_merge_patch({"metadata": {"name": "p"}}, {"metadata": {"annotations": {"a": "1", "b": None}}})
    assert out == {"metadata": {"name": "p", "annotations": {"a": "1"}}}


def test_kubectl_scale_body() -> None:
    scale = {"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert apply_merge_patch(scale, {"spec": {"replicas": 3}})["spec"] == {"replicas": 3}


def test_arrays_replace_wholesale_and_prune_nulls_inside_objects() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}
    out = apply_merge_patch(doc, {"spec": {"containers": [{"name": "a", "image": None}, None]}})
    # evanphx/json-patch prunes null members of objects taken from the patch, keeps null elements
    assert out == {"spec": {"containers": [{"name": "a"}, None]}}


def test_values_from_the_patch_are_copied() -> None:
    patch = {"a": {"b": [1]}}
    out = apply_merge_patch({}, patch)
    out["a"]["b"].append(2)
    assert patch == {"a": {"b": [1]}}


def test_create_merge_patch_examples() -> None:
    a = {"metadata": {"labels": {"x": "1", "y": "2"}}, "spec": {"replicas": 1, "paused": True}}
    b = {"metadata": {"labels": {"x": "1", "z": "3"}}, "spec": {"replicas": 1, "paused": 1}}
    assert create_merge_patch(a, b) == {"metadata": {"labels": {"y": None, "z": "3"}}, "spec": {"paused": 1}}
    assert create_merge_patch(a, a) == {}
    assert create_merge_patch([1], {"a": 1}) == {"a": 1}


# ---------------------------------------------------------------- properties

keys = st.text(min_size=1, max_size=5)
scalars = (
    st.booleans()
    | st.integers(-100, 100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)


def _values(with_null_members: bool) -> st.SearchStrategy[Any]:
    members = st.none() | scalars if with_null_members else scalars
    return st.recursive(
        members,
        lambda inner: st.lists(inner | st.none(), max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=16,
    )


# merge patches cannot express "set this member to null", so modified docs have no null members
docs = st.dictionaries(keys, _values(with_null_members=False), max_size=6)
any_docs = st.dictionaries(keys, _values(with_null_members=True), max_size=6)


@given(any_docs, docs)
def test_apply_of_created_patch_gives_modified(original: dict[str, Any], modified: dict[str, Any]) -> None:
    before = json_clone(original)
    patch = create_merge_patch(original, modified)
    assert json_equal(apply_merge_patch(original, patch), modified)
    assert json_equal(original, before)


@given(any_docs, any_docs)
def test_merge_patch_is_idempotent(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    once = apply_merge_patch(doc, patch)
    assert json_equal(apply_merge_patch(once, patch), once)


@given(any_docs)
def test_empty_patch_and_self_patch_change_nothing(doc: dict[str, Any]) -> None:
    assert json_equal(apply_merge_patch(doc, {}), doc)
    assert create_merge_patch(doc, doc) == {}
