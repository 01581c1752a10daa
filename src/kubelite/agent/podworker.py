"""One worker per pod: level-triggered sync of the pod spec against what the runtime has.

Mirrors the kubelet's pod workers and ``kuberuntime_manager.SyncPod``: each sync observes the
pod's containers, then takes the next step — sandbox, volumes, init containers one at a time (a
native sidecar, an init container with ``restartPolicy: Always``, keeps running and only has to
start), then the app containers; exited containers restart per ``restartPolicy`` with the
CrashLoopBackOff back-off (10 s doubling to 5 min, reset after 10 min of running).  Images are
pulled per ``imagePullPolicy`` with the pull back-off (ErrImagePull, then ImagePullBackOff).
Probes run per container (see :mod:`kubelite.agent.probes`); liveness/startup failures restart the
container.  postStart runs right after a start; deletion runs preStop, SIGTERM, waits the grace
period (the deletion's, else ``terminationGracePeriodSeconds``), SIGKILLs, removes the sandbox
and volumes and finally deletes the pod object with grace 0 and a UID precondition.  The status
is written through ``pods/status`` only when it changed.

Cost: the PLEG is event-driven — each running container has a ``wait_container`` (a pidfd on its
supervisor with runc) whose return kicks the worker, so a steady pod is only re-listed every
``IDLE_RESYNC``; a runtime that cannot wait is polled every ``RESYNC``.  Sandbox creation (CNI
included) and container starts take turns (the agent's ``sandbox_slots`` and ``start_slots``, first
come first served), so in a burst the first pods run first instead of all finishing together; a
sandbox is made only while fewer than the agent's ``start_backlog`` pods wait to start containers,
so sandbox work does not run ahead and take the CPU from the pods created earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from kubelite.agent import containerspec, status
from kubelite.agent.env import ConfigError, PodFacts, Sources, container_argv, container_env
from kubelite.agent.images.backoff import PullBackOff, backoff_message
from kubelite.agent.images.reference import InvalidReferenceError
from kubelite.agent.network.dns import PodDNS
from kubelite.agent.network.pod import port_mappings
from kubelite.agent.probes import ContainerProber, Target, run_action
from kubelite.agent.runtime.base import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    ImageNeverPullError,
    ImagePullError,
    PulledImage,
    RegistryAuth,
    Runtime,
    Sandbox,
    SandboxConfig,
)
from kubelite.agent.status import ContainerView
from kubelite.agent.volumes import PodVolumes, Volume, VolumeError, container_mounts
from kubelite.api import errors
from kubelite.api.podhealth import now_rfc3339, timestamp
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder

log = logging.getLogger("kubelite.agent.pod")
timing_log = logging.getLogger("kubelite.agent.timing")  # per-phase startup timings (INFO)
PODS = Resource("", "v1", "pods")
RESYNC = 2.0  # seconds between observations of a pod with live containers (the PLEG relist)
IDLE_RESYNC = 30.0  # ... when the runtime reports every running container's exit (no polling)
VOLUME_REFRESH = 30.0  # configMap/secret/downwardAPI contents are refreshed this often
BACKOFF_RESET = 600.0  # a container that ran this long starts its back-off over
Obj = dict[str, Any]


class ImageSource(Protocol):
    async def pull(
        self, ref: str, auth: dict[str, RegistryAuth] | None = None, policy: str = "IfNotPresent"
    ) -> PulledImage: ...

    async def get(self, ref: str) -> PulledImage | None: ...


class AgentContext(Protocol):
    """What a pod worker needs from its agent."""

    client: Client
    runtime: Runtime
    images: ImageSource
    volumes: PodVolumes
    recorder: EventRecorder
    sources: Sources
    pull_backoff: PullBackOff
    node_name: str
    host_ip: str
    pods_dir: Path
    crash_backoff: tuple[float, float]  # (initial, maximum)
    memory_capacity: int
    allocatable: dict[str, str]
    runtime_note: str  # "" or a sentence for the pod's events (rootless limitations)

    def get_pod(self, uid: str) -> Obj | None: ...

    def worker_done(self, uid: str) -> None: ...

    async def pull_secrets(self, pod: Obj) -> dict[str, RegistryAuth]: ...


def _short_image_key(uid: str, image: str) -> str:
    return f"{uid}/{image}"


def _log_tail(path: str, max_lines: int = 80, max_bytes: int = 2048) -> str:
    """The last lines of a CRI-format log, message text only (FallbackToLogsOnError)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            raw = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = []
    for line in raw.splitlines()[-max_lines:]:
        parts = line.split(" ", 3)
        lines.append(parts[3] if len(parts) == 4 else line)
    text = "\n".join(lines)
    return text[-max_bytes:]


class StartupTimings:
    """Where a pod's startup went (sandbox, volumes, image, config, start, status write), logged
    once at INFO on ``kubelite.agent.timing`` when all its app containers first run."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.phases: dict[str, float] = {}
        self.done = False

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.monotonic()
        try:
            yield
        finally:
            if not self.done:
                self.phases[name] = self.phases.get(name, 0.0) + time.monotonic() - t

    def mark(self, name: str) -> None:
        """The first time ``name`` happened, as an offset from the worker's creation."""
        if not self.done:
            self.phases.setdefault(name, time.monotonic() - self.t0)

    def report(self, uid: str, running: bool) -> None:
        if self.done or not running:
            return
        self.done = True
        if timing_log.isEnabledFor(logging.INFO):
            parts = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.phases.items())
            timing_log.info(
                "pod started uid=%s total=%.0fms %s", uid, (time.monotonic() - self.t0) * 1000, parts
            )


@dataclasses.dataclass
class _Crash:
    delay: float
    last_restart: float


class PodWorker:
    """Drives one pod (by UID) until it is gone; :meth:`kick` asks for a sync."""

    def __init__(self, agent: AgentContext, uid: str) -> None:
        self.agent = agent
        self.uid = uid
        self.sandbox: Sandbox | None = None
        self.vols: dict[str, Volume] | None = None
        self.vols_at = 0.0
        self.images: dict[str, PulledImage] = {}
        self.attempts: dict[str, list[ContainerStatus]] = {}  # name -> statuses by attempt (last = newest)
        self.probers: dict[str, ContainerProber] = {}  # container id -> prober
        self.waiting: dict[str, tuple[str, str]] = {}
        self.crash: dict[str, _Crash] = {}
        self.kill_tasks: set[asyncio.Task[None]] = set()
        self.last_status: Obj | None = None
        self.written_over = ""  # resourceVersion of the cached pod when the status was last written
        self.observed = False
        self.forced_phase: tuple[str, str, str] | None = None
        self.start_time = now_rfc3339()
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.finished = False
        self.last_pod: Obj | None = None
        self.timings = StartupTimings()
        self.exit_watches: dict[str, asyncio.Task[None]] = {}  # container id -> wait_container task
        self.exits_reported = True  # False once the runtime's wait_container returned early

    # ---------------------------------------------------------------------------- plumbing
    def start(self) -> None:
        self._event.set()
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.uid}")

    def kick(self) -> None:
        self._event.set()

    async def stop(self) -> None:
        """Stop driving the pod (agent shutdown): containers keep running for adoption."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._stop_exit_watches()
        await self._stop_probers()

    async def _run(self) -> None:
        while not self.finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self._resync_period())
            self._event.clear()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod sync failed uid=%s", self.uid)
                await asyncio.sleep(1.0)
        self.agent.worker_done(self.uid)

    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self.agent.recorder.event(pod, type_, reason, message)

    # ---------------------------------------------------------------------------- exit events
    def _resync_period(self) -> float:
        """The relist period: short while a container is in flux or its exit is not watched, long
        for a steady pod whose running containers' exits the runtime reports (event-driven PLEG)."""
        if not self.exits_reported or self.waiting or self.last_pod is None:
            return RESYNC  # still starting, backing off, or polled anyway
        for c in _all_containers(self.last_pod):
            cur = self.latest(c["name"])
            if cur is None or cur.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
                return RESYNC
            if cur.state == ContainerState.RUNNING and cur.id not in self.exit_watches:
                return RESYNC
        return IDLE_RESYNC

    def _watch_exits(self) -> None:
        """One ``wait_container`` per running container; its return kicks a sync."""
        running = set()
        for sts in self.attempts.values():
            if sts and sts[-1].state == ContainerState.RUNNING:
                running.add(sts[-1].id)
        for cid in [c for c, t in self.exit_watches.items() if t.done() or c not in running]:
            self.exit_watches.pop(cid).cancel()
        if not self.exits_reported:
            return
        for cid in running - set(self.exit_watches):
            self.exit_watches[cid] = asyncio.create_task(self._await_exit(cid), name=f"exit-{cid}")

    async def _await_exit(self, cid: str) -> None:
        try:
            st = await self.agent.runtime.wait_container(cid)
        except asyncio.CancelledError:
            raise
        except Exception:
            st = None
        if st is None or st.state == ContainerState.RUNNING:
            self.exits_reported = False  # this runtime cannot wait: poll every RESYNC instead
        self.kick()

    def _stop_exit_watches(self) -> None:
        for task in self.exit_watches.values():
            task.cancel()
        self.exit_watches.clear()

    # ---------------------------------------------------------------------------- sync
    async def sync(self) -> None:
        self.timings.mark("first_sync_at")
        pod = self.agent.get_pod(self.uid)
        if pod is not None:
            self.last_pod = pod
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self.terminate(pod)
            return
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if terminal or self.forced_phase is not None:
            await self._finish(pod, terminal)
            return
        if not await self._ensure_sandbox(pod):
            return
        await self._observe()
        if await self._ensure_volumes(pod):
            await self._step(pod)
        with self.timings.phase("status"):
            await self._write_status(pod)
        self.timings.report(self.uid, self._all_running(pod))
        if status.phase(pod, self._views(pod, True), self._views(pod, False)) in ("Succeeded", "Failed"):
            await self._stop_all(pod, 0, "")

    async def _finish(self, pod: Obj, terminal: bool) -> None:
        """A terminal (or evicted) pod: nothing starts again, what still runs is stopped."""
        if self.sandbox is None:
            return
        if not self.observed:
            await self._observe()
        if self.forced_phase is not None and not terminal:
            await self._write_status(pod)
        grace = 0.0 if terminal else float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        await self._stop_all(pod, grace, "")
        if self.forced_phase is not None and not terminal:
            await self._write_status(pod)

    async def _ensure_sandbox(self, pod: Obj) -> bool:
        if self.sandbox is not None:
            return True
        spec = pod.get("spec") or {}
        meta = pod["metadata"]
        hostname = str(spec.get("hostname") or meta["name"])[:63]
        dns: PodDNS | None = getattr(self.agent, "pod_dns", None)  # with --network cni
        host_network = bool(spec.get("hostNetwork"))
        cfg = SandboxConfig(
            pod_uid=self.uid,
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta["name"]),
            hostname=hostname,
            host_network=host_network,
            share_process_namespace=bool(spec.get("shareProcessNamespace")),
            dns_resolv_conf=self._resolv_conf(pod, dns),
            hosts_file="",
            labels={"io.kubernetes.pod.uid": self.uid},
            port_mappings=() if host_network else port_mappings(pod),
        )
        try:
            with self.timings.phase("sandbox"):
                async with _turn(getattr(self.agent, "sandbox_slots", None)):
                    await self._start_backlog_short()
                    self.sandbox = await self.agent.runtime.create_sandbox(cfg)
        except Exception as e:
            self.event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            await asyncio.sleep(2)
            self.kick()
            return False
        ip = self.pod_ip(pod)
        hosts = _hosts_file(pod, ip, hostname, dns.cluster_domain if dns is not None else "cluster.local")
        sandbox_path = getattr(getattr(self.agent.runtime, "sandboxes", None), "path", None)
        if callable(sandbox_path):  # the runc runtimes: the pod's /etc/hosts file
            with contextlib.suppress(OSError):
                (Path(sandbox_path(self.sandbox.id)) / "hosts").write_text(hosts)
        if self.agent.runtime_note:
            self.event(pod, "Normal", "RuntimeLimitations", self.agent.runtime_note)
        return True

    async def _start_backlog_short(self) -> None:
        """In a burst, make the sandbox only once few pods are still waiting to start containers:
        sandboxes made far ahead of their pods' starts take CPU from the pods created earlier
        (the stages would otherwise finish all sandboxes first, then all starts)."""
        starts = getattr(self.agent, "start_slots", None)
        limit = getattr(self.agent, "start_backlog", 0)
        if limit and callable(getattr(starts, "below", None)):
            await starts.below(limit)  # type: ignore[union-attr]

    def _resolv_conf(self, pod: Obj, dns: PodDNS | None) -> str:
        """The cluster DNS settings per dnsPolicy (``--network cni``), else the host-based file."""
        if dns is None:
            return _resolv_conf(pod.get("spec") or {})
        conf = dns.pod_config(pod)
        for warning in conf.warnings:
            self.event(pod, "Warning", "DNSConfigForming", warning)
        return conf.render()

    def pod_ip(self, pod: Obj) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.agent.host_ip
        return self.sandbox.ip if self.sandbox is not None else ""

    def facts(self, pod: Obj) -> PodFacts:
        return PodFacts(
            pod_ip=self.pod_ip(pod), host_ip=self.agent.host_ip, node_allocatable=self.agent.allocatable
        )

    async def _ensure_volumes(self, pod: Obj) -> bool:
        if self.vols is not None and time.monotonic() - self.vols_at < VOLUME_REFRESH:
            return True
        try:
            with self.timings.phase("volumes"):
                self.vols = await self.agent.volumes.setup(pod, self.facts(pod))
            self.vols_at = time.monotonic()
        except VolumeError as e:
            if self.vols is None:
                self.event(pod, "Warning", "FailedMount", str(e))
                self.kick_later(5)
                for c in _all_containers(pod):
                    self.waiting.setdefault(c["name"], ("ContainerCreating", ""))
                return False
        return True

    def kick_later(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.kick)

    async def _observe(self) -> None:
        """Refresh the runtime view of this pod's containers (adopting those left running)."""
        rt = self.agent.runtime
        assert self.sandbox is not None
        if not self.observed:
            for st in sorted(await rt.list_containers(self.sandbox), key=lambda s: s.attempt):
                self.attempts.setdefault(st.name, []).append(st)
            self.observed = True
        for sts in self.attempts.values():
            if sts and sts[-1].state not in (ContainerState.EXITED,):
                sts[-1] = await rt.container_status(sts[-1].id)
            for old in sts[:-2]:  # keep the newest two attempts (current + lastState)
                await self._forget(old)
            del sts[:-2]
        for cid in [cid for cid in self.probers if not self._is_running_id(cid)]:
            await self.probers.pop(cid).stop()
        self._watch_exits()

    async def _forget(self, st: ContainerStatus) -> None:
        with contextlib.suppress(Exception):
            await self.agent.runtime.remove_container(st.id)

    def _is_running_id(self, cid: str) -> bool:
        for sts in self.attempts.values():
            if sts and sts[-1].id == cid:
                return sts[-1].state == ContainerState.RUNNING
        return False

    def _all_running(self, pod: Obj) -> bool:
        names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        return all((cur := self.latest(n)) is not None and cur.state == ContainerState.RUNNING for n in names)

    def latest(self, name: str) -> ContainerStatus | None:
        sts = self.attempts.get(name)
        return sts[-1] if sts else None

    # ---------------------------------------------------------------------------- the next step
    async def _step(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        for c in spec.get("initContainers") or []:
            sidecar = c.get("restartPolicy") == "Always"
            cur = self.latest(c["name"])
            if cur is None:
                await self._start(pod, c, 0)
                return
            if cur.state == ContainerState.RUNNING:
                self._ensure_prober(pod, c, cur)
                if sidecar and self.probers.get(cur.id) is not None and self.probers[cur.id].started:
                    continue
                return
            if cur.state == ContainerState.EXITED:
                if not sidecar and cur.exit_code == 0:
                    continue
                if sidecar or policy != "Never":
                    await self._restart(pod, c, cur)
                return
            await self._retry_start(pod, c, cur)
            return
        for c in spec.get("containers") or []:
            cur = self.latest(c["name"])
            if cur is None:
                await self._start(pod, c, 0)
                continue
            if cur.state == ContainerState.RUNNING:
                self._ensure_prober(pod, c, cur)
            elif cur.state == ContainerState.EXITED and _should_restart(policy, cur):
                await self._restart(pod, c, cur)
            elif cur.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
                await self._retry_start(pod, c, cur)

    async def _retry_start(self, pod: Obj, c: Obj, cur: ContainerStatus) -> None:
        """A container that never started (a start cut short by an agent crash): start it again."""
        self.attempts[c["name"]].pop()
        await self._start(pod, c, cur.attempt)

    async def _restart(self, pod: Obj, c: Obj, cur: ContainerStatus) -> None:
        name = c["name"]
        now = time.monotonic()
        initial, maximum = self.agent.crash_backoff
        entry = self.crash.get(name)
        finished = timestamp(cur.finished_at) or time.time()
        started = timestamp(cur.started_at) or finished
        if entry is not None and finished - started >= BACKOFF_RESET:
            entry = None
        if entry is not None:
            wait = entry.delay - (time.time() - finished)
            if wait > 0:
                meta = pod["metadata"]
                who = f"{meta['name']}_{meta.get('namespace')}({self.uid})"
                msg = f"back-off {_fmt_delay(entry.delay)} restarting failed container={name} pod={who}"
                if self.waiting.get(name, ("", ""))[0] != "CrashLoopBackOff":
                    self.event(
                        pod,
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {name} in pod {who}",
                    )
                self.waiting[name] = ("CrashLoopBackOff", msg)
                self.kick_later(wait + 0.05)
                return
            entry = _Crash(min(entry.delay * 2, maximum), now)
        else:
            entry = _Crash(initial, now)
        self.crash[name] = entry
        await self._start(pod, c, cur.attempt + 1)

    # ---------------------------------------------------------------------------- starting
    async def _image(self, pod: Obj, c: Obj) -> PulledImage | None:
        name, image = c["name"], str(c.get("image") or "")
        policy = str(c.get("imagePullPolicy") or "IfNotPresent")
        key = _short_image_key(self.uid, image)
        backoff = self.agent.pull_backoff
        if backoff.waiting(key) > 0:
            if self.waiting.get(name, ("", ""))[0] != "ImagePullBackOff":
                self.event(pod, "Normal", "BackOff", backoff_message(image))
            self.waiting[name] = ("ImagePullBackOff", backoff_message(image))
            self.kick_later(backoff.waiting(key) + 0.05)
            return None
        try:
            present = await self.agent.images.get(image) if policy != "Always" else None
        except InvalidReferenceError as e:
            self._image_failed(
                pod,
                c,
                "InvalidImageName",
                f'Failed to apply default image tag "{image}": {e}',
                key,
                backoff_too=False,
            )
            return None
        if present is not None:
            self.event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present
        started = time.monotonic()
        if policy != "Never":
            self.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        try:
            pulled = await self.agent.images.pull(image, await self.agent.pull_secrets(pod), policy)
        except InvalidReferenceError as e:
            self._image_failed(
                pod,
                c,
                "InvalidImageName",
                f'Failed to apply default image tag "{image}": {e}',
                key,
                backoff_too=False,
            )
            return None
        except ImageNeverPullError as e:
            self._image_failed(pod, c, "ErrImageNeverPull", str(e), key, backoff_too=False)
            return None
        except ImagePullError as e:
            self._image_failed(pod, c, "ErrImagePull", f'Failed to pull image "{image}": {e}', key)
            return None
        took = time.monotonic() - started
        backoff.succeeded(key)
        self.event(
            pod,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {took * 1000:.0f}ms ({took * 1000:.0f}ms including '
            f"waiting). Image size: {pulled.size} bytes.",
        )
        return pulled

    def _image_failed(
        self, pod: Obj, c: Obj, reason: str, message: str, key: str, backoff_too: bool = True
    ) -> None:
        self.event(pod, "Warning", "Failed" if reason != "InvalidImageName" else "InspectFailed", message)
        self.event(pod, "Warning", "Failed", f"Error: {reason}")
        self.waiting[c["name"]] = (reason, message)
        if backoff_too:
            delay = self.agent.pull_backoff.failed(key)
            self.kick_later(delay + 0.05)
        else:
            self.kick_later(10)

    async def _start(self, pod: Obj, c: Obj, attempt: int) -> None:
        """Pull, configure and start one container; postStart; probes."""
        name = c["name"]
        assert self.sandbox is not None and self.vols is not None
        self.waiting.setdefault(name, ("ContainerCreating", ""))
        with self.timings.phase("image"):
            img = await self._image(pod, c)
        if img is None:
            return
        self.images[name] = img
        try:
            with self.timings.phase("config"):
                cfg = await self._config(pod, c, img, attempt)
        except (ConfigError, VolumeError) as e:
            reason = "CreateContainerConfigError"
            self.waiting[name] = (reason, str(e))
            self.event(pod, "Warning", "Failed", f"Error: {e}")
            self.kick_later(5)
            return
        try:
            with self.timings.phase("start"):
                st = await self._start_in_turn(cfg)
        except ContainerRuntimeError as e:
            self.waiting[name] = ("RunContainerError", str(e))
            self.event(pod, "Warning", "Failed", f"Error: {e}")
            self.crash.setdefault(name, _Crash(self.agent.crash_backoff[0], time.monotonic()))
            self.kick_later(self.agent.crash_backoff[0])
            return
        self.attempts.setdefault(name, []).append(st)
        self._watch_exits()
        self.waiting.pop(name, None)
        self.event(pod, "Normal", "Created", f"Created container {name}")
        self.event(pod, "Normal", "Started", f"Started container {name}")
        self._ensure_prober(pod, c, st)
        hook = ((c.get("lifecycle") or {}).get("postStart")) or None
        if hook:
            ok, msg = await run_action(hook, c, self.target(pod, st.id), self.agent.runtime, 30)
            if not ok:
                self.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook failed: {msg}".strip())
                self._kill_soon(
                    pod,
                    c,
                    st.id,
                    "FailedPostStartHook",
                    f"Container {name} failed its postStart hook, will be restarted",
                )

    async def _config(self, pod: Obj, c: Obj, img: PulledImage, attempt: int) -> ContainerConfig:
        env = await container_env(pod, c, self.agent.sources, self.facts(pod), img.env)
        env_map = dict(env)
        assert self.vols is not None
        mounts = container_mounts(c, self.vols, env_map)
        argv = container_argv(c, img.entrypoint, img.cmd, env_map)
        if not argv:
            raise ConfigError(f"no command specified for container {c['name']!r} (and the image has none)")
        log_dir = self.agent.pods_dir / self.uid / "logs" / c["name"]
        log_dir.mkdir(parents=True, exist_ok=True)
        return ContainerConfig(
            name=c["name"],
            image_ref=img.ref,
            rootfs_layers=img.layers,
            args=tuple(argv),
            env=tuple(env),
            working_dir=str(c.get("workingDir") or img.working_dir or "/"),
            mounts=tuple(mounts),
            resources=containerspec.resources(pod, c, self.agent.memory_capacity),
            security=containerspec.security(pod, c, img),
            tty=bool(c.get("tty")),
            stdin=bool(c.get("stdin")),
            log_path=str(log_dir / f"{attempt}.log"),
            attempt=attempt,
            termination_message_path=str(c.get("terminationMessagePath") or "/dev/termination-log"),
        )

    async def _start_in_turn(self, cfg: ContainerConfig) -> ContainerStatus:
        """``start_container`` with at most the agent's ``start_slots`` starts at a time, first come
        first served: in a burst, the pods created first run first instead of every pod's runc
        competing for the CPUs until all of them finish together."""
        assert self.sandbox is not None
        async with _turn(getattr(self.agent, "start_slots", None)):
            return await self.agent.runtime.start_container(self.sandbox, cfg)

    def target(self, pod: Obj, cid: str) -> Target:
        ip = self.pod_ip(pod)
        netns = self.sandbox.netns_path if self.sandbox is not None else ""
        return Target(cid, ip, netns)

    def _ensure_prober(self, pod: Obj, c: Obj, st: ContainerStatus) -> None:
        if st.id in self.probers or st.state != ContainerState.RUNNING:
            return
        started = time.monotonic()
        if st.started_at and (ts := timestamp(st.started_at)) is not None:
            started = time.monotonic() - max(0.0, time.time() - ts)
        prober = ContainerProber(
            container=c,
            target=self.target(pod, st.id),
            runtime=self.agent.runtime,
            on_change=self.kick,
            on_unhealthy=lambda kind, msg: self._unhealthy(c["name"], kind, msg),
            on_kill=lambda kind, msg: self._probe_kill(c, st.id, kind, msg),
            started_at=started,
        )
        self.probers[st.id] = prober
        prober.start()

    def _unhealthy(self, name: str, kind: str, message: str) -> None:
        pod = self.agent.get_pod(self.uid)
        if pod is not None:
            self.event(pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}".strip())

    def _probe_kill(self, c: Obj, cid: str, kind: str, message: str) -> None:
        pod = self.agent.get_pod(self.uid)
        if pod is None:
            return
        msg = f"Container {c['name']} failed {kind} probe, will be restarted"
        probe = c.get("livenessProbe" if kind == "liveness" else "startupProbe") or {}
        self._kill_soon(pod, c, cid, "Killing", msg, probe.get("terminationGracePeriodSeconds"))

    def _kill_soon(self, pod: Obj, c: Obj, cid: str, reason: str, message: str, grace: Any = None) -> None:
        self.event(pod, "Normal", "Killing", message) if reason == "Killing" else None
        g = float(
            grace if grace is not None else (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        )

        async def kill() -> None:
            await self._stop_container(pod, c, cid, g, run_pre_stop=True)
            self.kick()

        task = asyncio.create_task(kill())
        self.kill_tasks.add(task)
        task.add_done_callback(self.kill_tasks.discard)

    async def _stop_container(
        self, pod: Obj, c: Obj | None, cid: str, grace: float, run_pre_stop: bool
    ) -> None:
        deadline = time.monotonic() + grace
        hook = ((c or {}).get("lifecycle") or {}).get("preStop") if run_pre_stop else None
        if hook and grace > 0:
            ok, msg = await run_action(hook, c or {}, self.target(pod, cid), self.agent.runtime, grace)
            if not ok:
                self.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}".strip())
        prober = self.probers.pop(cid, None)
        if prober is not None:
            await prober.stop()
        await self.agent.runtime.stop_container(cid, max(0.0, deadline - time.monotonic()))

    # ---------------------------------------------------------------------------- stopping
    async def _stop_all(self, pod: Obj | None, grace: float, reason_msg: str) -> None:
        """Stop every running container: app containers together, then sidecars in reverse."""
        spec = (pod or self.last_pod or {}).get("spec") or {}
        by_name = {c["name"]: c for c in _all_containers(pod or self.last_pod or {})}
        sidecars = [c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        running = [
            (n, sts[-1])
            for n, sts in self.attempts.items()
            if sts and sts[-1].state == ContainerState.RUNNING
        ]
        first = [(n, s) for n, s in running if n not in sidecars]
        later = sorted([(n, s) for n, s in running if n in sidecars], key=lambda t: -sidecars.index(t[0]))
        ref = pod or self.last_pod or {}
        deadline = time.monotonic() + grace

        async def one(n: str, s: ContainerStatus) -> None:
            if ref and grace > 0:
                self.event(ref, "Normal", "Killing", f"Stopping container {n}")
            await self._stop_container(
                ref, by_name.get(n), s.id, max(0.0, deadline - time.monotonic()), run_pre_stop=grace > 0
            )

        await asyncio.gather(*(one(n, s) for n, s in first))
        for n, s in later:
            await one(n, s)
        if running:
            await self._observe()

    async def terminate(self, pod: Obj | None) -> None:
        """Graceful termination, cleanup, then the final delete of the pod object."""
        meta = (pod or {}).get("metadata") or {}
        spec = (pod or {}).get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if pod is None:
            grace = 0  # the object is gone (force deletion): kill at once
        if self.sandbox is None:
            self.sandbox = next(
                (s for s in await self.agent.runtime.list_sandboxes() if s.config.pod_uid == self.uid), None
            )
        if self.sandbox is not None:
            if not self.observed:
                await self._observe()
            await self._stop_all(pod, float(grace), "")
        for t in list(self.kill_tasks):
            t.cancel()
        self._stop_exit_watches()
        await self._stop_probers()
        if pod is not None and self.sandbox is not None:
            with contextlib.suppress(Exception):
                await self._write_status(pod)
        if self.sandbox is not None:
            await self.agent.runtime.remove_sandbox(self.sandbox)
        await self.agent.volumes.teardown(self.uid)
        self.agent.pull_backoff.forget_prefix(self.uid + "/")
        if pod is not None:
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.agent.client.delete(
                    PODS,
                    str(meta.get("namespace")),
                    str(meta.get("name")),
                    grace_period_seconds=0,
                    preconditions={"uid": self.uid},
                )
        self.finished = True

    async def _stop_probers(self) -> None:
        for cid in list(self.probers):
            await self.probers.pop(cid).stop()

    # ---------------------------------------------------------------------------- status
    def _views(self, pod: Obj, init: bool) -> list[ContainerView]:
        spec = pod.get("spec") or {}
        out = []
        for c in spec.get("initContainers" if init else "containers") or []:
            name = c["name"]
            sts = self.attempts.get(name) or []
            cur = sts[-1] if sts else None
            prev = sts[-2] if len(sts) > 1 else None
            if cur is not None and cur.state == ContainerState.EXITED:
                cur = _with_fallback_message(
                    c, cur, self.agent.pods_dir / self.uid / "logs" / name / f"{cur.attempt}.log"
                )
            prober = self.probers.get(cur.id) if cur is not None else None
            img = self.images.get(name)
            waiting = self.waiting.get(name)
            if cur is not None and cur.state == ContainerState.RUNNING:
                waiting = None
            out.append(
                ContainerView(
                    name=name,
                    image=img.ref if img else str(c.get("image") or ""),
                    image_id=_image_id(img) if img else "",
                    current=cur,
                    previous=prev,
                    restart_count=cur.attempt if cur is not None else 0,
                    waiting=waiting,
                    ready=prober.ready if prober is not None else False,
                    started=prober.started if prober is not None else False,
                    sidecar=init and c.get("restartPolicy") == "Always",
                )
            )
        return out

    def build_status(self, pod: Obj) -> Obj:
        return status.pod_status(
            pod,
            self._views(pod, True),
            self._views(pod, False),
            host_ip=self.agent.host_ip,
            pod_ip=self.pod_ip(pod),
            sandbox_ready=self.sandbox is not None,
            start_time=self.start_time,
            now=now_rfc3339(),
            forced_phase=self.forced_phase,
        )

    async def _write_status(self, pod: Obj) -> None:
        new = self.build_status(pod)
        if self.last_status is not None:  # the pod in the cache may not show our last write yet
            new["conditions"] = status.keep_transitions(
                self.last_status.get("conditions") or [], new.get("conditions") or []
            )
        base = self.last_status if self.last_status is not None else (pod.get("status") or {})
        meta = pod["metadata"]
        # the cached pod is the one our last write was based on: it cannot show that write yet
        stale = self.last_status is not None and str(meta.get("resourceVersion", "")) == self.written_over
        if not status.differs(base, new) and (stale or not status.differs(pod.get("status") or {}, new)):
            return
        try:
            self.written_over = str(meta.get("resourceVersion", ""))
            await self.agent.client.patch(
                PODS,
                str(meta.get("namespace")),
                str(meta["name"]),
                {"metadata": {"uid": self.uid}, "status": new},
                subresource="status",
            )
            self.last_status = new
        except errors.NotFound:
            pass
        except errors.Conflict as e:
            log.debug("status write conflict pod=%s error=%s", meta["name"], e)

    def evict(self, reason: str, message: str) -> None:
        """Node-pressure eviction: the pod fails with reason Evicted; its containers are killed."""
        self.forced_phase = ("Failed", reason, message)
        self.kick()

    def container_info(self, name: str) -> tuple[str, str, str] | None:
        """(container id, log path, previous log path) of ``name``'s newest attempt."""
        sts = self.attempts.get(name) or []
        if not sts:
            return None
        logs = self.agent.pods_dir / self.uid / "logs" / name
        cur = sts[-1]
        prev = str(logs / f"{sts[-2].attempt}.log") if len(sts) > 1 else ""
        return cur.id, str(logs / f"{cur.attempt}.log"), prev


# -------------------------------------------------------------------------------- helpers
@contextlib.asynccontextmanager
async def _turn(slots: contextlib.AbstractAsyncContextManager[Any] | None) -> AsyncIterator[None]:
    """Wait for a slot (FIFO) when the agent limits the stage; at once otherwise."""
    if slots is None:
        yield
        return
    async with slots:
        yield


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _should_restart(policy: str, st: ContainerStatus) -> bool:
    if policy == "Always":
        return True
    return policy == "OnFailure" and st.exit_code != 0


def _fmt_delay(seconds: float) -> str:
    s = int(seconds)
    if s >= 60:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m0s"
    return f"{s}s"


def _image_id(img: PulledImage) -> str:
    repo = img.ref.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: repo.rindex(":")]
    return f"{repo}@{img.digest}"


def _with_fallback_message(c: Obj, st: ContainerStatus, log_path: Path) -> ContainerStatus:
    if (
        st.message
        or st.exit_code in (0, None)
        or c.get("terminationMessagePolicy") != "FallbackToLogsOnError"
    ):
        return st
    return dataclasses.replace(st, message=_log_tail(str(log_path)))


def _resolv_conf(spec: Obj) -> str:
    """Per ``dnsPolicy``: the host's resolv.conf for Default and (until cluster DNS exists)
    ClusterFirst; ``None`` gives only ``dnsConfig``; ``dnsConfig`` options are appended."""
    try:
        host = Path("/etc/resolv.conf").read_text()
    except OSError:
        host = ""
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    cfg = spec.get("dnsConfig") or {}
    lines = [] if policy == "None" else [ln for ln in host.splitlines() if ln.strip()]
    if cfg.get("nameservers"):
        lines = [ln for ln in lines if not ln.startswith("nameserver")] + [
            f"nameserver {n}" for n in cfg["nameservers"]
        ]
    if cfg.get("searches"):
        lines = [ln for ln in lines if not ln.startswith("search")] + ["search " + " ".join(cfg["searches"])]
    if cfg.get("options"):
        opts = [f"{o['name']}:{o['value']}" if o.get("value") else str(o.get("name")) for o in cfg["options"]]
        lines.append("options " + " ".join(opts))
    return "\n".join(lines) + "\n"


def _hosts_file(pod: Obj, ip: str, hostname: str, domain: str = "cluster.local") -> str:
    """The kubelet's managed /etc/hosts: localhost, the pod's own name (FQDN with a subdomain),
    then ``hostAliases``."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    if spec.get("hostNetwork"):
        try:
            host = Path("/etc/hosts").read_text().rstrip("\n")
        except OSError:
            host = "127.0.0.1\tlocalhost"
        return host + "\n" + _aliases(spec)
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if ip:
        if spec.get("subdomain"):
            fqdn = f"{hostname}.{spec['subdomain']}.{meta.get('namespace', 'default')}.svc.{domain}"
            lines.append(f"{ip}\t{fqdn}\t{hostname}")
        else:
            lines.append(f"{ip}\t{hostname}")
    return "\n".join(lines) + "\n" + _aliases(spec)


def _aliases(spec: Obj) -> str:
    aliases = spec.get("hostAliases") or []
    if not aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    for a in aliases:
        lines.append(f"{a.get('ip')}\t" + "\t".join(a.get("hostnames") or []))
    return "\n".join(lines) + "\n"


KickFn = Callable[[], None]
