"""Server-side Table printing: columns and cells as ``kubectl get`` shows them on a real cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.api.humanize import (
    human_duration,
    parse_time,
    short_human_duration,
    translate_timestamp_since,
)
from kubelite.registry import tables
from kubelite.registry.printers.jsonpath import JSONPathError, find, parse
from kubelite.registry.resources import BUILTIN

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ago(**kw: float) -> str:
    """An RFC 3339 timestamp ``kw`` before NOW."""
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(minutes=5), **kw}


def header(group: str, resource: str) -> list[tuple[str, int]]:
    return [(c.name, c.priority) for c in tables.columns_for(group, resource)]


def cells(group: str, resource: str, obj: dict[str, Any]) -> list[Any]:
    return tables.row_cells(group, resource, obj, NOW)


# ---------------------------------------------------------------- humanize


@pytest.mark.parametrize(
    ("delta", "want"),
    [
        # apimachinery duration_test.go TestHumanDuration
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=70), "70s"),
        (timedelta(seconds=190), "3m10s"),
        (timedelta(minutes=70), "70m"),
        (timedelta(hours=47), "47h"),
        (timedelta(hours=49), "2d1h"),
        (timedelta(hours=8 * 24 + 2), "8d"),
        (timedelta(hours=367 * 24), "367d"),
        (timedelta(hours=365 * 2 * 24 + 25), "2y1d"),
        (timedelta(hours=365 * 8 * 24 + 2), "8y"),
        # boundaries
        (timedelta(0), "0s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(seconds=120), "2m"),
        (timedelta(seconds=123), "2m3s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10, seconds=30), "10m"),
        (timedelta(minutes=179), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=4, seconds=59), "3h4m"),
        (timedelta(hours=8, minutes=30), "8h"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=45), "45d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=365 * 20), "20y"),
        # clock skew: up to 2s in the future reads as now, beyond that as invalid
        (timedelta(seconds=-1.5), "0s"),
        (timedelta(seconds=-0.2), "0s"),
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(minutes=-5), "<invalid>"),
    ],
)
def test_human_duration_matches_apimachinery(delta: timedelta, want: str) -> None:
    assert human_duration(delta) == want


@pytest.mark.parametrize(
    ("delta", "want"),
    [
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=90), "1m"),
        (timedelta(minutes=59), "59m"),
        (timedelta(hours=1, minutes=59), "1h"),
        (timedelta(hours=49), "2d"),
        (timedelta(days=364), "364d"),
        (timedelta(days=800), "2y"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(seconds=-3), "<invalid>"),
    ],
)
def test_short_human_duration(delta: timedelta, want: str) -> None:
    assert short_human_duration(delta) == want


def test_translate_timestamp_since() -> None:
    assert translate_timestamp_since(ago(minutes=5), NOW) == "5m"
    assert translate_timestamp_since("2024-05-01T11:59:30.123456789Z", NOW) == "29s"
    assert translate_timestamp_since("2024-05-01T13:00:00+01:00", NOW) == "0s"
    assert translate_timestamp_since(None, NOW) == "<unknown>"
    assert translate_timestamp_since("", NOW) == "<unknown>"
    assert translate_timestamp_since("garbage", NOW) == "<unknown>"
    assert parse_time("2024-05-01T12:00:00Z") == NOW


@given(st.integers(min_value=0, max_value=10**10))
def test_human_duration_is_short_and_has_at_most_two_units(seconds: int) -> None:
    text = human_duration(timedelta(seconds=seconds))
    units = sum(text.count(u) for u in "smhdy")
    assert 1 <= units <= 2
    assert len(text) <= 9


# ---------------------------------------------------------------- pods


def pod(status: dict[str, Any], spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    base_spec = {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "n1"}
    return {"metadata": meta("web-1", **metadata), "spec": {**base_spec, **(spec or {})}, "status": status}


def running(name: str = "app", ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "started": True,
        "state": {"running": {"startedAt": ago(minutes=4)}},
    }


def test_pod_columns() -> None:
    assert header("", "pods") == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    name = tables.columns_for("", "pods")[0]
    assert (name.format, name.type) == ("name", "string")
    assert name.description.startswith("Name must be unique within a namespace.")


def test_pod_running() -> None:
    p = pod({"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}], "containerStatuses": [running()]})
    assert cells("", "pods", p) == [
        "web-1",
        "1/1",
        "Running",
        "0",
        "5m",
        "10.244.0.5",
        "n1",
        "<none>",
        "<none>",
    ]


def test_pod_crash_loop_back_off_with_restarts() -> None:
    status = {
        "phase": "Running",
        "podIP": "10.244.0.7",
        "containerStatuses": [
            {
                "name": "app",
                "ready": False,
                "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=2)}},
            }
        ],
    }
    row = cells("", "pods", pod(status))
    assert row[1:6] == ["0/1", "CrashLoopBackOff", "5 (2m ago)", "5m", "10.244.0.7"]


def test_pod_pending_and_creating() -> None:
    pending = pod({"phase": "Pending"}, spec={"nodeName": ""})
    assert cells("", "pods", pending)[1:4] == ["0/1", "Pending", "0"]
    assert cells("", "pods", pending)[6] == "<none>"
    creating = pod(
        {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
            ],
        }
    )
    assert cells("", "pods", creating)[1:3] == ["0/1", "ContainerCreating"]


def test_pod_completed_and_error() -> None:
    done = pod(
        {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": False,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
        }
    )
    assert cells("", "pods", done)[1:3] == ["0/1", "Completed"]
    assert tables.row_conditions("", "pods", done)[0]["type"] == "Completed"
    killed = pod(
        {
            "phase": "Failed",
            "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 137}}}],
        }
    )
    assert cells("", "pods", killed)[2] == "ExitCode:137"
    signaled = pod(
        {"phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": {"signal": 9}}}]}
    )
    assert cells("", "pods", signaled)[2] == "Signal:9"


def test_pod_completed_container_with_running_sibling() -> None:
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            running("a"),
            {"name": "b", "ready": False, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        ],
    }
    spec = {"containers": [{"name": "a"}, {"name": "b"}]}
    assert cells("", "pods", pod(status, spec))[1:3] == ["1/2", "NotReady"]
    status["conditions"] = [{"type": "Ready", "status": "True"}]
    assert cells("", "pods", pod(status, spec))[1:3] == ["1/2", "Running"]


def test_pod_init_containers() -> None:
    spec = {"initContainers": [{"name": "init-a"}, {"name": "init-b"}]}
    waiting = {
        "phase": "Pending",
        "initContainerStatuses": [
            {"name": "init-a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "init-b", "state": {"running": {}}},
        ],
        "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}],
    }
    assert cells("", "pods", pod(waiting, spec))[1:3] == ["0/1", "Init:1/2"]
    crash = {
        "phase": "Pending",
        "initContainerStatuses": [
            {
                "name": "init-a",
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=30)}},
            }
        ],
    }
    assert cells("", "pods", pod(crash, spec))[1:4] == ["0/1", "Init:CrashLoopBackOff", "3 (30s ago)"]
    failed = {
        "phase": "Pending",
        "initContainerStatuses": [{"name": "init-a", "state": {"terminated": {"exitCode": 2}}}],
    }
    assert cells("", "pods", pod(failed, spec))[2] == "Init:ExitCode:2"


def test_pod_sidecar_counts_towards_ready() -> None:
    spec = {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}]}
    status = {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [running("proxy", restarts=1)],
        "containerStatuses": [running()],
    }
    assert cells("", "pods", pod(status, spec))[1:4] == ["2/2", "Running", "1"]


def test_pod_terminating_and_lost_node() -> None:
    status = {"phase": "Running", "containerStatuses": [running()]}
    deleting = pod(status, deletionTimestamp=ago(seconds=3))
    assert cells("", "pods", deleting)[2] == "Terminating"
    lost = pod({**status, "reason": "NodeLost"}, deletionTimestamp=ago(seconds=3))
    assert cells("", "pods", lost)[2] == "Unknown"
    finished = pod({"phase": "Succeeded"}, deletionTimestamp=ago(seconds=3))
    assert cells("", "pods", finished)[2] == "Succeeded"


def test_pod_wide_columns() -> None:
    status = {
        "phase": "Pending",
        "nominatedNodeName": "n2",
        "conditions": [
            {"type": "example.com/gate", "status": "True"},
            {"type": "PodScheduled", "status": "False"},
        ],
    }
    spec = {
        "nodeName": "",
        "readinessGates": [{"conditionType": "example.com/gate"}, {"conditionType": "other"}],
    }
    assert cells("", "pods", pod(status, spec))[5:] == ["<none>", "<none>", "n2", "1/2"]
    gated = pod({"phase": "Pending", "conditions": [{"type": "PodScheduled", "reason": "SchedulingGated"}]})
    assert cells("", "pods", gated)[2] == "SchedulingGated"


# ---------------------------------------------------------------- apps


def deployment(replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": meta("web"),
        "spec": {
            "replicas": replicas,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}],
            },
            "template": {
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.27"},
                        {"name": "log", "image": "busybox"},
                    ]
                }
            },
        },
        "status": {"replicas": 3, "readyReplicas": ready, "updatedReplicas": 3, "availableReplicas": ready},
    }


def test_deployment() -> None:
    assert header("apps", "deployments") == [
        ("Name", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ]
    assert cells("apps", "deployments", deployment(3, 2)) == [
        "web",
        "2/3",
        3,
        2,
        "5m",
        "nginx,log",
        "nginx:1.27,busybox",
        "app=web,tier in (be,fe)",
    ]
    fresh = deployment(3, 0)
    del fresh["status"]
    assert cells("apps", "deployments", fresh)[1:4] == ["0/3", 0, 0]


def test_replica_set_stateful_set_daemon_set() -> None:
    rs = deployment(3, 2)
    assert cells("apps", "replicasets", rs)[1:5] == [3, 3, 2, "5m"]
    assert [c.type for c in tables.columns_for("apps", "replicasets")][1:4] == ["integer"] * 3
    sts = {"metadata": meta("db"), "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}
    assert cells("apps", "statefulsets", sts)[:3] == ["db", "1/3", "5m"]
    ds = {
        "metadata": meta("agent"),
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{"name": "a", "image": "a:1"}],
                }
            },
        },
        "status": {
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "numberReady": 1,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
        },
    }
    assert cells("apps", "daemonsets", ds) == [
        "agent",
        2,
        2,
        1,
        2,
        1,
        "kubernetes.io/os=linux",
        "5m",
        "a",
        "a:1",
        "app=agent",
    ]


def test_controller_revision() -> None:
    cr = {
        "metadata": meta(
            "web-7d4b9c",
            ownerReferences=[
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}
            ],
        ),
        "revision": 2,
    }
    assert cells("apps", "controllerrevisions", cr) == ["web-7d4b9c", "statefulset.apps/web", 2, "5m"]


# ---------------------------------------------------------------- batch


def test_job_complete_with_duration() -> None:
    assert header("batch", "jobs")[:5] == [
        ("Name", 0),
        ("Status", 0),
        ("Completions", 0),
        ("Duration", 0),
        ("Age", 0),
    ]
    job = {
        "metadata": meta("pi"),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}},
        },
        "status": {
            "succeeded": 1,
            "startTime": ago(minutes=5),
            "completionTime": ago(minutes=4, seconds=23),
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
        },
    }
    assert cells("batch", "jobs", job) == [
        "pi",
        "Complete",
        "1/1",
        "37s",
        "5m",
        "pi",
        "perl:5.34",
        "batch.kubernetes.io/controller-uid=abc",
    ]


def test_job_running_failed_suspended() -> None:
    job: dict[str, Any] = {
        "metadata": meta("j"),
        "spec": {"parallelism": 3},
        "status": {"startTime": ago(minutes=2, seconds=10), "succeeded": 1},
    }
    assert cells("batch", "jobs", job)[1:4] == ["Running", "1/1 of 3", "2m10s"]
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    assert cells("batch", "jobs", job)[1] == "Failed"
    job["status"]["conditions"] = [{"type": "Suspended", "status": "True"}]
    assert cells("batch", "jobs", job)[1] == "Suspended"
    job["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert cells("batch", "jobs", job)[1] == "Terminating"
    not_started = {"metadata": meta("j"), "spec": {"completions": 5}}
    assert cells("batch", "jobs", not_started)[1:4] == ["Running", "0/5", ""]


def test_cron_job() -> None:
    cj = {
        "metadata": meta("hello"),
        "spec": {
            "schedule": "*/1 * * * *",
            "suspend": False,
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}
            },
        },
        "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(seconds=42)},
    }
    assert cells("batch", "cronjobs", cj) == [
        "hello",
        "*/1 * * * *",
        "<none>",
        "False",
        1,
        "42s",
        "5m",
        "hello",
        "busybox",
        "<none>",
    ]
    assert [c.type for c in tables.columns_for("batch", "cronjobs")][3:5] == ["boolean", "integer"]


# ---------------------------------------------------------------- core


def service(svc_type: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": meta("web"),
        "spec": {"type": svc_type, "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"], **spec},
    }


def test_services() -> None:
    assert header("", "services") == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ]
    node_port = service(
        "NodePort",
        ports=[
            {"port": 80, "nodePort": 30080, "protocol": "TCP"},
            {"port": 53, "protocol": "UDP", "nodePort": 31053},
        ],
        selector={"app": "web"},
    )
    assert cells("", "services", node_port) == [
        "web",
        "NodePort",
        "10.96.12.34",
        "<none>",
        "80:30080/TCP,53:31053/UDP",
        "5m",
        "app=web",
    ]
    cluster = service("ClusterIP", ports=[{"port": 443, "targetPort": 6443, "protocol": "TCP"}])
    assert cells("", "services", cluster)[2:5] == ["10.96.12.34", "<none>", "443/TCP"]
    pending = service("LoadBalancer", ports=[{"port": 80, "nodePort": 31000, "protocol": "TCP"}])
    assert cells("", "services", pending)[3] == "<pending>"
    lb = service("LoadBalancer", externalIPs=["1.2.3.4"])
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}
    assert cells("", "services", lb)[3:5] == ["203.0.113.9,lb.example.com,1.2.3.4", "<none>"]
    ext = {"metadata": meta("db"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert cells("", "services", ext)[1:4] == ["ExternalName", "<none>", "db.example.com"]
    headless = service("ClusterIP", clusterIP="None", clusterIPs=["None"])
    assert cells("", "services", headless)[2] == "None"


def test_node_with_role_label() -> None:
    node: dict[str, Any] = {
        "metadata": {
            "name": "cp-1",
            "creationTimestamp": ago(days=45, hours=3),
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "kubernetes.io/role": "master",
                "kubernetes.io/os": "linux",
            },
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.2"},
                {"type": "Hostname", "address": "cp-1"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.8.0",
                "containerRuntimeVersion": "containerd://1.7.24",
            },
        },
    }
    assert header("", "nodes")[:5] == [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0)]
    assert cells("", "nodes", node) == [
        "cp-1",
        "Ready,SchedulingDisabled",
        "control-plane,master",
        "45d",
        "v1.32.0",
        "172.18.0.2",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.8.0",
        "containerd://1.7.24",
    ]
    node["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    assert cells("", "nodes", node)[1] == "NotReady,SchedulingDisabled"


def test_event_object_and_source() -> None:
    assert header("", "events") == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    assert tables.columns_for("", "events")[-1].format == "name"
    ev = {
        "metadata": meta("web-1.17c2b"),
        "involvedObject": {
            "kind": "Pod",
            "name": "web-1",
            "namespace": "default",
            "fieldPath": "spec.containers{app}",
        },
        "reason": "Pulled",
        "message": 'Successfully pulled image "nginx"\n',
        "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(minutes=3),
        "count": 4,
    }
    assert cells("", "events", ev) == [
        "3m",
        "Normal",
        "Pulled",
        "pod/web-1",
        "spec.containers{app}",
        "kubelet, n1",
        'Successfully pulled image "nginx"',
        "10m",
        4,
        "web-1.17c2b",
    ]


def test_event_new_style_and_events_k8s_io() -> None:
    core_ev = {
        "metadata": meta("e"),
        "involvedObject": {"kind": "Node"},
        "eventTime": ago(seconds=20),
        "reportingComponent": "scheduler",
        "type": "Warning",
        "reason": "FailedScheduling",
        "message": "0/1 nodes are available",
    }
    assert cells("", "events", core_ev)[:9] == [
        "20s",
        "Warning",
        "FailedScheduling",
        "node",
        "",
        "scheduler",
        "0/1 nodes are available",
        "20s",
        1,
    ]
    v1 = {
        "metadata": meta("e2"),
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up replica set web-5d to 3",
        "type": "Normal",
        "reason": "ScalingReplicaSet",
        "eventTime": ago(minutes=7),
        "series": {"count": 6, "lastObservedTime": ago(seconds=50)},
        "reportingController": "deployment-controller",
    }
    assert cells("events.k8s.io", "events", v1) == [
        "50s",
        "Normal",
        "ScalingReplicaSet",
        "deployment/web",
        "",
        "deployment-controller",
        "Scaled up replica set web-5d to 3",
        "7m",
        6,
        "e2",
    ]


def test_small_core_kinds() -> None:
    assert cells("", "namespaces", {"metadata": meta("dev"), "status": {"phase": "Active"}}) == [
        "dev",
        "Active",
        "5m",
    ]
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells("", "configmaps", cm) == ["cfg", 3, "5m"]
    secret = {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    assert cells("", "secrets", secret) == ["tls", "kubernetes.io/tls", 2, "5m"]
    assert header("", "secrets") == [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]
    assert cells("", "serviceaccounts", {"metadata": meta("default")}) == ["default", 0, "5m"]
    ep = {
        "metadata": meta("web"),
        "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        ],
    }
    assert cells("", "endpoints", ep)[1] == "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    quota = {
        "metadata": meta("q"),
        "status": {
            "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi"},
            "used": {"pods": "3", "requests.cpu": "500m"},
        },
    }
    assert cells("", "resourcequotas", quota) == [
        "q",
        "pods: 3/10, requests.cpu: 500m/2",
        "limits.memory: 0/2Gi",
        "5m",
    ]


def test_persistent_volumes_and_claims() -> None:
    pv = {
        "metadata": meta("pv-1"),
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "default", "name": "data"},
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    }
    assert cells("", "persistentvolumes", pv) == [
        "pv-1",
        "10Gi",
        "RWO,RWX",
        "Retain",
        "Bound",
        "default/data",
        "standard",
        "<unset>",
        "",
        "5m",
        "Filesystem",
    ]
    pvc = {
        "metadata": meta("data"),
        "spec": {"volumeName": "pv-1", "storageClassName": "standard"},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]},
    }
    assert cells("", "persistentvolumeclaims", pvc)[:8] == [
        "data",
        "Bound",
        "pv-1",
        "10Gi",
        "RWO",
        "standard",
        "<unset>",
        "5m",
    ]
    unbound = {"metadata": meta("x"), "spec": {}, "status": {"phase": "Pending"}}
    assert cells("", "persistentvolumeclaims", unbound)[1:5] == ["Pending", "", "", ""]


# ---------------------------------------------------------------- other groups


def test_ingress_and_class() -> None:
    ing = {
        "metadata": meta("web"),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
            "tls": [{}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}},
    }
    assert cells("networking.k8s.io", "ingresses", ing) == [
        "web",
        "nginx",
        "a.example.com,b.example.com",
        "192.168.49.2",
        "80, 443",
        "5m",
    ]
    bare = {"metadata": meta("x"), "spec": {"defaultBackend": {}}}
    assert cells("networking.k8s.io", "ingresses", bare)[1:5] == ["<none>", "*", "", "80"]
    ic = {
        "metadata": meta("nginx"),
        "spec": {
            "controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"},
        },
    }
    assert cells("networking.k8s.io", "ingressclasses", ic)[1:3] == [
        "k8s.io/ingress-nginx",
        "IngressParameters.k8s.example.com/p",
    ]


def test_network_policy_endpoint_slice_pdb() -> None:
    np = {"metadata": meta("deny"), "spec": {"podSelector": {}}}
    assert cells("networking.k8s.io", "networkpolicies", np) == ["deny", "<none>", "5m"]
    es = {
        "metadata": meta("web-abc"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
    }
    assert cells("discovery.k8s.io", "endpointslices", es) == [
        "web-abc",
        "IPv4",
        "80,named",
        "10.0.0.1,10.0.0.2",
        "5m",
    ]
    pdb = {"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    assert cells("policy", "poddisruptionbudgets", pdb) == ["web", "50%", "N/A", 1, "5m"]


def test_rbac_bindings_and_default_tables() -> None:
    rb = {
        "metadata": meta("read"),
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "jane"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "default"},
        ],
    }
    assert header("rbac.authorization.k8s.io", "rolebindings") == [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ]
    assert cells("rbac.authorization.k8s.io", "rolebindings", rb) == [
        "read",
        "ClusterRole/view",
        "5m",
        "jane",
        "devs",
        "kube-system/default, default/ci",
    ]
    for group, resource in [
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("", "limitranges"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ]:
        cols = tables.columns_for(group, resource)
        assert [(c.name, c.type, c.format) for c in cols] == [
            ("Name", "string", "name"),
            ("Created At", "date", ""),
        ]
        assert not tables.has_printer(group, resource)
    role = {"metadata": {"name": "admin", "creationTimestamp": "2024-04-30T08:09:10Z"}}
    assert cells("rbac.authorization.k8s.io", "clusterroles", role) == ["admin", "2024-04-30T08:09:10Z"]
    assert tables.default_cells({"metadata": {"name": "x"}}) == ["x", "0001-01-01T00:00:00Z"]


def test_storage_priority_lease_hpa() -> None:
    sc = {
        "metadata": meta("standard", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert cells("storage.k8s.io", "storageclasses", sc) == [
        "standard (default)",
        "rancher.io/local-path",
        "Delete",
        "WaitForFirstConsumer",
        False,
        "5m",
    ]
    pc = {
        "metadata": meta("high"),
        "value": 1000000,
        "globalDefault": False,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    assert cells("scheduling.k8s.io", "priorityclasses", pc) == [
        "high",
        1000000,
        False,
        "5m",
        "PreemptLowerPriority",
    ]
    lease = {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_abc"}}
    assert cells("coordination.k8s.io", "leases", lease) == ["kube-scheduler", "cp-1_abc", "5m"]
    hpa = {
        "metadata": meta("web"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "100Mi"},
                    },
                },
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "qps"},
                        "target": {"type": "AverageValue", "averageValue": "1k"},
                    },
                },
            ],
        },
        "status": {
            "currentReplicas": 2,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42}}}
            ],
        },
    }
    assert cells("autoscaling", "horizontalpodautoscalers", hpa) == [
        "web",
        "Deployment/web",
        "cpu: 42%/80%, memory: <unknown>/100Mi + 1 more...",
        "1",
        10,
        2,
        "5m",
    ]
    v1 = {
        "metadata": meta("old"),
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "old"},
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50,
        },
    }
    assert cells("autoscaling", "horizontalpodautoscalers", v1)[2:4] == ["cpu: <unknown>/50%", "<unset>"]


# ---------------------------------------------------------------- CRDs


APC: list[dict[str, Any]] = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "priority": 0,
    },
    {
        "name": "Image",
        "type": "string",
        "jsonPath": ".spec.image",
        "priority": 1,
        "description": "The image.",
    },
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def test_crd_columns() -> None:
    cols = tables.crd_columns(APC)
    assert [(c.name, c.type, c.priority) for c in cols] == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("Image", "string", 1),
        ("Ratio", "number", 0),
        ("Paused", "boolean", 0),
        ("Age", "date", 0),
    ]
    assert cols[0].format == "name"
    assert cols[1].description == "Custom resource definition column (in JSONPath format): .spec.replicas"
    assert cols[3].description == "The image."


def test_crd_row_cells() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("w1"),
        "spec": {"replicas": 3, "image": "nginx", "ratio": 2},
        "status": {
            "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]
        },
    }
    assert tables.crd_row_cells(APC, obj, NOW) == ["w1", 3, "False", "nginx", 2.0, None, "5m"]
    assert tables.crd_row_cells(APC, {"metadata": {"name": "bare"}}, NOW) == [
        "bare",
        None,
        None,
        None,
        None,
        None,
        None,
    ]


def test_crd_without_columns_gets_age() -> None:
    cols = tables.crd_columns([])
    assert [(c.name, c.type, c.format) for c in cols] == [("Name", "string", "name"), ("Age", "date", "")]
    assert tables.crd_row_cells(None, {"metadata": meta("w")}, NOW) == ["w", "5m"]


def test_crd_string_cells_print_like_jsonpath() -> None:
    apc = [{"name": "V", "type": "string", "jsonPath": ".spec.v"}]
    for value, want in [
        (3, "3"),
        (1.5, "1.5"),
        (2.0, "2"),
        (True, "true"),
        ({"b": 1, "a": [1, "x"]}, '{"a":[1,"x"],"b":1}'),
    ]:
        assert tables.crd_row_cells(apc, {"metadata": {"name": "o"}, "spec": {"v": value}}, NOW)[1] == want
    bad_date = [{"name": "T", "type": "date", "jsonPath": ".spec.t"}]
    assert tables.crd_row_cells(bad_date, {"spec": {"t": "yesterday"}}, NOW)[1] == "<invalid>"


def test_jsonpath_subset() -> None:
    data = {"a": {"b.c": [1, 2, 3], "list": [{"k": "x", "v": 1}, {"k": "y", "v": 2}]}}
    assert find(parse(".a.b\\.c[1]"), data) == [2]
    assert find(parse("{.a['b.c'][-1]}"), data) == [3]
    assert find(parse(".a.b\\.c[0:2]"), data) == [1, 2]
    assert find(parse(".a.list[*].k"), data) == ["x", "y"]
    assert find(parse('.a.list[?(@.k=="y")].v'), data) == [2]
    assert find(parse(".a.list[?(@.v > 1)].k"), data) == ["y"]
    assert find(parse(".a.list[?(@.v)].k"), data) == ["x", "y"]
    assert find(parse(".a.missing.deeper"), data) == []
    with pytest.raises(JSONPathError):
        parse(".a[?(@.k ~ 1)]")


def test_crd_unparsable_column_stops_like_apiextensions() -> None:
    apc = [
        {"name": "A", "type": "string", "jsonPath": ".spec.a"},
        {"name": "B", "type": "string", "jsonPath": "spec b"},
    ]
    assert [c.name for c in tables.crd_columns(apc)] == ["Name", "A"]


# ---------------------------------------------------------------- the Table body


def test_build_table_with_partial_object_metadata() -> None:
    table = tables.table_for(
        "apps", "deployments", [deployment(3, 2)], NOW, list_metadata={"resourceVersion": "1007"}
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "1007"}
    assert table["columnDefinitions"][0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": tables.columns_for("apps", "deployments")[0].description,
        "priority": 0,
    }
    row = table["rows"][0]
    assert row["cells"][:2] == ["web", "2/3"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert row["object"]["metadata"]["name"] == "web"
    full = tables.table_for("apps", "deployments", [deployment(3, 2)], NOW, include_object="Object")
    assert full["rows"][0]["object"]["spec"]["replicas"] == 3
    none = tables.table_for("apps", "deployments", [deployment(3, 2)], NOW, include_object="None")
    assert "object" not in none["rows"][0]
    crd = tables.table_for("example.com", "widgets", [{"metadata": meta("w")}], NOW, custom=True)
    assert crd["rows"][0]["cells"] == ["w", "5m"]


def test_every_builtin_resource_has_consistent_columns() -> None:
    for res in BUILTIN:
        cols = tables.columns_for(res.group, res.plural)
        assert cols[0].name in ("Name", "Last Seen")
        assert sum(1 for c in cols if c.format == "name") == 1
        assert all(c.priority in (0, 1) for c in cols)


# ---------------------------------------------------------------- robustness

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "metadata",
                    "spec",
                    "status",
                    "name",
                    "containers",
                    "conditions",
                    "type",
                    "status",
                    "state",
                    "waiting",
                    "terminated",
                    "ports",
                    "replicas",
                    "selector",
                    "subsets",
                    "addresses",
                    "labels",
                    "initContainerStatuses",
                    "containerStatuses",
                    "involvedObject",
                    "series",
                    "metrics",
                    "hard",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["metadata", "spec", "status", "data", "subsets", "regarding"]), json_values
    )
)
def test_partial_objects_never_raise(obj: dict[str, Any]) -> None:
    for res in BUILTIN:
        row = tables.row_cells(res.group, res.plural, obj, NOW)
        assert len(row) == len(tables.columns_for(res.group, res.plural))
    assert len(tables.crd_row_cells(APC, obj, NOW)) == len(tables.crd_columns(APC))
