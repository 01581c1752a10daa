"""kubelite's SQLite store under concurrent writers: writes/s, latency, CPU per write.

``--writers`` asyncio tasks each write pod-sized keys back to back (each awaits
its write, as an API request handler would) through the group-committing writer
(WAL, synchronous=FULL: every write is durable when it returns).  A watcher on
the whole keyspace consumes every event meanwhile.  Prints one JSON line.

``--mode create`` creates ``--count`` new keys; ``--mode update`` first creates
``--keys`` Lease-sized keys (not measured), then updates them in place with the
expected mod revision (``--count`` updates in total), like node Lease renewals.
CPU per write is reported for the whole process and split into the writer thread
and the event-loop thread (from /proc/self/task/<tid>/stat).

    python bench/store_bench.py --writers 8 --count 20000 [--uvloop]
    python bench/store_bench.py --mode update --keys 5000 --count 20000 --writers 8
    python bench/store_bench.py --mode update --keys 5000 --count 10000 --rate 500

``--rate`` makes the update mode open-loop: one renewal starts every ``1/rate``
seconds (``--writers`` is then ignored), like 5,000 nodes renewing every 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import threading
import time

import orjson
from _pods import machine, pod

from kubelite.store.sqlite import SqliteStore
from kubelite.store.types import Watcher

LEASE = orjson.dumps(
    {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "node-0000000", "namespace": "kube-node-lease", "resourceVersion": "1"},
        "spec": {
            "holderIdentity": "node-0000000",
            "leaseDurationSeconds": 40,
            "renewTime": "2025-01-01T00:00:00.000000Z",
        },
    }
)


def thread_cpu_s(native_id: int | None) -> float:
    """User+system CPU seconds of one thread of this process (Linux)."""
    if native_id is None:
        return 0.0
    with open(f"/proc/self/task/{native_id}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def writer_thread_id() -> int | None:
    for thread in threading.enumerate():
        if thread.name == "kubelite-store-writer":
            return thread.native_id
    return None


def cpu_sample() -> tuple[float, float, float]:
    """(process, writer thread, event-loop thread) CPU seconds so far."""
    loop_tid = threading.main_thread().native_id
    return process_cpu_s(), thread_cpu_s(writer_thread_id()), thread_cpu_s(loop_tid)


async def writer(store: SqliteStore, index: int, count: int, value: bytes, out: list[float]) -> None:
    for i in range(count):
        began = time.perf_counter()
        await store.create(f"/registry/pods/ns{index}/bench-{i:07d}", value)
        out.append(time.perf_counter() - began)


def lease_key(i: int) -> str:
    return f"/registry/leases/kube-node-lease/node-{i:07d}"


async def updater(store: SqliteStore, keys: list[tuple[str, int]], count: int, out: list[float]) -> None:
    """Renew ``keys`` round-robin, ``count`` updates, each with its expected mod revision."""
    for i in range(count):
        slot = i % len(keys)
        key, mod = keys[slot]
        began = time.perf_counter()
        kv = await store.update(key, LEASE, mod)
        out.append(time.perf_counter() - began)
        keys[slot] = (key, kv.mod_revision)


async def paced(
    store: SqliteStore, keys: list[tuple[str, int]], count: int, rate: float, out: list[float]
) -> None:
    """Open loop: start one renewal every ``1/rate`` s (round-robin over ``keys``), as
    node Leases arrive at the API server whatever the store's latency."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    pending: set[asyncio.Task[None]] = set()
    for i in range(count):
        delay = began + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(renew(store, keys, i % len(keys), out))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)


async def renew(store: SqliteStore, keys: list[tuple[str, int]], slot: int, out: list[float]) -> None:
    key, mod = keys[slot]
    began = time.perf_counter()
    kv = await store.update(key, LEASE, mod)
    out.append(time.perf_counter() - began)
    keys[slot] = (key, kv.mod_revision)


async def seed(store: SqliteStore, keys: int, writers: int) -> list[list[tuple[str, int]]]:
    """Create ``keys`` Leases; each writer gets its own share of them."""
    revisions = await asyncio.gather(*(store.create(lease_key(i), LEASE) for i in range(keys)))
    shares: list[list[tuple[str, int]]] = [[] for _ in range(writers)]
    for i, rev in enumerate(revisions):
        shares[i % writers].append((lease_key(i), rev))
    return shares


async def consume(watcher: Watcher, total: int) -> int:
    seen = 0
    async for batch in watcher:
        seen += len(batch)
        if seen >= total:
            break
    return seen


async def run(
    path: str, mode: str, writers: int, count: int, keys: int, rate: float, delay_ms: float
) -> dict[str, object]:
    store = SqliteStore(path, commit_delay_s=delay_ms / 1000) if delay_ms else SqliteStore(path)
    await store.start()
    value = orjson.dumps(pod(0))
    latencies: list[float] = []
    per_writer = count // writers
    shares = await seed(store, keys, writers) if mode == "update" else []
    watcher = store.watch("/registry/", store.revision)
    watching = asyncio.create_task(consume(watcher, per_writer * writers))
    if mode == "update" and rate > 0:
        tasks = [
            paced(store, [key for share in shares for key in share], per_writer * writers, rate, latencies)
        ]
    elif mode == "update":
        tasks = [updater(store, shares[n], per_writer, latencies) for n in range(writers)]
    else:
        tasks = [writer(store, n, per_writer, value, latencies) for n in range(writers)]
    cpu_before = cpu_sample()
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    watched = await watching
    cpu_after = cpu_sample()
    await store.close()
    return report(mode, writers, latencies, elapsed, watched, cpu_before, cpu_after)


def report(
    mode: str,
    writers: int,
    latencies: list[float],
    elapsed: float,
    watched: int,
    cpu_before: tuple[float, float, float],
    cpu_after: tuple[float, float, float],
) -> dict[str, object]:
    latencies.sort()
    writes = len(latencies)
    process_us, writer_us, loop_us = (
        round((after - before) / writes * 1e6, 1) for before, after in zip(cpu_before, cpu_after, strict=True)
    )
    return {
        "bench": "store_bench",
        "mode": mode,
        "writers": writers,
        "writes": writes,
        "writes_per_s": round(writes / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(writes * 0.99)] * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "watched_events": watched,
        "cpu_us_per_write": process_us,
        "writer_thread_cpu_us_per_write": writer_us,
        "loop_thread_cpu_us_per_write": loop_us,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--mode", choices=("create", "update"), default="create")
    parser.add_argument("--count", type=int, default=20_000, help="writes in total")
    parser.add_argument(
        "--rate", type=float, default=0, help="open-loop updates/s (--mode update; 0: back to back)"
    )
    parser.add_argument("--keys", type=int, default=5_000, help="keys updated in place (--mode update)")
    parser.add_argument("--commit-delay-ms", type=float, default=0, help="the store's commit_delay_s, in ms")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--dir", default=None, help="directory for the database (default: a temp dir)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        result = asyncio.run(
            run(
                os.path.join(directory, "state.db"),
                args.mode,
                args.writers,
                args.count,
                args.keys,
                args.rate,
                args.commit_delay_ms,
            )
        )
    result.update(rate=args.rate, commit_delay_ms=args.commit_delay_ms)
    result.update(loop="uvloop" if args.uvloop else "asyncio", machine=machine())
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
