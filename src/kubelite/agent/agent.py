"""The node agent (kubelet): registers its Node, heartbeats, and runs the pods bound to it.

* Registration: the Node with real capacity/allocatable, addresses, labels, conditions and
  nodeInfo (:mod:`kubelite.agent.nodeinfo`); an existing Node keeps its spec and gets fresh
  labels and status.  The Lease in ``kube-node-lease`` is renewed every 10 s; the node status is
  written every 60 s, or at once when a condition changes.
* Pods: one informer with ``fieldSelector=spec.nodeName=<node>``; one
  :class:`~kubelite.agent.podworker.PodWorker` per pod UID.
* Adoption: at start the runtime's sandboxes are matched to pods by UID; sandboxes of pods that no
  longer exist are removed with their containers and volumes (no orphans), the others are picked
  up by their workers (no duplicates: container ids are deterministic per attempt).
* Housekeeping: node-pressure eviction (memory.available < 100Mi, nodefs.available < 10%: the
  BestEffort pods first, then Burstable, then Guaranteed; one per round, reason ``Evicted``) and
  image garbage collection by disk usage through the image service.
* Runtime: rootful ``runc`` as root, rootless ``runc`` otherwise (its limitations go to the ready
  line and to the pods' events).
* Network (``--network cni``, rootful runc): the node's InternalIP is ``--node-ip`` (else the
  primary address); after registering, the agent waits for its ``spec.podCIDR``, sets up the
  node network and starts the Service proxy and the NetworkPolicy enforcer
  (:mod:`kubelite.agent.network`); sandboxes are attached through CNI, pods get the cluster DNS
  in their resolv.conf.  ``--network none``: loopback-only pod namespaces, the host's resolv.conf.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import logging
import os
import shutil
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubelite.agent import containerspec, nodeinfo
from kubelite.agent.env import Sources
from kubelite.agent.images.backoff import PullBackOff
from kubelite.agent.images.service import LocalImageService, auth_from_pull_secrets
from kubelite.agent.network.dns import PodDNS
from kubelite.agent.network.manager import AgentNetwork, NetworkSettings
from kubelite.agent.podworker import ImageSource, PodWorker
from kubelite.agent.runtime.base import PulledImage, RegistryAuth, Runtime, Sandbox
from kubelite.agent.status import differs as status_differs
from kubelite.agent.streams.server import StreamServer
from kubelite.agent.volumes import PodVolumes
from kubelite.api import errors
from kubelite.api.podhealth import now_rfc3339
from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.informer import Informer

log = logging.getLogger("kubelite.agent")
Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
SERVICES = Resource("", "v1", "services")
PVCS = Resource("", "v1", "persistentvolumeclaims")
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
SHUTDOWN_GRACE = 5.0  # seconds a container gets to exit when `kubelite up` stops
HEARTBEAT = 10.0
STATUS_PERIOD = 60.0
HOUSEKEEPING = 10.0
IMAGE_GC_PERIOD = 300.0
START_PARALLELISM = max(2, 2 * (os.cpu_count() or 1))  # runc is CPU-bound: more only interleaves
START_BACKLOG = 2 * START_PARALLELISM  # sandboxes are made only while fewer pods wait to start


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SharedImageLookups:
    """The pod workers' image source: concurrent lookups of one reference share one store lookup,
    and an image found on the node is remembered for a moment, so a burst of pods with the same
    image costs one lookup instead of one per pod.  Pulls go straight to the image service."""

    TTL = 2.0

    def __init__(self, inner: ImageSource) -> None:
        self.inner = inner
        self._found: dict[str, tuple[float, PulledImage]] = {}
        self._lookups: dict[str, asyncio.Task[PulledImage | None]] = {}

    async def get(self, ref: str) -> PulledImage | None:
        hit = self._found.get(ref)
        if hit is not None and time.monotonic() - hit[0] < self.TTL:
            return hit[1]
        task = self._lookups.get(ref)
        if task is None:
            task = asyncio.ensure_future(self.inner.get(ref))
            self._lookups[ref] = task
            task.add_done_callback(lambda t: self._looked_up(ref, t))
        return await asyncio.shield(task)

    def _looked_up(self, ref: str, task: asyncio.Task[PulledImage | None]) -> None:
        self._lookups.pop(ref, None)
        if not task.cancelled() and task.exception() is None and (img := task.result()) is not None:
            self._found[ref] = (time.monotonic(), img)

    async def pull(
        self, ref: str, auth: dict[str, RegistryAuth] | None = None, policy: str = "IfNotPresent"
    ) -> PulledImage:
        self._found.pop(ref, None)
        return await self.inner.pull(ref, auth, policy)

    def forget(self) -> None:
        """Image garbage collection is about to remove images: look them up afresh."""
        self._found.clear()


class Turns:
    """A first-come-first-served semaphore for one stage of pod startup (sandbox creation, container
    start) that also tells whether any pod holds or waits for a turn (:attr:`busy`), and lets an
    earlier stage wait until this one's queue is short (:meth:`below`)."""

    def __init__(self, parallel: int) -> None:
        self._sem = asyncio.Semaphore(parallel)
        self.wanted = 0  # pods holding or waiting for a turn
        self._left = asyncio.Event()  # set whenever a pod leaves (a turn ended or was given up)

    @property
    def busy(self) -> bool:
        return self.wanted > 0

    async def below(self, limit: int) -> None:
        """Return once fewer than ``limit`` pods hold or wait for a turn."""
        while self.wanted >= limit:
            self._left.clear()
            await self._left.wait()

    def _leave(self) -> None:
        self.wanted -= 1
        self._left.set()

    async def __aenter__(self) -> None:
        self.wanted += 1
        try:
            await self._sem.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._sem.release()
        self._leave()


class BackgroundRecorder(EventRecorder):
    """Events written by one background sender, in order and a few at a time, so a burst of pod
    starts does not queue the pods' status writes behind their events at the API server (the
    kubelet's event broadcaster also writes events from its own goroutine, rate limited).

    With ``busy`` (the agent: pods are waiting for or in a sandbox/start turn) queued events wait
    while it is true, at most :attr:`MAX_DELAY` seconds after they were recorded, so in a burst the
    CPU goes to starting containers first and the events (3 per container, in the agent and the
    API server) follow; the kubelet's recorder likewise holds events back (50/s by default)."""

    PARALLEL = 4
    MAX_DELAY = 5.0
    POLL = 0.05

    def __init__(
        self, client: Client, component: str, host: str = "", busy: Callable[[], bool] | None = None
    ) -> None:
        super().__init__(client, component, host)
        self.busy = busy
        self._queue: deque[tuple[float, Obj, str, str, str]] = deque()
        self._sender: asyncio.Task[None] | None = None

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self._queue.append((time.monotonic(), obj, type_, reason, message))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # the caller (a pod sync) goes on first
        while self._queue:
            await self._quiet()
            batch = [self._queue.popleft() for _ in range(min(self.PARALLEL, len(self._queue)))]
            await asyncio.gather(*(self.record(*ev[1:]) for ev in batch))

    async def _quiet(self) -> None:
        """Wait while pod starts are busy, unless the oldest event has waited MAX_DELAY."""
        while self.busy is not None and self._queue and self.busy():
            if time.monotonic() - self._queue[0][0] >= self.MAX_DELAY:
                return
            await asyncio.sleep(self.POLL)

    async def flush(self) -> None:
        self.busy = None  # shutting down: send what is left now
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)
        await super().flush()


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (``malloc_trim``): after a burst of pod
    starts (JSON, TLS buffers) glibc keeps freed memory mapped in the middle of the heap, which
    would count as the agent's resident memory for as long as it runs."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def runc_works(runc: str = "runc") -> bool:
    path = shutil.which(runc)
    if path is None:
        return False
    try:
        return subprocess.run([path, "--version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_runtime(
    root: Path, network: AgentNetwork | None = None, log_limits: tuple[int, int] | None = None
) -> Runtime:
    """Rootful runc as root (sandboxes attached through CNI with ``network``), rootless runc
    otherwise.  ``log_limits``: the kubelet's ``containerLogMaxSize`` (bytes) and
    ``containerLogMaxFiles`` (default 10Mi, 5)."""
    from kubelite.agent.runtime.runc import CONTAINER_LOG_MAX_FILES, CONTAINER_LOG_MAX_SIZE

    size, files = log_limits or (CONTAINER_LOG_MAX_SIZE, CONTAINER_LOG_MAX_FILES)
    if os.geteuid() == 0:
        from kubelite.agent.runtime.runc import RuncRuntime

        return RuncRuntime(
            root,
            network_setup=network.pods.setup if network is not None else None,
            network_teardown=network.pods.teardown if network is not None else None,
            container_log_max_size=size,
            container_log_max_files=files,
        )
    from kubelite.agent.runtime.rootless import RootlessRuncRuntime

    return RootlessRuncRuntime(root, container_log_max_size=size, container_log_max_files=files)


class Agent:
    """The node agent component (``start``/``stop``) and the context its pod workers use."""

    def __init__(
        self,
        client: Client,
        data_dir: Path,
        node_name: str,
        runtime: Runtime,
        images: LocalImageService,
        *,
        crash_backoff: tuple[float, float] = (10.0, 300.0),
        heartbeat: float = HEARTBEAT,
        agent_port: int | None = None,
        stop_pods_on_exit: bool = False,
        node_ip: str | None = None,
        network: AgentNetwork | None = None,
    ) -> None:
        self.client = client
        self.network = network
        self.pod_dns: PodDNS | None = network.dns if network is not None else None
        self.stop_pods_on_exit = stop_pods_on_exit
        self.data_dir = data_dir
        self.node_name = node_name
        self.runtime = runtime
        self.image_lookups = SharedImageLookups(images)
        self.images: ImageSource = self.image_lookups
        self.image_service = images
        self.pods_dir = data_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.volumes = PodVolumes(self.pods_dir, self)
        self.sources: Sources = self
        self.recorder: EventRecorder = BackgroundRecorder(client, "kubelet", node_name, busy=self._starting)
        self.pull_backoff = PullBackOff()
        self.crash_backoff = crash_backoff
        self.heartbeat = heartbeat
        self.host_ip = node_ip or nodeinfo.primary_ip()
        self.readings = nodeinfo.read(data_dir)
        self.memory_capacity = self.readings.mem_total
        self.allocatable = nodeinfo.allocatable(self.readings)
        limitations: tuple[str, ...] = getattr(runtime, "limitations", ())
        self.runtime_note = "; ".join(limitations)
        self.informer = Informer(client, PODS, field_selector=f"spec.nodeName={node_name}")
        self.informer.add_indexer("uid", lambda p: [str((p.get("metadata") or {}).get("uid", ""))])
        self.informer.add_handler(self._on_pod)
        # Services for the containers' service environment variables, from a cache as the kubelet's
        # service lister does (no API round trip before each container start)
        self.service_informer = Informer(client, SERVICES)
        self.service_informer.add_indexer("namespace", _namespace_of)
        # the kubelet's :10250 (logs, exec, attach, port-forward, stats) - kubelite.agent.streams
        self.streams = StreamServer(self, data_dir, agent_port, hosts=[self.host_ip])
        self.workers: dict[str, PodWorker] = {}
        self.start_slots = Turns(START_PARALLELISM)  # container starts at a time
        self.sandbox_slots = Turns(START_PARALLELISM)  # sandbox creations (CNI) at a time
        self.start_backlog = START_BACKLOG
        self.adopted: dict[str, Sandbox] = {}
        self.node_uid = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._conditions_key: tuple[bool, bool, bool] | None = None
        self._status_now = asyncio.Event()
        self._started = False

    def _starting(self) -> bool:
        """Pods are creating sandboxes or starting containers (or waiting for a turn to)."""
        return self.start_slots.busy or self.sandbox_slots.busy

    @property
    def summary(self) -> str:
        """What ``kubelite up`` adds to its ready line."""
        extra = " (no cgroup limits, host network)" if self.runtime.name != "runc" else ""
        net = (
            f" podCIDR={self.network.pod_cidr}" if self.network is not None and self.network.pod_cidr else ""
        )
        return f" runtime={self.runtime.name}{extra} node={self.node_name}{net}"

    # ------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self.streams.start()
        await self.register()
        await self._renew_lease()
        if self.network is not None:
            await self.network.start(self.client, self.node_name, teardown_on_failure=self.stop_pods_on_exit)
        for sb in await self.runtime.list_sandboxes():
            self.adopted[sb.config.pod_uid] = sb
        self.service_informer.start()
        self.informer.start()
        await self.informer.wait_synced(60)
        await self._remove_orphans()
        self._started = True
        for pod in self.informer.list():
            self._ensure_worker(str(pod["metadata"]["uid"]))
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="agent-lease"),
            asyncio.create_task(self._status_loop(), name="agent-node-status"),
            asyncio.create_task(self._housekeeping_loop(), name="agent-housekeeping"),
        ]
        log.info("agent ready node=%s runtime=%s ip=%s", self.node_name, self.runtime.name, self.host_ip)

    async def stop(self) -> None:
        """Stop watching and driving pods; containers keep running (adopted on the next start)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.informer.stop()
        await self.service_informer.stop()
        await self.streams.stop()
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())), return_exceptions=True)
        if self.stop_pods_on_exit:
            await self._stop_all_pods()
        else:
            await self._drop_empty_sandboxes()
        self.workers.clear()
        if self.network is not None:  # policy, proxy, routes; the node plumbing once no pod runs
            with contextlib.suppress(Exception):
                await self.network.stop(teardown=self.stop_pods_on_exit)
        await self.recorder.flush()
        with contextlib.suppress(Exception):
            await self.image_service.aclose()

    async def _stop_all_pods(self) -> None:
        """``kubelite up`` is shutting the whole cluster down: stop every container (SIGTERM, a short
        grace, SIGKILL) and remove sandboxes and volumes, so nothing keeps running or stays mounted.
        The pod objects stay; the next start runs them again (like a node reboot)."""

        async def one(sb: Any) -> None:
            with contextlib.suppress(Exception):
                for c in await self.runtime.list_containers(sb):
                    with contextlib.suppress(Exception):
                        await self.runtime.stop_container(c.id, SHUTDOWN_GRACE)
                    with contextlib.suppress(Exception):
                        await self.runtime.remove_container(c.id)
                await self.runtime.remove_sandbox(sb)
                await self.volumes.teardown(sb.config.pod_uid)

        with contextlib.suppress(Exception):
            await asyncio.gather(*(one(sb) for sb in await self.runtime.list_sandboxes()))

    async def _drop_empty_sandboxes(self) -> None:
        """Sandboxes with no container at all (e.g. their image never pulled) hold nothing worth
        adopting: remove them on shutdown so a stopped agent leaves no network namespaces behind."""
        for w in self.workers.values():
            if w.sandbox is None:
                continue
            with contextlib.suppress(Exception):
                if not await self.runtime.list_containers(w.sandbox):
                    await self.runtime.remove_sandbox(w.sandbox)
                    await self.volumes.teardown(w.uid)

    async def _remove_orphans(self) -> None:
        live = {str(p["metadata"]["uid"]) for p in self.informer.list()}
        for uid, sb in list(self.adopted.items()):
            if uid in live:
                continue
            log.info(
                "removing orphaned pod sandbox uid=%s name=%s/%s", uid, sb.config.namespace, sb.config.name
            )
            with contextlib.suppress(Exception):
                await self.runtime.remove_sandbox(sb)
            await self.volumes.teardown(uid)
            del self.adopted[uid]
        if self.pods_dir.is_dir():
            for d in self.pods_dir.iterdir():
                if d.name not in live:
                    await self.volumes.teardown(d.name)

    # ------------------------------------------------------------------------- pods
    def _on_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        old_uid = str(((old or {}).get("metadata") or {}).get("uid", ""))
        new_uid = str(((new or {}).get("metadata") or {}).get("uid", ""))
        if old is not None and new is not None and old_uid == new_uid and self._own_status_echo(old, new):
            return  # the watch echoing the worker's own status write: nothing to do
        if old_uid and old_uid in self.workers:
            self.workers[old_uid].kick()
        if new_uid and self._started:
            self._ensure_worker(new_uid).kick()

    def _own_status_echo(self, old: Obj, new: Obj) -> bool:
        """Only the status changed, to exactly what the pod's worker last wrote."""
        worker = self.workers.get(str(new["metadata"].get("uid", "")))
        mine = worker.last_status if worker is not None else None
        if mine is None or old.get("spec") != new.get("spec"):
            return False
        meta_old, meta_new = old.get("metadata") or {}, new.get("metadata") or {}
        if any(meta_old.get(k) != meta_new.get(k) for k in _POD_META_KEYS):
            return False
        theirs = new.get("status") or {}
        return not status_differs(mine, theirs) and not status_differs(theirs, mine)

    def _ensure_worker(self, uid: str) -> PodWorker:
        worker = self.workers.get(uid)
        if worker is None:
            prepare = getattr(self.runtime, "prepare", None)  # runc: its supervisor zygote
            if callable(prepare):
                prepare()
            worker = PodWorker(self, uid)
            worker.sandbox = self.adopted.pop(uid, None)
            self.workers[uid] = worker
            worker.start()
        return worker

    def get_pod(self, uid: str) -> Obj | None:
        found = self.informer.by_index("uid", uid)
        return found[0] if found else None

    def worker_done(self, uid: str) -> None:
        self.workers.pop(uid, None)

    async def pull_secrets(self, pod: Obj) -> dict[str, RegistryAuth]:
        ns = str(pod["metadata"].get("namespace") or "default")
        secrets = []
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            s = await self.secret(ns, str(ref.get("name")))
            if s is not None:
                secrets.append(s)
        return auth_from_pull_secrets(secrets)

    def container_for(self, namespace: str, pod: str, container: str) -> tuple[Runtime, str, str, str] | None:
        """(runtime, container id, log path, previous log path) for the streams (logs/exec/attach).

        ``container`` "" picks the first container.  None when the pod or container is unknown
        here; the previous log path is "" when the container never restarted."""
        obj = self.informer.get(f"{namespace}/{pod}")
        if obj is None:
            return None
        worker = self.workers.get(str(obj["metadata"]["uid"]))
        if worker is None:
            return None
        if not container:
            ctrs = (obj.get("spec") or {}).get("containers") or []
            container = str(ctrs[0]["name"]) if ctrs else ""
        info = worker.container_info(container)
        if info is None:
            return None
        cid, log_path, prev = info
        return self.runtime, cid, log_path, prev

    # ------------------------------------------------------------------------- sources
    async def _get(self, res: Resource, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(res, namespace, name)
        except errors.NotFound:
            return None

    async def configmap(self, namespace: str, name: str) -> Obj | None:
        return await self._get(CONFIGMAPS, namespace, name)

    async def secret(self, namespace: str, name: str) -> Obj | None:
        return await self._get(SECRETS, namespace, name)

    async def services(self, namespace: str) -> list[Obj]:
        """The namespace's Services from the informer cache (once synced; before that, listed)."""
        if self.service_informer.synced.is_set():
            return self.service_informer.by_index("namespace", namespace)
        items: list[Obj] = (await self.client.list(SERVICES, namespace)).get("items") or []
        return items

    async def pvc(self, namespace: str, name: str) -> Obj | None:
        return await self._get(PVCS, namespace, name)

    async def pv(self, name: str) -> Obj | None:
        return await self._get(PVS, "", name)

    # ------------------------------------------------------------------------- node
    async def register(self) -> None:
        """Create the Node (with status) or refresh the existing one's labels and status."""
        now = now_rfc3339()
        node = nodeinfo.node_object(self.node_name, self.host_ip, self.readings, now)
        annotations, port = self.streams.node_fields()
        node["metadata"]["annotations"].update(annotations)
        node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] = port
        try:
            created = await self.client.create(NODES, "", node)
            self.node_uid = str(created["metadata"].get("uid", ""))
            if not created.get("status", {}).get("conditions"):
                await self.update_status(force=True)
        except errors.AlreadyExists:
            existing = await self.client.get(NODES, "", self.node_name)
            self.node_uid = str(existing["metadata"].get("uid", ""))
            await self.client.patch(
                NODES,
                "",
                self.node_name,
                {"metadata": {"labels": nodeinfo.labels(self.node_name), "annotations": annotations}},
            )
            await self.update_status(force=True)
        self._conditions_key = self._pressure_key()

    def _pressure_key(self) -> tuple[bool, bool, bool]:
        r = self.readings
        return (r.memory_pressure, r.disk_pressure, r.pid_pressure)

    async def update_status(self, force: bool = False) -> None:
        now = now_rfc3339()
        port = self.streams.port
        status = nodeinfo.node_status(self.node_name, self.host_ip, self.readings, now, port=port)
        try:
            current = await self.client.get(NODES, "", self.node_name)
        except errors.NotFound:
            await self.register()
            return
        old = {c.get("type"): c for c in (current.get("status") or {}).get("conditions") or []}
        for c in status["conditions"]:
            prev = old.get(c["type"])
            if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
                c["lastTransitionTime"] = prev["lastTransitionTime"]
        await self.client.patch(NODES, "", self.node_name, {"status": status}, subresource="status")

    async def _renew_lease(self) -> None:
        meta: Obj = {"name": self.node_name, "namespace": LEASE_NAMESPACE}
        if self.node_uid:
            meta["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": self.node_uid}
            ]
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": LEASE_DURATION,
            "renewTime": now_micro(),
        }
        try:
            cur = await self.client.get(LEASES, LEASE_NAMESPACE, self.node_name)
            await self.client.update(
                LEASES, LEASE_NAMESPACE, {**cur, "spec": {**(cur.get("spec") or {}), **spec}}
            )
        except errors.NotFound:
            await self.client.create(
                LEASES,
                LEASE_NAMESPACE,
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec},
            )

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._renew_lease()
            except Exception as e:
                log.warning("lease renewal failed node=%s error=%s", self.node_name, e)

    async def _status_loop(self) -> None:
        elapsed = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_now.wait(), self.heartbeat)
            self._status_now.clear()
            elapsed += self.heartbeat
            try:
                self.readings = await asyncio.to_thread(nodeinfo.read, self.data_dir)
                key = self._pressure_key()
                if key != self._conditions_key or elapsed >= STATUS_PERIOD:
                    await self.update_status()
                    self._conditions_key = key
                    elapsed = 0.0
            except Exception as e:
                log.warning("node status update failed node=%s error=%s", self.node_name, e)

    # ------------------------------------------------------------------------- housekeeping
    async def _housekeeping_loop(self) -> None:
        since_gc = 0.0
        while True:
            await asyncio.sleep(HOUSEKEEPING)
            since_gc += HOUSEKEEPING
            try:
                release_free_memory()
                self.evict_if_pressure()
                if since_gc >= IMAGE_GC_PERIOD:
                    since_gc = 0.0
                    await self.image_gc()
            except Exception:
                log.exception("agent housekeeping failed")

    def evict_if_pressure(self) -> str | None:
        """Evict one pod when memory or disk is under pressure; returns its name."""
        r = self.readings
        resource = "memory" if r.memory_pressure else ("ephemeral-storage" if r.disk_pressure else "")
        if not resource:
            return None
        rank = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}
        candidates = []
        for uid, w in self.workers.items():
            pod = self.get_pod(uid)
            if (
                pod is None
                or w.forced_phase is not None
                or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            ):
                continue
            if (pod.get("spec") or {}).get("priorityClassName") in (
                "system-node-critical",
                "system-cluster-critical",
            ):
                continue
            candidates.append(
                (
                    rank.get(containerspec.qos_class(pod), 1),
                    -int((pod.get("spec") or {}).get("priority") or 0),
                    uid,
                    pod,
                )
            )
        if not candidates:
            return None
        _rank, _prio, uid, pod = min(candidates, key=lambda t: (t[0], -t[1]))
        message = f"The node was low on resource: {resource}. "
        self.recorder.event(pod, "Warning", "Evicted", message)
        self.workers[uid].evict("Evicted", message)
        return str(pod["metadata"]["name"])

    async def image_gc(self) -> list[str]:
        keep = {img.ref for w in self.workers.values() for img in w.images.values()}
        self.image_lookups.forget()
        return await self.image_service.gc(keep)


_POD_META_KEYS = ("labels", "annotations", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def _namespace_of(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def _hostname() -> str:
    return socket.gethostname().split(".")[0].lower() or "localhost"


async def component(client: Client, args: argparse.Namespace) -> Agent | None:
    """``kubelite up`` (when runc works, without ``--no-agent`` and without simulated nodes) and
    ``kubelite agent``."""
    if getattr(args, "no_agent", False):
        return None
    if args.command == "up" and getattr(args, "simulated_nodes", 0):
        return None  # a simulated cluster stays simulated: no real node joins it
    if not runc_works():
        if args.command == "up":
            return None
        raise SystemExit("kubelite agent: runc is not installed or does not work (apt-get install runc)")
    from kubelite.cli import default_data_dir

    if args.command == "up":
        data_dir = (args.data_dir or default_data_dir()).resolve() / "agent"
    else:
        data_dir = (getattr(args, "data_dir", None) or default_data_dir() / "agent").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    node_name = getattr(args, "node_name", None) or _hostname()
    base = float(getattr(args, "crash_loop_backoff", None) or 10.0)
    node_ip = getattr(args, "node_ip", None) or nodeinfo.primary_ip()
    network = _network(args, data_dir, node_ip)
    runtime = choose_runtime(data_dir, network, _log_limits(args))
    images = LocalImageService(data_dir)
    port = getattr(args, "agent_port", None)
    return Agent(
        client,
        data_dir,
        node_name,
        runtime,
        images,
        crash_backoff=(base, 300.0),
        agent_port=port,
        stop_pods_on_exit=args.command == "up",
        node_ip=node_ip,
        network=network,
    )


def _log_limits(args: argparse.Namespace) -> tuple[int, int]:
    """``--container-log-max-size`` (a quantity, e.g. 10Mi) and ``--container-log-max-files``,
    validated as the kubelet validates containerLogMaxSize / containerLogMaxFiles."""
    from kubelite.api.quantity import parse_quantity

    raw = str(getattr(args, "container_log_max_size", None) or "10Mi")
    try:
        size = int(parse_quantity(raw))
    except (ValueError, ArithmeticError) as e:
        raise SystemExit(f"invalid --container-log-max-size {raw!r}: {e}") from e
    files = getattr(args, "container_log_max_files", None)
    files = 5 if files is None else int(files)
    if size <= 0:
        raise SystemExit(f"invalid --container-log-max-size {raw!r}: must be positive")
    if files < 2:
        raise SystemExit(f"invalid --container-log-max-files {files}: must be at least 2")
    return size, files


def _network(args: argparse.Namespace, data_dir: Path, node_ip: str) -> AgentNetwork | None:
    """``--network cni`` with rootful runc: the CNI pod network (rootless runc can't have one)."""
    if getattr(args, "network", "none") != "cni":
        return None
    if os.geteuid() != 0:
        log.warning("--network cni needs root: pods share the host's network (rootless runc)")
        return None
    return AgentNetwork(NetworkSettings.from_args(args, data_dir, node_ip))
