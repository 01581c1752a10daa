"""The DNS server's own EndpointSlice behind the ``kube-system/kube-dns`` Service.

The kube-dns Service has no selector (the API server bootstrap creates it), so, like a
hand-managed slice, each DNS server publishes ``kube-system/kube-dns-<name>`` with the labels
``kubernetes.io/service-name: kube-dns`` and ``endpointslice.kubernetes.io/managed-by:
dns.kubelite.io`` (the EndpointSlice controller leaves slices it doesn't manage alone), one
ready endpoint (its address, ``nodeName``) and the ports ``dns`` (UDP) and ``dns-tcp`` (TCP).
The service proxy sends the kube-dns clusterIP there.  The slice is deleted on stop.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource

log = logging.getLogger("kubelite.dns.publish")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
NAMESPACE = "kube-system"
SERVICE = "kube-dns"
MANAGED_BY = "dns.kubelite.io"


def slice_name(name: str) -> str:
    """``kube-dns-<name>`` made a valid DNS subdomain name."""
    clean = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.") or "server"
    return f"{SERVICE}-{clean}"[:253].rstrip("-.")


def endpoint_slice(name: str, address: str, port: int, node_name: str = "") -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "addresses": [address],
        "conditions": {"ready": True, "serving": True, "terminating": False},
    }
    if node_name:
        endpoint["nodeName"] = node_name
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(name),
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv6" if ":" in address else "IPv4",
        "endpoints": [endpoint],
        "ports": [
            {"name": "dns", "protocol": "UDP", "port": port},
            {"name": "dns-tcp", "protocol": "TCP", "port": port},
        ],
    }


async def publish(client: Client, body: dict[str, Any]) -> None:
    """Create the slice, or replace an existing one of the same name (a restart)."""
    name = body["metadata"]["name"]
    try:
        await client.create(SLICES, NAMESPACE, body)
        return
    except errors.AlreadyExists:
        pass
    current = await client.get(SLICES, NAMESPACE, name)
    body = {
        **body,
        "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
    }
    await client.update(SLICES, NAMESPACE, body)


async def unpublish(client: Client, name: str) -> None:
    try:
        await client.delete(SLICES, NAMESPACE, name)
    except errors.NotFound:
        pass
    except Exception:
        log.warning("could not delete EndpointSlice %s/%s", NAMESPACE, name, exc_info=True)
