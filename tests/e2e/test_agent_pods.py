"""The node agent end to end: a real ``kubelite up`` running pods with the real runc, images from a
real ``docker-registry`` built from busybox-static, driven with the real kubectl.  Runs as root (CI)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.images.builder import busybox_image, push
from kubelite.agent.runtime import cgroups
from tests.e2e.agent_helpers import (
    cleanup_agent,
    condition,
    container_pid,
    cstatus,
    event_text,
    pod,
    runc_ids,
    wait_for,
)
from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.registry import Registry, running_registry

NS = "agent-e2e"


@dataclass
class Env:
    cluster: Cluster
    registry: Registry
    image: str
    agent_dir: Path
    tmp: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("agent-e2e")
    with running_registry(tmp / "registry") as reg:
        push(busybox_image(), reg.host, "test/busybox", "v1")
        data = tmp / "data"
        cluster = start_cluster(data, "--crash-loop-backoff", "1", agent=True)
        e = Env(cluster, reg, reg.ref("test/busybox", "v1"), data / "agent", tmp)
        try:
            assert "runtime=runc" in cluster.ready_line
            cluster.kubectl("create", "namespace", NS)
            yield e
        finally:
            _teardown(e)


def _teardown(e: Env) -> None:
    c = e.cluster
    if c.proc.poll() is None:
        c.kubectl("delete", "pods", "--all", "-n", NS, "--grace-period=0", "--force", check=False, timeout=60)
        c.kubectl("delete", "deployments", "--all", "-n", NS, check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and runc_ids(e.agent_dir):
            time.sleep(0.2)
    stop_cluster(e.cluster)
    cleanup_agent(e.agent_dir)


def apply_pod(e: Env, name: str, spec: dict[str, Any]) -> None:
    spec.setdefault("terminationGracePeriodSeconds", 1)
    e.cluster.apply(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}
    )


def ctr(e: Env, name: str, script: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": e.image, "command": ["sh", "-c", script], **kw}


def running(e: Env, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        p = pod(e.cluster, NS, name)
        return p if (p.get("status") or {}).get("phase") == "Running" else None

    return wait_for(check, 30, f"pod {name} Running")


def host_volume(e: Env, p: dict[str, Any], name: str) -> Path:
    return e.agent_dir / "pods" / p["metadata"]["uid"] / "volumes" / "kubernetes.io~empty-dir" / name


def test_pod_runs_with_init_container_and_status(env: Env) -> None:
    spec = {
        "initContainers": [
            ctr(
                env,
                "init",
                "echo from-init > /work/init",
                volumeMounts=[{"name": "work", "mountPath": "/work"}],
            )
        ],
        "containers": [
            ctr(
                env,
                "app",
                "cat /work/init > /work/app && echo $(MY_POD) $MY_NS >> /work/app; exec sleep 600",
                env=[
                    {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                ],
                volumeMounts=[{"name": "work", "mountPath": "/work"}],
            )
        ],
        "volumes": [{"name": "work", "emptyDir": {}}],
    }
    apply_pod(env, "basic", spec)
    p = running(env, "basic")
    app = wait_for(lambda: cstatus(pod(env.cluster, NS, "basic"), "app") or None, 10, "app status")
    assert app["state"].get("running"), app
    assert app["ready"] is True and app["started"] is True and app["restartCount"] == 0
    assert app["image"] == env.image
    assert re.fullmatch(rf"{re.escape(env.registry.host)}/test/busybox@sha256:[0-9a-f]{{64}}", app["imageID"])
    assert app["containerID"].startswith("runc://")
    init = cstatus(p, "init", init=True)
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert init["state"]["terminated"]["exitCode"] == 0
    for cond in ("Initialized", "Ready", "ContainersReady", "PodScheduled", "PodReadyToStartContainers"):
        assert condition(p, cond) == "True", cond
    assert p["status"]["qosClass"] == "BestEffort"
    assert p["status"]["hostIP"] and p["status"]["startTime"]
    got = wait_for(lambda: host_volume(env, p, "work").joinpath("app").read_text(), 10, "app output")
    assert got.split() == ["from-init", "basic", NS]
    assert "Started: Started container app" in event_text(env.cluster, NS, "basic")


def test_sidecar_shares_localhost_and_emptydir(env: Env) -> None:
    apply_pod(
        env,
        "sidecar",
        {
            "containers": [
                ctr(
                    env,
                    "web",
                    "mkdir -p /shared/www && echo served-by-web > /shared/www/index.html && "
                    "exec httpd -f -p 8080 -h /shared/www",
                    volumeMounts=[{"name": "shared", "mountPath": "/shared"}],
                ),
                ctr(
                    env,
                    "fetch",
                    "while :; do timeout 3 wget -qO- http://127.0.0.1:8080/ > /data/got.tmp && "
                    "mv /data/got.tmp /data/got; sleep 0.3; done",
                    volumeMounts=[{"name": "shared", "mountPath": "/data"}],
                ),
            ],
            "volumes": [{"name": "shared", "emptyDir": {}}],
        },
    )
    p = running(env, "sidecar")
    got = wait_for(lambda: _read(host_volume(env, p, "shared") / "got"), 20, "sidecar fetched")
    assert got.strip() == "served-by-web"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_memory_limit_oomkilled(env: Env) -> None:
    apply_pod(
        env,
        "oom",
        {
            "restartPolicy": "Never",
            "containers": [
                {
                    **ctr(env, "hog", "exec dd if=/dev/zero of=/dev/null bs=64M count=1"),
                    "resources": {"limits": {"memory": "16Mi"}},
                }
            ],
        },
    )

    def terminated() -> dict[str, Any] | None:
        st = cstatus(pod(env.cluster, NS, "oom"), "hog")
        return (st.get("state") or {}).get("terminated")

    t = wait_for(terminated, 30, "oom container terminated")
    assert t["reason"] == "OOMKilled" and t["exitCode"] == 137, t
    assert wait_for(lambda: pod(env.cluster, NS, "oom")["status"]["phase"] == "Failed", 10, "phase Failed")


def test_cpu_limit_throttles(env: Env) -> None:
    apply_pod(
        env,
        "cpu",
        {
            "containers": [
                {**ctr(env, "spin", "while :; do :; done"), "resources": {"limits": {"cpu": "200m"}}}
            ]
        },
    )
    p = running(env, "cpu")
    cid = cstatus(p, "spin")["containerID"].removeprefix("runc://")
    dirs = cgroups.proc_cgroups(container_pid(env.agent_dir, cid))
    usage = dirs["cpuacct"] / "cpuacct.usage"
    assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "20000"
    time.sleep(0.5)
    u0, t0 = int(usage.read_text()), time.monotonic()
    time.sleep(2.0)
    cores = (int(usage.read_text()) - u0) / 1e9 / (time.monotonic() - t0)
    assert 0.1 < cores < 0.3, cores
    assert p["status"]["qosClass"] == "Burstable"


def test_liveness_restarts_and_readiness_gates(env: Env) -> None:
    apply_pod(
        env,
        "probes",
        {
            "containers": [
                {
                    **ctr(env, "live", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600"),
                    "livenessProbe": {
                        "exec": {"command": ["cat", "/tmp/healthy"]},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                },
                {
                    **ctr(env, "ready", "sleep 3; touch /tmp/ready; exec sleep 600"),
                    "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1},
                },
            ]
        },
    )
    p = running(env, "probes")
    assert condition(p, "Ready") == "False"
    assert cstatus(p, "ready")["ready"] is False
    wait_for(lambda: cstatus(pod(env.cluster, NS, "probes"), "ready").get("ready"), 20, "readiness passes")
    live = wait_for(
        lambda: (s := cstatus(pod(env.cluster, NS, "probes"), "live")).get("restartCount", 0) >= 1 and s,
        30,
        "restart",
    )
    assert live["lastState"]["terminated"]["exitCode"] == 137
    assert "Container live failed liveness probe, will be restarted" in event_text(env.cluster, NS, "probes")
    assert "Unhealthy: Liveness probe failed" in event_text(env.cluster, NS, "probes")


def test_crashloop_backoff_grows(env: Env) -> None:
    apply_pod(env, "crash", {"containers": [ctr(env, "boom", "echo dying; exit 3")]})
    delays: list[int] = []

    def observe() -> bool:
        st = cstatus(pod(env.cluster, NS, "crash"), "boom")
        w = (st.get("state") or {}).get("waiting") or {}
        if w.get("reason") == "CrashLoopBackOff":
            m = re.match(r"back-off (\d+)s restarting failed container=boom pod=crash_", w.get("message", ""))
            assert m, w
            if not delays or delays[-1] != int(m.group(1)):
                delays.append(int(m.group(1)))
        return len(delays) >= 3

    wait_for(observe, 40, "three back-off steps", step=0.1)
    assert delays == sorted(delays) and len(set(delays)) >= 3, delays
    st = cstatus(pod(env.cluster, NS, "crash"), "boom")
    assert st["restartCount"] >= 3
    assert st["lastState"]["terminated"]["exitCode"] == 3
    assert "Back-off restarting failed container boom" in event_text(env.cluster, NS, "crash")
    # Like the kubelet's container GC, only the newest dead attempt is kept (for logs --previous):
    # the older attempts' log files go with their containers.
    p = pod(env.cluster, NS, "crash")
    logs = env.agent_dir / "pods" / p["metadata"]["uid"] / "logs" / "boom"
    wait_for(lambda: len(list(logs.iterdir())) <= 2, 10, "old attempts' logs removed")
    kept = sorted(int(f.name.split(".")[0]) for f in logs.iterdir())
    assert kept[-1] >= 3 and len(kept) <= 2, kept
    assert "dying" in (logs / f"{kept[-1]}.log").read_text()


def test_missing_and_invalid_images(env: Env) -> None:
    missing = f"{env.registry.host}/test/nope:v1"
    apply_pod(env, "missing", {"containers": [{"name": "c", "image": missing}]})
    apply_pod(env, "invalid", {"containers": [{"name": "c", "image": "Bad/UPPER:case"}]})

    def waiting(name: str, reason: str) -> dict[str, Any] | None:
        w = (cstatus(pod(env.cluster, NS, name), "c").get("state") or {}).get("waiting") or {}
        return w if w.get("reason") == reason else None

    w = wait_for(lambda: waiting("missing", "ImagePullBackOff"), 30, "ImagePullBackOff")
    assert w["message"] == f'Back-off pulling image "{missing}"'
    text = event_text(env.cluster, NS, "missing")
    assert f'Failed to pull image "{missing}"' in text and "Error: ErrImagePull" in text
    w = wait_for(lambda: waiting("invalid", "InvalidImageName"), 20, "InvalidImageName")
    assert "Bad/UPPER:case" in w["message"]
    assert pod(env.cluster, NS, "basic")["status"]["phase"] == "Running"  # the others are fine


def test_volume_subpath_escape_refused(env: Env) -> None:
    apply_pod(
        env,
        "escape",
        {
            "initContainers": [
                ctr(env, "link", "ln -sf / /vol/out", volumeMounts=[{"name": "v", "mountPath": "/vol"}])
            ],
            "containers": [
                ctr(
                    env,
                    "c",
                    "sleep 600",
                    volumeMounts=[{"name": "v", "mountPath": "/host", "subPath": "out"}],
                )
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
    )
    apply_pod(
        env,
        "dotdot",
        {
            "containers": [
                ctr(
                    env,
                    "c",
                    "sleep 600",
                    volumeMounts=[{"name": "v", "mountPath": "/x", "subPathExpr": "$(UP)/etc"}],
                    env=[{"name": "UP", "value": ".."}],
                )
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
    )
    for name in ("escape", "dotdot"):

        def refused(name: str = name) -> dict[str, Any] | None:
            w = (cstatus(pod(env.cluster, NS, name), "c").get("state") or {}).get("waiting") or {}
            return w if w.get("reason") == "CreateContainerConfigError" else None

        w = wait_for(refused, 20, f"{name} refused")
        assert "failed to prepare subPath" in w["message"], w
        assert "failed to prepare subPath" in event_text(env.cluster, NS, name)
    assert pod(env.cluster, NS, "basic")["status"]["phase"] == "Running"


def test_prestop_then_sigterm_before_sigkill(env: Env) -> None:
    shared = env.tmp / "prestop"
    shared.mkdir()
    apply_pod(
        env,
        "graceful",
        {
            "terminationGracePeriodSeconds": 10,
            "containers": [
                {
                    **ctr(
                        env,
                        "c",
                        "trap 'echo term >> /out/log; exit 0' TERM; echo started >> /out/log; "
                        "while :; do sleep 0.1; done",
                        volumeMounts=[{"name": "out", "mountPath": "/out"}],
                    ),
                    "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /out/log"]}}},
                }
            ],
            "volumes": [{"name": "out", "hostPath": {"path": str(shared), "type": "Directory"}}],
        },
    )
    running(env, "graceful")
    wait_for(lambda: "started" in _read(shared / "log"), 10, "started")
    t0 = time.monotonic()
    env.cluster.kubectl("delete", "pod", "-n", NS, "graceful", "--wait=true", timeout=30)
    took = time.monotonic() - t0
    assert _read(shared / "log").split() == ["started", "prestop", "term"]
    assert took < 8, took  # SIGTERM was honoured: no wait for the 10 s grace period


def test_pull_always_follows_moved_tag_and_rollout(env: Env) -> None:
    reg = env.registry
    d1 = push(busybox_image(extra_files={"version": b"one\n"}), reg.host, "test/moving", "latest")
    image = reg.ref("test/moving", "latest")
    env.cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "mover", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "mover"}},
                "template": {
                    "metadata": {"labels": {"app": "mover"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {
                                "name": "c",
                                "image": image,
                                "imagePullPolicy": "Always",
                                "command": ["sleep", "600"],
                            }
                        ],
                    },
                },
            },
        }
    )

    def image_ids() -> list[str]:
        items = env.cluster.json("get", "pods", "-n", NS, "-l", "app=mover")["items"]
        return [
            cstatus(p, "c").get("imageID", "")
            for p in items
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]

    assert wait_for(lambda: image_ids() == [f"{reg.host}/test/moving@{d1}"] or None, 30, "first digest")
    d2 = push(busybox_image(extra_files={"version": b"two\n"}), reg.host, "test/moving", "latest")
    assert d2 != d1
    env.cluster.kubectl("rollout", "restart", "deployment/mover", "-n", NS)
    assert wait_for(lambda: image_ids() == [f"{reg.host}/test/moving@{d2}"] or None, 40, "second digest")


def _churns(container_id: str) -> bool:
    """Containers of the crash-loop and liveness tests restart by design, agent or not."""
    return any(mark in container_id for mark in ("-crash-", "boom", "-live-"))


def test_zz_agent_restart_adopts_containers(env: Env) -> None:
    before = runc_ids(env.agent_dir)
    assert before, "pods should be running"
    ids_before = {
        p["metadata"]["name"]: [s.get("containerID") for s in p["status"].get("containerStatuses") or []]
        for p in env.cluster.json("get", "pods", "-n", NS)["items"]
        if p["status"].get("phase") == "Running" and p["metadata"]["name"] in ("basic", "sidecar", "cpu")
    }
    env.cluster.proc.send_signal(signal.SIGKILL)  # kill -9 the whole kubelite up (agent included)
    env.cluster.proc.wait(10)
    steady = [c for c in before if not _churns(c)]
    assert [c for c in runc_ids(env.agent_dir) if not _churns(c)] == steady  # they outlive the agent
    env.cluster = start_cluster(
        env.agent_dir.parent, "--crash-loop-backoff", "1", port=env.cluster.port, agent=True
    )

    def same() -> bool:
        for name, ids in ids_before.items():
            p = pod(env.cluster, NS, name)
            assert [s.get("containerID") for s in p["status"]["containerStatuses"]] == ids, name
            assert all(s["restartCount"] == 0 and s["ready"] for s in p["status"]["containerStatuses"]), name
        return True

    wait_for(same, 20, "pods unchanged after restart")
    after = runc_ids(env.agent_dir)
    adopted = {i.removeprefix("runc://") for ids in ids_before.values() for i in ids}
    assert adopted <= set(after)  # every running container adopted ...
    assert len(after) == len(set(after))
    assert {c for c in after if c not in before} <= {c for c in after if _churns(c)}  # ... none duplicated
