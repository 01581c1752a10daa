"""The create managedFields cache gives exactly what the general computation gives."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.apiserver.apply import update_managed_fields
from kubelite.apiserver.createfields import CreateFieldsCache, skeleton
from kubelite.registry import defaults
from kubelite.schema.definitions import schema_for_gvk
from tests.paths import CORPUS

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T03:04:06Z"
POD_SCHEMA = schema_for_gvk("", "v1", "Pod")


def _pod(name: str, image: str, port: int, labels: dict[str, str]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels, "uid": name + "-uid"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "ports": [{"containerPort": port}],
                    "env": [{"name": "A", "value": image}],
                    "resources": {"requests": {"cpu": "10m"}},
                }
            ]
        },
    }
    defaults.apply_defaults("", "v1", "Pod", obj)
    return obj


def _general(obj: dict[str, Any], schema: Any, now: str, has_status: bool = True) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    update_managed_fields(None, out, "mgr", "v1", schema, now, "", ignore_status=has_status)
    return out


def _cached(cache: CreateFieldsCache, obj: dict[str, Any], schema: Any, now: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)

    def compute() -> None:
        update_managed_fields(None, out, "mgr", "v1", schema, now, "", ignore_status=True)

    cache.apply(("mgr", "v1", "pods", True), schema, out, now, compute)
    return out


def test_hit_equals_general_computation() -> None:
    cache = CreateFieldsCache()
    first = _pod("a", "img:1", 80, {"app": "x"})
    assert _cached(cache, first, POD_SCHEMA, NOW) == _general(first, POD_SCHEMA, NOW)
    second = _pod("b", "img:1", 80, {"app": "y"})  # same skeleton: a hit, new time
    assert skeleton(second) == skeleton(first)
    got = _cached(cache, second, POD_SCHEMA, LATER)
    assert got == _general(second, POD_SCHEMA, LATER)
    assert got["metadata"]["managedFields"][0]["time"] == LATER


def test_lists_and_keys_are_part_of_the_skeleton() -> None:
    a = _pod("a", "img:1", 80, {"app": "x"})
    assert skeleton(a) != skeleton(_pod("a", "img:1", 81, {"app": "x"}))  # list-map key
    assert skeleton(a) != skeleton(_pod("a", "img:1", 80, {"other": "x"}))  # map key
    b = _pod("a", "img:1", 80, {"app": "x"})
    b["spec"]["nodeName"] = None
    assert skeleton(a) != skeleton(b)  # null is structure


def test_body_with_managed_fields_takes_the_general_path() -> None:
    cache = CreateFieldsCache()
    obj = _pod("a", "img:1", 80, {})
    obj["metadata"]["managedFields"] = [
        {
            "manager": "other",
            "operation": "Apply",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
    ]
    calls = []
    cache.apply(("m",), POD_SCHEMA, obj, NOW, lambda: calls.append(1))
    cache.apply(("m",), POD_SCHEMA, obj, NOW, lambda: calls.append(1))
    assert calls == [1, 1]


def _corpus_objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path(CORPUS).rglob("*.y*ml"))[:150]:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except Exception:
            continue
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) and "apiVersion" in doc:
                out.append(doc)
    return out


CORPUS_OBJECTS = _corpus_objects()


@pytest.mark.parametrize("index", range(0, len(CORPUS_OBJECTS)))
def test_corpus_objects_hit_like_general(index: int) -> None:
    obj = CORPUS_OBJECTS[index]
    group_version = str(obj["apiVersion"])
    group, _, version = group_version.rpartition("/")
    schema = schema_for_gvk(group, version, str(obj.get("kind", "")))
    cache = CreateFieldsCache()
    _cached(cache, obj, schema, NOW)  # fills the entry
    assert _cached(cache, obj, schema, LATER) == _general(obj, schema, LATER)


scalars = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none())


@settings(max_examples=60, deadline=None)
@given(
    image=st.text(min_size=1, max_size=8),
    labels=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(max_size=3), max_size=3),
    extra=st.dictionaries(st.sampled_from(["hostname", "subdomain", "nodeName", "priority"]), scalars),
)
def test_same_skeleton_same_fields(image: str, labels: dict[str, str], extra: dict[str, Any]) -> None:
    cache = CreateFieldsCache()
    base = _pod("p", "img", 80, dict.fromkeys(labels, "v"))
    base["spec"].update({k: (0 if v is not None else None) for k, v in extra.items()})
    _cached(cache, base, POD_SCHEMA, NOW)
    other = _pod("q", image, 80, labels)
    other["spec"].update(extra)
    other["spec"]["containers"] = copy.deepcopy(base["spec"]["containers"])
    assert _cached(cache, other, POD_SCHEMA, LATER) == _general(other, POD_SCHEMA, LATER)
