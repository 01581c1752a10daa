"""Unit tests of the node agent with fakes: env/argv, volumes, status, probes and the pod worker."""

# ruff: noqa: E501  (tables of literals kept one entry per line)

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.agent import env, status, volumes
from kubelite.agent.containerspec import resources, security
from kubelite.agent.env import ConfigError, PodFacts
from kubelite.agent.podworker import PodWorker
from kubelite.agent.probes import ProbeState
from kubelite.agent.runtime.base import ContainerState, ContainerStatus
from tests.agent.fakes import FakeAgent, FakeSources, make_pod

Obj = dict[str, Any]


# ------------------------------------------------------------------------------- env / argv
def test_expand_kubernetes_rules() -> None:
    m = {"A": "x", "B": "y"}
    assert env.expand("$(A)-$(B)", m) == "x-y"
    assert env.expand("$$(A)", m) == "$(A)"
    assert env.expand("$(MISSING)", m) == "$(MISSING)"
    assert env.expand("$A $(A", m) == "$A $(A"


@given(st.text(alphabet="ab()$ ", max_size=30))
def test_expand_without_definitions_only_unescapes(text: str) -> None:
    assert env.expand(text, {}) == env.expand(text, {"Z": "q"})


def test_argv_merging_with_image() -> None:
    ep, cmd = ("/ep",), ("default",)
    assert env.container_argv({}, ep, cmd, {}) == ["/ep", "default"]
    assert env.container_argv({"args": ["a"]}, ep, cmd, {}) == ["/ep", "a"]
    assert env.container_argv({"command": ["c"]}, ep, cmd, {}) == ["c"]
    assert env.container_argv({"command": ["c"], "args": ["$(X)"]}, ep, cmd, {"X": "1"}) == ["c", "1"]


def test_container_env_sources_and_order() -> None:
    sources = FakeSources(
        configmaps={"cm": {"data": {"k": "v", "bad-name!": "x"}}},
        secrets={"s": {"data": {"pw": "c2VjcmV0"}}},
        services=[
            {"metadata": {"name": "web-svc", "namespace": "default"},
             "spec": {"clusterIP": "10.96.0.5", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
            {"metadata": {"name": "headless", "namespace": "default"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}},
        ],
    )  # fmt: skip
    pod = make_pod([])
    pod["metadata"]["labels"] = {"app": "x"}
    ctr: Obj = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "BOTH", "value": "$(PW)-$(APP)"},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        ],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    pod["spec"]["containers"] = [ctr]
    out = dict(asyncio.run(env.container_env(pod, ctr, sources, PodFacts(pod_ip="10.0.0.9"), ("PATH=/bin",))))
    assert out["CM_k"] == "v" and "CM_bad-name!" not in out
    assert out["PW"] == "secret" and out["APP"] == "x" and out["IP"] == "10.0.0.9" and out["MEM"] == "64"
    assert out["BOTH"] == "secret-x" and "OPT" not in out and out["PATH"] == "/bin"
    assert out["WEB_SVC_SERVICE_HOST"] == "10.96.0.5" and out["WEB_SVC_SERVICE_PORT_HTTP"] == "80"
    assert out["WEB_SVC_PORT_80_TCP_ADDR"] == "10.96.0.5" and out["WEB_SVC_PORT"] == "tcp://10.96.0.5:80"
    assert not any(k.startswith("HEADLESS") for k in out)


def test_missing_secret_is_config_error() -> None:
    pod = make_pod([])
    ctr = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]}
    with pytest.raises(ConfigError, match='secret "gone" not found'):
        asyncio.run(env.container_env(pod, ctr, FakeSources(), PodFacts()))


def test_resources_and_security() -> None:
    ctr = {
        "name": "c",
        "resources": {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"cpu": "500m", "memory": "2Gi"},
        },
    }
    pod = make_pod([ctr])
    pod["status"]["qosClass"] = "Burstable"
    r = resources(pod, ctr, 8 << 30)
    assert (r.cpu_shares, r.cpu_quota_us, r.memory_limit_bytes) == (256, 50000, 2 << 30)
    assert 0 < r.oom_score_adj < 1000
    pod["spec"]["securityContext"] = {"runAsUser": 1000, "fsGroup": 2000}
    sec = security(
        pod, {"securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}}, None
    )
    assert (
        sec.run_as_user == 1000
        and 2000 in sec.supplemental_groups
        and sec.no_new_privileges
        and sec.read_only_root
    )
    pod["spec"]["securityContext"] = {"runAsNonRoot": True}
    with pytest.raises(ConfigError, match="runAsNonRoot"):
        security(pod, {}, None)


# ------------------------------------------------------------------------------- volumes
def test_sub_path_never_escapes(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "ok").mkdir()
    os.symlink("/etc", vol / "evil")
    os.symlink("ok", vol / "fine")
    assert volumes.resolve_sub_path(str(vol), "ok", "m", "c") == str(vol / "ok")
    assert volumes.resolve_sub_path(str(vol), "fine", "m", "c") == str(vol / "ok")
    assert volumes.resolve_sub_path(str(vol), "new/dir", "m", "c") == str(vol / "new/dir")
    for bad in ("../x", "/etc", "evil", "evil/passwd", "a/../../b"):
        with pytest.raises(volumes.VolumeError, match="failed to prepare subPath"):
            volumes.resolve_sub_path(str(vol), bad, "m", "c")
    assert not (tmp_path / "x").exists()


def test_atomic_writer_layout_and_update(tmp_path: Path) -> None:
    target = tmp_path / "cm"
    volumes.write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1" and os.readlink(target / "a") == "..data/a"
    assert oct((target / "dir" / "b").stat().st_mode & 0o777) == "0o600"
    first = os.readlink(target / "..data")
    volumes.write_atomic(target, {"a": (b"new", 0o644)})
    assert (target / "a").read_text() == "new" and not (target / "dir").exists()
    assert not (target / first).exists()


def test_host_path_type_checks(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert volumes.host_path_check({"path": str(f), "type": "File"}) == str(f)
    with pytest.raises(volumes.VolumeError, match="is not a directory"):
        volumes.host_path_check({"path": str(f), "type": "Directory"})
    made = tmp_path / "made" / "here"
    volumes.host_path_check({"path": str(made), "type": "DirectoryOrCreate"})
    assert made.is_dir()
    with pytest.raises(volumes.VolumeError, match="does not exist"):
        volumes.host_path_check({"path": str(tmp_path / "none"), "type": "Socket"})


def test_configmap_and_projected_volumes(tmp_path: Path) -> None:
    src = FakeSources(
        configmaps={"cm": {"data": {"k1": "v1", "k2": "v2"}}}, secrets={"s": {"data": {"t": "eA=="}}}
    )
    pv = volumes.PodVolumes(tmp_path, src)
    pod = make_pod([])
    pod["spec"]["volumes"] = [
        {"name": "c", "configMap": {"name": "cm", "items": [{"key": "k2", "path": "sub/two"}]}},
        {"name": "p", "projected": {"sources": [{"secret": {"name": "s"}}, {"serviceAccountToken": {"path": "token"}},
                                                  {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        {"name": "gone", "configMap": {"name": "missing", "optional": True}},
    ]  # fmt: skip
    vols = asyncio.run(pv.setup(pod, PodFacts()))
    assert (
        Path(vols["c"].host_path, "sub/two").read_text() == "v2"
        and not Path(vols["c"].host_path, "k1").exists()
    )
    p = Path(vols["p"].host_path)
    assert (p / "t").read_text() == "x" and (p / "name").read_text() == pod["metadata"]["name"]
    assert (p / "token").read_text().count(".") == 2 and vols["p"].read_only
    pod["spec"]["volumes"] = [{"name": "bad", "configMap": {"name": "missing"}}]
    with pytest.raises(volumes.VolumeError, match='configmap "missing" not found'):
        asyncio.run(pv.setup(pod, PodFacts()))
    asyncio.run(pv.teardown(pod["metadata"]["uid"]))
    assert not (tmp_path / pod["metadata"]["uid"]).exists()


# ------------------------------------------------------------------------------- status
def _cs(name: str, state: ContainerState, code: int | None = None, attempt: int = 0) -> ContainerStatus:
    return ContainerStatus(f"id-{name}-{attempt}", name, state, exit_code=code, attempt=attempt,
                           started_at="2024-01-01T00:00:00Z")  # fmt: skip


def test_phase_rules() -> None:
    pod = make_pod([{"name": "a"}], restartPolicy="Never")
    run = status.ContainerView("a", "img", current=_cs("a", ContainerState.RUNNING), ready=True, started=True)
    done = status.ContainerView("a", "img", current=_cs("a", ContainerState.EXITED, 0))
    failed = status.ContainerView("a", "img", current=_cs("a", ContainerState.EXITED, 1))
    waiting = status.ContainerView("a", "img", waiting=("ContainerCreating", ""))
    assert status.phase(pod, [], [run]) == "Running"
    assert status.phase(pod, [], [done]) == "Succeeded"
    assert status.phase(pod, [], [failed]) == "Failed"
    assert status.phase(pod, [], [waiting]) == "Pending"
    pod["spec"]["restartPolicy"] = "OnFailure"
    assert status.phase(pod, [], [failed]) == "Running"
    init_running = status.ContainerView("i", "img", current=_cs("i", ContainerState.RUNNING))
    assert status.phase(pod, [init_running], [waiting]) == "Pending"
    sidecar = status.ContainerView(
        "s", "img", current=_cs("s", ContainerState.RUNNING), started=True, sidecar=True
    )
    assert status.phase(pod, [sidecar], [done]) == "Succeeded"


def test_status_document() -> None:
    pod = make_pod([{"name": "a"}, {"name": "b"}])
    a = status.ContainerView("a", "img", "repo@sha256:x", current=_cs("a", ContainerState.RUNNING, attempt=2),
                             previous=_cs("a", ContainerState.EXITED, 1, attempt=1), restart_count=2, ready=True, started=True)  # fmt: skip
    b = status.ContainerView("b", "img", current=_cs("b", ContainerState.RUNNING), started=True)
    s = status.pod_status(pod, [], [a, b], host_ip="1.2.3.4", pod_ip="10.0.0.9", sandbox_ready=True,
                          start_time="t0", now="t1")  # fmt: skip
    ca = s["containerStatuses"][0]
    assert ca["containerID"] == "runc://id-a-2" and ca["restartCount"] == 2 and ca["ready"]
    assert ca["lastState"]["terminated"]["exitCode"] == 1
    conds = {c["type"]: c for c in s["conditions"]}
    assert (
        conds["Ready"]["status"] == "False"
        and conds["Ready"]["message"] == "containers with unready status: [b]"
    )
    assert (
        conds["Initialized"]["status"] == "True"
        and s["podIP"] == "10.0.0.9"
        and s["qosClass"] == "BestEffort"
    )
    assert not status.differs({**s, "conditions": [dict(c, lastProbeTime=None) for c in s["conditions"]]}, s)


def test_probe_thresholds() -> None:
    p = ProbeState("liveness", {"failureThreshold": 2, "successThreshold": 1}, ok=True)
    assert not p.record(False, "x") and p.record(False, "y") and not p.ok
    r = ProbeState("readiness", {"successThreshold": 2}, ok=False)
    assert not r.record(True, "") and r.record(True, "") and r.ok


# ------------------------------------------------------------------------------- pod worker
async def _sync_until(worker: PodWorker, cond: Any, rounds: int = 40) -> None:
    for _ in range(rounds):
        await worker.sync()
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def test_worker_runs_init_then_app_and_restarts_with_backoff(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)
        pod = make_pod([{"name": "app", "image": "img:1"}], init=[{"name": "init", "image": "img:1"}])
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        rt = agent.runtime
        await w.sync()
        assert rt.started == [f"{uid[:12]}-init-0"]
        rt.exit(rt.started[0], 0)
        await w.sync()
        assert rt.started[-1].endswith("-app-0")
        assert rt.configs[rt.started[-1]].args == ("/ep", "default")
        last = agent.client.patches[-1][1]["status"]
        assert (
            last["phase"] == "Running"
            and last["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
        )
        rt.exit(rt.started[-1], 2)
        await w.sync()
        assert rt.started[-1].endswith("-app-1")  # the first restart is immediate
        rt.exit(rt.started[-1], 2)
        await w.sync()
        waiting = agent.client.patches[-1][1]["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "CrashLoopBackOff" and waiting["message"].startswith("back-off 0s")
        await _sync_until(w, lambda: rt.started[-1].endswith("-app-2"))
        cs = agent.client.patches[-1][1]["status"]["containerStatuses"][0]
        assert cs["restartCount"] == 2 and cs["lastState"]["terminated"]["exitCode"] == 2
        agent.pods[uid] = None
        await w.sync()
        assert w.finished and not rt.pods_sandboxes and not rt.containers

    asyncio.run(main())


def test_worker_image_pull_backoff_and_deletion(tmp_path: Path) -> None:
    from tests.agent.fakes import FakeImages

    async def main() -> None:
        agent = FakeAgent(tmp_path, FakeImages(missing=("gone:1",)))
        pod = make_pod([{"name": "c", "image": "gone:1", "imagePullPolicy": "Always"}])
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        await w.sync()
        st = agent.client.patches[-1][1]["status"]["containerStatuses"][0]["state"]["waiting"]
        assert st["reason"] == "ErrImagePull" and "manifest unknown" in st["message"]
        await w.sync()
        st = agent.client.patches[-1][1]["status"]["containerStatuses"][0]["state"]["waiting"]
        assert st == {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "gone:1"'}
        deleting = {
            **pod,
            "metadata": {**pod["metadata"], "deletionTimestamp": "now", "deletionGracePeriodSeconds": 5},
        }
        agent.pods[uid] = deleting
        await w.sync()
        assert agent.client.deletes == [(pod["metadata"]["name"], {"uid": uid})]

    asyncio.run(main())


def test_worker_never_policy_fails_pod_and_stops_sidecar(tmp_path: Path) -> None:
    async def main() -> None:
        agent = FakeAgent(tmp_path)
        pod = make_pod(
            [{"name": "app", "image": "i"}], init=[{"name": "side", "image": "i", "restartPolicy": "Always"}],
            restartPolicy="Never",
        )  # fmt: skip
        uid = pod["metadata"]["uid"]
        agent.pods[uid] = pod
        w = PodWorker(agent, uid)  # type: ignore[arg-type]
        rt = agent.runtime
        await w.sync()
        assert rt.started[-1].endswith("-side-0")
        await w.sync()  # the sidecar started (no startup probe): the app starts
        assert rt.started[-1].endswith("-app-0")
        rt.exit(rt.started[-1], 1)
        await w.sync()
        assert agent.client.patches[-1][1]["status"]["phase"] == "Failed"
        assert any(cid.endswith("-side-0") for cid, _ in rt.stopped)

    asyncio.run(main())
