"""Bad input against a real ``kubelite up``, straight over HTTPS (no client library in between).

Each class of bad request from the control-plane issue gets the 4xx ``Status`` kube-apiserver
1.32 gives: the status code, the ``reason``, a message that says what to fix (naming the field
where there is one). Afterwards nothing was stored, and the server still answers other clients.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

NS = "default"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps"
DEPLOY_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"
POD_PATH = f"/api/v1/namespaces/{NS}/pods"
JSON_CT = {"content-type": "application/json"}
PROTOBUF_CT = {"content-type": "application/vnd.kubernetes.protobuf"}
STRICT = {"fieldValidation": "Strict"}


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=cluster.url(),
        verify=ssl.create_default_context(cafile=str(cluster.ca())),
        headers={"authorization": f"Bearer {cluster.token()}"},
        timeout=30,
    ) as c:
        yield c


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}, **extra}


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def _status(res: httpx.Response, code: int, reason: str, *fragments: str) -> dict[str, Any]:
    """The reply is a Kubernetes ``Status`` with this code and reason whose message holds every
    fragment."""
    assert res.status_code == code, res.text
    assert res.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = res.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure" and body["code"] == code and body["reason"] == reason, body
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


def _cause_fields(status: dict[str, Any]) -> list[str]:
    return [c.get("field", "") for c in (status.get("details") or {}).get("causes", [])]


def _still_serving(api: httpx.Client) -> None:
    res = api.get("/api/v1/namespaces")
    assert res.status_code == 200
    assert any(i["metadata"]["name"] == "default" for i in res.json()["items"])


def _absent(api: httpx.Client, path: str) -> None:
    res = api.get(path)
    assert res.status_code == 404, f"{path} was stored: {res.text[:300]}"
    _still_serving(api)


@pytest.fixture
def stored_cm(api: httpx.Client) -> Iterator[dict[str, Any]]:
    name = _name("stored")
    res = api.post(CM_PATH, json=_cm(name))
    assert res.status_code == 201, res.text
    yield res.json()
    api.delete(f"{CM_PATH}/{name}")


def _unchanged(api: httpx.Client, before: dict[str, Any]) -> None:
    meta = before["metadata"]
    now = api.get(f"{CM_PATH}/{meta['name']}").json()
    assert now["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert now["data"] == before["data"]
    _still_serving(api)


# ------------------------------------------------------------------ malformed bodies


def test_malformed_json(api: httpx.Client) -> None:
    name = _name("badjson")
    body = json.dumps(_cm(name))[:-7].encode()
    s = _status(api.post(CM_PATH, content=body, headers=JSON_CT), 400, "BadRequest", "JSON")
    assert "decod" in s["message"]
    _absent(api, f"{CM_PATH}/{name}")


def test_malformed_yaml(api: httpx.Client) -> None:
    name = _name("badyaml")
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n\tdata: {{a: 1}}\n".encode()
    res = api.post(CM_PATH, content=body, headers={"content-type": "application/yaml"})
    _status(res, 400, "BadRequest", "YAML", "tab")
    _absent(api, f"{CM_PATH}/{name}")


@pytest.mark.parametrize(
    "body",
    [
        b"k8s\x00\x01\x02\xff\xfegarbage",  # the envelope magic, then junk
        b"\x0a\x05hello\x12\x03abc",  # well-formed protobuf, but no envelope
        b"k8s\x00\x0a\x02\x0a",  # a truncated envelope
    ],
    ids=["garbage-after-magic", "no-magic", "truncated"],
)
def test_garbage_protobuf(api: httpx.Client, body: bytes) -> None:
    res = api.post(CM_PATH, content=body, headers={"content-type": "application/vnd.kubernetes.protobuf"})
    s = _status(res, 400, "BadRequest")
    assert "protobuf" in s["message"].lower() or "envelope" in s["message"].lower(), s["message"]
    _still_serving(api)


def test_empty_and_non_object_bodies(api: httpx.Client) -> None:
    _status(api.post(CM_PATH, content=b"", headers=JSON_CT), 400, "BadRequest", "empty")
    _status(api.post(CM_PATH, content=b"[1, 2]", headers=JSON_CT), 400, "BadRequest", "object")
    _status(api.post(CM_PATH, content=b"null", headers=JSON_CT), 400, "BadRequest", "object")
    _still_serving(api)


# ------------------------------------------------------------------ types and fields


def test_wrong_type_names_the_field(api: httpx.Client) -> None:
    name = _name("wrongtype")
    dep = _deployment(name)
    dep["spec"]["replicas"] = "three"
    s = _status(
        api.post(DEPLOY_PATH, json=dep),
        400,
        "BadRequest",
        "cannot unmarshal string",
        "spec.replicas",
        "int32",
    )
    assert _cause_fields(s) == ["spec.replicas"]
    _absent(api, f"{DEPLOY_PATH}/{name}")


def test_wrong_type_in_a_list_item(api: httpx.Client) -> None:
    name = _name("wrongport")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "eighty"}]}]},
    }
    _status(api.post(POD_PATH, json=pod), 400, "BadRequest", "containerPort", "int32")
    _absent(api, f"{POD_PATH}/{name}")


def test_unknown_field_strict_is_rejected(api: httpx.Client) -> None:
    name = _name("strict")
    res = api.post(CM_PATH, params={"fieldValidation": "Strict"}, json=_cm(name, bogus=1))
    _status(res, 400, "BadRequest", 'strict decoding error: unknown field "bogus"')
    _absent(api, f"{CM_PATH}/{name}")


def test_duplicate_field_strict_is_rejected(api: httpx.Client) -> None:
    name = _name("dup")
    template = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":{"a":"1","a":"2"}}'
    body = template.replace("NAME", name).encode()
    res = api.post(CM_PATH, params={"fieldValidation": "Strict"}, content=body, headers=JSON_CT)
    _status(res, 400, "BadRequest", 'duplicate field "data.a"')
    _absent(api, f"{CM_PATH}/{name}")


def test_unknown_field_warn_stores_and_warns(api: httpx.Client) -> None:
    name = _name("warn")
    res = api.post(CM_PATH, params={"fieldValidation": "Warn"}, json=_cm(name, bogus=1))
    assert res.status_code == 201, res.text
    assert 'unknown field \\"bogus\\"' in res.headers["warning"]
    assert res.headers["warning"].startswith("299 - ")
    got = api.get(f"{CM_PATH}/{name}").json()
    assert "bogus" not in got and got["data"] == {"a": "1"}
    api.delete(f"{CM_PATH}/{name}")


def test_unknown_field_ignore_stores_silently(api: httpx.Client) -> None:
    name = _name("ignore")
    res = api.post(CM_PATH, params={"fieldValidation": "Ignore"}, json=_cm(name, bogus=1))
    assert res.status_code == 201, res.text
    assert "warning" not in res.headers
    assert "bogus" not in api.get(f"{CM_PATH}/{name}").json()
    api.delete(f"{CM_PATH}/{name}")


def test_bad_field_validation_value(api: httpx.Client) -> None:
    name = _name("fv")
    res = api.post(CM_PATH, params={"fieldValidation": "Sometimes"}, json=_cm(name))
    _status(res, 400, "BadRequest", "fieldValidation", "Strict")
    _absent(api, f"{CM_PATH}/{name}")


# ------------------------------------------------------------------ size, resources, media types


def test_body_over_3_mib(api: httpx.Client) -> None:
    name = _name("huge")
    body = json.dumps(_cm(name, data={"a": "x" * (3 * 1024 * 1024 + 16)})).encode()
    _status(api.post(CM_PATH, content=body, headers=JSON_CT), 413, "RequestEntityTooLarge", "3145728")
    _absent(api, f"{CM_PATH}/{name}")


def test_configmap_over_1_mib_is_invalid(api: httpx.Client) -> None:
    name = _name("big")
    res = api.post(CM_PATH, json=_cm(name, data={"a": "x" * (1024 * 1024 + 1)}))
    _status(res, 422, "Invalid", "1048576")
    _absent(api, f"{CM_PATH}/{name}")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/default/widgets",
        "/apis/example.com/v1/widgets",
        "/apis/apps/v1/namespaces/default/deploymentz",
        "/apis/extensions/v1beta1/namespaces/default/deployments",
        "/api/v2/pods",
    ],
)
def test_unknown_resources_are_404(api: httpx.Client, path: str) -> None:
    _status(api.get(path), 404, "NotFound", "could not find the requested resource")
    _status(api.post(path, json=_cm("x")), 404, "NotFound")
    _still_serving(api)


def test_unsupported_content_type_is_415(api: httpx.Client, stored_cm: dict[str, Any]) -> None:
    name = _name("textplain")
    body = json.dumps(_cm(name)).encode()
    res = api.post(CM_PATH, content=body, headers={"content-type": "text/plain"})
    _status(res, 415, "UnsupportedMediaType", "application/json")
    _absent(api, f"{CM_PATH}/{name}")
    res = api.patch(f"{CM_PATH}/{stored_cm['metadata']['name']}", content=b"{}", headers=JSON_CT)
    _status(res, 415, "UnsupportedMediaType", "application/merge-patch+json")
    _unchanged(api, stored_cm)


# ------------------------------------------------------------------ selectors


@pytest.mark.parametrize("selector", ["a in (b", "a==b==c", "a=b c", "!"])
def test_bad_label_selector(api: httpx.Client, selector: str) -> None:
    _status(api.get(CM_PATH, params={"labelSelector": selector}), 400, "BadRequest")
    _status(api.get(CM_PATH, params={"labelSelector": selector, "watch": "true"}), 400, "BadRequest")
    _still_serving(api)


def test_bad_field_selector(api: httpx.Client) -> None:
    res = api.get(POD_PATH, params={"fieldSelector": "spec.foo=bar"})
    _status(res, 400, "BadRequest", "field label not supported: spec.foo")
    res = api.get(CM_PATH, params={"fieldSelector": "spec.foo=bar"})
    _status(res, 400, "BadRequest", '"spec.foo" is not a known field selector')
    res = api.get(POD_PATH, params={"fieldSelector": "spec.nodeName"})
    _status(res, 400, "BadRequest", "spec.nodeName")
    res = api.get(POD_PATH, params={"fieldSelector": "spec.foo=bar", "watch": "true"})
    _status(res, 400, "BadRequest", "field label not supported")
    _still_serving(api)


# ------------------------------------------------------------------ patches


@pytest.mark.parametrize(
    ("content_type", "body", "code", "reason", "fragment"),
    [
        ("application/json-patch+json", b'[{"op":"frobnicate","path":"/data/a"}]', 422, "Invalid", ""),
        ("application/json-patch+json", b'{"op":"add"}', 400, "BadRequest", "jsonpatch"),
        ("application/json-patch+json", b'[{"op":"add","path":"/data/b"', 400, "BadRequest", "JSON"),
        ("application/json-patch+json", b'[{"op":"remove","path":"/data/zzz"}]', 422, "Invalid", ""),
        ("application/json-patch+json", b'[{"op":"test","path":"/data/a","value":"9"}]', 422, "Invalid", ""),
        ("application/merge-patch+json", b'{"data":', 400, "BadRequest", "JSON"),
        ("application/merge-patch+json", b'{"data":{"a":5}}', 400, "BadRequest", "data"),
        ("application/merge-patch+json", b"[1, 2]", 400, "BadRequest", "object"),
        ("application/strategic-merge-patch+json", b'{"data":{"$patch":"explode"}}', 400, "BadRequest", ""),
        ("application/strategic-merge-patch+json", b'"hello"', 400, "BadRequest", "object"),
        ("application/strategic-merge-patch+json", b'{"data": "x"}', 400, "BadRequest", "data"),
        ("application/apply-patch+yaml", b"a: [\n", 400, "BadRequest", "YAML"),
    ],
    ids=[
        "json-unknown-op",
        "json-not-a-list",
        "json-truncated",
        "json-remove-missing",
        "json-test-fails",
        "merge-truncated",
        "merge-wrong-type",
        "merge-not-object",
        "strategic-bad-directive",
        "strategic-not-object",
        "strategic-wrong-type",
        "apply-bad-yaml",
    ],
)
def test_bad_patches(
    api: httpx.Client,
    stored_cm: dict[str, Any],
    content_type: str,
    body: bytes,
    code: int,
    reason: str,
    fragment: str,
) -> None:
    path = f"{CM_PATH}/{stored_cm['metadata']['name']}"
    params = {"fieldManager": "e2e"} if "apply" in content_type else {}
    res = api.patch(path, content=body, headers={"content-type": content_type}, params=params)
    s = _status(res, code, reason, fragment)
    if code == 422:  # the JSON patch error is in the causes, as kube-apiserver reports it
        assert any(c.get("message") for c in s["details"]["causes"]), s
    _unchanged(api, stored_cm)


def test_patch_of_a_missing_object_is_404(api: httpx.Client) -> None:
    name = _name("nothere")
    res = api.patch(
        f"{CM_PATH}/{name}",
        content=b'{"data":{"a":"b"}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    _status(res, 404, "NotFound", f'configmaps "{name}" not found')
    _absent(api, f"{CM_PATH}/{name}")


def test_patch_may_not_rename(api: httpx.Client, stored_cm: dict[str, Any]) -> None:
    res = api.patch(
        f"{CM_PATH}/{stored_cm['metadata']['name']}",
        content=b'{"metadata":{"name":"renamed"}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    _status(res, 400, "BadRequest", "name")
    _unchanged(api, stored_cm)


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("path", "kind", "name", "fragment"),
    [
        (CM_PATH, "ConfigMap", "x" * 254, "must be no more than 253 characters"),
        (CM_PATH, "ConfigMap", "Bad_Name", "RFC 1123 subdomain"),
        (CM_PATH, "ConfigMap", "", "name or generateName is required"),
        ("/api/v1/namespaces", "Namespace", "n" * 64, "must be no more than 63 characters"),
        ("/api/v1/namespaces", "Namespace", "has.dots", "must not contain dots"),
        (POD_PATH, "Pod", "UPPER", "RFC 1123 subdomain"),
    ],
    ids=["too-long", "underscore", "empty", "namespace-too-long", "namespace-dots", "pod-upper"],
)
def test_invalid_names_are_422_naming_metadata_name(
    api: httpx.Client, path: str, kind: str, name: str, fragment: str
) -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
    if kind == "Pod":
        obj["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    s = _status(api.post(path, json=obj), 422, "Invalid", "metadata.name", fragment)
    assert s["details"]["kind"] == kind
    assert "metadata.name" in _cause_fields(s)
    if name:
        _absent(api, f"{path}/{name}")


# ------------------------------------------------------------------ namespaces


def test_write_to_a_missing_namespace_is_404(api: httpx.Client) -> None:
    ns = _name("nowhere")
    res = api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("x"))
    _status(res, 404, "NotFound", f'namespaces "{ns}" not found')
    _absent(api, f"/api/v1/namespaces/{ns}/configmaps/x")


def test_write_to_a_terminating_namespace_is_403(api: httpx.Client) -> None:
    ns = _name("closing")
    assert api.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    hold = _cm("hold")
    hold["metadata"]["finalizers"] = ["example.com/hold"]
    assert api.post(f"/api/v1/namespaces/{ns}/configmaps", json=hold).status_code == 201
    assert api.delete(f"/api/v1/namespaces/{ns}").status_code == 200
    try:
        res = api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("late"))
        s = _status(
            res,
            403,
            "Forbidden",
            'configmaps "late" is forbidden',
            f"unable to create new content in namespace {ns} because it is being terminated",
        )
        assert s["details"]["name"] == "late" and s["details"]["kind"] == "configmaps"
        assert s["details"]["causes"] == [
            {
                "reason": "NamespaceTerminating",
                "message": f"namespace {ns} is being terminated",
                "field": "metadata.namespace",
            }
        ]
        res = api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=_deployment("late"))
        _status(res, 403, "Forbidden", 'deployments.apps "late" is forbidden')
        _absent(api, f"/api/v1/namespaces/{ns}/configmaps/late")
        _absent(api, f"/apis/apps/v1/namespaces/{ns}/deployments/late")
    finally:
        api.patch(
            f"/api/v1/namespaces/{ns}/configmaps/hold",
            content=b'{"metadata":{"finalizers":null}}',
            headers={"content-type": "application/merge-patch+json"},
        )


def test_namespace_mismatch_between_url_and_body(api: httpx.Client) -> None:
    name = _name("nsmismatch")
    obj = _cm(name)
    obj["metadata"]["namespace"] = "kube-system"
    _status(api.post(CM_PATH, json=obj), 400, "BadRequest", "namespace of the provided object does not match")
    _absent(api, f"{CM_PATH}/{name}")
    _absent(api, f"/api/v1/namespaces/kube-system/configmaps/{name}")


# ------------------------------------------------------------------ kind, apiVersion, names, versions


def test_kind_mismatch(api: httpx.Client) -> None:
    name = _name("kind")
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    _status(api.post(CM_PATH, json=obj), 400, "BadRequest", "Secret", "ConfigMap")
    _absent(api, f"{CM_PATH}/{name}")
    _absent(api, f"/api/v1/namespaces/{NS}/secrets/{name}")


def test_api_version_mismatch(api: httpx.Client) -> None:
    name = _name("apiversion")
    obj = _cm(name)
    obj["apiVersion"] = "apps/v1"
    _status(api.post(CM_PATH, json=obj), 400, "BadRequest", "apps/v1", "v1")
    _absent(api, f"{CM_PATH}/{name}")
    dep = _deployment(name)
    dep["apiVersion"] = "extensions/v1beta1"
    _status(api.post(DEPLOY_PATH, json=dep), 400, "BadRequest", "extensions/v1beta1")
    _absent(api, f"{DEPLOY_PATH}/{name}")


def test_name_mismatch_between_url_and_body(api: httpx.Client, stored_cm: dict[str, Any]) -> None:
    body = dict(stored_cm)
    body["metadata"] = {**stored_cm["metadata"], "name": "other"}
    res = api.put(f"{CM_PATH}/{stored_cm['metadata']['name']}", json=body)
    _status(res, 400, "BadRequest", "does not match the name on the URL")
    _unchanged(api, stored_cm)
    _absent(api, f"{CM_PATH}/other")


def test_stale_resource_version_is_409(api: httpx.Client, stored_cm: dict[str, Any]) -> None:
    path = f"{CM_PATH}/{stored_cm['metadata']['name']}"
    fresh = api.put(path, json={**stored_cm, "data": {"a": "2"}})
    assert fresh.status_code == 200, fresh.text
    stale = {**stored_cm, "data": {"a": "3"}}  # still carries the old resourceVersion
    s = _status(api.put(path, json=stale), 409, "Conflict", "the object has been modified")
    assert s["details"]["name"] == stored_cm["metadata"]["name"]
    _unchanged(api, fresh.json())
    precondition = {"preconditions": {"resourceVersion": stored_cm["metadata"]["resourceVersion"]}}
    res = api.request("DELETE", path, json=precondition)
    _status(res, 409, "Conflict")
    _unchanged(api, fresh.json())


def test_lease_replace_without_resource_version_is_422(api: httpx.Client) -> None:
    """Leases refuse unconditional updates in Kubernetes (AllowUnconditionalUpdate false)."""
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "holder"}}
    created = api.post(path, json={**lease, "spec": {"holderIdentity": "a"}})
    assert created.status_code == 201, created.text
    res = api.put(f"{path}/holder", json={**lease, "spec": {"holderIdentity": "b"}})
    s = _status(res, 422, "Invalid", 'leases.coordination.k8s.io "holder" is invalid')
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in s["message"]
    assert _cause_fields(s) == ["metadata.resourceVersion"]
    now = api.get(f"{path}/holder").json()
    assert now["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert now["spec"]["holderIdentity"] == "a"
    ok = api.put(f"{path}/holder", json={**created.json(), "spec": {"holderIdentity": "b"}})
    assert ok.status_code == 200 and ok.json()["spec"]["holderIdentity"] == "b", ok.text


# ------------------------------------------------------------------ concurrency


def _bad_request(c: httpx.Client, run: str, i: int) -> httpx.Response:
    kind = i % 6
    if kind == 0:
        return c.post(CM_PATH, content=b'{"kind": ', headers=JSON_CT)
    if kind == 1:
        return c.post(CM_PATH, content=b"k8s\x00garbage", headers=PROTOBUF_CT)
    if kind == 2:
        return c.post(CM_PATH, json=_cm(f"{run}-bad-{i}", bogus=1), params=STRICT)
    if kind == 3:
        return c.get(CM_PATH, params={"labelSelector": "a in (b"})
    if kind == 4:
        return c.post(CM_PATH, json=_cm(f"{run.upper()}_{i}"))
    return c.post(CM_PATH, content=b"x" * (3 * 1024 * 1024 + 1), headers=JSON_CT)


def test_concurrent_bad_requests_do_not_disturb_good_ones(cluster: Cluster, api: httpx.Client) -> None:
    run = _name("mix")
    rounds = 150
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=cluster.url(),
                verify=ssl.create_default_context(cafile=str(cluster.ca())),
                headers={"authorization": f"Bearer {cluster.token()}"},
                timeout=60,
            )
            with lock:
                clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    def one(i: int) -> tuple[str, int]:
        if i % 2:
            return "bad", _bad_request(client(), run, i // 2).status_code
        return "good", client().post(CM_PATH, json=_cm(f"{run}-{i // 2}")).status_code

    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(one, range(2 * rounds)))
    finally:
        for c in clients:
            c.close()
    good = [code for what, code in results if what == "good"]
    bad = [code for what, code in results if what == "bad"]
    assert good == [201] * rounds
    assert len(bad) == rounds and all(400 <= code < 500 for code in bad), sorted(set(bad))
    listed = api.get(CM_PATH).json()["items"]
    names = {i["metadata"]["name"] for i in listed if i["metadata"]["name"].startswith(run)}
    assert names == {f"{run}-{i}" for i in range(rounds)}
    _still_serving(api)
