"""Pod-to-pod TCP throughput through a ClusterIP versus directly by pod IP (issue 5, target >= 0.9).

Starts ``kubelite up`` (real runc, CNI bridge, nftables Service proxy) inside a network namespace
created for the run (the machine's own network is never touched), runs two busybox pods on the
node (``server`` behind a ClusterIP Service ``sink`` port 80 -> 5001, and ``client``), then sends
``--size`` bytes from the client pod to the server pod, alternately to the pod IP and to the
ClusterIP, ``--rounds`` times each, and reports the median rates and their ratio.

The sockets live in the pods' network namespaces (entered through ``/proc/<container pid>/ns/net``)
but are driven by Python rather than busybox ``nc``: busybox's small ``nc`` copies 1 KiB per
system call and would measure itself rather than the network path (veth, bridge, routing,
conntrack and the proxy's DNAT).  The receiver runs as its own process so the two ends use both
cores; both are pinned (sender CPU 0, receiver CPU 1, ``--no-pin`` to turn off) so that both paths
get the same placement: unpinned, the scheduler's choices on a 2-core machine move single runs by
2x.  Each transfer is timed from connect to the receiver's close after it read everything, and the
two paths alternate (ABBA) so a drifting background load hits both alike.

Usage (as root, runc, CNI plugins and nft installed)::

    python bench/net_throughput.py [--size-mb 2048] [--rounds 8] [--no-pin]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.netns_helpers import (
    Api,
    create_host,
    finish,
    force_cleanup,
    pod_netns,
    service,
    sleeper,
    socket_in,
    start_cluster_in,
    wait_for,
    wait_ready,
)

NS = "bench-net"
PORT = 5001
CHUNK = 1 << 20
RECEIVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    with c:
        while c.recv_into(buf):
            pass
"""


PIN = True


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if PIN else []


def transfer(client_ns: str, host: str, port: int, size: int) -> float:
    """Send ``size`` bytes to host:port from inside ``client_ns``; bytes per second."""
    data = memoryview(bytes(CHUNK))
    with socket_in(client_ns) as s:
        s.settimeout(60)
        t0 = time.perf_counter()
        s.connect((host, port))
        left = size
        while left > 0:
            n = min(left, CHUNK)
            s.sendall(data[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        while s.recv(1024):  # the receiver closes once it has read everything
            pass
        return size / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=2048, help="bytes sent per transfer, in MiB (default 2048)")
    p.add_argument("--rounds", type=int, default=8, help="transfers per path (default 8)")
    p.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin sender/receiver to CPUs 0 and 1"
    )
    args = p.parse_args()
    size = args.size_mb << 20
    global PIN
    PIN = args.pin and (os.cpu_count() or 1) >= 2

    host = create_host()
    data = Path(tempfile.mkdtemp(prefix="kubelite-bench-net-"))
    receiver: subprocess.Popen[str] | None = None
    try:
        cluster = start_cluster_in(host, data, "--no-dns")
        try:
            api = Api(cluster)
            cluster.kubectl("create", "namespace", NS)
            cluster.apply(sleeper("server", NS, {"role": "server"}))
            cluster.apply(sleeper("client", NS, {"role": "client"}))
            svc = service("sink", NS, {"role": "server"})
            svc["spec"]["ports"][0]["targetPort"] = PORT
            cluster.apply(svc)
            server = wait_ready(api, NS, "role=server", 1)[0]
            client = wait_ready(api, NS, "role=client", 1)[0]
            pod_ip = server["status"]["podIP"]
            vip = api.get(f"/api/v1/namespaces/{NS}/services/sink")["spec"]["clusterIP"]
            wait_for(lambda: pod_ip in api.ready_endpoints(NS, "sink"), 30, "the Service's endpoint")
            server_ns = pod_netns(data / "agent", server)
            client_ns = pod_netns(data / "agent", client)
            receiver = subprocess.Popen(
                ["nsenter", f"--net={server_ns}", "--", *_pin(1), sys.executable, "-c", RECEIVER, str(PORT)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert receiver.stdout is not None and receiver.stdout.readline().strip() == "listening"
            wait_for(lambda: _try(client_ns, vip, 80), 30, f"{vip}:80 reaches the server pod")
            if PIN:  # sender on CPU 0, receiver on CPU 1: both paths get the same placement
                os.sched_setaffinity(0, {0})
            transfer(client_ns, pod_ip, PORT, 64 << 20)  # warm-up
            rates: dict[str, list[float]] = {"pod IP": [], "ClusterIP": []}
            targets = {"pod IP": (pod_ip, PORT), "ClusterIP": (vip, 80)}
            for i in range(args.rounds):  # ABBA order, so a drifting background load cancels out
                for path in list(targets) if i % 2 == 0 else reversed(list(targets)):
                    rates[path].append(transfer(client_ns, *targets[path], size))
        finally:
            if receiver is not None:
                receiver.kill()
                receiver.wait(5)
            finish(cluster)
    finally:
        force_cleanup(data / "agent")
        host.delete()
        shutil.rmtree(data, ignore_errors=True)

    _report(rates, args, pod_ip, vip)
    return 0


def _try(ns: str, host: str, port: int) -> bool:
    try:
        return transfer(ns, host, port, 1 << 20) > 0
    except OSError:
        return False


def _report(rates: dict[str, list[float]], args: argparse.Namespace, pod_ip: str, vip: str) -> None:
    """Medians and bests per path; the headline ratio is the median of the per-round ratios
    (each round's two transfers ran back to back, so they saw about the same background load)."""
    pin = "" if args.pin else " --no-pin"
    print(f"command: python bench/net_throughput.py --size-mb {args.size_mb} --rounds {args.rounds}{pin}")
    print(f"{args.size_mb} MiB per transfer, client pod -> server pod ({pod_ip}; ClusterIP {vip}:80)")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    med, best = {}, {}
    for path, values in rates.items():
        med[path], best[path] = statistics.median(values), max(values)
        runs = " ".join(f"{v * 8 / 1e9:.2f}" for v in values)
        print(
            f"  {path:10} median {med[path] * 8 / 1e9:6.2f} Gbit/s, best {best[path] * 8 / 1e9:6.2f}"
            f"  (runs: {runs})"
        )
    paired = statistics.median(c / d for c, d in zip(rates["ClusterIP"], rates["pod IP"], strict=True))
    print(
        f"ratio ClusterIP / pod IP: {paired:.3f} median of per-round ratios (target >= 0.9); "
        f"medians {med['ClusterIP'] / med['pod IP']:.3f}, bests {best['ClusterIP'] / best['pod IP']:.3f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
