"""Admission plugins of the node-lifecycle and storage parts of Kubernetes.

* ``DefaultTolerationSeconds``: every pod that does not already tolerate them gets
  NoExecute tolerations for ``node.kubernetes.io/not-ready`` and
  ``node.kubernetes.io/unreachable`` with ``tolerationSeconds`` from
  ``--default-toleration-seconds`` (300 by default), so the node lifecycle controller
  evicts it that long after its node fails.
* ``DefaultStorageClass``: a PersistentVolumeClaim created without
  ``spec.storageClassName`` gets the default StorageClass (the newest one annotated
  ``storageclass.kubernetes.io/is-default-class: "true"``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api.volumes import default_class
from kubelite.apiserver.context import ServerContext

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300

PodHook = Callable[[ServerContext, Obj, Any], Awaitable[None]]


def _tolerates_key(tolerations: list[Obj], key: str) -> bool:
    """The plugin's test: a toleration of this key (or of every key) for NoExecute (or every
    effect) exists."""
    return any(
        t.get("key") in (key, None, "") and t.get("effect") in (None, "", "NoExecute") for t in tolerations
    )


def add_default_tolerations(pod: Obj, seconds: int) -> None:
    spec = pod.setdefault("spec", {})
    tolerations = list(spec.get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        if not _tolerates_key(tolerations, key):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
            )
    spec["tolerations"] = tolerations


def default_toleration_seconds_hook(seconds: int = DEFAULT_TOLERATION_SECONDS) -> PodHook:
    """A create hook for ``("", "Pod")`` in ``ctx.extra["create_hooks"]``."""

    async def hook(ctx: ServerContext, pod: Obj, opts: Any) -> None:
        add_default_tolerations(pod, seconds)

    return hook


async def default_storage_class(ctx: ServerContext, pvc: Obj, opts: Any) -> None:
    """A create hook for ``("", "PersistentVolumeClaim")``."""
    spec = pvc.setdefault("spec", {})
    if spec.get("storageClassName") is not None:
        return
    info = ctx.index.get("storage.k8s.io", "v1", "storageclasses")
    if info is None:
        return
    cls = default_class((await ctx.objects.list(info, "")).items)
    if cls is not None:
        spec["storageClassName"] = cls["metadata"]["name"]
