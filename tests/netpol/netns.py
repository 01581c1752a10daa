"""Throw-away network namespaces for the nft tests: a "node" netns with a bridge, and pods.

Everything lives in namespaces named ``kltest-h4-<pid>-...``; the root namespace is never
touched.  Each pod (and the node) runs a tiny agent: a TCP server on :8080 that answers
its name, and a prober that connects where it is told (``ip port`` on stdin -> ``ok
<name>`` or ``fail`` on stdout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

AGENT = r"""
import socket, sys, threading
name = sys.argv[1]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 8080))
srv.listen(64)
def serve():
    while True:
        c, _ = srv.accept()
        try:
            c.sendall(name.encode())
        finally:
            c.close()
threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    ip, port = line.split()
    try:
        s = socket.create_connection((ip, int(port)), timeout=0.4)
        data = s.recv(64)
        s.close()
        print("ok " + data.decode(), flush=True)
    except OSError:
        print("fail", flush=True)
"""


def available() -> str:
    """Why the nft tests cannot run here, or "" when they can."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return ""


def sh(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, input=input, timeout=30)


@dataclass
class Agent:
    name: str
    proc: subprocess.Popen[str]

    def connect(self, ip: str, port: int = 8080) -> str:
        """The peer's name when a connection to ip:port succeeds, else "" (dropped)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{ip} {port}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        return answer[3:] if answer.startswith("ok ") else ""


@dataclass
class Lab:
    prefix: str
    node: str  # the node's netns
    nft: str  # nft command line inside the node netns
    namespaces: list[str] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)

    def add_netns(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        return name

    def add_pod(self, name: str, ip: str, gateway: str = "10.244.0.1") -> None:
        ns = self.add_netns(name)
        veth = f"v{name}"[:15]
        sh("ip", "-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.node, "link", "set", veth, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
        self.start_agent(name, ns)

    def start_agent(self, name: str, ns: str) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", AGENT, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.agents[name] = Agent(name, proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def nft_list(self, table: str) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.node, "nft", "list", "table", "ip", table, check=False)

    def close(self) -> None:
        for agent in self.agents.values():
            agent.proc.kill()
            agent.proc.wait()
            for stream in (agent.proc.stdin, agent.proc.stdout):
                if stream is not None:
                    stream.close()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)


@contextmanager
def lab(tag: str, pods: dict[str, str] | None = None) -> Iterator[Lab]:
    """A node netns (bridge br0 10.244.0.1/24, br_netfilter on) and pods name -> IP."""
    prefix = f"kltest-h4-{os.getpid()}-{tag}"
    node = f"{prefix}-node"
    box = Lab(prefix, node, f"ip netns exec {node} nft")
    try:
        box.add_netns("node")
        sh("ip", "-n", node, "link", "set", "lo", "up")
        sh("ip", "-n", node, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", node, "addr", "add", "10.244.0.1/24", "dev", "br0")
        sh("ip", "-n", node, "link", "set", "br0", "up")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        for name, ip in (pods or {}).items():
            box.add_pod(name, ip)
        yield box
    finally:
        box.close()
