"""Strategic merge patch: kubectl's bodies on real 1.32 schemas, apimachinery's semantics, properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.api.errors import BadRequest, Invalid
from kubelite.apiserver.patch import apply_merge_patch, apply_strategic_merge_patch, json_clone
from kubelite.schema.definitions import Schema, schema_for_gvk


def _schema(group: str, version: str, kind: str) -> Schema:
    schema = schema_for_gvk(group, version, kind)
    assert schema is not None
    return schema


DEPLOYMENT_SCHEMA = _schema("apps", "v1", "Deployment")
NODE_SCHEMA = _schema("", "v1", "Node")
PDB_SCHEMA = _schema("policy", "v1", "PodDisruptionBudget")


def smp(
    doc: dict[str, Any], patch: dict[str, Any], schema: Schema | None = DEPLOYMENT_SCHEMA
) -> dict[str, Any]:
    """Apply and check that neither input was touched."""
    doc_before, patch_before = json_clone(doc), json_clone(patch)
    out = apply_strategic_merge_patch(doc, patch, schema)
    assert doc == doc_before
    assert patch == patch_before
    return out


def deployment(containers: list[dict[str, Any]], **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers, **pod_spec},
            },
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [i[key] for i in items]


# ---------------------------------------------------------------- what kubectl sends


def test_kubectl_apply_body_with_set_element_order() -> None:
    live = deployment([{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}])
    body = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"x":1}\n'}},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [{"image": "nginx:1.28", "name": "nginx"}],
                }
            },
        },
    }
    out = smp(live, body)
    assert out["spec"]["replicas"] == 3
    assert pod_spec(out)["containers"] == [
        {"name": "nginx", "image": "nginx:1.28", "ports": [{"containerPort": 80}]}
    ]
    assert out["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": '{"x":1}\n'}
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["selector"] is live["spec"]["selector"]  # untouched subtrees are shared


def test_kubectl_apply_adds_a_container_in_manifest_order() -> None:
    live = deployment([{"name": "app", "image": "a"}, {"name": "log", "image": "l"}])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "init"}, {"name": "app"}, {"name": "log"}],
                    "containers": [{"name": "init", "image": "i"}],
                }
            }
        }
    }
    assert names(pod_spec(smp(live, body))["containers"]) == ["init", "app", "log"]


def test_kubectl_apply_removes_a_container_with_delete_directive() -> None:
    live = deployment([{"name": "app", "image": "a"}, {"name": "log", "image": "l"}])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [{"$patch": "delete", "name": "log"}],
                }
            }
        }
    }
    assert pod_spec(smp(live, body))["containers"] == [{"name": "app", "image": "a"}]


def test_kubectl_set_image() -> None:
    live = deployment([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [{"image": "b:2", "name": "b"}],
                }
            }
        }
    }
    assert pod_spec(smp(live, body))["containers"] == [
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:2"},
    ]


def test_kubectl_rollout_restart_and_pause() -> None:
    live = deployment([{"name": "a", "image": "a"}])
    body = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}
            }
        }
    }
    out = smp(live, body)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
    }
    assert smp(out, {"spec": {"paused": True}})["spec"]["paused"] is True


def test_cordon_and_uncordon() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    cordoned = smp(node, {"spec": {"unschedulable": True}}, NODE_SCHEMA)
    assert cordoned["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}
    assert smp(cordoned, {"spec": {"unschedulable": None}}, NODE_SCHEMA)["spec"] == {"podCIDR": "10.0.0.0/24"}


# ---------------------------------------------------------------- merge keys from the Deployment schema


def test_env_merges_by_name() -> None:
    live = deployment([{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]}
                    ]
                }
            }
        }
    }
    env = pod_spec(smp(live, body))["containers"][0]["env"]
    assert env == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]


def test_ports_merge_by_container_port() -> None:
    live = deployment(
        [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]
    )
    body = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 443, "name": "https"}]}]}
            }
        }
    }
    ports = pod_spec(smp(live, body))["containers"][0]["ports"]
    assert ports == [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}]


def test_args_are_atomic_and_replaced() -> None:
    live = deployment([{"name": "a", "args": ["x", "y"]}])
    body = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}}
    assert pod_spec(smp(live, body))["containers"][0]["args"] == ["z"]


def test_tolerations_have_no_merge_key_and_are_replaced() -> None:
    live = deployment([{"name": "a"}], tolerations=[{"key": "k1", "operator": "Exists"}])
    body = {"spec": {"template": {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}}}
    assert pod_spec(smp(live, body))["tolerations"] == [{"key": "k2", "operator": "Exists"}]


def test_volumes_merge_by_name_with_retain_keys() -> None:
    live = deployment(
        [{"name": "a"}],
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c1"}}],
    )
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
                    "volumes": [
                        {"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/d"}, "name": "data"}
                    ],
                }
            }
        }
    }
    volumes = pod_spec(smp(live, body))["volumes"]
    assert volumes == [
        {"name": "data", "hostPath": {"path": "/d"}},
        {"name": "cfg", "configMap": {"name": "c1"}},
    ]


def test_deployment_strategy_retain_keys_switches_union_member() -> None:
    live = deployment([{"name": "a"}])
    live["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    out = smp(live, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # without the directive the map merges and the stale member stays
    out = smp(live, {"spec": {"strategy": {"type": "Recreate"}}})
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}


def test_finalizers_are_a_primitive_merge_list() -> None:
    live = {"metadata": {"name": "x", "finalizers": ["a", "b"]}}
    # normalizeElementOrder: a new item (not in the live order) goes before the remaining live-only items
    assert smp(live, {"metadata": {"finalizers": ["c", "a"]}})["metadata"]["finalizers"] == ["c", "a", "b"]
    assert smp(live, {"metadata": {"finalizers": ["b", "a"]}})["metadata"]["finalizers"] == ["b", "a"]
    body = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}
    assert smp(live, body)["metadata"]["finalizers"] == ["c", "b"]
    body = {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}}
    assert smp(live, body)["metadata"]["finalizers"] == ["b", "c", "a"]


def test_owner_references_merge_by_uid() -> None:
    ref1 = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r1", "uid": "u1", "controller": True}
    live = {"metadata": {"name": "p", "ownerReferences": [ref1]}}
    ref2 = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r2", "uid": "u2"}
    out = smp(live, {"metadata": {"ownerReferences": [ref2, {"uid": "u1", "controller": False}]}})
    assert [(r["uid"], r.get("controller")) for r in out["metadata"]["ownerReferences"]] == [
        ("u2", None),
        ("u1", False),
    ]
    out = smp(out, {"metadata": {"ownerReferences": [{"uid": "u2", "$patch": "delete"}]}})
    assert names(out["metadata"]["ownerReferences"], "uid") == ["u1"]


def test_labels_map_merge_replace_and_delete() -> None:
    live = deployment([{"name": "a"}])
    live["metadata"]["labels"] = {"app": "web", "tier": "front"}
    assert smp(live, {"metadata": {"labels": {"tier": None, "new": "1"}}})["metadata"]["labels"] == {
        "app": "web",
        "new": "1",
    }
    assert smp(live, {"metadata": {"labels": {"$patch": "replace", "only": "me"}}})["metadata"]["labels"] == {
        "only": "me"
    }
    assert smp(live, {"metadata": {"labels": {"$patch": "delete"}}})["metadata"]["labels"] == {}
    assert (
        smp(live, {"metadata": {"labels": {"$patch": "merge", "x": "y"}}})["metadata"]["labels"]["x"] == "y"
    )


def test_replace_strategy_map_is_replaced_wholesale() -> None:
    pdb = {
        "spec": {
            "selector": {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "k", "operator": "Exists"}]}
        }
    }
    out = smp(pdb, {"spec": {"selector": {"matchLabels": {"b": "2"}}}}, PDB_SCHEMA)
    assert out["spec"]["selector"] == {"matchLabels": {"b": "2"}}


def test_containers_replaced_with_replace_directive_item() -> None:
    live = deployment([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    body = {
        "spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}}}
    }
    assert pod_spec(smp(live, body))["containers"] == [{"name": "c", "image": "c"}]


def test_directives_never_reach_the_result_even_in_new_subtrees() -> None:
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}],
                    "containers": [
                        {
                            "name": "a",
                            "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": None}],
                        }
                    ],
                    "$retainKeys": ["containers"],
                }
            }
        }
    }
    assert smp(live, body)["spec"] == {
        "template": {"spec": {"containers": [{"name": "a", "env": [{"name": "Y"}]}]}}
    }


def test_dollar_fields_that_are_not_directives_are_ordinary() -> None:
    # CRD schemas carry "$ref"/"$schema" fields: they merge like any other field
    assert smp({"a": {"$ref": "x"}}, {"a": {"$schema": "y"}}, None) == {"a": {"$ref": "x", "$schema": "y"}}


# ---------------------------------------------------------------- errors


def _bad_request(
    doc: dict[str, Any], patch: dict[str, Any], schema: Schema | None = DEPLOYMENT_SCHEMA
) -> str:
    with pytest.raises(BadRequest) as exc:
        apply_strategic_merge_patch(doc, patch, schema)
    assert exc.value.to_status()["code"] == 400
    return exc.value.message


def test_missing_merge_key_names_the_field() -> None:
    message = _bad_request(
        deployment([{"name": "a"}]), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    )
    assert "does not contain declared merge key: name" in message
    assert "spec.template.spec.containers" in message


def test_unknown_patch_directive() -> None:
    assert "unknown patch type: explode" in _bad_request(
        {"metadata": {}}, {"metadata": {"$patch": "explode"}}
    )
    body = {"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "explode"}]}}}}
    assert "unknown patch type: explode" in _bad_request(deployment([{"name": "a"}]), body)


def test_merge_directive_inside_a_list_is_rejected() -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}}}
    assert "merging lists cannot yet be specified" in _bad_request(deployment([{"name": "a"}]), body)


def test_set_element_order_must_agree_with_the_patch_list() -> None:
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [{"name": "b", "image": "x"}, {"name": "a", "image": "y"}],
                }
            }
        }
    }
    assert "doesn't match" in _bad_request(deployment([{"name": "a"}, {"name": "b"}]), body)


def test_malformed_directive_keys() -> None:
    assert "setElementOrder" in _bad_request({"a": [1]}, {"$setElementOrderX/a": [1]}, None)
    assert "primitive list" in _bad_request({"a": [1]}, {"$deleteFromPrimitiveList": [1]}, None)
    assert "retainKeys" in _bad_request({"a": 1}, {"$retainKeys": "a"}, None)
    assert "retainKeys" in _bad_request({"a": 1}, {"$retainKeys": ["a"], "b": 2}, None)


def test_wrong_shape_against_the_schema_is_invalid() -> None:
    with pytest.raises(Invalid) as exc:
        apply_strategic_merge_patch(
            deployment([]), {"spec": {"template": {"spec": {"containers": {"name": "a"}}}}}, DEPLOYMENT_SCHEMA
        )
    assert exc.value.to_status()["code"] == 422
    assert "spec.template.spec.containers" in exc.value.message
    with pytest.raises(Invalid):
        apply_strategic_merge_patch(deployment([]), {"metadata": {"labels": ["a"]}}, DEPLOYMENT_SCHEMA)


def test_non_object_patch_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        apply_strategic_merge_patch({}, [], None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- apimachinery's MergeItem test type
# A schema shaped like the struct apimachinery's strategicpatch tests use.

MERGE_ITEM: Schema = {"type": "object", "properties": {}}
RETAIN_ITEM: Schema = {"type": "object", "properties": {}}
_merging_list = {
    "type": "array",
    "items": MERGE_ITEM,
    "x-kubernetes-patch-strategy": "merge",
    "x-kubernetes-patch-merge-key": "name",
}
_int_list_merge = {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"}
_scalars = {"name": {"type": "string"}, "value": {"type": "string"}, "other": {"type": "string"}}
MERGE_ITEM["properties"].update(
    _scalars,
    mergingList=_merging_list,
    nonMergingList={"type": "array", "items": MERGE_ITEM},
    mergingIntList=_int_list_merge,
    nonMergingIntList={"type": "array", "items": {"type": "integer"}},
    mergeItemPtr={**_merging_list},
    simpleMap={"type": "object", "additionalProperties": {"type": "string"}},
    retainKeysMap={**RETAIN_ITEM, "x-kubernetes-patch-strategy": "retainKeys"},
    retainKeysMergingList={**_merging_list, "x-kubernetes-patch-strategy": "merge,retainKeys"},
    listOfLists={"type": "array", "items": {"type": "array"}, "x-kubernetes-patch-strategy": "merge"},
)
RETAIN_ITEM["properties"].update(
    _scalars,
    simpleMap={"type": "object", "additionalProperties": {"type": "string"}},
    mergingIntList=_int_list_merge,
    mergingList=_merging_list,
    nonMergingList={"type": "array", "items": MERGE_ITEM},
)


def item(name: Any, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


APIMACHINERY_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "unique scalars when merging lists",
        {"mergingIntList": [1, 2]},
        {"mergingIntList": [2, 3]},
        {"mergingIntList": [1, 2, 3]},
    ),
    (
        "delete map from nested map",
        {"simpleMap": {"k1": "1", "k2": "1"}},
        {"simpleMap": {"$patch": "delete"}},
        {"simpleMap": {}},
    ),
    (
        "delete all items from merging list",
        {"mergingList": [item(1), item(2)]},
        {"mergingList": [{"$patch": "replace"}]},
        {"mergingList": []},
    ),
    ("merge empty merging lists", {"mergingList": []}, {"mergingList": []}, {"mergingList": []}),
    ("delete all keys from map", {"name": "1", "value": "1"}, {"$patch": "replace"}, {}),
    (
        "add key and delete all keys from map",
        {"name": "1", "value": "1"},
        {"other": "a", "$patch": "replace"},
        {"other": "a"},
    ),
    (
        "delete all duplicate entries in a merging list",
        {"mergingList": [item(1), item(1), item(2, value="a"), item(3), item(3)]},
        {"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]},
        {"mergingList": [item(2, value="a")]},
    ),
    (
        "retainKeys map adds a field without directive",
        {"retainKeysMap": {"name": "foo"}},
        {"retainKeysMap": {"value": "bar"}},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
    ),
    (
        "retainKeys map merges an empty map",
        {"retainKeysMap": {"name": "foo", "value": "a"}},
        {"retainKeysMap": {}},
        {"retainKeysMap": {"name": "foo", "value": "a"}},
    ),
    (
        "retainKeys map clears a defaulted field",
        {"retainKeysMap": {"value": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["other"], "other": "bar"}},
        {"retainKeysMap": {"other": "bar"}},
    ),
    (
        "retainKeys map, discriminated union",
        {"retainKeysMap": {"name": "type1", "value": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}},
        {"retainKeysMap": {"name": "type2", "other": "bar"}},
    ),
    (
        "retainKeys list of maps clears a field",
        {"retainKeysMergingList": [item("bar"), item("foo", value="a", other="x")]},
        {
            "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}],
        },
        {"retainKeysMergingList": [item("bar"), item("foo", value="a")]},
    ),
    (
        "retainKeys map with nested merging int list",
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["name", "mergingIntList"],
                "$deleteFromPrimitiveList/mergingIntList": [1],
                "mergingIntList": [3],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingIntList": [3, 2]}},
    ),
    (
        "preserve the order from the patch in a merging list",
        {"mergingList": [item(1), item(2, value="b"), item(3)]},
        {"mergingList": [item(3, value="c"), item(1, value="a"), item(2, other="x")]},
        {"mergingList": [item(3, value="c"), item(1, value="a"), item(2, value="b", other="x")]},
    ),
    (
        "preserve the order from the patch in a merging list 2",
        {"mergingList": [item(1), item(2, value="b"), item(3)]},
        {"mergingList": [item(3, value="c"), item(1, value="a")]},
        {"mergingList": [item(2, value="b"), item(3, value="c"), item(1, value="a")]},
    ),
    (
        "preserve the patch order in a merging int list",
        {"mergingIntList": [1, 2, 3]},
        {"mergingIntList": [3, 1, 2]},
        {"mergingIntList": [3, 1, 2]},
    ),
    (
        "preserve the patch order in a merging int list 2",
        {"mergingIntList": [1, 2, 3]},
        {"mergingIntList": [3, 1]},
        {"mergingIntList": [2, 3, 1]},
    ),
    (
        "setElementOrder contains an item absent from the list",
        {"mergingList": [item(1), item(3)]},
        {
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
            "mergingList": [item(3, value="3"), item(1, value="1")],
        },
        {"mergingList": [item(3, value="3"), item(1, value="1")]},
    ),
    (
        "setElementOrder alone reorders an int list",
        {"mergingIntList": [1, 3]},
        {"$setElementOrder/mergingIntList": [3, 2, 1]},
        {"mergingIntList": [3, 1]},
    ),
    (
        "deleteFromPrimitiveList of a missing value",
        {"mergingIntList": [1, 2]},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2]},
    ),
    (
        "deleteFromPrimitiveList on a missing list",
        {"foo": ["bar"]},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"foo": ["bar"]},
    ),
    (
        "deleteFromPrimitiveList from a merge list",
        {"mergingIntList": [1, 2, 3]},
        {"$deleteFromPrimitiveList/mergingIntList": [2]},
        {"mergingIntList": [1, 3]},
    ),
    (
        "deleteFromPrimitiveList from a non-merge list",
        {"nonMergingIntList": [1, 2, 3]},
        {"$deleteFromPrimitiveList/nonMergingIntList": [2]},
        {"nonMergingIntList": [1, 3]},
    ),
    (
        "add an item in a list and preserve order",
        {"mergingList": [item(1, other="a"), item(2, value="2", other="b")]},
        {
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 1}, {"name": 2}],
            "mergingList": [item(3, value="3")],
        },
        {"mergingList": [item(3, value="3"), item(1, other="a"), item(2, value="2", other="b")]},
    ),
    (
        "add multiple items in a list and preserve order",
        {"mergingList": [item(1, other="a"), item(2, value="2", other="b")]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 4}, {"name": 2}, {"name": 3}],
            "mergingList": [item(4, value="4"), item(3, value="3")],
        },
        {
            "mergingList": [
                item(1, other="a"),
                item(4, value="4"),
                item(2, value="2", other="b"),
                item(3, value="3"),
            ]
        },
    ),
    (
        "set elements order with server-only items",
        {"mergingList": [item(1, other="a"), item(3), item(4), item(2), item(9)]},
        {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]},
        {"mergingList": [item(4), item(2), item(3), item(1, other="a"), item(9)]},
    ),
    (
        "set elements order with server-only items in the middle",
        {"mergingList": [item(1), item(2), item(7), item(9), item(8), item(3), item(4)]},
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]},
        {"mergingList": [item(2), item(1), item(7), item(9), item(8), item(4), item(3)]},
    ),
    (
        "set element order with duplicates in a merging list",
        {"mergingList": [item(1), item(2, value="dup1"), item(3), item(2, value="dup2"), item(4)]},
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}]},
        {"mergingList": [item(2, value="dup1"), item(2, value="dup2"), item(1), item(4), item(3)]},
    ),
    (
        "set element order with duplicates in an int list",
        {"mergingIntList": [1, 2, 3, 2, 4]},
        {"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]},
        {"mergingIntList": [2, 2, 1, 4, 3]},
    ),
    (
        "delete and reorder in one list, reorder in another",
        {
            "mergingList": [item("a", value="a"), item("b", value="b")],
            "mergeItemPtr": [item("c", value="c"), item("d", value="d")],
        },
        {
            "$setElementOrder/mergingList": [{"name": "b"}],
            "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
            "mergingList": [{"$patch": "delete", "name": "a"}],
        },
        {"mergingList": [item("b", value="b")], "mergeItemPtr": [item("d", value="d"), item("c", value="c")]},
    ),
    (
        "replace non merging list nested in merging list",
        {"mergingList": [item(1, nonMergingList=[item(1), item(2, value="2")]), item(2)]},
        {"mergingList": [item(1, nonMergingList=[item(1, value="1")])]},
        {"mergingList": [item(1, nonMergingList=[item(1, value="1")]), item(2)]},
    ),
    (
        "add field to map in merging list nested in merging list",
        {"mergingList": [item(1, mergingList=[item(1), item(2, value="2")]), item(2)]},
        {"mergingList": [item(1, mergingList=[item(1, value="1")])]},
        {"mergingList": [item(1, mergingList=[item(1, value="1"), item(2, value="2")]), item(2)]},
    ),
    (
        "discard nulls in new nested maps",
        {"name": "foo"},
        {"complex": {"key": {"notnull": "v", "null": None}}},
        {"name": "foo", "complex": {"key": {"notnull": "v"}}},
    ),
    ("discard if all nulls", {}, {"complex": {"nested": None}}, {"complex": {}}),
    (
        "filter nulls from maps in new lists, keep null elements",
        {},
        {"c": [{"i": {"a": "x", "b": None}}, None]},
        {"c": [{"i": {"a": "x"}}, None]},
    ),
    (
        "null values in the live object are preserved",
        {"thing": None, "c": {"k": None}},
        {"nested": {"value": 5}},
        {"thing": None, "c": {"k": None}, "nested": {"value": 5}},
    ),
    (
        "delete a missing map from a merging list",
        {"mergingList": [item(1)]},
        {"mergingList": [{"name": 2, "$patch": "delete"}]},
        {"mergingList": [item(1)]},
    ),
    (
        "merging list added where absent",
        {},
        {"mergingList": [item(1), {"name": 2, "$patch": "delete"}]},
        {"mergingList": [item(1)]},
    ),
]


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [c[1:] for c in APIMACHINERY_CASES],
    ids=[c[0] for c in APIMACHINERY_CASES],
)
def test_apimachinery_behaviour(
    original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert smp(original, patch, MERGE_ITEM) == expected


@pytest.mark.parametrize(
    ("original", "patch", "fragment"),
    [
        (
            {"mergingList": [item(1), item(3), item(2)]},
            {
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [item(3, value="3"), item(1, value="1")],
            },
            "doesn't match",
        ),
        (
            {"mergingIntList": [1, 3, 2]},
            {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]},
            "doesn't match",
        ),
        (
            {"mergingList": [item(1, value="a")]},
            {"mergingList": [{"value": "b"}]},
            "does not contain declared merge key",
        ),
        ({"mergingList": [item(1)]}, {"mergingList": ["x"]}, "list element types are not identical"),
        (
            {"retainKeysMap": {"name": "a"}},
            {"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}},
            "retainKeys",
        ),
    ],
)
def test_apimachinery_errors(original: dict[str, Any], patch: dict[str, Any], fragment: str) -> None:
    assert fragment in _bad_request(original, patch, MERGE_ITEM)


def test_lists_of_lists_are_invalid() -> None:
    with pytest.raises(Invalid) as exc:
        apply_strategic_merge_patch({"listOfLists": [[1]]}, {"listOfLists": [[2]]}, MERGE_ITEM)
    assert "lists of lists are not supported" in exc.value.message


# ---------------------------------------------------------------- properties

field_names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
scalars = st.none() | st.booleans() | st.integers(-50, 50) | st.text(max_size=4)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(field_names, inner, max_size=4),
    max_leaves=16,
)
objects = st.dictionaries(field_names, values, max_size=5)


@given(objects, objects)
def test_without_schema_maps_behave_like_a_merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    assert smp(doc, patch, None) == apply_merge_patch(doc, patch)


@given(objects, objects)
def test_unknown_fields_of_a_real_schema_behave_like_a_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    # "x..." fields do not exist in Deployment.spec.template.metadata.annotations' parent
    live = {"spec": {"paused": False, "xtra": doc}}
    out = smp(live, {"spec": {"xtra": patch}})
    assert out["spec"]["xtra"] == apply_merge_patch(doc, patch)


container_names = st.sampled_from([f"c{i}" for i in range(8)])


@given(
    st.lists(container_names, unique=True, max_size=6),
    st.lists(container_names, unique=True, max_size=6),
    st.data(),
)
def test_set_element_order_is_honoured(live_names: list[str], order: list[str], data: st.DataObject) -> None:
    """kubectl apply: the manifest's containers come out in manifest order, live-only ones are kept."""
    # the patch list is a subsequence of the order list (as kubectl computes it)
    patched = [n for n in order if data.draw(st.booleans())]
    live = deployment([{"name": n, "image": f"{n}:1"} for n in live_names])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": n} for n in order],
                    "containers": [{"name": n, "image": f"{n}:2"} for n in patched],
                }
            }
        }
    }
    result = pod_spec(smp(live, body))["containers"]
    got = names(result)
    assert sorted(got) == sorted(set(live_names) | set(patched))
    in_order = [n for n in got if n in order]
    assert in_order == [n for n in order if n in got]
    server_only = [n for n in got if n not in order]
    assert server_only == [n for n in live_names if n not in order]
    for c in result:
        assert c["image"] == (f"{c['name']}:2" if c["name"] in patched else f"{c['name']}:1")


@given(st.lists(container_names, unique=True, max_size=6), st.lists(container_names, unique=True, max_size=6))
def test_merge_list_patch_is_idempotent_and_keeps_every_item(
    live_names: list[str], patch_names: list[str]
) -> None:
    live = deployment([{"name": n, "image": "old"} for n in live_names])
    body = {
        "spec": {"template": {"spec": {"containers": [{"name": n, "image": "new"} for n in patch_names]}}}
    }
    once = smp(live, body)
    assert smp(once, body) == once
    got = names(pod_spec(once)["containers"])
    assert sorted(got) == sorted(set(live_names) | set(patch_names))
    assert [n for n in got if n in patch_names] == patch_names  # the patch order wins


@given(
    st.lists(st.sampled_from("abcdef"), unique=True),
    st.lists(st.sampled_from("abcdef"), unique=True),
    st.lists(st.sampled_from("abcdef"), unique=True),
)
def test_primitive_merge_list_union_and_delete(live: list[str], add: list[str], remove: list[str]) -> None:
    add = [v for v in add if v not in remove]
    body = {"metadata": {"finalizers": add, "$deleteFromPrimitiveList/finalizers": remove}}
    out = smp({"metadata": {"finalizers": live}}, body)["metadata"]["finalizers"]
    assert sorted(out) == sorted((set(live) | set(add)) - set(remove))
    assert len(out) == len(set(out))


def test_null_list_with_set_element_order_deletes_the_list() -> None:
    live = {"metadata": {"name": "x", "finalizers": ["a"]}}
    out = smp(live, {"metadata": {"$setElementOrder/finalizers": [], "finalizers": None}})
    assert out["metadata"] == {"name": "x"}


def test_set_element_order_on_an_absent_list_takes_the_patch_list() -> None:
    live = deployment([])
    del live["spec"]["template"]["spec"]["containers"]
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "b"}, {"name": "a", "$patch": "delete"}],
                }
            }
        }
    }
    assert pod_spec(smp(live, body))["containers"] == [{"name": "b"}]


def test_set_element_order_must_be_a_list_of_keyed_maps() -> None:
    body: dict[str, Any] = {"spec": {"template": {"spec": {"$setElementOrder/containers": {"name": "a"}}}}}
    assert "setElementOrder" in _bad_request(deployment([{"name": "a"}]), body)
    body = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"image": "a"}]}}}}
    assert "does not contain declared merge key: name" in _bad_request(deployment([{"name": "a"}]), body)


def test_patch_that_empties_nothing_returns_an_equal_copy() -> None:
    live = deployment([{"name": "a", "image": "x"}])
    out = smp(live, {})
    assert out == live and out is not live
