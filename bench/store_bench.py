"""kubelite's SQLite store under concurrent writers: creates/s and latency.

``--writers`` asyncio tasks each create pod-sized keys back to back (each awaits
its create, as an API request handler would) through the group-committing writer
(WAL, synchronous=FULL: every create is durable when it returns).  A watcher on
the whole keyspace consumes every event meanwhile.  Prints one JSON line.

    python bench/store_bench.py --writers 8 --count 20000 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

import orjson
from _pods import machine, pod

from kubelite.store.sqlite import SqliteStore
from kubelite.store.types import Watcher


async def writer(store: SqliteStore, index: int, count: int, value: bytes, out: list[float]) -> None:
    for i in range(count):
        began = time.perf_counter()
        await store.create(f"/registry/pods/ns{index}/bench-{i:07d}", value)
        out.append(time.perf_counter() - began)


async def consume(watcher: Watcher, total: int) -> int:
    seen = 0
    async for batch in watcher:
        seen += len(batch)
        if seen >= total:
            break
    return seen


async def run(path: str, writers: int, count: int) -> dict[str, object]:
    store = SqliteStore(path)
    await store.start()
    value = orjson.dumps(pod(0))
    latencies: list[float] = []
    per_writer = count // writers
    watcher = store.watch("/registry/", store.revision)
    watching = asyncio.create_task(consume(watcher, per_writer * writers))
    began = time.perf_counter()
    await asyncio.gather(*(writer(store, n, per_writer, value, latencies) for n in range(writers)))
    elapsed = time.perf_counter() - began
    watched = await watching
    await store.close()
    latencies.sort()
    return {
        "bench": "store_bench",
        "writers": writers,
        "creates": len(latencies),
        "creates_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "watched_events": watched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--count", type=int, default=20_000, help="creates in total")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--dir", default=None, help="directory for the database (default: a temp dir)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        result = asyncio.run(run(os.path.join(directory, "state.db"), args.writers, args.count))
    result.update(loop="uvloop" if args.uvloop else "asyncio", machine=machine())
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
