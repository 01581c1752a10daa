"""Attach pod sandboxes to the node's CNI network (the runtime's ``network_setup``/``teardown``).

The container runtimes of Kubernetes (containerd, CRI-O) call the CNI plugins when they create or
remove a pod sandbox; here :class:`~kubelite.agent.runtime.runc.RuncRuntime` calls these hooks.
The configuration is looked up at every ADD (the runtime is built before the node's podCIDR is
known, and users may swap the plugin), ``DEL`` uses what the ADD cached.  ``hostPort`` mappings
travel as the ``portMappings`` runtime argument.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kubelite.agent.network.cni import Attachment, CNIClient, CNIError, PodRef, load_network, pod_ip
from kubelite.agent.runtime.base import Sandbox, SandboxConfig
from kubelite.agent.runtime.sandbox import sandbox_id

log = logging.getLogger("kubelite.agent.network.pod")
Obj = dict[str, Any]
IFNAME = "eth0"


def port_mappings(pod: Obj) -> tuple[tuple[int, int, str, str], ...]:
    """(hostPort, containerPort, protocol, hostIP) of every container port with a hostPort."""
    found: list[tuple[int, int, str, str]] = []
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            host_port = int(p.get("hostPort") or 0)
            if host_port <= 0:
                continue
            found.append(
                (
                    host_port,
                    int(p.get("containerPort") or host_port),
                    str(p.get("protocol") or "TCP").lower(),
                    str(p.get("hostIP") or ""),
                )
            )
    return tuple(found)


def runtime_config(config: SandboxConfig) -> Obj:
    mappings = [
        {"hostPort": hp, "containerPort": cp, "protocol": proto, **({"hostIP": ip} if ip else {})}
        for hp, cp, proto, ip in config.port_mappings
    ]
    return {"portMappings": mappings} if mappings else {}


def pod_ref(config: SandboxConfig) -> PodRef:
    return PodRef(config.namespace, config.name, config.pod_uid, sandbox_id(config.pod_uid))


class PodNetwork:
    """The CNI hooks of the runtime: ``setup(config, netns) -> pod IP`` and ``teardown(sandbox)``."""

    def __init__(self, conf_dir: Path, bin_dirs: list[str], cache_dir: Path) -> None:
        self.conf_dir = conf_dir
        self.cni = CNIClient(bin_dirs, cache_dir)

    async def setup(self, config: SandboxConfig, netns: str) -> str:
        network = load_network(self.conf_dir)
        if network is None:
            raise CNIError(f"network is not ready: no CNI configuration in {self.conf_dir}")
        ref = pod_ref(config)
        att = Attachment(network, ref.sandbox_id, netns, ref, IFNAME, runtime_config(config))
        result = await self.cni.add(att)
        ip = pod_ip(result)
        if not ip:
            raise CNIError(f'network "{network.name}" gave the pod no IP address')
        return ip

    async def teardown(self, sandbox: Sandbox) -> None:
        """DEL every cached attachment of the sandbox (or, with no cache, the current network);
        failures are logged: the namespace goes anyway, and the kubelet does not block on them."""
        atts = self.cni.cached(sandbox.id)
        if not atts:
            network = load_network(self.conf_dir)
            if network is None:
                return
            ref = pod_ref(sandbox.config)
            atts = [
                Attachment(
                    network, sandbox.id, sandbox.netns_path, ref, IFNAME, runtime_config(sandbox.config)
                )
            ]
        for att in atts:
            if sandbox.netns_path:
                att.netns = sandbox.netns_path
            try:
                await self.cni.delete(att)
            except CNIError as e:
                log.warning("pod %s/%s: %s", sandbox.config.namespace, sandbox.config.name, e)
