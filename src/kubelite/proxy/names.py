"""nftables object names, in kube-proxy's nftables-mode style.

Per-service-port chains are ``service-HASH-ns/name/proto/port``, ``external-…`` and
``local-…``; per-endpoint chains ``endpoint-HASH-ns/name/proto/port__ip/port`` and
ClientIP affinity sets ``affinity-HASH-…``.  The hash (8 base32 characters of a SHA-256)
makes names unique even where the readable part is ambiguous; the affinity hash also
covers the timeout so that a new timeout yields a new set.
"""

from __future__ import annotations

import base64
import hashlib

# Static objects of the table.
SERVICES = "services"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"
REJECT = "reject-chain"
SERVICE_ENDPOINTS_CHECK = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
CLUSTER_IPS_CHECK = "cluster-ips-check"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
CLUSTER_IPS = "cluster-ips"
HAIRPIN = "hairpin-endpoints"
FIREWALL_CHECK = "firewall-check"
FIREWALL_IPS = "firewall-ips"


def short_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def port_id(namespace: str, name: str, protocol: str, port_name: str) -> str:
    return f"{namespace}/{name}/{protocol}/{port_name}"


def _named(prefix: str, ident: str) -> str:
    return f"{prefix}-{short_hash(ident)}-{ident}"


def service_chain(pid: str) -> str:
    return _named("service", pid)


def firewall_chain(pid: str) -> str:
    return _named("firewall", pid)


def external_chain(pid: str) -> str:
    return _named("external", pid)


def local_chain(pid: str) -> str:
    return _named("local", pid)


def endpoint_chain(pid: str, ip: str, port: int) -> str:
    return _named("endpoint", f"{pid}__{ip}/{port}")


def affinity_set(pid: str, ip: str, port: int, timeout: int) -> str:
    ident = f"{pid}__{ip}/{port}"
    return f"affinity-{short_hash(f'{ident}#{timeout}')}-{ident}"
