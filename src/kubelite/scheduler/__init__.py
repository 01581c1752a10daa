"""kube-scheduler, re-made: queue, cache, plugins, preemption and asynchronous binding.

``kubelite up`` starts it in-process; ``kubelite scheduler --kubeconfig`` runs it alone,
with leader election on the ``kube-system/kube-scheduler`` Lease.  Pods whose
``spec.schedulerName`` is not ``default-scheduler`` are left alone.
"""

from __future__ import annotations

import argparse
import gc

from kubelite.client.base import Client
from kubelite.scheduler.leader import LeaderElectedScheduler
from kubelite.scheduler.scheduler import Scheduler

__all__ = ["GC_THRESHOLDS", "LeaderElectedScheduler", "Scheduler", "component"]


# Collector thresholds of a standalone scheduler process.  It holds every pod and node
# (tens of thousands of dicts) and allocates a little per pod; with CPython's default
# first threshold (700) a young-generation collection, and often an older one walking
# that whole heap, ran every few pods: ~30 % of its CPU at 5,000 nodes.  Like tuning
# GOGC for a Go binary, this trades some memory for fewer collections.
GC_THRESHOLDS = (50_000, 20, 100)


async def component(client: Client, args: argparse.Namespace) -> Scheduler | LeaderElectedScheduler | None:
    """The scheduler as a component: None with ``--no-scheduler``; elected when standalone
    (``kubelite scheduler``, a process of its own: its collector is tuned too)."""
    if getattr(args, "no_scheduler", False):
        return None
    if getattr(args, "command", "") == "scheduler":
        gc.set_threshold(*GC_THRESHOLDS)
        return LeaderElectedScheduler(client)
    return Scheduler(client)
