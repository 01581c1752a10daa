"""Cyclic garbage collector settings for kubelite's long-running processes.

Like tuning GOGC for a Go binary, this trades some memory for fewer collections.  The API
server and a standalone scheduler hold tens of thousands of long-lived dicts (objects, the
OpenAPI schemas, caches) and allocate many short-lived ones per request or pod that
reference counting frees; with CPython's default thresholds (700, 10, 10) the collector
still ran every few hundred allocations and regularly rescanned the whole heap: most of a
10,000-pod LIST's decode time, ~30 % of a standalone scheduler's CPU at 5,000 nodes.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def raise_thresholds() -> None:
    """Make collections rarer."""
    gc.set_threshold(*THRESHOLDS)


def freeze_startup_objects() -> None:
    """Collect once, move everything built so far out of the collector's view (never scanned
    again), and make collections rarer: for a server after start-up."""
    gc.collect()
    gc.freeze()
    raise_thresholds()
