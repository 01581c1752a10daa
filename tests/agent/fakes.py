"""In-memory fakes for the node agent's unit tests: a runtime, an image service, an API client."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubelite.agent.env import Sources
from kubelite.agent.images.backoff import PullBackOff
from kubelite.agent.runtime.base import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImagePullError,
    PulledImage,
    RegistryAuth,
    Sandbox,
    SandboxConfig,
)
from kubelite.agent.volumes import PodVolumes

Obj = dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeRuntime:
    """Containers are records; tests make them exit with :meth:`exit`."""

    name = "fake"
    limitations: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.pods_sandboxes: dict[str, Sandbox] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self.configs: dict[str, ContainerConfig] = {}
        self.sandbox_of: dict[str, str] = {}
        self.exec_results: dict[str, int] = {}
        self.started: list[str] = []
        self.stopped: list[tuple[str, float]] = []

    async def create_sandbox(self, config: SandboxConfig) -> Sandbox:
        sb = self.pods_sandboxes.get(config.pod_uid) or Sandbox(config.pod_uid[:12], config, ip="10.0.0.9")
        self.pods_sandboxes[config.pod_uid] = sb
        return sb

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        for cid in [c for c, s in self.sandbox_of.items() if s == sandbox.id]:
            await self.remove_container(cid)
        self.pods_sandboxes.pop(sandbox.config.pod_uid, None)

    async def list_sandboxes(self) -> list[Sandbox]:
        return list(self.pods_sandboxes.values())

    async def start_container(self, sandbox: Sandbox, config: ContainerConfig) -> ContainerStatus:
        cid = f"{sandbox.id}-{config.name}-{config.attempt}"
        st = ContainerStatus(
            cid, config.name, ContainerState.RUNNING, started_at=_now(), attempt=config.attempt
        )
        self.containers[cid] = st
        self.configs[cid] = config
        self.sandbox_of[cid] = sandbox.id
        self.started.append(cid)
        return st

    def exit(self, cid: str, code: int, oom: bool = False) -> None:
        st = self.containers[cid]
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        self.containers[cid] = replace(
            st, state=ContainerState.EXITED, exit_code=code, finished_at=_now(), reason=reason, oom_killed=oom
        )

    async def stop_container(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        self.stopped.append((container_id, grace_seconds))
        if self.containers[container_id].state == ContainerState.RUNNING:
            self.exit(container_id, 137)
        return self.containers[container_id]

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)
        self.sandbox_of.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self.containers.get(container_id) or ContainerStatus(container_id, "", ContainerState.UNKNOWN)

    async def list_containers(self, sandbox: Sandbox) -> list[ContainerStatus]:
        return [self.containers[c] for c, s in self.sandbox_of.items() if s == sandbox.id]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        return self.containers[container_id]

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        return ExecResult(self.exec_results.get(" ".join(argv), 0), b"")

    def exec_stream(self, container_id: str, argv: list[str], tty: bool, stdin: bool) -> Any:
        raise NotImplementedError

    async def stats(self, container_id: str) -> ContainerStats | None:
        return None


class FakeImages:
    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.missing = set(missing)
        self.pulls: list[tuple[str, str]] = []

    def _image(self, ref: str) -> PulledImage:
        return PulledImage(ref, "sha256:" + "ab" * 32, ("/layers/0",), entrypoint=("/ep",), cmd=("default",))

    async def pull(
        self, ref: str, auth: dict[str, RegistryAuth] | None = None, policy: str = "IfNotPresent"
    ) -> PulledImage:
        self.pulls.append((ref, policy))
        if ref in self.missing:
            raise ImagePullError(f"{ref}: manifest unknown")
        return self._image(ref)

    async def get(self, ref: str) -> PulledImage | None:
        return None if ref in self.missing else self._image(ref)


@dataclass
class FakeClient:
    """Records status patches and deletes; serves configMaps/secrets/services from dicts."""

    patches: list[tuple[str, Obj]] = field(default_factory=list)
    deletes: list[tuple[str, Obj | None]] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)

    async def patch(self, res: Any, namespace: str, name: str, patch: Any, **kw: Any) -> Obj:
        self.patches.append((name, patch))
        return {}

    async def delete(self, res: Any, namespace: str, name: str, **kw: Any) -> Obj | None:
        self.deletes.append((name, kw.get("preconditions")))
        return None

    async def create(self, res: Any, namespace: str, obj: Obj, **kw: Any) -> Obj:
        self.events.append(obj)
        return obj


class FakeSources:
    def __init__(self, configmaps: dict[str, Obj] | None = None, secrets: dict[str, Obj] | None = None,
                 services: list[Obj] | None = None) -> None:  # fmt: skip
        self.cms = configmaps or {}
        self.secs = secrets or {}
        self.svcs = services or []

    async def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.cms.get(name)

    async def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secs.get(name)

    async def services(self, namespace: str) -> list[Obj]:
        return [s for s in self.svcs if s["metadata"].get("namespace", "default") == namespace]

    async def pvc(self, namespace: str, name: str) -> Obj | None:
        return None

    async def pv(self, name: str) -> Obj | None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    async def flush(self) -> None:
        return None


_uids = itertools.count(1)


class FakeAgent:
    """An AgentContext over the fakes; ``pods`` maps uid -> pod object (None = deleted)."""

    def __init__(self, tmp: Path, images: FakeImages | None = None) -> None:
        self.client: Any = FakeClient()
        self.runtime: Any = FakeRuntime()
        self.images: Any = images or FakeImages()
        self.sources: Sources = FakeSources()
        self.pods_dir = tmp / "pods"
        self.volumes = PodVolumes(self.pods_dir, FakeSources())
        self.recorder: Any = Recorder()
        self.pull_backoff = PullBackOff(initial=0.05, maximum=0.2)
        self.node_name = "node-a"
        self.host_ip = "192.0.2.10"
        self.crash_backoff = (0.2, 1.0)
        self.memory_capacity = 8 << 30
        self.allocatable = {"cpu": "2", "memory": "8Gi"}
        self.runtime_note = ""
        self.pods: dict[str, Obj | None] = {}
        self.done: list[str] = []

    def get_pod(self, uid: str) -> Obj | None:
        return self.pods.get(uid)

    def worker_done(self, uid: str) -> None:
        self.done.append(uid)

    async def pull_secrets(self, pod: Obj) -> dict[str, RegistryAuth]:
        return {}


def make_pod(containers: list[Obj], init: list[Obj] | None = None, **spec: Any) -> Obj:
    uid = f"uid-{next(_uids):04d}"
    return {
        "metadata": {"name": f"p{uid[-4:]}", "namespace": "default", "uid": uid},
        "spec": {"containers": containers, "initContainers": init or [], "nodeName": "node-a", **spec},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


async def aiter_empty() -> AsyncIterator[Obj]:
    if False:
        yield {}
