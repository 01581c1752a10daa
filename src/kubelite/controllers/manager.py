"""The controller manager: start and stop every controller as one supervised group.

Each controller module exposes ``new(ctx: ControllerContext) -> Startable``; the table
below names them.  Inside ``kubelite up`` the client is the in-process one; as
``kubelite controller-manager`` it is the HTTPS one, with leader election.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubelite.client.base import Client, Resource
from kubelite.machinery.events import EventRecorder
from kubelite.machinery.factory import SharedInformers
from kubelite.registry.resources import BUILTIN

log = logging.getLogger("kubelite.controllers")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ControllerContext:
    client: Client
    # tunables (tests shorten them): node monitor grace period, default eviction toleration, ...
    options: dict[str, Any] = field(default_factory=dict)
    informers: SharedInformers = field(init=False)

    def __post_init__(self) -> None:
        self.informers = SharedInformers.of(self.client)

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component)

    def option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)


# name -> "module:function"; each function takes a ControllerContext and returns a Startable.
FACTORIES: dict[str, str] = {
    "garbage-collector": "kubelite.controllers.garbagecollector:new",
    "namespace": "kubelite.controllers.namespace:new",
    "serviceaccount": "kubelite.controllers.serviceaccount:new",
    "endpoints": "kubelite.controllers.endpoints:new",
    "endpointslice": "kubelite.controllers.endpointslice:new",
    "endpointslicemirroring": "kubelite.controllers.endpointslicemirroring:new",
    "disruption": "kubelite.controllers.disruption:new",
    "statefulset": "kubelite.controllers.statefulset:new",
    "daemonset": "kubelite.controllers.daemonset:new",
    "deployment": "kubelite.controllers.deployment:new",
    "replicaset": "kubelite.controllers.replicaset:new",
    "replicationcontroller": "kubelite.controllers.replicaset:new_rc",
    "job": "kubelite.controllers.job:new",
    "node-lifecycle": "kubelite.controllers.nodelifecycle:new",
    "taint-eviction-controller": "kubelite.controllers.tainteviction:new",
    "cronjob": "kubelite.controllers.cronjob:new",
    "ttl-after-finished": "kubelite.controllers.ttlafterfinished:new",
    "pod-garbage-collector": "kubelite.controllers.podgc:new",
    "persistentvolume-binder": "kubelite.controllers.volume:new",
    "local-path-provisioner": "kubelite.controllers.localpath:new",
    "horizontal-pod-autoscaler": "kubelite.controllers.hpa:new",
    "node-ipam-controller": "kubelite.controllers.nodeipam:new",
    "service-lb-controller": "kubelite.controllers.servicelb:new",
    # -- more controllers above this line --
}


def watched_resources() -> list[Resource]:
    """Every stored built-in resource (preferred versions) that can be listed and watched."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in BUILTIN:
        if not r.persisted or not r.preferred or "watch" not in r.verbs or (r.group, r.plural) in seen:
            continue
        if r.group == "events.k8s.io":
            continue
        seen.add((r.group, r.plural))
        out.append(Resource(r.group, r.version, r.plural, r.namespaced))
    return out


def _load(spec: str) -> Callable[[ControllerContext], Startable]:
    module, func = spec.split(":")
    fn: Callable[[ControllerContext], Startable] = getattr(importlib.import_module(module), func)
    return fn


class ControllerManager:
    def __init__(
        self, client: Client, options: dict[str, Any] | None = None, enabled: list[str] | None = None
    ) -> None:
        self.ctx = ControllerContext(client, dict(options or {}))
        names = enabled if enabled is not None else list(FACTORIES)
        self.controllers: list[tuple[str, Startable]] = [(n, _load(FACTORIES[n])(self.ctx)) for n in names]

    async def start(self) -> None:
        """Controllers register their informers in their constructors; caches sync before any
        controller starts its workers."""
        await self.ctx.informers.start()
        for name, c in self.controllers:
            await c.start()
            log.debug("controller started name=%s", name)
        log.info("controllers started count=%d", len(self.controllers))

    async def stop(self) -> None:
        for _, c in reversed(self.controllers):
            await c.stop()
        await self.ctx.informers.stop()


def controller_options(args: Any) -> dict[str, Any]:
    return {
        "node_monitor_grace_period": float(getattr(args, "node_monitor_grace_period", 40.0)),
        "default_toleration_seconds": int(getattr(args, "default_toleration_seconds", 300)),
        "data_dir": str(getattr(args, "data_dir", None) or ""),
        "horizontal_pod_autoscaler_sync_period": float(
            getattr(args, "horizontal_pod_autoscaler_sync_period", 15.0)
        ),
        "job_backoff_base": float(getattr(args, "job_backoff_base", 10.0)),
        "terminated_pod_gc_threshold": int(getattr(args, "terminated_pod_gc_threshold", 12500)),
        "cronjob_clock_scale": float(getattr(args, "cronjob_clock_scale", 1.0)),
        # node IPAM: --cluster-cidr cut into /--node-cidr-mask-size podCIDRs; the service
        # CIDR (known inside ``up`` only) is kept out of them when the two overlap
        "cluster_cidr": str(getattr(args, "cluster_cidr", None) or "10.244.0.0/16"),
        "node_cidr_mask_size": int(getattr(args, "node_cidr_mask_size", None) or 24),
        "service_cidr": str(getattr(args, "service_cidr", None) or ""),
    }


class _LeaderElected:
    """``kubelite controller-manager``: run the controllers only while holding the lease."""

    def __init__(self, client: Client, options: dict[str, Any]) -> None:
        import asyncio
        import socket
        import uuid

        from kubelite.machinery.leaderelection import LeaderElector

        self.client = client
        self.options = options
        self.manager: ControllerManager | None = None
        identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        self.elector = LeaderElector(client, "kube-controller-manager", identity)
        self._task: asyncio.Task[None] | None = None

    async def _started(self) -> None:
        self.manager = ControllerManager(self.client, self.options)
        await self.manager.start()

    async def _stopped(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
            self.manager = None

    async def start(self) -> None:
        import asyncio

        self._task = asyncio.create_task(self.elector.run(self._started, self._stopped))

    async def stop(self) -> None:
        import asyncio
        import contextlib

        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stopped()


async def component(client: Client, args: Any) -> Startable:
    """Entry for ``kubelite up`` (no election: one process) and ``kubelite controller-manager``."""
    options = controller_options(args)
    if getattr(args, "command", "") == "controller-manager":
        return _LeaderElected(client, options)
    return ControllerManager(client, options)
