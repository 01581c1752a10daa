"""The cluster DNS server as a policy peer.

In Kubernetes the cluster DNS runs as pods labelled ``k8s-app: kube-dns`` in
``kube-system``, so the usual "allow DNS" egress rule names them::

    to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}},
          podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]

kubelite's DNS server is not a pod: it listens on a node address and publishes that in an
EndpointSlice ``kube-system/kube-dns-<node>`` managed by ``dns.kubelite.io``.  Each such
endpoint is turned into a *virtual pod* with the labels and named ports (``dns``,
``dns-tcp``) CoreDNS pods have, so those rules work unchanged.  A virtual pod never runs
on a node (it is a peer only, never isolated itself).
"""

from __future__ import annotations

from typing import Any

from kubelite.client.base import Resource
from kubelite.netpol.model import ContainerPort, PodInfo

Obj = dict[str, Any]

SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
NAMESPACE = "kube-system"
SELECTOR = "endpointslice.kubernetes.io/managed-by=dns.kubelite.io"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}


def virtual_pods(eps: Obj | None) -> dict[str, PodInfo]:
    """The DNS endpoints of one slice, keyed like pods (``kube-system/<slice>:<i>``)."""
    if eps is None or eps.get("addressType") != "IPv4":
        return {}
    meta = eps.get("metadata") or {}
    name = str(meta.get("name", ""))
    ports = tuple(
        ContainerPort(str(p["name"]), str(p.get("protocol") or "TCP").upper(), int(p["port"]))
        for p in eps.get("ports") or []
        if p.get("name") and p.get("port")
    )
    out: dict[str, PodInfo] = {}
    for i, ep in enumerate(eps.get("endpoints") or []):
        addresses = tuple(str(a) for a in ep.get("addresses") or [])
        if not addresses or (ep.get("conditions") or {}).get("ready") is False:
            continue
        pod = PodInfo(NAMESPACE, f"{name}:{i}", "", addresses, dict(DNS_POD_LABELS), ports)
        out[pod.key] = pod
    return out
