"""The seams of the node agent: what a container runtime and an image service provide.

The pod workers (``kubelite.agent``) drive a :class:`Runtime` and an :class:`ImageService`;
``runc`` (root), rootless ``runc`` and fakes for unit tests implement them.  Everything is
described with plain dataclasses so the agent never sees runtime details (bundles,
cgroup paths, runc state directories).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False
    propagation: str = ""  # "", "rprivate", "rslave", "rshared"


@dataclass(frozen=True)
class Resources:
    """Already resolved from the pod spec (requests/limits) by the agent."""

    cpu_shares: int = 2  # from requests.cpu (milli * 1024 / 1000, min 2)
    cpu_quota_us: int = 0  # from limits.cpu (0 = unlimited)
    cpu_period_us: int = 100_000
    memory_limit_bytes: int = 0  # 0 = unlimited
    oom_score_adj: int = 0  # clamped to >= 0 on these machines (no CAP_SYS_RESOURCE)


@dataclass(frozen=True)
class SecurityConfig:
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    read_only_root: bool = False
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False


@dataclass(frozen=True)
class SandboxConfig:
    """The pod-level environment shared by its containers."""

    pod_uid: str
    namespace: str
    name: str
    hostname: str
    host_network: bool = False
    share_process_namespace: bool = False
    dns_resolv_conf: str = ""  # contents of /etc/resolv.conf for the pod
    hosts_file: str = ""  # contents of /etc/hosts for the pod
    cgroup_parent: str = ""  # e.g. "kubelite/pod<uid>" (relative, nested under the agent's cgroup)
    labels: dict[str, str] = field(default_factory=dict)
    # hostPorts for the network plugin: (hostPort, containerPort, protocol "tcp"|"udp"|"sctp", hostIP)
    port_mappings: tuple[tuple[int, int, str, str], ...] = ()


@dataclass(frozen=True)
class Sandbox:
    id: str
    config: SandboxConfig
    ip: str = ""  # pod IP ("" with no pod network)
    netns_path: str = ""  # /var/run/netns/<name> when the pod has its own network namespace


@dataclass(frozen=True)
class ContainerConfig:
    name: str  # the container's name in the pod spec
    image_ref: str  # the image as resolved by the ImageService (digest reference)
    rootfs_layers: tuple[str, ...]  # unpacked layer directories, lowest first (overlay lowerdirs)
    args: tuple[str, ...]  # the full argv (command/args merged with the image's entrypoint/cmd)
    env: tuple[tuple[str, str], ...]
    working_dir: str = "/"
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    security: SecurityConfig = SecurityConfig()
    tty: bool = False
    stdin: bool = False
    log_path: str = ""  # where the runtime writes stdout/stderr (the agent reads it for `kubectl logs`)
    attempt: int = 0  # restart count: part of the runtime's container id
    termination_message_path: str = ""  # container path; the runtime bind-mounts a host file there


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    name: str
    state: ContainerState
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str = ""  # RFC 3339
    finished_at: str = ""
    reason: str = ""  # Completed | Error | OOMKilled | ContainerCannotRun ...
    message: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class ContainerStats:
    cpu_usage_ns: int  # cumulative
    memory_working_set_bytes: int
    cpu_throttled_periods: int = 0
    cpu_periods: int = 0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes = b""


class Runtime(Protocol):
    name: str  # "runc", "runc-rootless"

    async def create_sandbox(self, config: SandboxConfig) -> Sandbox: ...

    async def remove_sandbox(self, sandbox: Sandbox) -> None: ...

    async def list_sandboxes(self) -> list[Sandbox]:
        """Sandboxes this runtime left (for adoption after an agent restart)."""
        ...

    async def start_container(self, sandbox: Sandbox, config: ContainerConfig) -> ContainerStatus: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        """SIGTERM, wait up to the grace period, then SIGKILL; returns the final status."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox: Sandbox) -> list[ContainerStatus]: ...

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Return once the container has exited."""
        ...

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        """Run a command in the container (exec probes, hooks)."""
        ...

    def exec_stream(self, container_id: str, argv: list[str], tty: bool, stdin: bool) -> ExecSession: ...

    async def stats(self, container_id: str) -> ContainerStats | None: ...


class ExecSession(Protocol):
    """An interactive exec: the streams layer pumps bytes between it and kubectl."""

    async def start(self) -> None: ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(1 stdout | 2 stderr, bytes) chunks until the process exits."""
        ...

    async def wait(self) -> int: ...


@dataclass(frozen=True)
class PulledImage:
    ref: str  # the reference as written in the pod spec (normalised: docker.io/library/busybox:latest)
    digest: str  # manifest digest: imageID is "<repo>@<digest>"
    layers: tuple[str, ...]  # unpacked layer directories, lowest first
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    size: int = 0


@dataclass(frozen=True)
class RegistryAuth:
    username: str = ""
    password: str = ""
    token: str = ""  # identity/registry token


class ImageService(Protocol):
    async def pull(
        self, ref: str, auth: dict[str, RegistryAuth] | None = None, policy: str = "IfNotPresent"
    ) -> PulledImage:
        """Resolve and (per policy: Always | IfNotPresent | Never) pull ``ref``; raises
        ImagePullError (with a user-facing message) or ErrImageNeverPull."""
        ...

    async def get(self, ref: str) -> PulledImage | None: ...

    async def list(self) -> list[PulledImage]: ...

    async def remove(self, ref: str) -> None: ...


class ImagePullError(Exception):
    """Pulling failed; ``str()`` is what the pod's event and ``waiting.message`` show."""


class ImageNeverPullError(ImagePullError):
    """imagePullPolicy Never and the image is not present (ErrImageNeverPull)."""


class ContainerRuntimeError(Exception):
    """The runtime could not create/start a container (reason ContainerCannotRun / CreateContainerError)."""
