"""Pick the best real container runtime this process can use (``kubelite up`` reports which)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kubelite.agent.runtime.rootless import RootlessRuncRuntime
from kubelite.agent.runtime.runc import RuncRuntime
from kubelite.agent.runtime.sandbox import NetworkSetup, NetworkTeardown


def user_namespaces_allowed() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False


def best_runtime(
    root: Path,
    *,
    network_setup: NetworkSetup | None = None,
    network_teardown: NetworkTeardown | None = None,
) -> RuncRuntime | None:
    """runc as root; rootless runc for other users (see its ``limitations``); None without runc or
    user namespaces (the agent then falls back to the simulated runtime)."""
    if shutil.which("runc") is None:
        return None
    if os.geteuid() == 0:
        return RuncRuntime(root, network_setup=network_setup, network_teardown=network_teardown)
    if user_namespaces_allowed():
        return RootlessRuncRuntime(root)
    return None
