"""kube-scheduler, re-made: queue, cache, plugins, preemption and asynchronous binding.

``kubelite up`` starts it in-process; ``kubelite scheduler --kubeconfig`` runs it alone,
with leader election on the ``kube-system/kube-scheduler`` Lease.  Pods whose
``spec.schedulerName`` is not ``default-scheduler`` are left alone.
"""

from __future__ import annotations

import argparse

from kubelite import gctuning
from kubelite.client.base import Client
from kubelite.scheduler.leader import LeaderElectedScheduler
from kubelite.scheduler.scheduler import Scheduler

__all__ = ["LeaderElectedScheduler", "Scheduler", "component"]


async def component(client: Client, args: argparse.Namespace) -> Scheduler | LeaderElectedScheduler | None:
    """The scheduler as a component: None with ``--no-scheduler``; elected when standalone
    (``kubelite scheduler``, a process of its own: its collector is tuned too)."""
    if getattr(args, "no_scheduler", False):
        return None
    if getattr(args, "command", "") == "scheduler":
        gctuning.raise_thresholds()  # it holds every pod and node, like the API server
        return LeaderElectedScheduler(client)
    return Scheduler(client)
