"""Pod IPs for simulated pods: one /24 per node (the node's ``spec.podCIDR``), like the
host-local IPAM plugin a CNI would use.  Addresses are fake and never routed."""

from __future__ import annotations

from kubelite.simulator.nodeobj import pod_ip


class PodIPs:
    """Hands out host addresses .1-.254 of each node's /24, one per pod key."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[int, int]] = {}  # pod key -> (node index, host)
        self._used: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}

    def allocate(self, key: str, node: int) -> str:
        """The address of pod ``key`` on node ``node`` (the same one when asked again)."""
        held = self._by_key.get(key)
        if held is not None and held[0] == node:
            return pod_ip(*held)
        self.release(key)
        used = self._used.setdefault(node, set())
        start = self._next.get(node, 1)
        for step in range(254):
            host = (start - 1 + step) % 254 + 1
            if host not in used:
                break
        else:
            host = start  # more than 254 pods on one node: share (fake addresses anyway)
        used.add(host)
        self._next[node] = host % 254 + 1
        self._by_key[key] = (node, host)
        return pod_ip(node, host)

    def adopt(self, key: str, node: int, ip: str) -> None:
        """Remember an address a pod already has (after a simulator restart)."""
        if key in self._by_key:
            return
        try:
            host = int(ip.rsplit(".", 1)[1])
        except (IndexError, ValueError):
            return
        if pod_ip(node, host) != ip:
            return
        self._used.setdefault(node, set()).add(host)
        self._by_key[key] = (node, host)

    def release(self, key: str) -> None:
        held = self._by_key.pop(key, None)
        if held is not None:
            self._used.get(held[0], set()).discard(held[1])

    def __len__(self) -> int:
        return len(self._by_key)
