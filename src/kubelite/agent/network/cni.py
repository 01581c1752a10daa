"""A CNI client (spec 1.0.0), the part of containerd/kubelet (libcni) that runs network plugins.

There is no maintained Python CNI library, so this is written by hand from the CNI specification
(github.com/containernetworking/cni SPEC.md, version 1.0.0):

* Configuration: the first file of the conf dir by name ending in ``.conflist``, ``.conf`` or
  ``.json`` that parses (as containerd and the kubelet pick it); a single-plugin ``.conf`` is
  wrapped as a one-plugin list.
* ``ADD``: every plugin of the list in order, each given its own config plus the list's ``name``
  and ``cniVersion``, the previous plugin's result as ``prevResult`` and, under ``runtimeConfig``,
  the runtime arguments it declares in ``capabilities`` (``portMappings``).  The environment
  carries ``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH`` and
  ``CNI_ARGS`` (``K8S_POD_NAMESPACE`` etc., like the kubelet's CRI runtimes).
* The final result is cached on disk per (network, container id, ifname), like libcni's
  ``results/`` cache, so ``DEL`` works after an agent restart: ``DEL`` runs the plugins in reverse
  order with the cached config, runtime arguments and result as ``prevResult``.
* A plugin's error (non-zero exit, ``{"code", "msg", "details"}`` on stdout) becomes a
  :class:`CNIError` whose text names the plugin and the network.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.agent.runtime.base import ContainerRuntimeError

log = logging.getLogger("kubelite.agent.cni")
Obj = dict[str, Any]
CNI_VERSION = "1.0.0"
CONF_EXTENSIONS = (".conf", ".conflist", ".json")
PLUGIN_TIMEOUT = 30.0


class CNIError(ContainerRuntimeError):
    """A plugin failed, or there is no usable network configuration."""


@dataclass(frozen=True)
class NetworkConfigList:
    """One network: its name, version and plugin configs, as loaded from ``source``."""

    name: str
    cni_version: str
    plugins: tuple[Obj, ...]
    source: str = ""

    def to_json(self) -> Obj:
        return {"cniVersion": self.cni_version, "name": self.name, "plugins": list(self.plugins)}


@dataclass(frozen=True)
class PodRef:
    """Who the attachment is for: the ``CNI_ARGS`` a Kubernetes runtime passes."""

    namespace: str
    name: str
    uid: str
    sandbox_id: str

    def cni_args(self) -> str:
        return ";".join(
            [
                "IgnoreUnknown=1",
                f"K8S_POD_NAMESPACE={self.namespace}",
                f"K8S_POD_NAME={self.name}",
                f"K8S_POD_INFRA_CONTAINER_ID={self.sandbox_id}",
                f"K8S_POD_UID={self.uid}",
            ]
        )


@dataclass
class Attachment:
    """The ADD of one network to one sandbox: what ``DEL`` needs later (kept in the cache)."""

    network: NetworkConfigList
    container_id: str
    netns: str
    pod: PodRef
    ifname: str = "eth0"
    runtime_config: Obj = field(default_factory=dict)
    result: Obj = field(default_factory=dict)


def parse_conf(path: Path) -> NetworkConfigList:
    """A ``.conflist``, or a single-plugin ``.conf``/``.json`` wrapped as a list."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CNIError(f"cannot read CNI config {path}: {e}") from e
    if not isinstance(data, dict):
        raise CNIError(f"CNI config {path} is not a JSON object")
    if "plugins" in data:
        plugins = data["plugins"]
        if not isinstance(plugins, list) or not plugins:
            raise CNIError(f"CNI config list {path} has no plugins")
    elif path.suffix == ".conflist":
        raise CNIError(f"CNI config list {path} has no plugins")
    else:
        plugins = [{k: v for k, v in data.items() if k not in ("name", "cniVersion")}]
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise CNIError(f"CNI config {path} has no network name")
    for p in plugins:
        if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
            raise CNIError(f"CNI config {path}: every plugin needs a type")
    version = str(data.get("cniVersion") or CNI_VERSION)
    return NetworkConfigList(name, version, tuple(plugins), str(path))


def config_files(conf_dir: Path) -> list[Path]:
    if not conf_dir.is_dir():
        return []
    return sorted(p for p in conf_dir.iterdir() if p.suffix in CONF_EXTENSIONS and p.is_file())


def load_network(conf_dir: Path) -> NetworkConfigList | None:
    """The first valid configuration in ``conf_dir`` by file name (None when there is none)."""
    for path in config_files(conf_dir):
        try:
            return parse_conf(path)
        except CNIError as e:
            log.warning("skipping CNI config %s: %s", path, e)
    return None


def find_plugin(plugin_type: str, bin_dirs: list[str]) -> str:
    for d in bin_dirs:
        candidate = Path(d) / plugin_type
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise CNIError(f'CNI plugin "{plugin_type}" not found in {":".join(bin_dirs)}')


def plugin_stdin(
    network: NetworkConfigList, plugin: Obj, runtime_config: Obj, prev_result: Obj | None
) -> Obj:
    """The plugin's config as the spec wants it on stdin."""
    conf = dict(plugin)
    conf["name"] = network.name
    conf["cniVersion"] = network.cni_version
    caps = plugin.get("capabilities") or {}
    wanted = {k: v for k, v in runtime_config.items() if caps.get(k)}
    if wanted:
        conf["runtimeConfig"] = {**(conf.get("runtimeConfig") or {}), **wanted}
    if prev_result is not None:
        conf["prevResult"] = prev_result
    return conf


def _error_text(plugin_type: str, command: str, rc: int, out: bytes, err: bytes) -> str:
    try:
        data = json.loads(out)
    except ValueError:
        data = None
    if isinstance(data, dict) and ("msg" in data or "code" in data):
        msg = str(data.get("msg") or "")
        details = str(data.get("details") or "")
        text = f"{msg}: {details}" if details and details != msg else msg
        return f'plugin type="{plugin_type}" failed ({command.lower()}): {text} (code {data.get("code")})'
    extra = (err or out).decode(errors="replace").strip()[-500:]
    return f'plugin type="{plugin_type}" failed ({command.lower()}): exit status {rc}: {extra}'


class CNIClient:
    """Runs the plugins of a network for a sandbox, caching ADD results under ``cache_dir``."""

    def __init__(self, bin_dirs: list[str], cache_dir: Path, *, timeout: float = PLUGIN_TIMEOUT) -> None:
        self.bin_dirs = [d for d in bin_dirs if d]
        self.cache_dir = cache_dir
        self.timeout = timeout
        self.timings: collections.deque[tuple[str, float]] = collections.deque(maxlen=256)  # (command, s)

    # ------------------------------------------------------------------ plugin execution
    async def exec_plugin(self, command: str, att: Attachment, conf: Obj) -> Obj:
        plugin_type = str(conf["type"])
        path = find_plugin(plugin_type, self.bin_dirs)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": att.container_id,
            "CNI_NETNS": att.netns,
            "CNI_IFNAME": att.ifname,
            "CNI_PATH": ":".join(self.bin_dirs),
            "CNI_ARGS": att.pod.cni_args(),
        }
        proc = await asyncio.create_subprocess_exec(
            path,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a timeout kills the plugin and whatever it started
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(conf).encode()), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise CNIError(
                f'plugin type="{plugin_type}" timed out after {self.timeout:.0f}s ({command.lower()})'
            ) from None
        if proc.returncode != 0:
            raise CNIError(_error_text(plugin_type, command, proc.returncode or 1, out, err))
        if command != "ADD" or not out.strip():
            return {}
        try:
            result = json.loads(out)
        except ValueError as e:
            raise CNIError(f'plugin type="{plugin_type}" returned an invalid result: {e}') from e
        return result if isinstance(result, dict) else {}

    # ------------------------------------------------------------------ ADD / DEL
    async def add(self, att: Attachment) -> Obj:
        """Run ADD through the plugin list; the last result is cached and returned."""
        start = time.monotonic()
        prev: Obj | None = None
        for plugin in att.network.plugins:
            conf = plugin_stdin(att.network, plugin, att.runtime_config, prev)
            try:
                prev = await self.exec_plugin("ADD", att, conf)
            except CNIError as e:
                raise CNIError(
                    f'failed to set up the pod network (network "{att.network.name}"): {e}'
                ) from None
        att.result = prev or {}
        self._save(att)
        self.timings.append(("ADD", time.monotonic() - start))
        return att.result

    async def delete(self, att: Attachment) -> None:
        """Run DEL through the plugins in reverse order, with the cached result as prevResult;
        the cache entry goes once every plugin succeeded."""
        start = time.monotonic()
        prev = att.result or None
        errors: list[str] = []
        for plugin in reversed(att.network.plugins):
            conf = plugin_stdin(att.network, plugin, att.runtime_config, prev)
            try:
                await self.exec_plugin("DEL", att, conf)
            except CNIError as e:
                errors.append(str(e))
        self.timings.append(("DEL", time.monotonic() - start))
        if errors:
            raise CNIError(
                f'failed to tear down the pod network (network "{att.network.name}"): ' + "; ".join(errors)
            )
        self._path(att.network.name, att.container_id, att.ifname).unlink(missing_ok=True)

    # ------------------------------------------------------------------ cache
    def _path(self, network: str, container_id: str, ifname: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{network}-{container_id}-{ifname}")
        return self.cache_dir / "results" / f"{safe}.json"

    def _save(self, att: Attachment) -> None:
        data = {
            "kind": "cniCacheV1",
            "networkName": att.network.name,
            "containerId": att.container_id,
            "ifName": att.ifname,
            "netns": att.netns,
            "config": att.network.to_json(),
            "source": att.network.source,
            "pod": {
                "namespace": att.pod.namespace,
                "name": att.pod.name,
                "uid": att.pod.uid,
                "sandbox_id": att.pod.sandbox_id,
            },
            "runtimeConfig": att.runtime_config,
            "result": att.result,
        }
        path = self._path(att.network.name, att.container_id, att.ifname)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def cached(self, container_id: str) -> list[Attachment]:
        """Every attachment recorded for ``container_id`` (any network, any interface)."""
        found: list[Attachment] = []
        results = self.cache_dir / "results"
        if not results.is_dir():
            return found
        for path in sorted(results.glob("*.json")):
            att = _load_attachment(path)
            if att is not None and att.container_id == container_id:
                found.append(att)
        return found


def _load_attachment(path: Path) -> Attachment | None:
    try:
        data = json.loads(path.read_text())
        cfg = data["config"]
        network = NetworkConfigList(
            str(cfg["name"]),
            str(cfg.get("cniVersion") or CNI_VERSION),
            tuple(cfg["plugins"]),
            data.get("source", ""),
        )
        pod = PodRef(**data["pod"])
        return Attachment(
            network,
            str(data["containerId"]),
            str(data.get("netns") or ""),
            pod,
            ifname=str(data.get("ifName") or "eth0"),
            runtime_config=dict(data.get("runtimeConfig") or {}),
            result=dict(data.get("result") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("unreadable CNI cache entry %s: %s", path, e)
        return None


def pod_ip(result: Obj) -> str:
    """The pod's IP from a CNI result: the first IPv4 address of the sandbox's interface."""
    ips = result.get("ips") or []
    ifaces = result.get("interfaces") or []
    in_sandbox = {i for i, itf in enumerate(ifaces) if isinstance(itf, dict) and itf.get("sandbox")}
    candidates = [ip for ip in ips if isinstance(ip, dict) and ip.get("address")]
    candidates.sort(key=lambda ip: 0 if ip.get("interface") in in_sandbox else 1)
    for ip in candidates:
        addr = str(ip["address"]).split("/")[0]
        if ":" not in addr:
            return addr
    return str(candidates[0]["address"]).split("/")[0] if candidates else ""
