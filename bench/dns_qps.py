"""Cluster DNS under a steady query rate: ``kubelite dns`` fed by a real ``kubelite server``.

Starts ``kubelite server`` and creates ``--services`` Services in ``default`` over HTTPS: 90 %
ClusterIP (one named port ``http``), 10 % headless, each with an EndpointSlice of three ready
endpoints with host names.  Then starts ``kubelite dns`` on 127.0.0.1 (a separate process, so
its CPU is measured alone) and waits until it answers the last Service.  One UDP client sends
``--rate`` queries/s open-loop (sends are scheduled on the clock, not on replies) for
``--seconds`` seconds, a mix of: 40 % ClusterIP A, 20 % headless A, 20 % SRV
``_http._tcp.<svc>``, 20 % NXDOMAIN (a fresh name every time, like search-path misses, so
these always miss the response cache).  Latency = reply received - query sent (same process);
``latency_kernel_rx`` uses the kernel's receive timestamp instead, which leaves out the bench
client's own scheduling delays on a busy machine.

With ``--churn N`` another process updates N headless Services' EndpointSlices per second
through the API during the load (each update drops that Service's cached answers).

Usage: python bench/dns_qps.py [--services 1000] [--rate 1000] [--seconds 10] [--churn 0]
Prints one JSON line: achieved rate, answered/lost, p50/p90/p99/max latency (ms) per query
kind and overall, the DNS process's CPU (% of one core, µs per query) and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import machine, percentile, process_cpu_seconds, spawn_until_ready, start_server
from dnslib import RCODE, DNSRecord  # type: ignore[import-untyped]

from kubelite.client.base import Client, Resource
from kubelite.client.http import HTTPTransport, load_kubeconfig

SERVICES = Resource("", "v1", "services")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
DOMAIN = "cluster.local"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux (asm-generic); not in Python 3.11


def service(i: int, headless: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}"}, "spec": spec}


def endpoint_slice(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{i}-a", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [f"10.244.{i % 250}.{j + 2 + (i // 250) * 3}"],
                "hostname": f"svc-{i}-{j}",
                "conditions": {"ready": True},
            }
            for j in range(3)
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


async def load_services(kubeconfig: Path, n: int) -> tuple[list[int], list[int]]:
    """Create the Services (and slices of the headless ones); (clusterip idx, headless idx)."""
    client = Client(HTTPTransport(load_kubeconfig(kubeconfig)), user_agent="dns-bench/v1.32.0")
    headless = [i for i in range(n) if i % 10 == 9]
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await client.create(SERVICES, "default", service(i, i % 10 == 9))
            if i % 10 == 9:
                await client.create(SLICES, "default", endpoint_slice(i))

    await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return [i for i in range(n) if i % 10 != 9], headless


class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.sent: dict[int, tuple[float, str]] = {}
        self.latency: dict[str, list[float]] = {}
        self.rcodes: dict[str, dict[str, int]] = {}
        self.first: asyncio.Future[None] | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = time.perf_counter()
        qid, flags = struct.unpack_from("!HH", data)
        entry = self.sent.pop(qid, None)
        if entry is None:
            return
        kind = entry[1]
        self.latency.setdefault(kind, []).append((now - entry[0]) * 1000)
        rcode = RCODE.get(flags & 0xF)
        counts = self.rcodes.setdefault(kind, {})
        counts[rcode] = counts.get(rcode, 0) + 1


def query(qid: int, name: str, qtype: str) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    return bytes(q.pack())


def pick(rng: random.Random, clusterip: list[int], headless: list[int], seq: int) -> tuple[str, str, str]:
    r = rng.random()
    if r < 0.4:
        return "service_a", f"svc-{rng.choice(clusterip)}.default.svc.{DOMAIN}", "A"
    if r < 0.6:
        return "headless_a", f"svc-{rng.choice(headless)}.default.svc.{DOMAIN}", "A"
    if r < 0.8:
        return "srv", f"_http._tcp.svc-{rng.choice(clusterip)}.default.svc.{DOMAIN}", "SRV"
    return "nxdomain", f"nope-{seq}.default.svc.{DOMAIN}", "A"


async def wait_answers(port: int, name: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        transport, rx = await loop.create_datagram_endpoint(Receiver, remote_addr=("127.0.0.1", port))
        rx.sent[1] = (time.perf_counter(), "probe")
        transport.sendto(query(1, name, "A"))
        await asyncio.sleep(0.2)
        transport.close()
        if rx.rcodes.get("probe", {}).get("NOERROR"):
            return
    raise RuntimeError(f"DNS never answered {name}")


class Load:
    """The open-loop client: the main thread sends on schedule, a thread receives with
    ``recvmsg`` and the kernel's receive timestamp (SO_TIMESTAMPNS).  ``app`` latency = the
    receiving thread's clock after ``recvmsg`` - send time; ``kernel`` latency = the packet's
    arrival at the client socket - send time (leaves out the client's own scheduling delay on a
    busy machine)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", socket.SO_RCVBUF), 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.sent: dict[int, tuple[int, str]] = {}
        self.app: dict[str, list[float]] = {}
        self.kernel: dict[str, list[float]] = {}
        self.rcodes: dict[str, dict[str, int]] = {}
        self.done = threading.Event()

    def receive(self) -> None:
        while not self.done.is_set():
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(4096, 64)
            except TimeoutError:
                continue
            now = time.time_ns()
            qid, flags = struct.unpack_from("!HH", data)
            entry = self.sent.pop(qid, None)
            if entry is None:
                continue
            sent, kind = entry
            arrived = now
            for level, ctype, cdata in anc:
                if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    arrived = sec * 1_000_000_000 + nsec
            self.app.setdefault(kind, []).append((now - sent) / 1e6)
            self.kernel.setdefault(kind, []).append((arrived - sent) / 1e6)
            counts = self.rcodes.setdefault(kind, {})
            rcode = RCODE.get(flags & 0xF)
            counts[rcode] = counts.get(rcode, 0) + 1

    def run(self, packets: list[tuple[str, bytes]], rate: int) -> float:
        rx = threading.Thread(target=self.receive, daemon=True)
        rx.start()
        t0 = time.perf_counter()
        for seq, (kind, data) in enumerate(packets):
            delay = t0 + seq / rate - time.perf_counter()
            if delay > 0.0005:
                time.sleep(delay)
            self.sent[seq % 65536] = (time.time_ns(), kind)
            self.sock.send(data)
        took = time.perf_counter() - t0
        time.sleep(1.0)  # stragglers
        self.done.set()
        rx.join()
        self.sock.close()
        return took


def run_load(port: int, rate: int, seconds: float, clusterip: list[int], headless: list[int]) -> Any:
    rng = random.Random(7)
    total = int(rate * seconds)
    packets = []
    for seq in range(total):
        kind, name, qtype = pick(rng, clusterip, headless, seq)
        packets.append((kind, query(seq % 65536, name, qtype)))
    load = Load(port)
    return load, total, load.run(packets, rate)


def churn(kubeconfig: Path, per_second: float, seconds: float, headless: list[int], out: Any) -> None:
    """Update headless Services' EndpointSlices ``per_second`` times a second (each change
    drops that Service's cached DNS answers); the number of updates made goes to ``out``."""

    async def go() -> int:
        client = Client(HTTPTransport(load_kubeconfig(kubeconfig)), user_agent="dns-bench/v1.32.0")
        done = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            i = headless[done % len(headless)]
            body = endpoint_slice(i)
            body["endpoints"][0]["hostname"] = f"svc-{i}-x{done}"
            cur = await client.get(SLICES, "default", body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            await client.update(SLICES, "default", body)
            done += 1
            await asyncio.sleep(max(0.0, t0 + done / per_second - time.monotonic()))
        await client.close()
        return done

    out.value = asyncio.run(go())


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p90_ms": round(percentile(values, 90), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values, default=0.0), 3),
    }


def free_udp_tcp_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--churn", type=float, default=0.0, help="EndpointSlice updates per second during the load"
    )
    args = ap.parse_args()
    server = start_server(command="server")
    dns = None
    try:
        kubeconfig = server.data_dir / "kubeconfig.yaml"
        t = time.monotonic()
        clusterip, headless = asyncio.run(load_services(kubeconfig, args.services))
        load_s = time.monotonic() - t
        port = free_udp_tcp_port()
        cmd = [sys.executable, "-m", "kubelite.cli", "dns", "--kubeconfig", str(kubeconfig)]
        cmd += ["--bind-address", "127.0.0.1", "--dns-port", str(port), "--dns-upstream", "127.0.0.1:9"]
        dns, dns_start = spawn_until_ready(cmd, 60, "kubelite dns")
        last = f"svc-{clusterip[-1]}.default.svc.{DOMAIN}"
        asyncio.run(wait_answers(port, last))
        changes = mp.Value("i", 0)
        churner = mp.Process(target=churn, args=(kubeconfig, args.churn, args.seconds, headless, changes))
        cpu0, w0 = process_cpu_seconds(dns.pid), time.monotonic()
        if args.churn:  # another process: its HTTPS/JSON work must not delay the client's loop
            churner.start()
        rx, total, send_time = run_load(port, args.rate, args.seconds, clusterip, headless)
        if args.churn:
            churner.join(30)
        cpu = process_cpu_seconds(dns.pid) - cpu0
        wall = time.monotonic() - w0
        everything = [v for vs in rx.app.values() for v in vs]
        kernel = [v for vs in rx.kernel.values() for v in vs]
        print(
            json.dumps(
                {
                    "bench": "dns_qps",
                    "services": args.services,
                    "create_seconds": round(load_s, 2),
                    "dns_startup_seconds": round(dns_start, 2),
                    "target_rate": args.rate,
                    "slice_updates": changes.value,
                    "achieved_send_rate": round(total / send_time, 1),
                    "sent": total,
                    "answered": len(everything),
                    "lost": total - len(everything),
                    "latency": summary(everything),
                    "latency_kernel_rx": summary(kernel),
                    "by_kind": {k: summary(v) for k, v in sorted(rx.app.items())},
                    "rcodes": rx.rcodes,
                    "dns_cpu_percent_of_core": round(100 * cpu / wall, 1),
                    "dns_cpu_us_per_query": round(1e6 * cpu / max(1, len(everything)), 1),
                    "dns_rss_mb": round(proc_rss_mb(dns.pid), 1),
                    "machine": machine(),
                }
            )
        )
    finally:
        if dns is not None:
            dns.terminate()
            dns.wait(20)
        server.stop()


if __name__ == "__main__":
    main()
