"""Simulated pod lifecycles: which pods the simulator watches, and a shared pods informer.

Against a real in-process API server (memory store), as in ``test_simulator``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.simulator import Simulator
from kubelite.simulator.config import SimConfig
from kubelite.simulator.nodeobj import now_rfc3339
from kubelite.simulator.pods import BOUND, NODE_INDEX, PodLifecycle
from tests.unit.lifecycle_api import api_server, eventually

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
CFG: dict[str, Any] = {"nodes": 2, "heartbeat": 0.5, "pod_start_delay": 0.05, "job_duration": 0.2}


def pod(name: str, node: str = "") -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def phase(client: Client, name: str) -> str:
    try:
        return str((await client.get(PODS, "default", name)).get("status", {}).get("phase", ""))
    except errors.NotFound:
        return "<gone>"


async def bind(client: Client, name: str, node: str) -> None:
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"name": node}}
    await client.create(PODS, "default", body, subresource="binding", name=name)


async def test_own_watch_sees_only_bound_pods(tmp_path: Path) -> None:
    """Without a shared informer the simulator watches ``spec.nodeName!=`` (as kwok does):
    a pod waiting for the scheduler never reaches it; once bound it arrives and starts."""
    async with api_server(tmp_path) as server:
        client = server.client
        sim = Simulator(client, SimConfig(**CFG))
        await sim.start()
        try:
            assert sim.pods.informer.field_selector == BOUND
            await client.create(PODS, "default", pod("waiting"))
            await asyncio.sleep(0.2)
            assert sim.pods.informer.get("default/waiting") is None
            await bind(client, "waiting", "sim-node-1")

            async def running() -> bool:
                return await phase(client, "waiting") == "Running"

            await eventually(running)
            assert [p["metadata"]["name"] for p in sim.pods.pods_on("sim-node-1")] == ["waiting"]
        finally:
            await sim.stop()


async def test_shared_informer_is_used_and_left_running(tmp_path: Path) -> None:
    """With the process's pods informer (inside ``kubelite up``) the simulator adds its
    index and handler to it, plays the lifecycle of its nodes' pods only, and leaves the
    informer to its owner on stop."""
    async with api_server(tmp_path) as server:
        client = server.client
        shared = Informer(client, PODS)
        shared.start()
        await shared.wait_synced()
        sim = Simulator(client, SimConfig(**CFG))
        sim.pods = PodLifecycle(client, sim.cfg, sim.nodes, informer=shared)
        await sim.start()
        try:
            assert NODE_INDEX in shared.indexers
            await client.create(PODS, "default", pod("web", "sim-node-0"))
            await client.create(PODS, "default", pod("elsewhere", "real-node"))
            await client.create(PODS, "default", pod("waiting"))

            async def running() -> bool:
                return await phase(client, "web") == "Running"

            await eventually(running)
            await asyncio.sleep(0.2)
            assert await phase(client, "elsewhere") == "Pending"
            assert await phase(client, "waiting") == "Pending"
            assert shared.get("default/waiting") is not None  # the shared cache keeps everything
        finally:
            await sim.stop()
        await client.create(PODS, "default", pod("after"))

        async def still_watching() -> bool:
            return shared.get("default/after") is not None

        await eventually(still_watching)
        await shared.stop()


def test_now_rfc3339_is_the_current_second() -> None:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    before = dt.datetime.now(dt.UTC).strftime(fmt)
    got = now_rfc3339()
    after = dt.datetime.now(dt.UTC).strftime(fmt)
    assert before <= got <= after and got.endswith("Z") and len(got) == len("2026-01-01T00:00:00Z")
    assert now_rfc3339() >= got  # the per-second cache never hands back an older second


async def test_shared_informer_pods_bound_before_the_simulator_started_are_run(tmp_path: Path) -> None:
    """A shared informer already holds pods when the simulator joins (kubelite up restarted
    with pods on its simulated nodes): they are started once the nodes are adopted."""
    async with api_server(tmp_path) as server:
        client = server.client
        shared = Informer(client, PODS)
        shared.start()
        await shared.wait_synced()
        await client.create(PODS, "default", pod("early", "sim-node-1"))

        async def cached() -> bool:
            return shared.get("default/early") is not None

        await eventually(cached)
        sim = Simulator(client, SimConfig(**CFG))
        sim.pods = PodLifecycle(client, sim.cfg, sim.nodes, informer=shared)
        await sim.start()
        try:

            async def running() -> bool:
                return await phase(client, "early") == "Running"

            await eventually(running)
        finally:
            await sim.stop()
            await shared.stop()
