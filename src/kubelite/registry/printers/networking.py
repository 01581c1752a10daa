"""Tables for ``networking.k8s.io/v1`` and ``discovery.k8s.io/v1``.

Mirrors ``printIngress`` (CLASS HOSTS ADDRESS PORTS: hosts ``*`` when no rule names
one, ports ``80`` or ``80, 443`` with TLS), ``printIngressClass`` (CONTROLLER,
PARAMETERS ``Kind.group/name``), ``printNetworkPolicy`` (POD-SELECTOR) and
``printEndpointSlice`` (ADDRESSTYPE PORTS ENDPOINTS, ``<unset>`` when empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._base import (
    NONE,
    Obj,
    Printer,
    age,
    age_col,
    col,
    dicts,
    dig,
    doc,
    format_label_selector,
    list_with_more,
    lst,
    mp,
    name_col,
    name_of,
    opt_int,
    txt,
)
from .core import load_balancer_status


def format_hosts(rules: list[Mapping[str, Any]]) -> str:
    """``formatHosts``: the first three rule hosts, ``*`` when none is set."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and txt(rule, "host"):
            hosts.append(txt(rule, "host"))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


def _ingress_cells(obj: Obj, now: datetime) -> list[Any]:
    class_name = dig(obj, "spec", "ingressClassName")
    return [
        name_of(obj),
        class_name if isinstance(class_name, str) else NONE,
        format_hosts(dicts(obj, "spec", "rules")),
        load_balancer_status(mp(obj, "status", "loadBalancer")),
        "80, 443" if lst(obj, "spec", "tls") else "80",
        age(obj, now),
    ]


INGRESS = Printer(
    (
        name_col(),
        col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        col("Ports", "string", "Ports of TLS configurations that open"),
        age_col(),
    ),
    _ingress_cells,
)


def _ingress_class_parameters(obj: Obj) -> str:
    params = dig(obj, "spec", "parameters")
    if not isinstance(params, Mapping):
        return NONE
    kind = txt(params, "kind")
    group = params.get("apiGroup")
    if isinstance(group, str):
        kind = f"{kind}.{group}"
    return f"{kind}/{txt(params, 'name')}"


INGRESS_CLASS = Printer(
    (
        name_col(),
        col("Controller", "string", "Controller that is responsible for handling this class"),
        col("Parameters", "string", "A reference to a resource with additional parameters"),
        age_col(),
    ),
    lambda obj, now: [
        name_of(obj),
        txt(obj, "spec", "controller"),
        _ingress_class_parameters(obj),
        age(obj, now),
    ],
)

NETWORK_POLICY = Printer(
    (
        name_col(),
        col("Pod-Selector", "string", doc("networking.v1.NetworkPolicySpec", "podSelector")),
        age_col(),
    ),
    lambda obj, now: [
        name_of(obj),
        format_label_selector(mp(obj, "spec", "podSelector")),
        age(obj, now),
    ],
)


def _slice_ports(obj: Obj) -> str:
    ports = dicts(obj, "ports")
    shown = []
    for port in ports:
        number = opt_int(port, "port")
        name = port.get("name")
        shown.append(str(number) if number is not None else name if isinstance(name, str) else "*")
    return list_with_more(shown, len(ports), 3, "<unset>")


def _slice_endpoints(obj: Obj) -> str:
    addresses = [a for ep in dicts(obj, "endpoints") for a in lst(ep, "addresses") if isinstance(a, str)]
    return list_with_more(addresses, len(addresses), 3, "<unset>")


ENDPOINT_SLICE = Printer(
    (
        name_col(),
        col("AddressType", "string", doc("discovery.v1.EndpointSlice", "addressType")),
        col("Ports", "string", doc("discovery.v1.EndpointSlice", "ports")),
        col("Endpoints", "string", doc("discovery.v1.EndpointSlice", "endpoints")),
        age_col(),
    ),
    lambda obj, now: [
        name_of(obj),
        txt(obj, "addressType"),
        _slice_ports(obj),
        _slice_endpoints(obj),
        age(obj, now),
    ],
)

PRINTERS = {
    ("networking.k8s.io", "ingresses"): INGRESS,
    ("networking.k8s.io", "ingressclasses"): INGRESS_CLASS,
    ("networking.k8s.io", "networkpolicies"): NETWORK_POLICY,
    ("discovery.k8s.io", "endpointslices"): ENDPOINT_SLICE,
}
