"""Service proxy latency: EndpointSlice write acknowledged -> nft transaction applied.

Creates a network namespace (``kltest-h2-bench-<pid>``), re-runs itself inside it, and
there runs an in-process API server (memory store) and the :class:`kubelite.proxy.Proxier`
programming real nftables.  It writes ``--services`` Services and one EndpointSlice each
with ``--endpoints`` endpoints in total, starts the proxy (first full sync), then makes
``--changes`` EndpointSlice updates one at a time (an endpoint's IP or readiness flips)
and measures, for each, the time from the API write returning to the nft transaction
that contains it having been applied.  Also reports nft apply times of partial syncs
and of full syncs (the first one, into an empty table, and a resync of the full table).
Prints one JSON line.  Needs root (netns, nft); the namespace is deleted at the end.

    python bench/proxy_latency.py --services 1000 --endpoints 5000 --changes 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000, 2)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min_ms": pct(values, 0),
        "p50_ms": pct(values, 50),
        "p90_ms": pct(values, 90),
        "p99_ms": pct(values, 99),
        "max_ms": pct(values, 100),
        "n": len(values),
    }


def service(i: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{i}"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }


def endpoint_ip(i: int, j: int, gen: int = 0) -> str:
    n = (i * 16 + j + gen * 16384) % (1 << 24)  # unique per (service, slot, change) up to 1,024 changes
    return f"10.{n // 65536}.{(n // 256) % 256}.{n % 256 or 1}"


def eps_slice(i: int, count: int) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{i}-1", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [endpoint_ip(i, j)], "nodeName": "node-a", "conditions": {"ready": True}}
            for j in range(count)
        ],
    }


async def populate(client: Any, services: int, endpoints: int) -> dict[int, Obj]:
    from kubelite.client.base import Resource

    svc_res = Resource("", "v1", "services")
    slice_res = Resource("discovery.k8s.io", "v1", "endpointslices")
    per = [endpoints // services + (1 if i < endpoints % services else 0) for i in range(services)]
    slices: dict[int, Obj] = {}
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await client.create(svc_res, "default", service(i))
            slices[i] = await client.create(slice_res, "default", eps_slice(i, per[i]))

    await asyncio.gather(*(one(i) for i in range(services)))
    return slices


def mutate(sl: Obj, i: int, gen: int, rng: random.Random) -> None:
    eps = sl["endpoints"]
    j = rng.randrange(len(eps))
    if rng.random() < 0.5:
        eps[j]["conditions"]["ready"] = not eps[j]["conditions"]["ready"]
    else:
        eps[j]["addresses"] = [endpoint_ip(i, j, gen)]


async def measure_changes(client: Any, proxier: Any, slices: dict[int, Obj], changes: int) -> list[float]:
    from kubelite.client.base import Resource

    slice_res = Resource("discovery.k8s.io", "v1", "endpointslices")
    rng = random.Random(1)
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    for gen in range(1, changes + 1):
        i = rng.randrange(len(slices))
        key = f"default/svc-{i}"
        done: asyncio.Future[float] = loop.create_future()

        def listener(keys: set[str], finished: float, key: str = key, done: Any = done) -> None:
            if key in keys and not done.done():
                done.set_result(finished)

        proxier.metrics.listeners.append(listener)
        mutate(slices[i], i, gen, rng)
        slices[i] = await client.update(slice_res, "default", slices[i])
        acked = time.monotonic()
        finished = await asyncio.wait_for(done, 10)
        proxier.metrics.listeners.remove(listener)
        latencies.append(max(0.0, finished - acked))
        await asyncio.sleep(rng.uniform(0.005, 0.02))
    return latencies


async def inner(args: argparse.Namespace) -> Obj:
    from kubelite.apiserver.app import App
    from kubelite.apiserver.server import ServerConfig, build_context
    from kubelite.client.base import Client
    from kubelite.client.inprocess import ASGITransport
    from kubelite.proxy import Proxier, ProxyConfig
    from kubelite.store import open_store

    store = open_store("memory://")
    await store.start()
    with tempfile.TemporaryDirectory() as tmp:
        ctx, crds = await build_context(store, ServerConfig(data_dir=Path(tmp)), {"t0ken": "admin"})
        client = Client(ASGITransport(App(ctx), "t0ken"), user_agent="proxy-bench/v1.32.0")
        t0 = time.monotonic()
        slices = await populate(client, args.services, args.endpoints)
        populate_s = time.monotonic() - t0
        cfg = ProxyConfig("node-a", ["192.0.2.1"], "10.244.0.0/16", "10.96.0.0/12", table="kubelite-proxy")
        proxier = Proxier(client, cfg)
        load_before = os.getloadavg()[0]
        t1 = time.monotonic()
        await proxier.start()
        start_s = time.monotonic() - t1
        first_full = proxier.metrics.syncs[-1]
        latencies = await measure_changes(client, proxier, slices, args.changes)
        await proxier.sync(full=True)
        resync = proxier.metrics.syncs[-1]
        chains = subprocess.run(["nft", "list", "chains", "ip"], capture_output=True, text=True).stdout
        await proxier.stop()
        await crds.stop()
    await store.close()
    partial = [r for r in proxier.metrics.syncs if r.kind == "partial" and r.ok and r.lines]
    return {
        "bench": "proxy_latency",
        "services": args.services,
        "endpoints": args.endpoints,
        "changes": args.changes,
        "populate_s": round(populate_s, 2),
        "start_s": round(start_s, 2),
        "chains": chains.count("chain "),
        "write_to_applied": summary(latencies),
        "partial_nft_apply": summary([r.nft_seconds for r in partial]),
        "partial_render": summary([r.render_seconds for r in partial]),
        "informer_event_to_applied": summary([r.max_pending_seconds for r in partial]),
        "partial_syncs": len(partial),
        "full_first": {"nft_ms": round(first_full.nft_seconds * 1000, 1), "lines": first_full.lines},
        "full_resync": {
            "nft_ms": round(resync.nft_seconds * 1000, 1),
            "render_ms": round(resync.render_seconds * 1000, 1),
            "lines": resync.lines,
        },
        "failures": proxier.metrics.failures,
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=5000)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(inner(args))))
        return
    ns = f"kltest-h2-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        argv = [sys.executable, os.path.abspath(__file__), "--inner"]
        argv += ["--services", str(args.services), "--endpoints", str(args.endpoints)]
        argv += ["--changes", str(args.changes)]
        sys.exit(subprocess.run(["ip", "netns", "exec", ns, *argv]).returncode)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    main()
