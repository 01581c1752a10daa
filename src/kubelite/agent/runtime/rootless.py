"""runc without root: user namespaces, as ``runc spec --rootless`` sets them up.

The agent's uid is mapped to root inside every container (one uid, one gid: ``runAsUser`` other
than 0 needs subordinate ids, which are not set up).  What cannot work unprivileged on these
machines (runtime-notes §6) is dropped and reported in :attr:`RootlessRuncRuntime.limitations`,
which the agent turns into pod events and its ready line: cgroup v1 is not delegated (no CPU or
memory limits, no OOM detection, no usage stats), pods use the host network (``ip netns add`` and
bridges need root), each container has its own IPC and UTS namespace (persistent namespace files
need mount privileges), and the rootfs is a copy of the image layers (no overlay mount on the host;
``fuse-overlayfs`` is used when installed).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from kubelite.agent.images.unpack import flatten
from kubelite.agent.runtime.base import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerStats,
    Sandbox,
)
from kubelite.agent.runtime.bundle import BundleSpec
from kubelite.agent.runtime.runc import RuncRuntime
from kubelite.agent.runtime.sandbox import NetworkSetup, NetworkTeardown, SandboxManager
from kubelite.agent.runtime.util import run_cmd

LIMITATIONS = (
    "rootless runtime: CPU and memory limits are not enforced (cgroup v1 is not delegated to users), "
    "so OOMKilled is never reported and usage metrics are unavailable",
    "rootless runtime: pods use the host network (no pod IPs, ports are shared with the node)",
    "rootless runtime: containers of a pod do not share IPC/UTS namespaces",
    "rootless runtime: only runAsUser 0 (mapped to the agent's user) is supported",
)


class RootlessRuncRuntime(RuncRuntime):
    """runc in user namespaces for an unprivileged agent; see :data:`LIMITATIONS`."""

    name = "runc-rootless"
    limitations: tuple[str, ...] = LIMITATIONS

    def _sandbox_manager(
        self, setup: NetworkSetup | None, teardown: NetworkTeardown | None
    ) -> SandboxManager:
        return SandboxManager(self.root, None, None, private_network=False, private_ipc_uts=False)

    def _bundle_spec(self, sandbox: Sandbox, config: ContainerConfig, cid: str, bundle: Path) -> BundleSpec:
        if config.security.run_as_user not in (None, 0):
            raise ContainerRuntimeError(
                f"securityContext.runAsUser: {config.security.run_as_user} is not supported by the "
                "rootless runtime (only 0, mapped to the agent's user)"
            )
        return BundleSpec(
            hostname=sandbox.config.hostname,
            etc_files=self.sandboxes.etc_files(sandbox.id),
            namespaces=[{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")],
            termination_log=str(bundle / "termination-log"),
            rootless=True,
            uid_mappings=[{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
            gid_mappings=[{"containerID": 0, "hostID": os.getegid(), "size": 1}],
        )

    async def _prepare_rootfs(self, bundle: Path, layers: tuple[str, ...]) -> None:
        rootfs = bundle / "rootfs"
        rootfs.mkdir(exist_ok=True)
        if shutil.which("fuse-overlayfs") and layers:
            for d in ("upper", "work"):
                (bundle / d).mkdir(exist_ok=True)
            opts = (
                f"lowerdir={':'.join(reversed(layers))},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
            )
            rc, _out = await run_cmd("fuse-overlayfs", "-o", opts, str(rootfs))
            if rc == 0:
                (bundle / "fuse").touch()
                return
        await asyncio.to_thread(flatten, [Path(p) for p in layers], rootfs)

    def _cleanup_cmds(self, bundle: Path) -> list[list[str]]:
        return [["fusermount", "-u", "-z", str(bundle / "rootfs")]] if (bundle / "fuse").exists() else []

    def _release_rootfs(self, bundle: Path) -> None:
        if (bundle / "fuse").exists():
            subprocess.run(
                ["fusermount", "-u", "-z", str(bundle / "rootfs")], check=False, capture_output=True
            )

    async def stats(self, container_id: str) -> ContainerStats | None:
        return None  # no cgroup of its own: the user's cgroup would mix every container
