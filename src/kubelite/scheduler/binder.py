"""Binding: the asynchronous half of scheduling (``bindingCycle``).

The scheduling cycle has already assumed the pod onto its node in the cache, so the next
pod can be scheduled at once; the binder then, concurrently for many pods:

* PreBind - annotates unbound ``WaitForFirstConsumer`` claims with
  ``volume.kubernetes.io/selected-node`` so the provisioner creates the volume there;
* Bind - ``POST /api/v1/namespaces/<ns>/pods/<name>/binding`` with a ``v1.Binding``.

A bounded number of bindings are in flight at a time (like the API client's QPS budget
keeps kube-scheduler's goroutines from flooding the API server).
"""

from __future__ import annotations

import asyncio

from kubelite.client.base import Client, Resource
from kubelite.scheduler.plugins.volumebinding import SELECTED_NODE
from kubelite.scheduler.podinfo import PodInfo

PODS = Resource("", "v1", "pods")
PVCS = Resource("", "v1", "persistentvolumeclaims")
DEFAULT_IN_FLIGHT = 128


def binding_body(pod: PodInfo, node: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


class Binder:
    def __init__(self, client: Client, in_flight: int = DEFAULT_IN_FLIGHT) -> None:
        self.client = client
        self._slots = asyncio.Semaphore(in_flight)

    async def bind(self, pod: PodInfo, node: str, delayed_claims: list[str]) -> None:
        """PreBind then Bind; API errors propagate to the caller (which forgets the pod)."""
        async with self._slots:
            for claim in delayed_claims:
                patch = {"metadata": {"annotations": {SELECTED_NODE: node}}}
                await self.client.patch(PVCS, pod.namespace, claim, patch)
            await self.client.create(
                PODS, pod.namespace, binding_body(pod, node), subresource="binding", name=pod.name
            )
