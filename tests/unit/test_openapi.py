"""The /openapi/v3 documents carry what kubectl 1.32 reads from them (docs/kubectl-wire.md section 4)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from kubelite.apiserver import openapi
from kubelite.apiserver.openapi import OpenAPIV3, crd_component_name, gv_path
from kubelite.registry.resources import ResourceIndex, ResourceInfo, Subresource, builtin_index

CRON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "CronTab spec",
            "properties": {"cronSpec": {"type": "string"}, "replicas": {"type": "integer"}},
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}
CRON = ResourceInfo(
    "stable.example.com",
    "v1",
    "CronTab",
    "crontabs",
    "crontab",
    True,
    crd=True,
    subresources=(
        Subresource("status", "CronTab", ("get", "patch", "update")),
        Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"),
    ),
)


def _index_with_crd() -> ResourceIndex:
    index = builtin_index()
    index.add(CRON)
    return index


@pytest.fixture(scope="module")
def server() -> OpenAPIV3:
    schemas = {"CronTab": CRON_SCHEMA}
    return OpenAPIV3(_index_with_crd(), lambda g, v: schemas if g == "stable.example.com" else {})


@pytest.fixture(scope="module")
def documents(server: OpenAPIV3) -> dict[str, dict[str, Any]]:
    index = orjson.loads(server.index_document())
    out = {}
    for key in index["paths"]:
        result = server.group_version_document(key)
        assert result is not None
        out[key] = orjson.loads(result[0])
    return out


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path, item in doc["paths"].items():
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item:
                out.append((path, method, item[method]))
    return out


def _gvk(op: dict[str, Any]) -> tuple[str, str, str]:
    g = op["x-kubernetes-group-version-kind"]
    return g["group"], g["version"], g["kind"]


# -- index -------------------------------------------------------------------------------------


def test_index_lists_every_group_version_with_its_hash(server: OpenAPIV3) -> None:
    index = orjson.loads(server.index_document())
    expected = {gv_path(g, v) for g, vs in _index_with_crd().group_versions().items() for v in vs}
    assert set(index["paths"]) == expected
    assert {"api/v1", "apis/apps/v1", "apis/autoscaling/v2", "apis/stable.example.com/v1"} <= expected
    for key, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        result = server.group_version_document(key)
        assert result is not None
        assert url.endswith("?hash=" + result[1])


def test_unknown_group_version_is_none(server: OpenAPIV3) -> None:
    assert server.group_version_document("apis/nope/v1") is None
    assert server.group_version_document("apis/apps/v9") is None
    assert server.group_version_document("garbage") is None


def test_document_header(documents: dict[str, dict[str, Any]]) -> None:
    doc = documents["api/v1"]
    assert doc["openapi"] == "3.0.0"
    assert doc["info"] == {"title": "Kubernetes", "version": "v1.32.0"}


# -- what the kubectl query-param verifier needs -----------------------------------------------


def _kubectl_supports_field_validation(doc: dict[str, Any], gvk: tuple[str, str, str]) -> bool:
    """cli-runtime's v3 check: *every* PATCH op with this GVK (map order is random) has the param."""
    seen = False
    for _, method, op in _operations(doc):
        if method == "patch" and _gvk(op) == gvk:
            seen = True
            names = {(p["name"], p["in"]) for p in op.get("parameters", [])}
            if ("fieldValidation", "query") not in names:
                return False
    return seen


def test_every_patch_operation_has_its_own_field_validation_and_patch_types(
    documents: dict[str, dict[str, Any]],
) -> None:
    count = 0
    for key, doc in documents.items():
        for path, method, op in _operations(doc):
            if method != "patch":
                continue
            count += 1
            names = [p["name"] for p in op["parameters"]]
            assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= set(names), path
            fv = next(p for p in op["parameters"] if p["name"] == "fieldValidation")
            assert fv["in"] == "query" and fv["schema"]["type"] == "string"
            assert isinstance(op["x-kubernetes-group-version-kind"], dict)
            assert op["x-kubernetes-action"] == "patch"
            content = op["requestBody"]["content"]
            custom = key == "apis/stable.example.com/v1"
            expected = {
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            }
            if not custom:
                expected.add("application/strategic-merge-patch+json")
            assert set(content) == expected, path
            for media in content.values():
                assert media["schema"] == {
                    "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
                }
    assert count > 50


def test_status_and_scale_patch_operations_are_present(documents: dict[str, dict[str, Any]]) -> None:
    paths = documents["apis/apps/v1"]["paths"]
    status = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]["patch"]
    assert _gvk(status) == ("apps", "v1", "Deployment")
    assert any(p["name"] == "fieldValidation" for p in status["parameters"])
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert _gvk(scale) == ("autoscaling", "v1", "Scale")
    assert "io.k8s.api.autoscaling.v1.Scale" in documents["apis/apps/v1"]["components"]["schemas"]


def test_kubectl_would_use_server_side_field_validation_for_every_patchable_kind(
    documents: dict[str, dict[str, Any]],
) -> None:
    for r in _index_with_crd().resources:
        if "patch" in r.verbs:
            doc = documents[gv_path(r.group, r.version)]
            assert _kubectl_supports_field_validation(doc, (r.group, r.version, r.kind)), r.kind


def test_post_and_put_list_field_validation(documents: dict[str, dict[str, Any]]) -> None:
    for doc in documents.values():
        for path, method, op in _operations(doc):
            if method in ("post", "put"):
                assert "fieldValidation" in [p["name"] for p in op["parameters"]], path


def test_operations_carry_ids_actions_and_gvk_objects(documents: dict[str, dict[str, Any]]) -> None:
    for doc in documents.values():
        ids = [op["operationId"] for _, _, op in _operations(doc)]
        assert len(ids) == len(set(ids))
        for _, _, op in _operations(doc):
            assert op["x-kubernetes-action"] in {
                "get",
                "list",
                "put",
                "post",
                "patch",
                "delete",
                "deletecollection",
            }
            assert set(op["x-kubernetes-group-version-kind"]) == {"group", "version", "kind"}
    paths = documents["api/v1"]["paths"]
    assert (
        paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]["operationId"]
        == "patchCoreV1NamespacedPod"
    )
    assert paths["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert paths["/api/v1/nodes/{name}"]["patch"]["operationId"] == "patchCoreV1Node"
    assert "/api/v1/namespaces/{namespace}/pods/{name}/eviction" in paths
    assert "/api/v1/namespaces/{namespace}/pods/{name}/exec" not in paths
    rbac = documents["apis/rbac.authorization.k8s.io/v1"]["paths"]
    op = rbac["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}"]["patch"]
    assert op["operationId"] == "patchRbacAuthorizationV1NamespacedRole"


def test_verbs_limit_operations(documents: dict[str, dict[str, Any]]) -> None:
    paths = documents["apis/authorization.k8s.io/v1"]["paths"]
    ssar = paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(ssar) == {"post", "parameters"}
    assert "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/{name}" not in paths


# -- components --------------------------------------------------------------------------------


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_every_ref_resolves_and_no_type_lists(documents: dict[str, dict[str, Any]]) -> None:
    for key, doc in documents.items():
        schemas = doc["components"]["schemas"]
        for node in _walk(doc):
            ref = node.get("$ref")
            if isinstance(ref, str):
                assert ref.startswith("#/components/schemas/"), (key, ref)
                assert ref.removeprefix("#/components/schemas/") in schemas, (key, ref)
                assert set(node) == {"$ref"}, (key, node)  # siblings are wrapped in allOf
        for node in _walk(schemas):
            assert not isinstance(node.get("type"), list), key


def test_every_kind_schema_has_a_gvk_list(documents: dict[str, dict[str, Any]]) -> None:
    for r in _index_with_crd().resources:
        doc = documents[gv_path(r.group, r.version)]
        gvks = [
            g
            for schema in doc["components"]["schemas"].values()
            for g in schema.get("x-kubernetes-group-version-kind", [])
        ]
        assert {"group": r.group, "version": r.version, "kind": r.kind} in gvks, r.kind


def test_explain_pod_needs_descriptions_types_and_refs(documents: dict[str, dict[str, Any]]) -> None:
    schemas = documents["api/v1"]["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["description"].startswith("Pod is a collection of containers")
    assert pod["type"] == "object"
    assert pod["properties"]["apiVersion"] == {
        "description": pod["properties"]["apiVersion"]["description"],
        "type": "string",
    }
    assert pod["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
    assert "description" in pod["properties"]["spec"]
    spec = schemas["io.k8s.api.core.v1.PodSpec"]
    assert "containers" in spec["required"]
    containers = spec["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert schemas["io.k8s.api.core.v1.Container"]["properties"]["image"]["type"] == "string"


def test_int_or_string_and_quantity_look_like_the_real_ones(documents: dict[str, dict[str, Any]]) -> None:
    schemas = documents["apis/apps/v1"]["components"]["schemas"]
    ios = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert ios["format"] == "int-or-string"
    assert ios["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    qty = schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert qty["oneOf"] == [{"type": "string"}, {"type": "number"}]


def test_smp_schema_lookup_like_kubectl(documents: dict[str, dict[str, Any]]) -> None:
    """apply/patcher.go: find the schema by its GVK list, then follow $refs to the merge keys."""
    schemas = documents["apis/apps/v1"]["components"]["schemas"]
    deployment = next(
        s
        for s in schemas.values()
        if {"group": "apps", "version": "v1", "kind": "Deployment"}
        in s.get("x-kubernetes-group-version-kind", [])
    )

    def deref(node: dict[str, Any]) -> dict[str, Any]:
        if "allOf" in node:
            node = node["allOf"][0]
        if "$ref" in node:
            return schemas[node["$ref"].removeprefix("#/components/schemas/")]
        return node

    spec = deref(deployment["properties"]["spec"])
    template = deref(spec["properties"]["template"])
    pod_spec = deref(template["properties"]["spec"])
    volumes = pod_spec["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-merge-key"] == "name"
    assert "strategy" in spec["properties"]


def test_apiversion_and_kind_have_no_enum(documents: dict[str, dict[str, Any]]) -> None:
    pod = documents["api/v1"]["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert "enum" not in pod["properties"]["apiVersion"]
    assert "enum" not in pod["properties"]["kind"]


# -- custom resources --------------------------------------------------------------------------


def test_custom_kind_schema(documents: dict[str, dict[str, Any]]) -> None:
    doc = documents["apis/stable.example.com/v1"]
    schemas = doc["components"]["schemas"]
    name = crd_component_name("stable.example.com", "v1", "CronTab")
    assert name == "com.example.stable.v1.CronTab"
    cron = schemas[name]
    assert cron["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    assert cron["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert cron["properties"]["kind"]["type"] == "string"
    assert cron["properties"]["spec"]["properties"]["cronSpec"] == {"type": "string"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "com.example.stable.v1.CronTabList" in schemas
    get = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/" + name
    }


def test_custom_kind_without_schema_preserves_unknown_fields() -> None:
    index = ResourceIndex([CRON])
    server = OpenAPIV3(index, lambda g, v: {})
    result = server.group_version_document("apis/stable.example.com/v1")
    assert result is not None
    cron = orjson.loads(result[0])["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert cron["x-kubernetes-preserve-unknown-fields"] is True


def test_invalidate_picks_up_a_changed_crd_schema() -> None:
    current = {"CronTab": CRON_SCHEMA}
    server = OpenAPIV3(ResourceIndex([CRON]), lambda g, v: current)
    first = server.group_version_document("apis/stable.example.com/v1")
    assert first is not None
    current = {
        "CronTab": {"type": "object", "properties": {"spec": {"type": "object", "description": "new"}}}
    }
    cached = server.group_version_document("apis/stable.example.com/v1")
    assert cached == first  # cached until told
    server.invalidate("stable.example.com", "v1")
    second = server.group_version_document("apis/stable.example.com/v1")
    assert second is not None and second[1] != first[1]
    assert b'"new"' in second[0]
    assert second[1] in server.index_document().decode()


def test_resource_table_changes_are_noticed_without_invalidate() -> None:
    index = builtin_index()
    server = OpenAPIV3(index)
    assert server.group_version_document("apis/stable.example.com/v1") is None
    before = server.group_version_document("api/v1")
    index.add(CRON)
    assert server.group_version_document("apis/stable.example.com/v1") is not None
    assert server.group_version_document("api/v1") == before
    index.remove("stable.example.com", "v1", "crontabs")
    assert server.group_version_document("apis/stable.example.com/v1") is None


def test_building_core_v1_is_fast_and_cached() -> None:
    openapi._converted_definition.cache_clear()
    server = OpenAPIV3(builtin_index())
    start = time.perf_counter()
    first = server.group_version_document("api/v1")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert first is not None
    assert (
        server.group_version_document("api/v1") is first or server.group_version_document("api/v1") == first
    )
