# ruff: noqa: E501  (expected messages are Kubernetes' exact, long texts)
"""Validation of built-in kinds: field paths, CauseTypes and messages as kube-apiserver 1.32 prints them."""

from __future__ import annotations

import copy
import glob
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelite.api.errors import Cause, invalid
from kubelite.registry.defaults import apply_defaults
from kubelite.registry.resources import builtin_index
from kubelite.registry.validation import validate, validate_status_update
from kubelite.registry.validation.cron import schedule_error
from kubelite.registry.validation.field import go_quote
from kubelite.registry.validation.quantity import canonical
from tests.paths import CORPUS as SHARED_CORPUS

Obj = dict[str, Any]
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def _check(group: str, kind: str, obj: Obj, old: Obj | None = None, version: str = "v1") -> list[Cause]:
    apply_defaults(group, version, kind, obj)
    if old is not None:
        apply_defaults(group, version, kind, old)
    return validate(group, version, kind, obj, old)


def _triples(causes: list[Cause]) -> list[tuple[str, str, str]]:
    return [(c.field, c.reason, c.message) for c in causes]


def _pod(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}], **spec},
    }


def _ctr(**fields: Any) -> Obj:
    return _pod(containers=[{"name": "app", "image": "nginx:1.25", **fields}])


def _deployment(**spec: Any) -> Obj:
    base: Obj = {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        },
    }
    base.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": base,
    }


# --- valid objects ------------------------------------------------------------------------------------

INDEX = builtin_index()
CORPUS = SHARED_CORPUS / "kubernetes__website/content/en/examples"
_EXPECTED_INVALID = {"application/job/job-tmpl.yaml", "application/ssa/nginx-deployment-replicas-only.yaml"}


def _corpus_docs() -> list[tuple[str, Obj]]:
    docs = []
    for path in sorted(glob.glob(str(CORPUS / "**" / "*.yaml"), recursive=True)):
        rel = str(Path(path).relative_to(CORPUS))
        if rel in _EXPECTED_INVALID:
            continue
        try:
            loaded = list(yaml.safe_load_all(Path(path).read_text()))
        except yaml.YAMLError:
            continue
        docs.extend((rel, d) for d in loaded if isinstance(d, dict) and "kind" in d and "apiVersion" in d)
    return docs


def test_corpus_examples_are_valid_after_defaults() -> None:
    docs = _corpus_docs()
    kinds = {d["kind"] for _, d in docs}
    assert {"Pod", "Deployment", "Job", "Service", "StatefulSet", "DaemonSet", "ConfigMap"} <= kinds
    failures = []
    for rel, doc in docs:
        group, _, version = doc["apiVersion"].rpartition("/")
        info = INDEX.by_kind(group, version, doc["kind"])
        meta = doc.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "x7k2q"
        if info is None or info.namespaced:
            meta.setdefault("namespace", "default")
        meta["uid"] = str(uuid.uuid4())
        apply_defaults(group, version, doc["kind"], doc)
        causes = validate(group, version, doc["kind"], doc, None)
        if causes:
            failures.append((rel, doc["kind"], _triples(causes)))
    assert failures == []
    assert len(docs) > 100


@pytest.mark.parametrize(
    "name", ["nginx-deployment.yaml", "replicaset.yaml", "daemonset.yaml", "statefulset.yaml"]
)
def test_controller_examples_validate_on_update_too(name: str) -> None:
    docs = [d for d in yaml.safe_load_all((CORPUS / "controllers" / name).read_text()) if d]
    for doc in docs:
        group, _, version = doc["apiVersion"].rpartition("/")
        doc["metadata"].setdefault("namespace", "default")
        apply_defaults(group, version, doc["kind"], doc)
        new = copy.deepcopy(doc)
        assert validate(group, version, doc["kind"], new, doc) == []


# --- metadata -----------------------------------------------------------------------------------------


def test_bad_name_message_matches_kubernetes() -> None:
    pod = _pod()
    pod["metadata"]["name"] = "Foo_bar"
    assert _triples(_check("", "Pod", pod)) == [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "Foo_bar": {SUBDOMAIN_MSG}')
    ]


def test_name_required_and_namespace() -> None:
    pod = _pod()
    pod["metadata"] = {"namespace": "Bad_NS"}
    assert (
        "metadata.name",
        "FieldValueRequired",
        "Required value: name or generateName is required",
    ) in _triples(_check("", "Pod", pod))
    assert ("metadata.namespace", "FieldValueInvalid", f'Invalid value: "Bad_NS": {LABEL_MSG}') in _triples(
        _check("", "Pod", pod)
    )
    no_ns = _pod()
    del no_ns["metadata"]["namespace"]
    assert ("metadata.namespace", "FieldValueRequired", "Required value") in _triples(
        _check("", "Pod", no_ns)
    )
    ns = {"metadata": {"name": "team", "namespace": "x"}}
    assert ("metadata.namespace", "FieldValueForbidden", "Forbidden: not allowed on this type") in _triples(
        _check("", "Namespace", ns)
    )


def test_labels_annotations_finalizers_owner_refs() -> None:
    pod = _pod()
    pod["metadata"].update(
        {
            "labels": {"app": "x" * 64, "bad key!": "v"},
            "annotations": {"big": "x" * (256 * 1024)},
            "finalizers": ["custom"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": ""}],
        }
    )
    got = _triples(_check("", "Pod", pod))
    assert (
        "metadata.labels",
        "FieldValueInvalid",
        f'Invalid value: "{"x" * 64}": must be no more than 63 characters',
    ) in got
    assert any(
        f == "metadata.labels" and m.startswith('Invalid value: "bad key!": name part must consist of')
        for f, _, m in got
    )
    assert ("metadata.annotations", "FieldValueTooLong", "Too long: may not be more than 262144 bytes") in got
    assert (
        "metadata.finalizers[0]",
        "FieldValueInvalid",
        'Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified',
    ) in got
    assert (
        "metadata.ownerReferences.name",
        "FieldValueInvalid",
        'Invalid value: "": name must not be empty',
    ) in got
    assert (
        "metadata.ownerReferences.uid",
        "FieldValueInvalid",
        'Invalid value: "": uid must not be empty',
    ) in got


def test_generate_name_prefix_may_end_with_dash() -> None:
    pod = _pod()
    pod["metadata"] = {"generateName": "web-", "name": "web-abcde", "namespace": "default"}
    assert _check("", "Pod", pod) == []


def test_name_kinds_use_their_own_formats() -> None:
    svc = _service()
    svc["metadata"]["name"] = "1abc"
    msgs = [c.message for c in _check("", "Service", svc)]
    assert msgs and msgs[0].startswith('Invalid value: "1abc": a DNS-1035 label must consist of lower case')
    ns = {"metadata": {"name": "a.b"}}
    assert _triples(_check("", "Namespace", ns)) == [
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "a.b": must not contain dots')
    ]
    role = {
        "metadata": {"name": "system:controller:x", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    assert _check("rbac.authorization.k8s.io", "Role", role) == []
    role["metadata"]["name"] = "a/b"
    assert _triples(_check("rbac.authorization.k8s.io", "Role", role)) == [
        ("metadata.name", "FieldValueInvalid", "Invalid value: \"a/b\": may not contain '/'")
    ]


# --- pods ---------------------------------------------------------------------------------------------


def test_valid_pod_has_no_causes() -> None:
    pod = _ctr(
        ports=[{"containerPort": 80, "name": "http"}],
        resources={"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
        livenessProbe={"httpGet": {"port": "http", "path": "/healthz"}},
        env=[
            {"name": "my.var-1", "value": "x"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
    )
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    pod["spec"]["tolerations"] = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    pod["spec"]["nodeSelector"] = {"disktype": "ssd"}
    assert _check("", "Pod", pod) == []


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (_pod(containers=[]), ("spec.containers", "FieldValueRequired", "Required value")),
        (_ctr(image=""), ("spec.containers[0].image", "FieldValueRequired", "Required value")),
        (
            _pod(restartPolicy="Sometimes"),
            (
                "spec.restartPolicy",
                "FieldValueNotSupported",
                'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            ),
        ),
        (
            _pod(dnsPolicy="Weird"),
            (
                "spec.dnsPolicy",
                "FieldValueNotSupported",
                'Unsupported value: "Weird": supported values: "ClusterFirstWithHostNet", '
                '"ClusterFirst", "Default", "None"',
            ),
        ),
        (
            _pod(containers=[{"name": "App", "image": "x"}]),
            ("spec.containers[0].name", "FieldValueInvalid", f'Invalid value: "App": {LABEL_MSG}'),
        ),
        (
            _pod(containers=[{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]),
            ("spec.containers[1].name", "FieldValueDuplicate", 'Duplicate value: "a"'),
        ),
        (
            _pod(initContainers=[{"name": "app", "image": "x"}]),
            ("spec.initContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "app"'),
        ),
        (
            _ctr(ports=[{"containerPort": 70000}]),
            (
                "spec.containers[0].ports[0].containerPort",
                "FieldValueInvalid",
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
        ),
        (
            _ctr(ports=[{"containerPort": 80, "protocol": "HTTP"}]),
            (
                "spec.containers[0].ports[0].protocol",
                "FieldValueNotSupported",
                'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            ),
        ),
        (
            _ctr(ports=[{"containerPort": 80, "name": "a-very-long-port-name"}]),
            (
                "spec.containers[0].ports[0].name",
                "FieldValueInvalid",
                'Invalid value: "a-very-long-port-name": must be no more than 15 characters',
            ),
        ),
        (
            _ctr(
                ports=[
                    {"containerPort": 80},
                    {"containerPort": 81, "name": "x"},
                    {"containerPort": 82, "name": "x"},
                ]
            ),
            ("spec.containers[0].ports[2].name", "FieldValueDuplicate", 'Duplicate value: "x"'),
        ),
        (
            _ctr(env=[{"name": "A=B", "value": "1"}]),
            (
                "spec.containers[0].env[0].name",
                "FieldValueInvalid",
                'Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII '
                "characters other than '='",
            ),
        ),
        (
            _ctr(env=[{"name": "", "value": "1"}]),
            ("spec.containers[0].env[0].name", "FieldValueRequired", "Required value"),
        ),
        (
            _ctr(volumeMounts=[{"name": "missing", "mountPath": "/x"}]),
            ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound", 'Not found: "missing"'),
        ),
        (
            _ctr(imagePullPolicy="Sometimes"),
            (
                "spec.containers[0].imagePullPolicy",
                "FieldValueNotSupported",
                'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
            ),
        ),
        (
            _ctr(resources={"limits": {"cpu": "100m"}, "requests": {"cpu": "200m"}}),
            (
                "spec.containers[0].resources.requests",
                "FieldValueInvalid",
                'Invalid value: "200m": must be less than or equal to cpu limit of 100m',
            ),
        ),
        (
            _ctr(resources={"requests": {"memory": "-1"}}),
            (
                "spec.containers[0].resources.requests[memory]",
                "FieldValueInvalid",
                'Invalid value: "-1": must be greater than or equal to 0',
            ),
        ),
        (
            _ctr(resources={"requests": {"cpu": "abc"}}),
            (
                "spec.containers[0].resources.requests[cpu]",
                "FieldValueInvalid",
                'Invalid value: "abc": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ),
        ),
        (
            _ctr(resources={"limits": {"gpu": "1"}}),
            (
                "spec.containers[0].resources.limits[gpu]",
                "FieldValueInvalid",
                'Invalid value: "gpu": must be a standard resource for containers',
            ),
        ),
        (
            _ctr(resources={"requests": {"example.com/dongle": "1"}}),
            (
                "spec.containers[0].resources.limits",
                "FieldValueRequired",
                "Required value: Limit must be set for non overcommitable resources",
            ),
        ),
        (
            _ctr(livenessProbe={"periodSeconds": 5}),
            (
                "spec.containers[0].livenessProbe",
                "FieldValueRequired",
                "Required value: must specify a handler type",
            ),
        ),
        (
            _ctr(readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
            (
                "spec.containers[0].readinessProbe.tcpSocket",
                "FieldValueForbidden",
                "Forbidden: may not specify more than 1 handler type",
            ),
        ),
        (
            _ctr(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}),
            (
                "spec.containers[0].livenessProbe.successThreshold",
                "FieldValueInvalid",
                "Invalid value: 2: must be 1",
            ),
        ),
        (
            _ctr(startupProbe={"httpGet": {"port": 0}}),
            (
                "spec.containers[0].startupProbe.httpGet.port",
                "FieldValueInvalid",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
        ),
        (
            _pod(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
            (
                "spec.volumes[0].hostPath",
                "FieldValueForbidden",
                "Forbidden: may not specify more than 1 volume type",
            ),
        ),
        (
            _pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
            ("spec.volumes[1].name", "FieldValueDuplicate", 'Duplicate value: "v"'),
        ),
        (
            _pod(volumes=[{"name": "v", "configMap": {}}]),
            ("spec.volumes[0].configMap.name", "FieldValueRequired", "Required value"),
        ),
        (
            _pod(volumes=[{"name": "v", "secret": {"secretName": "s", "defaultMode": 1000}}]),
            (
                "spec.volumes[0].secret.defaultMode",
                "FieldValueInvalid",
                "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
            ),
        ),
        (
            _pod(tolerations=[{"operator": "Equal", "value": "x"}]),
            (
                "spec.tolerations[0].operator",
                "FieldValueInvalid",
                'Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and '
                'all keys"',
            ),
        ),
        (
            _pod(tolerations=[{"key": "k", "operator": "Maybe"}]),
            (
                "spec.tolerations[0].operator",
                "FieldValueNotSupported",
                'Unsupported value: "Maybe": supported values: "Equal", "Exists"',
            ),
        ),
        (
            _pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "Never"}]),
            (
                "spec.tolerations[0].effect",
                "FieldValueNotSupported",
                'Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
            ),
        ),
        (
            _pod(hostname="Bad.Host"),
            ("spec.hostname", "FieldValueInvalid", f'Invalid value: "Bad.Host": {LABEL_MSG}'),
        ),
        (
            _pod(activeDeadlineSeconds=0),
            (
                "spec.activeDeadlineSeconds",
                "FieldValueInvalid",
                "Invalid value: 0: must be between 1 and 2147483647, inclusive",
            ),
        ),
        (
            _pod(nodeSelector={"disk": "s s"}),
            (
                "spec.nodeSelector",
                "FieldValueInvalid",
                'Invalid value: "s s": a valid label must be an empty string or consist of alphanumeric characters, '
                "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue' or "
                "'my_value' or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ),
        (
            _pod(
                affinity={
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}
                    }
                }
            ),
            (
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
                "FieldValueRequired",
                "Required value: must have at least one node selector term",
            ),
        ),
        (
            _pod(
                affinity={
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]
                    }
                }
            ),
            (
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
                "FieldValueRequired",
                "Required value: can not be empty",
            ),
        ),
        (
            _pod(ephemeralContainers=[{"name": "dbg", "image": "busybox"}]),
            ("spec.ephemeralContainers", "FieldValueForbidden", "Forbidden: cannot be set on create"),
        ),
    ],
)
def test_invalid_pods(pod: Obj, expected: tuple[str, str, str]) -> None:
    assert expected in _triples(_check("", "Pod", pod))


def test_pod_update_rules() -> None:
    old = _pod(tolerations=[{"key": "a", "operator": "Exists"}], activeDeadlineSeconds=100)
    apply_defaults("", "v1", "Pod", old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert validate("", "v1", "Pod", new, old) == []
    bigger = copy.deepcopy(old)
    bigger["spec"]["activeDeadlineSeconds"] = 200
    assert (
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
        "Invalid value: 200: must be less than or equal to previous value",
    ) in _triples(validate("", "v1", "Pod", bigger, old))
    changed = copy.deepcopy(old)
    changed["spec"]["restartPolicy"] = "Never"
    got = validate("", "v1", "Pod", changed, old)
    assert [c.field for c in got] == ["spec"]
    assert got[0].reason == "FieldValueForbidden"
    assert got[0].message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )
    removed = copy.deepcopy(old)
    removed["spec"]["tolerations"] = []
    assert (
        "spec.tolerations",
        "FieldValueForbidden",
        "Forbidden: existing toleration can not be modified except its tolerationSeconds",
    ) in _triples(validate("", "v1", "Pod", removed, old))
    more = copy.deepcopy(old)
    more["spec"]["containers"].append({"name": "b", "image": "x"})
    apply_defaults("", "v1", "Pod", more)
    assert (
        "spec.containers",
        "FieldValueForbidden",
        "Forbidden: pod updates may not add or remove containers",
    ) in _triples(validate("", "v1", "Pod", more, old))


def test_metadata_update_rules() -> None:
    old = _pod()
    old["metadata"].update({"uid": "u1", "generation": 2})
    apply_defaults("", "v1", "Pod", old)
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "other"
    new["metadata"]["generation"] = 1
    got = _triples(validate("", "v1", "Pod", new, old))
    assert ("metadata.name", "FieldValueInvalid", 'Invalid value: "other": field is immutable') in got
    assert ("metadata.generation", "FieldValueInvalid", "Invalid value: 1: must not be decremented") in got
    deleting = copy.deepcopy(old)
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    added = copy.deepcopy(deleting)
    added["metadata"]["finalizers"] = ["example.com/x"]
    assert (
        "metadata.finalizers",
        "FieldValueForbidden",
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
        '[]string{"example.com/x"}',
    ) in _triples(validate("", "v1", "Pod", added, deleting))


# --- workloads ----------------------------------------------------------------------------------------


def test_deployment_selector_mismatch_message() -> None:
    dep = _deployment(selector={"matchLabels": {"app": "y"}})
    assert _triples(_check("apps", "Deployment", dep)) == [
        (
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            'Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`',
        )
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"selector": None}, ("spec.selector", "FieldValueRequired", "Required value")),
        (
            {"selector": {}},
            (
                "spec.selector",
                "FieldValueInvalid",
                "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            ),
        ),
        (
            {"replicas": -1},
            ("spec.replicas", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0"),
        ),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}},
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                "FieldValueInvalid",
                "Invalid value: 0: may not be 0 when `maxSurge` is 0",
            ),
        ),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x%", "maxUnavailable": 1}}},
            (
                "spec.strategy.rollingUpdate.maxSurge",
                "FieldValueInvalid",
                "Invalid value: x%: a valid percent string must be a numeric string followed by an ending '%' "
                "(e.g. '1%' or '93%', regex used for validation is '[0-9]+%')",
            ),
        ),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "110%"}}},
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                "FieldValueInvalid",
                "Invalid value: 110%: must not be greater than 100%",
            ),
        ),
        (
            {"strategy": {"type": "Recreate", "rollingUpdate": {}}},
            (
                "spec.strategy.rollingUpdate",
                "FieldValueForbidden",
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            ),
        ),
        (
            {"minReadySeconds": 700},
            (
                "spec.progressDeadlineSeconds",
                "FieldValueInvalid",
                "Invalid value: 600: must be greater than minReadySeconds",
            ),
        ),
        (
            {"revisionHistoryLimit": -2},
            (
                "spec.revisionHistoryLimit",
                "FieldValueInvalid",
                "Invalid value: -2: must be greater than or equal to 0",
            ),
        ),
    ],
)
def test_invalid_deployments(spec: Obj, expected: tuple[str, str, str]) -> None:
    dep = _deployment(**spec)
    if spec.get("selector", 1) is None:
        del dep["spec"]["selector"]
    assert expected in _triples(_check("apps", "Deployment", dep))


def test_deployment_template_restart_policy_and_deadline() -> None:
    dep = _deployment()
    dep["spec"]["template"]["spec"].update(restartPolicy="OnFailure", activeDeadlineSeconds=5)
    got = _triples(_check("apps", "Deployment", dep))
    assert (
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "OnFailure": supported values: "Always"',
    ) in got
    assert (
        "spec.template.spec.activeDeadlineSeconds",
        "FieldValueForbidden",
        "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
    ) in got
    dep2 = _deployment()
    dep2["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert ("spec.template.spec.containers[0].image", "FieldValueRequired", "Required value") in _triples(
        _check("apps", "Deployment", dep2)
    )


def test_workload_selector_is_immutable() -> None:
    for kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        old = _deployment()
        apply_defaults("apps", "v1", kind, old)
        new = copy.deepcopy(old)
        new["spec"]["selector"] = {"matchLabels": {"app": "x", "tier": "web"}}
        new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
        assert (
            "spec.selector",
            "FieldValueInvalid",
            'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"x", "tier":"web"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ) in _triples(validate("apps", "v1", kind, new, old)), kind


def test_statefulset_rules() -> None:
    sts = _deployment(serviceName="web")
    sts["metadata"]["name"] = "web.v1"
    got = _triples(_check("apps", "StatefulSet", sts))
    assert ("metadata.name", "FieldValueInvalid", 'Invalid value: "web.v1": must not contain dots') in got
    sts = _deployment(podManagementPolicy="Random")
    assert (
        "spec.podManagementPolicy",
        "FieldValueInvalid",
        "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
    ) in _triples(_check("apps", "StatefulSet", sts))
    old = _deployment(serviceName="web")
    apply_defaults("apps", "v1", "StatefulSet", old)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert validate("apps", "v1", "StatefulSet", new, old) == []
    new["spec"]["serviceName"] = "other"
    assert (
        "spec",
        "FieldValueForbidden",
        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    ) in _triples(validate("apps", "v1", "StatefulSet", new, old))


def test_daemonset_rolling_update_rules() -> None:
    ds = _deployment(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    )
    assert (
        "spec.updateStrategy.rollingUpdate.maxSurge",
        "FieldValueInvalid",
        "Invalid value: 1: may not be set when maxUnavailable is non-zero",
    ) in _triples(_check("apps", "DaemonSet", ds))
    ds = _deployment(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    )
    assert (
        "spec.updateStrategy.rollingUpdate.maxUnavailable",
        "FieldValueRequired",
        "Required value: cannot be 0 when maxSurge is 0",
    ) in _triples(_check("apps", "DaemonSet", ds))


def _job(**spec: Any) -> Obj:
    base: Obj = {
        "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}
    }
    base.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "0c1a"},
        "spec": base,
    }


def test_valid_job_and_generated_selector_checks() -> None:
    assert _check("batch", "Job", _job()) == []
    job = _job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}})
    got = _triples(_check("batch", "Job", job))
    assert (
        "spec.selector",
        "FieldValueInvalid",
        'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"batch.kubernetes.io/controller-uid":"other"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: "
        "`selector` not auto-generated",
    ) in got


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"parallelism": -1},
            (
                "spec.parallelism",
                "FieldValueInvalid",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
        ),
        (
            {"backoffLimit": -1},
            (
                "spec.backoffLimit",
                "FieldValueInvalid",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
        ),
        (
            {"completionMode": "Sometimes"},
            (
                "spec.completionMode",
                "FieldValueNotSupported",
                'Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"',
            ),
        ),
        (
            {"completionMode": "Indexed", "parallelism": 2},
            ("spec.completions", "FieldValueRequired", "Required value: when completion mode is Indexed"),
        ),
        (
            {"podReplacementPolicy": "Never"},
            (
                "spec.podReplacementPolicy",
                "FieldValueNotSupported",
                'Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"',
            ),
        ),
    ],
)
def test_invalid_jobs(spec: Obj, expected: tuple[str, str, str]) -> None:
    assert expected in _triples(_check("batch", "Job", _job(**spec)))


def test_job_restart_policy() -> None:
    job = _job()
    del job["spec"]["template"]["spec"]["restartPolicy"]
    assert (
        "spec.template.spec.restartPolicy",
        "FieldValueRequired",
        'Required value: valid values: "OnFailure", "Never"',
    ) in _triples(_check("batch", "Job", job))


def test_job_update_immutability() -> None:
    old = _job()
    apply_defaults("batch", "v1", "Job", old)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    got = validate("batch", "v1", "Job", new, old)
    assert [(c.field, c.reason) for c in got] == [("spec.template", "FieldValueInvalid")]
    assert got[0].message.endswith(": field is immutable")
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 3
    assert ("spec.completions", "FieldValueInvalid", "Invalid value: 3: field is immutable") in _triples(
        validate("batch", "v1", "Job", new, old)
    )
    suspended = copy.deepcopy(old)
    suspended["spec"]["suspend"] = True
    moved = copy.deepcopy(suspended)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert validate("batch", "v1", "Job", moved, suspended) == []


def _cronjob(**spec: Any) -> Obj:
    base: Obj = {
        "schedule": "*/5 * * * *",
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}
                }
            }
        },
    }
    base.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": base,
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"schedule": ""}, ("spec.schedule", "FieldValueRequired", "Required value")),
        (
            {"schedule": "* * *"},
            (
                "spec.schedule",
                "FieldValueInvalid",
                'Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]',
            ),
        ),
        (
            {"schedule": "61 * * * *"},
            (
                "spec.schedule",
                "FieldValueInvalid",
                'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
            ),
        ),
        (
            {"schedule": "TZ=UTC * * * * *"},
            (
                "spec.schedule",
                "FieldValueInvalid",
                'Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
            ),
        ),
        (
            {"timeZone": "Mars/Olympus"},
            (
                "spec.timeZone",
                "FieldValueInvalid",
                'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
            ),
        ),
        (
            {"concurrencyPolicy": "Sometimes"},
            (
                "spec.concurrencyPolicy",
                "FieldValueNotSupported",
                'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
            ),
        ),
        (
            {"successfulJobsHistoryLimit": -1},
            (
                "spec.successfulJobsHistoryLimit",
                "FieldValueInvalid",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
        ),
    ],
)
def test_invalid_cronjobs(spec: Obj, expected: tuple[str, str, str]) -> None:
    assert expected in _triples(_check("batch", "CronJob", _cronjob(**spec)))


def test_cronjob_valid_and_name_length() -> None:
    assert _check("batch", "CronJob", _cronjob(schedule="@hourly", timeZone="Europe/Berlin")) == []
    long = _cronjob()
    long["metadata"]["name"] = "c" * 53
    assert (
        "metadata.name",
        "FieldValueInvalid",
        f'Invalid value: "{"c" * 53}": must be no more than 52 characters',
    ) in (_triples(_check("batch", "CronJob", long)))
    job_restart = _cronjob()
    job_restart["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert (
        "spec.jobTemplate.spec.template.spec.restartPolicy",
        "FieldValueRequired",
        'Required value: valid values: "OnFailure", "Never"',
    ) in _triples(_check("batch", "CronJob", job_restart))


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("*/15 0-6,18-23 1,15 jan-jun MON-FRI", None),
        ("0 0 * * 0", None),
        ("@every 1h30m", None),
        ("@weekly", None),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
    ],
)
def test_cron_schedule_parser(spec: str, error: str | None) -> None:
    assert schedule_error(spec) == error


# --- services -----------------------------------------------------------------------------------------


def _service(**spec: Any) -> Obj:
    base: Obj = {"selector": {"app": "x"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": base,
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"ports": []}, ("spec.ports", "FieldValueRequired", "Required value")),
        (
            {"ports": [{"port": 0}]},
            (
                "spec.ports[0].port",
                "FieldValueInvalid",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
        ),
        (
            {"ports": [{"port": 80}, {"port": 81}]},
            ("spec.ports[0].name", "FieldValueRequired", "Required value"),
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]},
            ("spec.ports[1].name", "FieldValueDuplicate", 'Duplicate value: "a"'),
        ),
        (
            {"type": "Magic"},
            (
                "spec.type",
                "FieldValueNotSupported",
                'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"',
            ),
        ),
        ({"type": "ExternalName"}, ("spec.externalName", "FieldValueRequired", "Required value")),
        (
            {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
            (
                "spec.ports[0].nodePort",
                "FieldValueInvalid",
                "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
            ),
        ),
        (
            {"ports": [{"port": 80, "nodePort": 30080}]},
            (
                "spec.ports[0].nodePort",
                "FieldValueForbidden",
                "Forbidden: may not be used when `type` is 'ClusterIP'",
            ),
        ),
        (
            {"type": "NodePort", "clusterIP": "None"},
            (
                "spec.clusterIPs[0]",
                "FieldValueInvalid",
                "Invalid value: \"None\": may not be set to 'None' for NodePort services",
            ),
        ),
        (
            {"sessionAffinity": "Sticky"},
            (
                "spec.sessionAffinity",
                "FieldValueNotSupported",
                'Unsupported value: "Sticky": supported values: "ClientIP", "None"',
            ),
        ),
        (
            {"clusterIP": "10.0.0.300"},
            (
                "spec.clusterIPs[0]",
                "FieldValueInvalid",
                'Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
            ),
        ),
        (
            {"ports": [{"port": 80, "targetPort": "web_port"}]},
            (
                "spec.ports[0].targetPort",
                "FieldValueInvalid",
                'Invalid value: "web_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
            ),
        ),
    ],
)
def test_invalid_services(spec: Obj, expected: tuple[str, str, str]) -> None:
    assert expected in _triples(_check("", "Service", _service(**spec)))


def test_service_valid_variants_and_cluster_ip_immutable() -> None:
    assert _check("", "Service", _service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])) == []
    assert _check("", "Service", _service(type="LoadBalancer")) == []
    assert (
        _check("", "Service", _service(type="ExternalName", externalName="db.example.com.", ports=[])) == []
    )
    assert _check("", "Service", _service(clusterIP="None", ports=[])) == []
    old = _service(clusterIP="10.96.0.10")
    apply_defaults("", "v1", "Service", old)
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    new["spec"]["clusterIPs"] = ["10.96.0.11"]
    assert (
        "spec.clusterIPs[0]",
        "FieldValueInvalid",
        'Invalid value: []string{"10.96.0.11"}: may not change once set',
    ) in _triples(validate("", "v1", "Service", new, old))


# --- config -------------------------------------------------------------------------------------------


def test_configmap_and_secret_keys_size_and_immutability() -> None:
    cm = {"metadata": {"name": "c", "namespace": "default"}, "data": {"bad key": "v", "ok.key": "v"}}
    assert _triples(_check("", "ConfigMap", cm)) == [
        (
            "data[bad key]",
            "FieldValueInvalid",
            "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name' or 'KEY_NAME' or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        )
    ]
    big = {"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "x" * (1024 * 1024 + 1)}}
    assert _triples(_check("", "ConfigMap", big)) == [
        ("", "FieldValueTooLong", "Too long: may not be more than 1048576 bytes")
    ]
    old = {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert (
        "data",
        "FieldValueForbidden",
        "Forbidden: field is immutable when `immutable` is set",
    ) in _triples(validate("", "v1", "ConfigMap", new, old))
    secret = {"metadata": {"name": "s", "namespace": "default"}, "data": {"k": "not base64!"}}
    got = _triples(_check("", "Secret", secret))
    assert (
        "data",
        "FieldValueInvalid",
        'Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3',
    ) in got
    tls = {
        "metadata": {"name": "s", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "x"},
    }
    assert ("data[tls.key]", "FieldValueRequired", "Required value") in _triples(_check("", "Secret", tls))
    old_secret = {"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque", "data": {}}
    changed = copy.deepcopy(old_secret)
    changed["type"] = "kubernetes.io/basic-auth"
    changed["data"] = {"username": "dQ=="}
    assert (
        "type",
        "FieldValueInvalid",
        'Invalid value: "kubernetes.io/basic-auth": field is immutable',
    ) in _triples(validate("", "v1", "Secret", changed, old_secret))


# --- storage, policy, rbac, others --------------------------------------------------------------------


def test_pvc_rules() -> None:
    pvc = {"metadata": {"name": "c", "namespace": "default"}, "spec": {"resources": {"requests": {}}}}
    got = _triples(_check("", "PersistentVolumeClaim", pvc))
    assert (
        "spec.accessModes",
        "FieldValueRequired",
        "Required value: at least 1 access mode is required",
    ) in got
    assert ("spec.resources[storage]", "FieldValueRequired", "Required value") in got
    old = {
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    assert _check("", "PersistentVolumeClaim", copy.deepcopy(old)) == []
    apply_defaults("", "v1", "PersistentVolumeClaim", old)
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert validate("", "v1", "PersistentVolumeClaim", grown, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    assert [c.field for c in validate("", "v1", "PersistentVolumeClaim", changed, old)] == ["spec"]


def test_hpa_pdb_priorityclass() -> None:
    hpa: Obj = {
        "metadata": {"name": "h", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
            "minReplicas": 5,
            "maxReplicas": 2,
        },
    }
    assert (
        "spec.maxReplicas",
        "FieldValueInvalid",
        "Invalid value: 2: must be greater than or equal to `minReplicas`",
    ) in (_triples(_check("autoscaling", "HorizontalPodAutoscaler", hpa, version="v2")))
    hpa["spec"].update(minReplicas=0, maxReplicas=3, scaleTargetRef={})
    got = _triples(_check("autoscaling", "HorizontalPodAutoscaler", hpa, version="v2"))
    assert (
        "spec.minReplicas",
        "FieldValueInvalid",
        "Invalid value: 0: must be greater than or equal to 1",
    ) in got
    assert ("spec.scaleTargetRef.kind", "FieldValueRequired", "Required value") in got
    pdb = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}},
    }
    got = _triples(_check("policy", "PodDisruptionBudget", pdb))
    assert [(f, r) for f, r, _ in got] == [("spec", "FieldValueInvalid")]
    assert got[0][2].endswith("minAvailable and maxUnavailable cannot be both set")
    pc = {"metadata": {"name": "huge"}, "value": 2000000000}
    assert (
        "value",
        "FieldValueForbidden",
        "Forbidden: maximum allowed value of a user defined priority is 1000000000",
    ) in (_triples(_check("scheduling.k8s.io", "PriorityClass", pc)))


def test_rbac_rules_and_bindings() -> None:
    role = {
        "metadata": {"name": "r", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"]}],
    }
    assert _triples(_check("rbac.authorization.k8s.io", "Role", role)) == [
        ("rules[0].verbs", "FieldValueRequired", "Required value: verbs must contain at least one value")
    ]
    binding = {
        "metadata": {"name": "b", "namespace": "default"},
        "roleRef": {"kind": "Secret", "name": "r"},
        "subjects": [{"kind": "Robot", "name": "x"}],
    }
    got = _triples(_check("rbac.authorization.k8s.io", "RoleBinding", binding))
    assert (
        "roleRef.kind",
        "FieldValueNotSupported",
        'Unsupported value: "Secret": supported values: "Role", "ClusterRole"',
    ) in got
    assert (
        "subjects[0].kind",
        "FieldValueNotSupported",
        'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
    ) in got
    crb = {
        "metadata": {"name": "b"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default"}],
    }
    assert ("subjects[0].namespace", "FieldValueRequired", "Required value") in _triples(
        _check("rbac.authorization.k8s.io", "ClusterRoleBinding", crb)
    )


def test_storage_class_crd_endpointslice_ingress_networkpolicy() -> None:
    sc = {"metadata": {"name": "fast"}}
    assert ("provisioner", "FieldValueRequired", "Required value") in _triples(
        _check("storage.k8s.io", "StorageClass", sc)
    )
    crd: Obj = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    assert _check("apiextensions.k8s.io", "CustomResourceDefinition", crd) == []
    crd["spec"]["versions"][0]["storage"] = False
    assert ("spec.versions", "FieldValueInvalid") in [
        (f, r) for f, r, _ in _triples(_check("apiextensions.k8s.io", "CustomResourceDefinition", crd))
    ]
    es = {"metadata": {"name": "e", "namespace": "default"}, "addressType": "IPv5", "endpoints": []}
    assert (
        "addressType",
        "FieldValueNotSupported",
        'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
    ) in (_triples(_check("discovery.k8s.io", "EndpointSlice", es)))
    ing = {
        "metadata": {"name": "i", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "host": "example.com",
                    "http": {
                        "paths": [
                            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                        ]
                    },
                }
            ]
        },
    }
    assert (
        "spec.rules[0].http.paths[0].pathType",
        "FieldValueRequired",
        "Required value: pathType must be specified",
    ) in (_triples(_check("networking.k8s.io", "Ingress", ing)))
    np = {
        "metadata": {"name": "n", "namespace": "default"},
        "spec": {"podSelector": {}, "policyTypes": ["Sideways"]},
    }
    assert (
        "spec.policyTypes[0]",
        "FieldValueNotSupported",
        'Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
    ) in _triples(_check("networking.k8s.io", "NetworkPolicy", np))


def test_status_update_and_unknown_kinds() -> None:
    old = _deployment()
    apply_defaults("apps", "v1", "Deployment", old)
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "readyReplicas": 2}
    assert _triples(validate_status_update("apps", "v1", "Deployment", new, old)) == [
        (
            "status.readyReplicas",
            "FieldValueInvalid",
            "Invalid value: 2: cannot be greater than status.replicas",
        )
    ]
    assert validate("example.com", "v1", "Widget", {"metadata": {}}, None) == []
    assert validate_status_update("example.com", "v1", "Widget", {}, {}) == []


def test_causes_build_kubernetes_invalid_message() -> None:
    dep = _deployment(selector={"matchLabels": {"app": "y"}})
    err = invalid("Deployment", "apps", "d", _check("apps", "Deployment", dep))
    assert err.message == (
        'Deployment.apps "d" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"x"}: `selector` does not match template `labels`'
    )


# --- helpers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("0.5", "500m"),
        ("1000m", "1"),
        ("1024Mi", "1Gi"),
        ("1500m", "1500m"),
        ("2000", "2k"),
        ("100Mi", "100Mi"),
        ("1e3", "1e3"),
    ],
)
def test_quantity_canonical_form(raw: str, text: str) -> None:
    assert canonical(raw) == text


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert go_quote("é") == '"é"'


def test_pod_validation_is_fast() -> None:
    import time

    pod = _ctr(ports=[{"containerPort": 80}], resources={"limits": {"cpu": "1", "memory": "1Gi"}})
    apply_defaults("", "v1", "Pod", pod)
    start = time.perf_counter()
    for _ in range(2000):
        validate("", "v1", "Pod", pod, None)
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 500e-6  # generous bound for CI noise; typically well under 100µs
