"""Server-side apply and managedFields tracking, checked against Kubernetes 1.32 behaviour."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api.errors import BadRequest
from kubelite.apiserver.apply import (
    LAST_APPLIED,
    ApplyConflict,
    FieldSet,
    fields_of,
    format_conflicts,
    from_fields_v1,
    path_to_string,
    server_side_apply,
    to_fields_v1,
    update_managed_fields,
)
from kubelite.apiserver.apply.fieldset import fields_v1_difference, fields_v1_intersection, fields_v1_union
from kubelite.schema.definitions import schema_for_gvk

DEPLOY = schema_for_gvk("apps", "v1", "Deployment")
POD = schema_for_gvk("", "v1", "Pod")
T0, T1, T2 = "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z"


def deployment(replicas: int | None = 2, image: str = "nginx:1.27", **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", **labels}},
        "spec": spec,
    }


def apply(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    manager: str = "kubectl",
    force: bool = False,
    now: str = T0,
) -> dict[str, Any]:
    return server_side_apply(live, cfg, manager, "apps/v1", DEPLOY, force, now)


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> set[str]:
    entry = entries(obj).get((manager, operation))
    return {path_to_string(p) for p in from_fields_v1(entry["fieldsV1"])} if entry else set()


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the store would hold (the caller adds identity metadata)."""
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("uid", "u-1")
    out["metadata"].setdefault("resourceVersion", "1")
    return out


# ------------------------------------------------------------------------------------------
# apply: create / no-op / prune
# ------------------------------------------------------------------------------------------


def test_apply_create_records_apply_entry_with_kubernetes_shape() -> None:
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    obj = apply(None, cfg)
    [entry] = obj["metadata"]["managedFields"]
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"nginx"}': {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {
                                        ".": {},
                                        "f:containerPort": {},
                                    }
                                },
                            }
                        }
                    },
                },
            },
        },
    }
    assert obj["spec"] == cfg["spec"]
    assert obj["metadata"]["name"] == "web"


def test_reapply_same_config_changes_nothing() -> None:
    first = stored(apply(None, deployment()))
    again = apply(first, deployment(), now=T1)
    assert again == first
    assert again["metadata"]["managedFields"][0]["time"] == T0


def test_apply_does_not_modify_its_inputs() -> None:
    live = stored(apply(None, deployment()))
    live_copy, cfg = copy.deepcopy(live), deployment(replicas=5)
    cfg_copy = copy.deepcopy(cfg)
    apply(live, cfg, now=T1)
    assert live == live_copy and cfg == cfg_copy


def test_apply_removing_owned_fields_removes_them() -> None:
    live = stored(apply(None, deployment(tier="fe")))
    obj = apply(live, deployment(replicas=None), now=T1)
    assert "replicas" not in obj["spec"]
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert ".spec.replicas" not in owned(obj, "kubectl")
    assert obj["metadata"]["managedFields"][0]["time"] == T1


def test_apply_keeps_fields_it_never_owned() -> None:
    live = stored(apply(None, deployment()))
    live["spec"]["revisionHistoryLimit"] = 10  # set by defaulting: nobody owns it
    obj = apply(live, deployment(replicas=3), now=T1)
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["metadata"]["uid"] == "u-1"


def test_dropping_a_field_shared_with_another_applier_keeps_it() -> None:
    live = stored(apply(None, deployment()))
    live = stored(apply(live, deployment(), manager="other"))
    obj = apply(live, deployment(replicas=None), now=T1)
    assert obj["spec"]["replicas"] == 2
    assert ".spec.replicas" in owned(obj, "other")
    assert ".spec.replicas" not in owned(obj, "kubectl")


def test_dropping_a_whole_struct_prunes_it() -> None:
    cfg = deployment()
    cfg["spec"]["strategy"] = {"type": "Recreate"}
    live = stored(apply(None, cfg))
    obj = apply(live, deployment(), now=T1)
    assert "strategy" not in obj["spec"]


# ------------------------------------------------------------------------------------------
# conflicts
# ------------------------------------------------------------------------------------------


def test_two_appliers_same_value_share_ownership() -> None:
    live = stored(apply(None, deployment()))
    obj = apply(live, deployment(), manager="other", now=T1)
    assert ".spec.replicas" in owned(obj, "kubectl") and ".spec.replicas" in owned(obj, "other")


def test_two_appliers_different_value_conflict_409() -> None:
    live = stored(apply(None, deployment()))
    with pytest.raises(ApplyConflict) as err:
        apply(live, deployment(replicas=5), manager="other", now=T1)
    e = err.value
    assert e.code == 409 and e.reason == "Conflict"
    assert e.message == 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    assert e.conflicts == [('"kubectl"', ".spec.replicas")]
    status = e.to_status()
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"', "field": ".spec.replicas"}
    ]


def test_multiple_conflicts_message() -> None:
    live = stored(apply(None, deployment()))
    with pytest.raises(ApplyConflict) as err:
        apply(live, deployment(replicas=5, image="nginx:1.28"), manager="other", now=T1)
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="nginx"].image'
    )


def test_force_moves_ownership() -> None:
    live = stored(apply(None, deployment()))
    obj = apply(live, deployment(replicas=5), manager="other", force=True, now=T1)
    assert obj["spec"]["replicas"] == 5
    assert ".spec.replicas" in owned(obj, "other")
    assert ".spec.replicas" not in owned(obj, "kubectl")
    assert ".spec.selector" in owned(obj, "kubectl")


def test_force_taking_everything_drops_the_empty_entry() -> None:
    live = stored(
        apply(
            None,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"replicas": 1},
            },
        )
    )
    obj = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}},
        manager="b",
        force=True,
    )
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["b"]


def test_update_takes_ownership_then_apply_conflicts() -> None:
    live = stored(apply(None, deployment(), manager="kubectl"))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 3  # kubectl scale: merge patch {"spec":{"replicas":3}}
    update_managed_fields(live, scaled, "kubectl", "apps/v1", DEPLOY, T1, subresource="scale")
    assert ".spec.replicas" not in owned(scaled, "kubectl")
    assert entries(scaled)[("kubectl", "Update")]["subresource"] == "scale"
    with pytest.raises(ApplyConflict) as err:
        apply(stored(scaled), deployment(replicas=5), now=T2)
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: '
        ".spec.replicas"
    )


def test_update_by_other_manager_conflicts_using_api_version() -> None:
    live = stored(apply(None, deployment(), manager="ssa"))
    patched = copy.deepcopy(live)
    patched["spec"]["replicas"] = 3
    update_managed_fields(live, patched, "kubectl-patch", "apps/v1", DEPLOY, T1)
    with pytest.raises(ApplyConflict) as err:
        apply(stored(patched), deployment(replicas=5), manager="ssa", now=T2)
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas'
    )
    # the same value is no conflict
    apply(stored(patched), deployment(replicas=3), manager="ssa", now=T2)


def test_format_conflicts_groups_by_manager() -> None:
    msg = format_conflicts([('"b"', ".x"), ('"a" using v1', ".y"), ('"b"', ".z")])
    assert msg == (
        'Apply failed with 3 conflicts: conflicts with "a" using v1:\n- .y\nconflicts with "b":\n- .x\n- .z'
    )


# ------------------------------------------------------------------------------------------
# list-maps and granular maps
# ------------------------------------------------------------------------------------------


def with_containers(*names: str) -> dict[str, Any]:
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"] = [{"name": n, "image": f"{n}:1"} for n in names]
    return cfg


def test_list_map_items_are_owned_per_key() -> None:
    live = stored(apply(None, with_containers("a")))
    both = stored(apply(live, with_containers("b"), manager="sidecar-injector", now=T1))
    names = [c["name"] for c in both["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b"]
    obj = apply(both, with_containers(), now=T2)  # kubectl stops applying container a
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["b"]


def test_list_map_merge_order_follows_applied_order() -> None:
    live = stored(apply(None, with_containers("a", "b", "c")))
    obj = apply(live, with_containers("c", "b", "a"), now=T1)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["c", "b", "a"]


def test_labels_are_granular() -> None:
    live = stored(apply(None, deployment()))
    cfg = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "x"}},
    }
    obj = apply(live, cfg, manager="labeler", now=T1)
    assert obj["metadata"]["labels"] == {"app": "web", "team": "x"}
    assert owned(obj, "labeler") == {".metadata.labels.team"}


def test_atomic_selector_is_replaced_whole() -> None:
    cfg = deployment()
    cfg["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
    live = stored(apply(None, cfg))
    obj = apply(live, deployment(), now=T1)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "web"}}


# ------------------------------------------------------------------------------------------
# Update operations
# ------------------------------------------------------------------------------------------


def test_create_update_entry_has_kubernetes_shape() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}, "creationTimestamp": None},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
    }
    update_managed_fields(None, pod, "kubectl-run", "v1", POD, T0)
    assert pod["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-run",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}},
            },
        }
    ]


def test_update_entries_merge_and_keep_untouched_fields() -> None:
    old = deployment()
    update_managed_fields(None, old, "kubectl-create", "apps/v1", DEPLOY, T0)
    old = stored(old)
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["env"] = "prod"
    update_managed_fields(old, new, "kubectl-label", "apps/v1", DEPLOY, T1)
    assert owned(new, "kubectl-label", "Update") == {".metadata.labels.env"}
    newer = copy.deepcopy(new)
    newer["metadata"]["labels"]["env"] = "dev"
    newer["metadata"]["labels"]["tier"] = "fe"
    update_managed_fields(stored(new), newer, "kubectl-label", "apps/v1", DEPLOY, T2)
    assert owned(newer, "kubectl-label", "Update") == {".metadata.labels.env", ".metadata.labels.tier"}
    assert entries(newer)[("kubectl-label", "Update")]["time"] == T2
    assert ".spec.replicas" in owned(newer, "kubectl-create", "Update")


def test_update_removing_a_field_removes_ownership() -> None:
    live = stored(apply(None, deployment(tier="fe")))
    new = copy.deepcopy(live)
    del new["metadata"]["labels"]["tier"]
    update_managed_fields(live, new, "kubectl-label", "apps/v1", DEPLOY, T1)
    assert ".metadata.labels.tier" not in owned(new, "kubectl")
    assert ("kubectl-label", "Update") not in entries(new)  # removals give nothing to own


def test_update_without_changes_keeps_managed_fields() -> None:
    live = stored(apply(None, deployment()))
    new = copy.deepcopy(live)
    new["metadata"]["resourceVersion"] = "2"
    update_managed_fields(live, new, "kubectl-edit", "apps/v1", DEPLOY, T1)
    assert new["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_reset_managed_fields_and_untracked_objects() -> None:
    live = stored(apply(None, deployment()))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = [{}]
    update_managed_fields(live, new, "kubectl-patch", "apps/v1", DEPLOY, T1)
    assert "managedFields" not in new["metadata"]
    newer = copy.deepcopy(new)
    newer["spec"]["replicas"] = 9
    update_managed_fields(new, newer, "kubectl-patch", "apps/v1", DEPLOY, T2)
    assert "managedFields" not in newer["metadata"]


def test_client_provided_managed_fields_are_honoured() -> None:
    """csaupgrade: kubectl rewrites managedFields with a JSON patch."""
    old = deployment()
    update_managed_fields(None, old, "kubectl-client-side-apply", "apps/v1", DEPLOY, T0)
    old = stored(old)
    new = copy.deepcopy(old)
    entry = new["metadata"]["managedFields"][0]
    entry.update(manager="kubectl", operation="Apply")
    update_managed_fields(old, new, "kubectl", "apps/v1", DEPLOY, T1)
    assert [(e["manager"], e["operation"]) for e in new["metadata"]["managedFields"]] == [
        ("kubectl", "Apply")
    ]
    applied = apply(stored(new), deployment(replicas=4), now=T2)  # no conflict any more
    assert applied["spec"]["replicas"] == 4


def test_status_is_not_tracked_when_ignored() -> None:
    live = stored(apply(None, deployment()))
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 2}
    new["spec"]["paused"] = True
    update_managed_fields(live, new, "ctl", "apps/v1", DEPLOY, T1, ignore_status=True)
    assert owned(new, "ctl", "Update") == {".spec.paused"}


def test_update_managers_are_capped() -> None:
    obj = stored(apply(None, deployment()))
    for i in range(12):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"][f"l{i}"] = "v"
        update_managed_fields(obj, new, f"m{i:02d}", "apps/v1", DEPLOY, f"2025-01-01T01:{i:02d}:00Z")
        obj = stored(new)
    managers = [e["manager"] for e in obj["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert len(managers) == 10 and "ancient-changes" in managers
    ancient = entries(obj)[("ancient-changes", "Update")]
    assert {path_to_string(p) for p in from_fields_v1(ancient["fieldsV1"])} == {
        f".metadata.labels.l{i}" for i in range(3)
    }


# ------------------------------------------------------------------------------------------
# request checks and kubectl specifics
# ------------------------------------------------------------------------------------------


def test_apply_body_checks() -> None:
    cfg = deployment()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(BadRequest, match=r"metadata\.managedFields must be nil"):
        apply(None, cfg)
    cfg = deployment()
    cfg["apiVersion"] = "apps/v1beta1"
    with pytest.raises(BadRequest, match="Specified patch version: apps/v1beta1, expected: apps/v1"):
        apply(None, cfg)
    cfg = deployment()
    del cfg["kind"]
    with pytest.raises(BadRequest, match="Kind"):
        apply(None, cfg)
    cfg = with_containers("a", "a")
    with pytest.raises(BadRequest, match=r'duplicate entries for key \[name="a"\]'):
        apply(None, cfg)


def client_side_applied(last_applied: dict[str, Any]) -> dict[str, Any]:
    live = deployment()
    live["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(last_applied) + "\n"}
    update_managed_fields(None, live, "kubectl-client-side-apply", "apps/v1", DEPLOY, T0)
    return stored(live)


def test_kubectl_apply_upgrades_from_client_side_apply() -> None:
    obj = apply(client_side_applied(deployment()), deployment(replicas=7), now=T1)
    assert obj["spec"]["replicas"] == 7  # conflicts allowed: last-applied matched live
    assert json.loads(obj["metadata"]["annotations"][LAST_APPLIED]) == deployment(replicas=7)
    assert ".spec.replicas" in owned(obj, "kubectl")
    assert ".spec.replicas" not in owned(obj, "kubectl-client-side-apply", "Update")


def test_client_side_apply_upgrade_only_for_matching_fields_and_kubectl() -> None:
    with pytest.raises(ApplyConflict, match="kubectl-client-side-apply"):
        apply(client_side_applied(deployment(replicas=1)), deployment(replicas=7), now=T1)
    with pytest.raises(ApplyConflict):
        apply(client_side_applied(deployment()), deployment(replicas=7), manager="other", now=T1)


def test_custom_resource_without_schema() -> None:
    cr = {
        "apiVersion": "x.io/v1",
        "kind": "Foo",
        "metadata": {"name": "f"},
        "spec": {"a": {"b": 1}, "l": [1, 2]},
    }
    obj = server_side_apply(None, cr, "m", "x.io/v1", None, False, T0)
    fv1 = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert fv1 == {"f:spec": {".": {}, "f:a": {".": {}, "f:b": {}}, "f:l": {}}}
    cr2 = copy.deepcopy(cr)
    cr2["spec"] = {"l": [3]}
    obj2 = server_side_apply(stored(obj), cr2, "m", "x.io/v1", None, False, T1)
    assert obj2["spec"] == {"l": [3]}


# ------------------------------------------------------------------------------------------
# fieldsV1 + set algebra (hypothesis)
# ------------------------------------------------------------------------------------------

PES = st.sampled_from(
    [
        "f:a",
        "f:b",
        "f:spec",
        'k:{"name":"x"}',
        'k:{"containerPort":80,"protocol":"TCP"}',
        "v:1",
        'v:"s"',
        "i:0",
        "i:3",
    ]
)
PATHS = st.lists(st.lists(PES, min_size=1, max_size=4).map(tuple), max_size=12)


def prefixes_in(path: tuple[str, ...], paths: set[tuple[str, ...]]) -> bool:
    return any(path[:n] in paths for n in range(1, len(path) + 1))


@settings(max_examples=200, deadline=None)
@given(PATHS)
def test_fields_v1_roundtrip(paths: list[tuple[str, ...]]) -> None:
    fs = FieldSet.of(paths)
    assert set(fs) == set(paths)
    encoded = to_fields_v1(fs)
    assert from_fields_v1(json.loads(json.dumps(encoded))) == fs


@settings(max_examples=200, deadline=None)
@given(PATHS, PATHS)
def test_set_algebra_matches_path_sets(a: list[tuple[str, ...]], b: list[tuple[str, ...]]) -> None:
    sa, sb = set(a), set(b)
    fa, fb = FieldSet.of(a), FieldSet.of(b)
    assert set(fa.union(fb)) == sa | sb
    assert set(fa.intersection(fb)) == sa & sb
    assert set(fa.difference(fb)) == sa - sb
    assert set(fa.recursive_difference(fb)) == {p for p in sa if not prefixes_in(p, sb)}
    assert all(fa.has(p) for p in sa)
    assert fa == FieldSet.of(reversed(a))


def test_key_elements_are_canonical() -> None:
    fs = from_fields_v1({'k:{"protocol":"TCP","containerPort":80.0}': {}})
    assert to_fields_v1(fs) == {'k:{"containerPort":80,"protocol":"TCP"}': {}}
    assert path_to_string(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')) == (
        '.ports[containerPort=80,protocol="TCP"]'
    )
    assert path_to_string(("f:finalizers", 'v:"a"', "i:2")) == '.finalizers[="a"][2]'


LABEL_KEYS = st.sampled_from(["app", "tier", "env", "team"])


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(LABEL_KEYS, st.sampled_from(["a", "b"]), max_size=4),
    st.integers(min_value=0, max_value=5),
    st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
)
def test_apply_is_idempotent_and_owns_its_fields(
    labels: dict[str, str], replicas: int, names: list[str]
) -> None:
    cfg = with_containers(*names)
    cfg["metadata"]["labels"] = labels or None
    cfg["spec"]["replicas"] = replicas
    first = stored(apply(None, cfg))
    second = apply(first, cfg, now=T1)
    assert second == first
    mine = from_fields_v1(first["metadata"]["managedFields"][0]["fieldsV1"])
    assert mine == fields_of(cfg, DEPLOY)


@settings(max_examples=200, deadline=None)
@given(PATHS, PATHS)
def test_fields_v1_operations_match_set_algebra(a: list[tuple[str, ...]], b: list[tuple[str, ...]]) -> None:
    fa, fb = FieldSet.of(a), FieldSet.of(b)
    raw = to_fields_v1(fa)
    frozen = json.dumps(raw)
    assert fields_v1_intersection(raw, fb) == fa.intersection(fb)
    assert fields_v1_difference(raw, fb) == to_fields_v1(fa.difference(fb))
    union = fields_v1_union(raw, fb)
    assert union == to_fields_v1(fa.union(fb))
    assert json.dumps(union) == json.dumps(to_fields_v1(fa.union(fb)))  # same key order
    assert json.dumps(raw) == frozen  # inputs untouched


def test_list_map_item_without_key_is_rejected() -> None:
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"].append({"image": "x"})
    with pytest.raises(
        BadRequest, match='element 1: associative list with keys has an element that omits key field "name"'
    ):
        apply(None, cfg)


def test_custom_resource_with_schema_uses_object_meta() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "metadata": {"type": "object"},
        },
    }
    cr = {
        "apiVersion": "x.io/v1",
        "kind": "Foo",
        "metadata": {"name": "f", "labels": {"a": "b"}},
        "spec": {"size": 1},
    }
    obj = server_side_apply(None, cr, "m", "x.io/v1", schema, False, T0)
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {"f:size": {}},
    }


def test_status_subresource_update_ignores_spec() -> None:
    live = stored(apply(None, deployment()))
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    new["spec"]["replicas"] = 9  # a status write cannot change spec (the strategy resets it)
    update_managed_fields(
        live,
        new,
        "kube-controller-manager",
        "apps/v1",
        DEPLOY,
        T1,
        "status",
        ignored=FieldSet.of([("f:spec",)]),
    )
    entry = entries(new)[("kube-controller-manager", "Update")]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {
        "f:status": {
            "f:conditions": {".": {}, 'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}},
            "f:replicas": {},
        }
    }
    assert ".spec.replicas" in owned(new, "kubectl")


def test_live_only_list_items_keep_their_place() -> None:
    live = stored(apply(None, with_containers("a", "b", "c"), manager="owner"))
    obj = apply(live, with_containers("d", "b"), manager="other", now=T1)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a", "d", "b", "c"]
