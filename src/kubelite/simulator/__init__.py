"""Simulated nodes (kwok-like): thousands of Nodes served by one process and one pod watch.

``kubelite up --simulated-nodes N`` (or ``kubelite simulate --nodes N --kubeconfig ...``
against any cluster) registers Nodes ``sim-node-0..N-1`` that behave like real kubelets
without running containers:

* nodes: capacity/allocatable from the flags, kubelet's well-known labels, zone
  ``zone-<i % zones>``, marker label ``kubelite.io/simulated=true`` (a Node created by
  hand with that label is adopted too), Ready conditions, nodeInfo kubelet v1.32.0;
* heartbeats: a Lease per node in ``kube-node-lease`` renewed every
  ``--simulated-heartbeat`` seconds, spread over the period;
* pods bound to a simulated node become Running/Ready after ``--simulated-pod-start-delay``
  with a pod IP from the node's podCIDR; Job pods Succeed after ``--simulated-job-duration``;
  pods being deleted gracefully are deleted for good (grace 0);
* metrics for the HPA: :func:`kubelite.simulator.metrics.active` returns the registry;
* node options: ``--simulated-node-cpu/-memory/-pods/-ephemeral-storage``,
  ``--simulated-zones``, ``--simulated-node-prefix``, ``--simulated-node-taint
  key=value:Effect`` (repeatable) on the first ``--simulated-tainted-nodes`` nodes (0: all),
  ``--simulated-cleanup`` to delete the nodes and Leases on exit (kept by default, and
  re-adopted by name on the next start).

Annotations (see :mod:`kubelite.simulator.config`):

=====================================  =====  =============================================
``kubelite.io/simulate-stopped=true``  Node   the node's kubelet is dead (no lease, no pods)
``kubelite.io/simulate-duration``      Pod    run time before exiting ("2s"), any non-Always pod
``kubelite.io/simulate-exit-code``     Pod    exit code ("1": Failed; OnFailure: restarts)
``kubelite.io/simulate-cpu``           Pod    reported CPU usage ("250m")
``kubelite.io/simulate-memory``        Pod    reported memory usage ("64Mi")
=====================================  =====  =============================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kubelite.client.base import Client
from kubelite.machinery.factory import SharedInformers
from kubelite.simulator.config import SimConfig
from kubelite.simulator.metrics import MetricsRegistry, set_active
from kubelite.simulator.nodeobj import Obj
from kubelite.simulator.nodes import NodeManager
from kubelite.simulator.pods import PODS, PodLifecycle, is_started

log = logging.getLogger("kubelite.simulator")

__all__ = ["SimConfig", "Simulator", "component"]


class Simulator:
    """Nodes, heartbeats, pod lifecycles and metrics of the simulated nodes."""

    def __init__(self, client: Client, cfg: SimConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.nodes = NodeManager(client, cfg)
        shared = SharedInformers.of(client).peek(PODS)  # the controllers', inside ``up``
        self.pods = PodLifecycle(client, cfg, self.nodes, informer=shared)
        self.metrics = MetricsRegistry(self._running_pods, self._running_nodes, cfg.default_cpu_fraction)

    def _running_nodes(self) -> Iterator[Obj]:
        for name in list(self.nodes.index):
            node = self.nodes.informer.get(name)
            if node is not None and self.nodes.is_running(name):
                yield node

    def _running_pods(self) -> Iterator[Obj]:
        for node in list(self.nodes.index):
            if not self.nodes.is_running(node):
                continue
            for pod in self.pods.pods_on(node):
                if is_started(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    yield pod

    async def start(self) -> None:
        await self.nodes.start()
        await self.pods.start()
        set_active(self.metrics)
        log.info("simulator started nodes=%d", len(self.nodes.index))

    async def stop(self) -> None:
        log.info(
            "simulator stopping lease_renewals=%d pod_status_writes=%d conflicts=%d",
            self.nodes.heartbeats.renewals,
            self.pods.status_writes,
            self.pods.conflicts,
        )
        set_active(None)
        await self.pods.stop()
        await self.nodes.stop()


async def component(client: Client, args: Any) -> Simulator | None:
    """Entry for ``kubelite up --simulated-nodes N`` and ``kubelite simulate --nodes N``."""
    cfg = SimConfig.from_args(args)
    if cfg.nodes <= 0:
        return None
    # Same transport, kubelet's user agent: managedFields name "kubelet" as in real clusters.
    return Simulator(Client(client.transport, user_agent="kubelet/v1.32.0 (linux/amd64) kubernetes"), cfg)
