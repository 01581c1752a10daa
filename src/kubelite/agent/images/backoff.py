"""The kubelet's image pull back-off: ``ErrImagePull`` first, then ``ImagePullBackOff``.

After a failed pull the kubelet does not try the same image for the same pod again until a
back-off has passed: 10 s, doubling per failure up to 5 minutes, and forgotten when the last
failure is older than twice the maximum.  While backing off, the container waits with reason
``ImagePullBackOff`` and the message ``Back-off pulling image "<image>"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

INITIAL = 10.0
MAXIMUM = 300.0


@dataclass
class _Entry:
    delay: float
    last_failure: float


class PullBackOff:
    """Per key (pod UID + image) back-off; the agent calls :meth:`waiting` before pulling."""

    def __init__(
        self, initial: float = INITIAL, maximum: float = MAXIMUM, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def waiting(self, key: str) -> float:
        """Seconds left before ``key`` may be pulled again (0: go ahead)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.last_failure + entry.delay - self.clock())

    def failed(self, key: str) -> float:
        """Record a failed pull; returns the back-off now in force."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last_failure > 2 * self.maximum:
            entry = _Entry(self.initial, now)
        else:
            entry = _Entry(min(entry.delay * 2, self.maximum), now)
        self._entries[key] = entry
        return entry.delay

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every key starting with ``prefix`` (a deleted pod's UID)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def backoff_message(image: str) -> str:
    return f'Back-off pulling image "{image}"'
