"""Service ClusterIP and NodePort allocation (kube-apiserver's service REST allocators).

Allocation scans the Services in the store under a lock: simple, exact, and cheap at the
scale a small cluster has (thousands of Services take a few milliseconds).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from typing import Any

from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.writes import WriteOptions

Obj = dict[str, Any]
NODE_PORT_RANGE = (30000, 32767)


class ServiceAllocator:
    def __init__(self, service_cidr: str = "10.96.0.0/12") -> None:
        self.network = ipaddress.ip_network(service_cidr)
        self.lock = asyncio.Lock()

    def first_ip(self, offset: int = 1) -> str:
        return str(self.network.network_address + offset)

    async def _used(self, ctx: ServerContext) -> tuple[set[str], set[int]]:
        info = ctx.index.get("", "v1", "services")
        assert info is not None
        page = await ctx.objects.list(info, "")
        ips: set[str] = set()
        ports: set[int] = set()
        for svc in page.items:
            spec = svc.get("spec") or {}
            ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip)
            ports.update(int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort"))
        return ips, ports

    def _pick_ip(self, used: set[str]) -> str:
        size = self.network.num_addresses
        # skip network address and the .1 (kubernetes) and .10 (DNS) reserved by convention
        for offset in range(11, size - 1):
            ip = str(self.network.network_address + offset)
            if ip not in used:
                return ip
        raise errors.InternalError("failed to allocate a serviceIP: range is full")

    async def on_create(self, ctx: ServerContext, svc: Obj, opts: WriteOptions) -> None:
        spec = svc.setdefault("spec", {})
        typ = spec.get("type", "ClusterIP")
        if typ != "ExternalName":
            self._check_families(svc, spec)
        async with self.lock:
            used_ips, used_ports = await self._used(ctx)
            if typ != "ExternalName":
                self._assign_ip(svc, spec, used_ips)
            if typ in ("NodePort", "LoadBalancer"):
                self._assign_node_ports(svc, spec, used_ports)

    def _check_families(self, svc: Obj, spec: Obj) -> None:
        """``initIPFamilyFields``: a Service may only ask for the IP family this single-stack
        cluster serves (headless selectorless Services are exempt, as in kube-apiserver)."""
        if spec.get("clusterIP") == "None" and not spec.get("selector"):
            return
        ours = f"IPv{self.network.version}"
        causes: list[errors.Cause] = []
        if spec.get("ipFamilyPolicy") == "RequireDualStack":
            causes.append(
                errors.Cause(
                    "FieldValueInvalid",
                    'Invalid value: "RequireDualStack": '
                    "this cluster is not configured for dual-stack services",
                    "spec.ipFamilyPolicy",
                )
            )
        for i, family in enumerate(spec.get("ipFamilies") or []):
            if family != ours:
                causes.append(
                    errors.Cause(
                        "FieldValueInvalid",
                        f'Invalid value: "{family}": not configured on this cluster',
                        f"spec.ipFamilies[{i}]",
                    )
                )
        if causes:
            name = (svc.get("metadata") or {}).get("name", "")
            raise errors.invalid("Service", "", name, causes)

    def _assign_ip(self, svc: Obj, spec: Obj, used: set[str]) -> None:
        ip = spec.get("clusterIP")
        if ip == "None":
            spec["clusterIPs"] = ["None"]
            return
        if ip:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError as e:
                raise _invalid(
                    svc, "spec.clusterIP", f'Invalid value: "{ip}": must be a valid IP address'
                ) from e
            if addr not in self.network:
                raise _invalid(
                    svc,
                    "spec.clusterIP",
                    f'Invalid value: "{ip}": provided IP is not in the valid range. '
                    f"The range of valid IPs is {self.network}",
                )
            if ip in used:
                raise _invalid(
                    svc, "spec.clusterIP", f'Invalid value: "{ip}": provided IP is already allocated'
                )
        else:
            ip = self._pick_ip(used)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _assign_node_ports(self, svc: Obj, spec: Obj, used: set[int]) -> None:
        lo, hi = NODE_PORT_RANGE
        for i, port in enumerate(spec.get("ports") or []):
            np = port.get("nodePort")
            if np:
                if np in used:
                    raise _invalid(
                        svc,
                        f"spec.ports[{i}].nodePort",
                        f"Invalid value: {np}: provided port is already allocated",
                    )
                used.add(int(np))
                continue
            free = [p for p in range(lo, hi + 1) if p not in used]
            if not free:
                raise errors.InternalError("failed to allocate a nodePort: range is full")
            np = random.choice(free)
            port["nodePort"] = np
            used.add(np)


def _invalid(svc: Obj, field: str, message: str) -> errors.Invalid:
    name = (svc.get("metadata") or {}).get("name", "")
    return errors.invalid("Service", "", name, [errors.Cause("FieldValueInvalid", message, field)])
