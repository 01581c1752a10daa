"""`kubelite up` on an empty data dir until the API answers, and idle resident memory.

Usage: python bench/startup_memory.py [--runs 7] [--idle-seconds 10]
Prints one JSON line: startup median/min/max seconds and idle RSS in MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time

from common import machine, start_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--idle-seconds", type=float, default=10)
    args = ap.parse_args()
    times = []
    rss = 0.0
    for i in range(args.runs):
        srv = start_server()
        times.append(srv.ready_after)
        if i == args.runs - 1:
            time.sleep(args.idle_seconds)
            rss = srv.rss_mb()
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "startup_memory",
                "startup_median_s": round(statistics.median(times), 3),
                "startup_min_s": round(min(times), 3),
                "startup_max_s": round(max(times), 3),
                "idle_rss_mb": round(rss, 1),
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
