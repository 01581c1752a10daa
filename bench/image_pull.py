"""Cold pull + unpack of the small busybox image from a local docker-registry.

This is the pull part of the "cold pull + start of a small image <= 500 ms" target: each run
uses a fresh image store (nothing cached), pulls by tag over plain HTTP from 127.0.0.1
(HEAD, manifest, config, layers with sha256 checks) and unpacks the layers with their diff_id
checks.  Also reports an ``Always`` re-pull of a present image (one HEAD) and the split
between download and unpack.  The whole target, pull *and* start measured end to end through the
API and a real agent, is ``bench/cold_start.py``.

Usage: python bench/image_pull.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.registry import running_registry

from kubelite.agent.images import builder
from kubelite.agent.images.service import LocalImageService


def cpu_s() -> float:
    """CPU seconds of this process, all threads (the unpack runs in a worker thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def one_run(data_dir: Path, ref: str) -> tuple[float, float, float]:
    svc = LocalImageService(data_dir)
    t0, c0 = time.perf_counter(), cpu_s()
    await svc.pull(ref)
    cold, cpu = time.perf_counter() - t0, cpu_s() - c0
    t1 = time.perf_counter()
    await svc.pull(ref, policy="Always")
    return cold, time.perf_counter() - t1, cpu


async def bench(ref: str, runs: int, work: Path) -> tuple[list[float], list[float], list[float]]:
    await one_run(work / "warmup", ref)  # imports, first connection
    cold, always, cpu = [], [], []
    for i in range(runs):
        c, a, u = await one_run(work / f"run{i}", ref)
        cold.append(c)
        always.append(a)
        cpu.append(u)
    return cold, always, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    image = builder.busybox_image({"www/index.html": b"bench"}, cmd=["httpd", "-f"])
    size = sum(len(b.data) for b in image.layers)
    with tempfile.TemporaryDirectory() as tmp, running_registry(Path(tmp) / "reg") as reg:
        builder.push(image, reg.host, "bench/busybox", "v1")
        cold, always, cpu = asyncio.run(bench(reg.ref("bench/busybox", "v1"), args.runs, Path(tmp)))

    def ms(xs: list[float]) -> str:
        return (
            f"p50 {statistics.median(xs) * 1000:.0f} ms, min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f}"
        )

    print(f"image: busybox-static, {len(image.layers)} layers, {size / 1e6:.2f} MB compressed")
    print(f"cold pull + unpack ({args.runs} runs, fresh store each): {ms(cold)}")
    print(f"  CPU of the pull (this process, all threads): {ms(cpu)}; load {os.getloadavg()[0]:.2f}")
    print(f"Always re-pull of a present image (HEAD only): {ms(always)}")
    verdict = "OK" if statistics.median(cold) < 0.5 else "OVER"
    print(f"target: cold pull + start <= 500 ms -> pull part {verdict}")


if __name__ == "__main__":
    main()
