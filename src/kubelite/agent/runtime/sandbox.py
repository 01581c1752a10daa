"""Pod sandboxes: the namespaces and files a pod's containers share.

Kubernetes gives every pod one network, IPC and UTS namespace (a pause container holds them).  Here
they are *persistent namespace files* instead (no process to babysit): the new IPC and UTS
namespaces (with the pod's hostname) are bind-mounted onto files under the sandbox directory, and
the network namespace onto ``/var/run/netns/kubelite-<id>`` with ``lo`` up, exactly where ``ip netns
add`` puts it (or the host's with ``hostNetwork``, which also keeps the node's UTS namespace, as the
kubelet does).  As root this takes direct syscalls in a short-lived thread (``unshare``, ``mount``,
``SIOCSIFFLAGS``) instead of three subprocesses; otherwise ``unshare`` and ``ip netns``.  A network
plugin (CNI) is plugged in through ``network_setup``/``network_teardown``.  The sandbox also writes
the pod's ``/etc/hosts``, ``/etc/resolv.conf`` and ``/etc/hostname``, which every container
bind-mounts.  Everything is recorded in ``sandbox.json`` so a restarted agent finds its pods again.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubelite.agent.runtime import cgroups
from kubelite.agent.runtime.base import ContainerRuntimeError, Sandbox, SandboxConfig
from kubelite.agent.runtime.util import (
    make_shared_mount_dir,
    new_namespaces,
    ns_pinned,
    read_json,
    run_cmd,
    umount,
    write_json,
)

NetworkSetup = Callable[[SandboxConfig, str], Awaitable[str]]
NetworkTeardown = Callable[[Sandbox], Awaitable[None]]
NETNS_DIR = Path("/var/run/netns")


def sandbox_id(pod_uid: str) -> str:
    """Deterministic from the pod UID (12 hex digits), so a restarted agent computes the same id."""
    hexed = re.sub(r"[^0-9a-z]", "", pod_uid.lower())
    return (hexed or "pod")[:12]


def cgroup_parent(config: SandboxConfig) -> str:
    return config.cgroup_parent.strip("/") or f"kubelite/pod{config.pod_uid}"


def default_hosts(config: SandboxConfig, ip: str) -> str:
    """The kubelet's managed /etc/hosts when the agent gives none."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    if ip:
        lines.append(f"{ip}\t{config.hostname}")
    return "\n".join(lines) + "\n"


class SandboxManager:
    """Creates, finds and removes pod sandboxes under ``<root>/sandboxes/<id>``."""

    def __init__(
        self,
        root: Path,
        network_setup: NetworkSetup | None = None,
        network_teardown: NetworkTeardown | None = None,
        *,
        private_network: bool = True,
        private_ipc_uts: bool = True,
    ) -> None:
        self.dir = root / "sandboxes"
        self.network_setup = network_setup
        self.network_teardown = network_teardown
        self.private_network = private_network
        self.private_ipc_uts = private_ipc_uts
        self._netns_dir_shared = False

    def path(self, sid: str) -> Path:
        return self.dir / sid

    def netns_name(self, sid: str) -> str:
        return f"kubelite-{sid}"

    async def create(self, config: SandboxConfig) -> Sandbox:
        sid = sandbox_id(config.pod_uid)
        existing = self.load(sid)
        if existing is not None and self.intact(existing):
            return existing
        if self.path(sid).exists():  # half-made (agent crash) or lost its namespaces (reboot): redo
            await self.remove(
                existing or Sandbox(sid, config, netns_path=str(NETNS_DIR / self.netns_name(sid)))
            )
        d = self.path(sid)
        (d / "ns").mkdir(parents=True, exist_ok=True)
        try:
            netns = await self._make_namespaces(config, d, sid)
            ip = await self.network_setup(config, netns) if self.network_setup and netns else ""
        except BaseException:
            await self.remove(Sandbox(sid, config, netns_path=str(NETNS_DIR / self.netns_name(sid))))
            raise
        self._write_files(config, d, ip)
        sandbox = Sandbox(sid, config, ip=ip, netns_path=netns)
        write_json(d / "sandbox.json", {"config": dataclasses.asdict(config), "ip": ip, "netns_path": netns})
        return sandbox

    async def _make_namespaces(self, config: SandboxConfig, d: Path, sid: str) -> str:
        """The pod's IPC/UTS/network namespaces; as root with direct syscalls (one short-lived
        thread, no subprocess), else with ``unshare`` and ``ip netns``.  Returns the netns path."""
        if os.geteuid() != 0:
            await self._namespaces(config, d)
            return await self._network(config, sid)
        pins: dict[str, Path] = {}
        if self.private_ipc_uts:
            pins["ipc"] = d / "ns/ipc"
            if not config.host_network:
                pins["uts"] = d / "ns/uts"
        netns = ""
        if not config.host_network and self.private_network:
            path = NETNS_DIR / self.netns_name(sid)
            netns = str(path)
            if not ns_pinned(path):
                self._netns_dir_ready()
                pins["net"] = path
        for target in pins.values():
            target.touch()
        if pins:
            try:
                await new_namespaces(pins, config.hostname)
            except OSError as e:
                raise ContainerRuntimeError(f"cannot create the pod's namespaces: {e}") from e
        return netns

    def _netns_dir_ready(self) -> None:
        """/var/run/netns as ``ip netns`` keeps it: a shared mount point (once per agent)."""
        if not self._netns_dir_shared:
            make_shared_mount_dir(NETNS_DIR)
            self._netns_dir_shared = True

    async def _namespaces(self, config: SandboxConfig, d: Path) -> None:
        if not self.private_ipc_uts:
            return
        argv = ["unshare", f"--ipc={d / 'ns/ipc'}"]
        (d / "ns/ipc").touch()
        if not config.host_network:
            (d / "ns/uts").touch()
            argv += [f"--uts={d / 'ns/uts'}", "hostname", config.hostname]
        else:
            argv += ["true"]
        rc, out = await run_cmd(*argv)
        if rc != 0:
            raise ContainerRuntimeError(f"cannot create the pod's IPC/UTS namespaces: {out}")

    async def _network(self, config: SandboxConfig, sid: str) -> str:
        if config.host_network or not self.private_network:
            return ""
        name = self.netns_name(sid)
        if not (NETNS_DIR / name).exists():
            rc, out = await run_cmd("ip", "netns", "add", name)
            if rc != 0:
                raise ContainerRuntimeError(f"cannot create the pod network namespace {name}: {out}")
        rc, out = await run_cmd("ip", "-n", name, "link", "set", "lo", "up")
        if rc != 0:
            raise ContainerRuntimeError(f"cannot bring up lo in {name}: {out}")
        return str(NETNS_DIR / name)

    def _write_files(self, config: SandboxConfig, d: Path, ip: str) -> None:
        hostname = socket.gethostname() if config.host_network else config.hostname
        (d / "hostname").write_text(hostname + "\n")
        (d / "hosts").write_text(config.hosts_file or default_hosts(config, ip))
        (d / "resolv.conf").write_text(config.dns_resolv_conf or _host_resolv_conf())

    def intact(self, sandbox: Sandbox) -> bool:
        """Its namespaces still exist (they do not survive a reboot)."""
        want = {"ipc"} if self.private_ipc_uts else set()
        if self.private_ipc_uts and not sandbox.config.host_network:
            want.add("uts")
        if not want <= set(self.namespace_paths(sandbox.id)):
            return False
        return not sandbox.netns_path or ns_pinned(Path(sandbox.netns_path))

    def etc_files(self, sid: str) -> dict[str, str]:
        d = self.path(sid)
        return {f"/etc/{n}": str(d / n) for n in ("hosts", "resolv.conf", "hostname")}

    def namespace_paths(self, sid: str) -> dict[str, str]:
        """ns type -> file for the pod-level namespaces that exist (ipc, uts)."""
        d = self.path(sid) / "ns"
        return {t: str(d / t) for t in ("ipc", "uts") if ns_pinned(d / t)}

    def load(self, sid: str) -> Sandbox | None:
        data = read_json(self.path(sid) / "sandbox.json")
        if data is None:
            return None
        cfg = dict(data["config"])
        cfg["labels"] = dict(cfg.get("labels") or {})
        cfg["port_mappings"] = tuple(tuple(p) for p in cfg.get("port_mappings") or ())
        return Sandbox(
            sid, SandboxConfig(**cfg), ip=data.get("ip", ""), netns_path=data.get("netns_path", "")
        )

    def list(self) -> list[Sandbox]:
        if not self.dir.is_dir():
            return []
        found = (self.load(p.name) for p in sorted(self.dir.iterdir()))
        return [s for s in found if s is not None]

    async def remove(self, sandbox: Sandbox) -> None:
        """Tear down the network (plugin first), the namespaces, the files and the pod cgroups."""
        if self.network_teardown is not None and sandbox.netns_path:
            await self.network_teardown(sandbox)
        if sandbox.netns_path and Path(sandbox.netns_path).exists():
            if os.geteuid() == 0:  # what ``ip netns del`` does
                umount(Path(sandbox.netns_path))
                Path(sandbox.netns_path).unlink(missing_ok=True)
            else:
                await run_cmd("ip", "netns", "del", Path(sandbox.netns_path).name)
        d = self.path(sandbox.id)
        for t in ("ipc", "uts"):
            umount(d / "ns" / t)
        shutil.rmtree(d, ignore_errors=True)
        cgroups.remove_pod_cgroups(cgroup_parent(sandbox.config))


def _host_resolv_conf() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""
