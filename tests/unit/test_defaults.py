"""Defaulting of built-in kinds matches Kubernetes 1.32's SetDefaults_* functions."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubelite.registry.defaulting.pods import pull_policy_for
from kubelite.registry.defaults import apply_defaults, normalize_secret

Obj = dict[str, Any]


def _pod_spec(**extra: Any) -> Obj:
    return {"containers": [{"name": "c", "image": "nginx"}], **extra}


def _pod(**extra: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": _pod_spec(**extra),
    }


def _defaulted(group: str, version: str, kind: str, obj: Obj) -> Obj:
    apply_defaults(group, version, kind, obj)
    return obj


def test_pod_spec_defaults() -> None:
    spec = _defaulted("", "v1", "Pod", _pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    ctr = spec["containers"][0]
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "File"
    assert ctr["imagePullPolicy"] == "Always"


def test_pod_defaults_keep_explicit_values() -> None:
    pod = _pod(
        restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0, enableServiceLinks=False
    )
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = _defaulted("", "v1", "Pod", pod)["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == (
        "Never",
        "Default",
        0,
    )
    assert spec["enableServiceLinks"] is False
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:v1", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("registry.k8s.io/pause:3.9", "IfNotPresent"),
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy_by_tag(image: str, policy: str) -> None:
    assert pull_policy_for(image) == policy


def test_container_ports_probes_and_hooks() -> None:
    pod = _pod()
    ctr = pod["spec"]["containers"][0]
    ctr["ports"] = [{"containerPort": 80}]
    ctr["livenessProbe"] = {"httpGet": {"port": 80}}
    ctr["readinessProbe"] = {"grpc": {"port": 9000}, "periodSeconds": 5}
    ctr["lifecycle"] = {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}}
    ctr["env"] = [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    ctr = _defaulted("", "v1", "Pod", pod)["spec"]["containers"][0]
    assert ctr["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert ctr["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert ctr["readinessProbe"]["periodSeconds"] == 5
    assert ctr["readinessProbe"]["grpc"]["service"] == ""
    assert ctr["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}
    assert ctr["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_volume_defaults() -> None:
    pod = _pod(
        volumes=[
            {"name": "scratch"},
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/tmp"}},
            {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
        ]
    )
    vols = {v["name"]: v for v in _defaulted("", "v1", "Pod", pod)["spec"]["volumes"]}
    assert vols["scratch"]["emptyDir"] == {}
    assert vols["cfg"]["configMap"]["defaultMode"] == 420
    assert vols["sec"]["secret"]["defaultMode"] == 256
    assert vols["host"]["hostPath"]["type"] == ""
    assert vols["proj"]["projected"]["defaultMode"] == 420
    assert vols["proj"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600


def test_pod_requests_default_from_limits_but_not_in_templates() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}}
    pod = _pod()
    pod["spec"]["containers"][0]["resources"] = dict(resources, requests=dict(resources["requests"]))
    ctr = _defaulted("", "v1", "Pod", pod)["spec"]["containers"][0]
    assert ctr["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    dep = _deployment()
    dep["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    tctr = _defaulted("apps", "v1", "Deployment", dep)["spec"]["template"]["spec"]["containers"][0]
    assert "requests" not in tctr["resources"]


def test_host_network_ports() -> None:
    pod = _pod(hostNetwork=True)
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    port = _defaulted("", "v1", "Pod", pod)["spec"]["containers"][0]["ports"][0]
    assert port["hostPort"] == 8080


def _deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": _pod_spec()},
        },
    }


def test_deployment_defaults() -> None:
    spec = _defaulted("apps", "v1", "Deployment", _deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and tspec["dnsPolicy"] == "ClusterFirst"
    assert "enableServiceLinks" not in tspec  # a Pod-only default


def test_deployment_recreate_has_no_rolling_update() -> None:
    dep = _deployment()
    dep["spec"]["strategy"] = {"type": "Recreate"}
    assert _defaulted("apps", "v1", "Deployment", dep)["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_daemonset_statefulset_defaults() -> None:
    rs = _defaulted("apps", "v1", "ReplicaSet", _deployment())
    assert rs["spec"]["replicas"] == 1
    ds = _defaulted("apps", "v1", "DaemonSet", _deployment())["spec"]
    assert ds["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["revisionHistoryLimit"] == 10
    sts = _deployment()
    sts["spec"]["volumeClaimTemplates"] = [
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    ]
    spec = _defaulted("apps", "v1", "StatefulSet", sts)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}


def _job(uid: str | None = "uid-1") -> Obj:
    meta: Obj = {"name": "pi", "namespace": "default"}
    if uid:
        meta["uid"] = uid
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"template": {"spec": _pod_spec(restartPolicy="Never")}},
    }


def test_job_defaults_and_generated_selector() -> None:
    job = _defaulted("batch", "v1", "Job", _job())
    spec = job["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-1"}}
    expected = {
        "batch.kubernetes.io/controller-uid": "uid-1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "uid-1",
        "job-name": "pi",
    }
    assert spec["template"]["metadata"]["labels"] == expected
    assert job["metadata"]["labels"] == expected


def test_job_parallelism_only_leaves_completions_unset() -> None:
    job = _job()
    job["spec"]["parallelism"] = 3
    job["spec"]["backoffLimitPerIndex"] = 1
    spec = _defaulted("batch", "v1", "Job", job)["spec"]
    assert spec["parallelism"] == 3 and "completions" not in spec
    assert spec["backoffLimit"] == 2**31 - 1


def test_job_manual_selector_and_missing_uid_generate_nothing() -> None:
    job = _job(uid=None)
    spec = _defaulted("batch", "v1", "Job", job)["spec"]
    assert "selector" not in spec
    manual = _job()
    manual["spec"]["manualSelector"] = True
    assert "selector" not in _defaulted("batch", "v1", "Job", manual)["spec"]


def test_job_pod_failure_policy_defaults() -> None:
    job = _job()
    job["spec"]["podFailurePolicy"] = {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    }
    spec = _defaulted("batch", "v1", "Job", job)["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_cronjob_defaults() -> None:
    cj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": _pod_spec()}}}},
    }
    spec = _defaulted("batch", "v1", "CronJob", cj)["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]


def _service(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}, **spec},
    }


def test_service_defaults() -> None:
    spec = _defaulted("", "v1", "Service", _service())["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert "externalTrafficPolicy" not in spec and "clusterIP" not in spec


def test_service_nodeport_loadbalancer_externalname_headless() -> None:
    lb = _defaulted("", "v1", "Service", _service(type="LoadBalancer"))["spec"]
    assert lb["externalTrafficPolicy"] == "Cluster" and lb["allocateLoadBalancerNodePorts"] is True
    ext = _defaulted("", "v1", "Service", _service(type="ExternalName", externalName="x.example.com"))["spec"]
    assert "ipFamilies" not in ext and "ipFamilyPolicy" not in ext and "internalTrafficPolicy" not in ext
    headless = _service(clusterIP="None")
    del headless["spec"]["selector"]
    spec = _defaulted("", "v1", "Service", headless)["spec"]
    assert spec["clusterIPs"] == ["None"]
    assert spec["ipFamilyPolicy"] == "RequireDualStack" and spec["ipFamilies"] == ["IPv4", "IPv6"]
    v6 = _defaulted("", "v1", "Service", _service(clusterIP="fd00::10"))["spec"]
    assert v6["clusterIPs"] == ["fd00::10"] and v6["ipFamilies"] == ["IPv6"]


def test_service_client_ip_affinity_timeout() -> None:
    spec = _defaulted("", "v1", "Service", _service(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_namespace_secret_pvc_pv_defaults() -> None:
    ns = _defaulted("", "v1", "Namespace", {"metadata": {"name": "team"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    secret = _defaulted("", "v1", "Secret", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"k": base64.b64encode(b"v").decode()} and "stringData" not in secret
    pvc = _defaulted("", "v1", "PersistentVolumeClaim", {"metadata": {"name": "c"}, "spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem" and pvc["status"]["phase"] == "Pending"
    pv = _defaulted("", "v1", "PersistentVolume", {"metadata": {"name": "v"}, "spec": {}})
    assert (
        pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["volumeMode"] == "Filesystem"
    )


def test_normalize_secret_overrides_data_keys() -> None:
    secret = {"data": {"a": "b2xk", "b": "eA=="}, "stringData": {"a": "new"}}
    normalize_secret(secret)
    assert secret == {"data": {"a": base64.b64encode(b"new").decode(), "b": "eA=="}}


def test_replication_controller_defaults_from_template_labels() -> None:
    rc = {
        "metadata": {"name": "rc"},
        "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": _pod_spec()}},
    }
    rc = _defaulted("", "v1", "ReplicationController", rc)
    assert rc["spec"]["selector"] == {"app": "x"} and rc["metadata"]["labels"] == {"app": "x"}
    assert rc["spec"]["replicas"] == 1


def test_other_group_defaults() -> None:
    pc = _defaulted("scheduling.k8s.io", "v1", "PriorityClass", {"value": 10})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    sc = _defaulted("storage.k8s.io", "v1", "StorageClass", {"provisioner": "x.io/p"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    np = _defaulted(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        {"spec": {"egress": [{"ports": [{"port": 53}]}], "podSelector": {}}},
    )
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    ingress_only = _defaulted("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}}})
    assert ingress_only["spec"]["policyTypes"] == ["Ingress"]
    es = _defaulted(
        "discovery.k8s.io", "v1", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]}
    )
    assert es["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    rb = _defaulted(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        {
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}],
        },
    )
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s["apiGroup"] for s in rb["subjects"]] == ["rbac.authorization.k8s.io", ""]
    crd = _defaulted(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        {"spec": {"names": {"kind": "Widget", "plural": "widgets"}}},
    )
    assert crd["spec"]["names"]["singular"] == "widget" and crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}


def test_hpa_defaults() -> None:
    v2 = _defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}})
    assert v2["spec"]["minReplicas"] == 1
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert "behavior" not in v2["spec"]
    with_behavior = _defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        {"spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
    )
    behavior = with_behavior["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    assert (
        behavior["scaleUp"]["stabilizationWindowSeconds"] == 0 and len(behavior["scaleUp"]["policies"]) == 2
    )
    v1 = _defaulted("autoscaling", "v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}})
    assert v1["spec"] == {"maxReplicas": 3, "minReplicas": 1}


def test_unknown_kinds_are_untouched() -> None:
    obj = {"spec": {"x": 1}}
    apply_defaults("example.com", "v1", "Widget", obj)
    apply_defaults("", "v1", "ConfigMap", obj)
    assert obj == {"spec": {"x": 1}}
