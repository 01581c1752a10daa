"""A hand-built node network inside network namespaces, for proxy integration tests.

``node`` netns: bridge ``br0`` 10.244.0.1/24 (pod gateway), uplink ``up0`` 192.0.2.1/24
(the node IP), the service CIDR routed to the bridge, ip_forward and route_localnet on.
``ext`` netns: a client outside the cluster at 192.0.2.2.  ``pN`` netns: pods at
10.244.0.(10+N) running a tiny TCP (8080) and UDP (5353) echo-its-name server.
Everything is deleted by :meth:`Topology.close`; the root namespace is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = r"""
import socket, sys, threading
name = sys.argv[1]
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(64)
    while True:
        c, addr = s.accept()
        try:
            c.sendall(f"{name} {addr[0]}\n".encode())
        finally:
            c.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
    while True:
        _, addr = s.recvfrom(100); s.sendto(f"{name} {addr[0]}\n".encode(), addr)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
tcp()
"""

CLIENT = r"""
import json, socket, sys, time
host, port, count, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sport = int(sys.argv[5])
out = []
for _ in range(count):
    t0 = time.monotonic()
    try:
        if proto == "tcp":
            with socket.create_connection((host, port), timeout=1.5) as s:
                out.append(s.recv(100).decode().strip())
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", sport)); s.settimeout(1.5); s.connect((host, port)); s.send(b"x")
                out.append(s.recv(100).decode().strip())
    except ConnectionRefusedError:
        out.append(f"refused {time.monotonic() - t0:.3f}")
    except OSError as e:
        out.append(f"error {type(e).__name__} {time.monotonic() - t0:.3f}")
print(json.dumps(out))
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30)


def netns_exec(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


@dataclass
class Topology:
    prefix: str
    pods: dict[str, str] = field(default_factory=dict)  # pod name -> IP
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"{self.prefix}-node"

    @property
    def ext(self) -> str:
        return f"{self.prefix}-ext"

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def build(self, pod_count: int) -> None:
        self._add_ns(self.node)
        self._add_ns(self.ext)
        n = self.node
        for cmd in (
            "ip link add br0 type bridge",
            "ip addr add 10.244.0.1/24 dev br0",
            "ip link set br0 up",
            "ip route add 10.96.0.0/12 dev br0",
            "sysctl -qw net.ipv4.ip_forward=1",
            "sysctl -qw net.ipv4.conf.all.route_localnet=1",
        ):
            sh(*netns_exec(n, *cmd.split()))
        sh("ip", "-n", n, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", self.ext)
        sh("ip", "-n", n, "addr", "add", "192.0.2.1/24", "dev", "up0")
        sh("ip", "-n", n, "link", "set", "up0", "up")
        sh("ip", "-n", self.ext, "addr", "add", "192.0.2.2/24", "dev", "eth0")
        sh("ip", "-n", self.ext, "link", "set", "eth0", "up")
        for i in range(1, pod_count + 1):
            self._add_pod(f"p{i}", f"10.244.0.{10 + i}")

    def _add_pod(self, name: str, ip: str) -> None:
        ns = f"{self.prefix}-{name}"
        self._add_ns(ns)
        veth = f"v{name}"
        sh("ip", "-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.node, "link", "set", veth, "master", "br0", "up")
        sh(*netns_exec(self.node, "bridge", "link", "set", "dev", veth, "hairpin", "on"))
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", "10.244.0.1")
        proc = subprocess.Popen(
            netns_exec(ns, sys.executable, "-c", SERVER, name), stdout=subprocess.PIPE, text=True
        )
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        self.pods[name] = ip

    def wrapper(self, tmp: Path, binary: str) -> str:
        """A script that runs ``binary`` inside the node netns (for ProxyConfig.nft/conntrack)."""
        path = tmp / f"{binary}-in-node"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.node} {binary} "$@"\n')
        path.chmod(0o755)
        return str(path)

    def connect(
        self, ns: str, host: str, port: int, count: int = 1, proto: str = "tcp", sport: int = 0
    ) -> list[str]:
        """``count`` fresh connections from netns ``ns``; each answer is "<pod> <source seen>".

        ``sport`` fixes the UDP source port (every datagram then belongs to one conntrack flow).
        """
        args = (host, str(port), str(count), proto, str(sport))
        out = sh(*netns_exec(ns, sys.executable, "-c", CLIENT, *args))
        result: list[str] = json.loads(out.stdout)
        return result

    def nft(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(*netns_exec(self.node, "nft", *args), check=check)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)


def make_topology(pod_count: int) -> Topology:
    topo = Topology(f"kltest-h2-{os.getpid() % 100000}-{int(time.monotonic() * 1000) % 1000}")
    try:
        topo.build(pod_count)
    except BaseException:
        topo.close()
        raise
    return topo
