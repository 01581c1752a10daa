"""API-server CPU per write, for the writes simulated nodes, the scheduler and controllers make.

Against the API server alone (``kubelite server``, or the same server code in this process
with ``--mode inprocess``), after a warm-up (a few of each write, unmeasured), one operation
at a time for every object, ``--concurrency`` requests in flight:

- ``pod_create``: POST a pod (bench/common.py's pod: one container, requests, a port, env);
- ``pod_bind``: POST ``pods/NAME/binding`` (the scheduler's bind);
- ``pod_status_patch``: merge PATCH of ``pods/NAME/status`` with the whole Running status,
  guarded by resourceVersion (what the simulator writes when a pod starts);
- ``pod_status_put``: PUT ``pods/NAME/status`` of the whole pod with Ready toggled (how
  controllers write status);
- ``lease_put``: PUT of a whole node Lease with a new renewTime (kubelet's renewal, as the
  simulator sends it: no resourceVersion, ``fieldValidation=Ignore``), ``--rounds`` times.

Per operation it reports server CPU µs per op (user+system of the server process, all
threads: the sqlite writer included; split by thread name in ``inprocess`` mode), client
CPU µs per op (this process; in ``https`` mode: the HTTP client's cost) and ops/s.
``--mode inprocess`` runs the server's ASGI app in this process through the in-process
transport (as inside ``kubelite up``): there the one CPU figure is server plus the (thin)
in-process client.  Prints one JSON line.  ``--pyspy FILE`` samples the server with py-spy
(raw format) during the pod writes, or during the Lease writes with ``--pyspy-op lease_put``.

Usage: python bench/write_cost.py [--mode https|inprocess] [--objects 2000] [--concurrency 32]
       [--rounds 3] [--pyspy FILE --pyspy-op lease_put]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
from common import machine, pod, start_server

from kubelite.client.base import Client, Resource
from kubelite.simulator.podstatus import running_status

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
NS = "default"
LEASE_NS = "kube-node-lease"
UA = "kubelet/v1.32.0 (linux/amd64) kubernetes"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (``comm``: the event loop's thread is the process name)."""
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    # in this process Python's thread names are known (the OS only knows "python")
    names = {t.native_id: t.name for t in threading.enumerate()} if pid == os.getpid() else {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = names.get(int(task.name)) or stat[stat.index("(") + 1 : stat.rindex(")")]
        name = name.split("_")[0]  # kubelite-store-reader_0 and _1 together
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def lease(name: str, renew: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NS},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
    }


def micro_now(i: int) -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{(int(t * 1e6) + i) % 1000000:06d}Z"


class Bench:
    def __init__(
        self, client: Client, server_cpu: Callable[[], float], concurrency: int, server_pid: int
    ) -> None:
        self.client = client
        self.server_cpu = server_cpu
        self.server_pid = server_pid
        self.concurrency = concurrency
        self.results: dict[str, Obj] = {}

    async def run(self, op: str, calls: list[Callable[[], Awaitable[Any]]]) -> None:
        """Run ``calls`` with ``concurrency`` in flight; record CPU per call."""
        it = iter(calls)

        async def worker() -> None:
            for call in it:
                await call()

        th0 = thread_cpu(self.server_pid)
        s0, c0, t0 = self.server_cpu(), own_cpu(), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        s1, c1, t1 = self.server_cpu(), own_cpu(), time.monotonic()
        th1 = thread_cpu(self.server_pid)
        n = len(calls)
        self.results[op] = {
            "ops": n,
            "server_us_per_op": round((s1 - s0) / n * 1e6, 1),
            "client_us_per_op": round((c1 - c0) / n * 1e6, 1),
            "ops_per_s": round(n / (t1 - t0), 1),
            "server_threads_us_per_op": {
                k: round((v - th0.get(k, 0.0)) / n * 1e6, 1) for k, v in th1.items() if v > th0.get(k, 0.0)
            },
        }
        print(f"  {op}: {self.results[op]}", flush=True)


async def pods_by_name(client: Client) -> dict[str, Obj]:
    page = await client.list(PODS, NS, label_selector="app=bench")
    return {p["metadata"]["name"]: p for p in page["items"] if p["metadata"]["name"].startswith("wc-")}


async def bench_pods(b: Bench, n: int) -> None:
    c = b.client
    names = [f"wc-{i:06d}" for i in range(n)]

    def create(name: str) -> Callable[[], Awaitable[Any]]:
        return lambda: c.create(PODS, NS, pod(name))

    await b.run("pod_create", [create(x) for x in names])

    def bind(i: int, name: str) -> Callable[[], Awaitable[Any]]:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": NS},
            "target": {"apiVersion": "v1", "kind": "Node", "name": f"node-{i % 100}"},
        }
        return lambda: c.create(PODS, NS, body, subresource="binding", name=name)

    await b.run("pod_bind", [bind(i, x) for i, x in enumerate(names)])
    pods = await pods_by_name(c)

    def patch(i: int, p: Obj) -> Callable[[], Awaitable[Any]]:
        status = running_status(p, f"10.0.{i % 100}.1", f"10.244.{i // 250}.{i % 250 + 1}", micro_now(i))
        body = {"metadata": {"resourceVersion": p["metadata"]["resourceVersion"]}, "status": status}
        return lambda: c.patch(PODS, NS, p["metadata"]["name"], body, subresource="status")

    await b.run("pod_status_patch", [patch(i, pods[x]) for i, x in enumerate(names)])
    pods = await pods_by_name(c)

    def put(p: Obj) -> Callable[[], Awaitable[Any]]:
        for cond in p["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond["status"] = "False"
        return lambda: c.update(PODS, NS, p, subresource="status")

    await b.run("pod_status_put", [put(pods[x]) for x in names])


async def bench_leases(b: Bench, n: int, rounds: int) -> None:
    c = b.client
    names = [f"node-{i:05d}" for i in range(n)]

    rvs: dict[str, str] = {}  # the resourceVersion each renewal carries, as kubelet's does

    def create(name: str) -> Callable[[], Awaitable[Any]]:
        async def go() -> None:
            rvs[name] = (await c.create(LEASES, LEASE_NS, lease(name, micro_now(0))))["metadata"][
                "resourceVersion"
            ]

        return go

    await b.run("lease_create", [create(x) for x in names])

    def renew(i: int, name: str) -> Callable[[], Awaitable[Any]]:
        path = f"{LEASES.path(LEASE_NS, name)}?fieldValidation=Ignore"

        async def go() -> None:
            body = lease(name, micro_now(i))
            body["metadata"]["resourceVersion"] = rvs[name]
            rvs[name] = orjson.loads(await c.send("PUT", path, body))["metadata"]["resourceVersion"]

        return go

    calls = [renew(i, x) for _ in range(rounds) for i, x in enumerate(names)]
    await b.run("lease_put", calls)


def pyspy(pid: int, out: str, seconds: int, gil: bool) -> subprocess.Popen[bytes]:
    cmd = ["py-spy", "record", "--pid", str(pid), "-r", "50", "-d", str(seconds)]
    cmd += ["-f", "raw", "-o", out, "--nonblocking", *(["--gil"] if gil else [])]
    exe = shutil.which("py-spy") or "/work/venv/bin/py-spy"
    return subprocess.Popen([exe, *cmd[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run_https(args: argparse.Namespace) -> Obj:
    from kubelite.client.http import HTTPTransport, load_kubeconfig

    srv = start_server(None, command="server")
    try:
        cfg = load_kubeconfig(srv.data_dir / "kubeconfig.yaml")
        client = Client(HTTPTransport(cfg), user_agent=UA)
        b = Bench(client, srv.cpu_seconds, args.concurrency, srv.proc.pid)
        await measure(b, args, srv.proc.pid)
        await client.close()
        return b.results
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


async def run_inprocess(args: argparse.Namespace) -> Obj:
    from kubelite import gctuning
    from kubelite.apiserver.app import App
    from kubelite.apiserver.server import ServerConfig, build_context
    from kubelite.client.inprocess import ASGITransport
    from kubelite.store import open_store

    data = Path(tempfile.mkdtemp(prefix="kubelite-wc-"))
    try:
        store = open_store(f"sqlite://{data / 'state.db'}")
        await store.start()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(store.close)
            ctx, crds = await build_context(store, ServerConfig(data_dir=data), {"t0ken": "admin"})
            stack.push_async_callback(crds.stop)
            gctuning.freeze_startup_objects()
            client = Client(ASGITransport(App(ctx), "t0ken"), user_agent=UA)
            b = Bench(client, own_cpu, args.concurrency, os.getpid())
            await measure(b, args, os.getpid())
            return b.results
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def warm_up(client: Client) -> None:
    """One of each write first, unmeasured: the server's one-time work (schema compilation,
    caches, imports) is not charged to the first operation measured."""
    names = [f"warm-{i}" for i in range(8)]
    for name in names:
        await client.create(PODS, NS, pod(name))
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": NS}}
        body["target"] = {"apiVersion": "v1", "kind": "Node", "name": "node-0"}
        await client.create(PODS, NS, body, subresource="binding", name=name)
        current = await client.get(PODS, NS, name)
        status = running_status(current, "10.0.0.1", "10.244.0.1", micro_now(0))
        patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "status": status}
        updated = await client.patch(PODS, NS, name, patch, subresource="status")
        await client.update(PODS, NS, updated, subresource="status")
        made = await client.create(LEASES, LEASE_NS, lease(name, micro_now(0)))
        renewal = lease(name, micro_now(1))
        renewal["metadata"]["resourceVersion"] = made["metadata"]["resourceVersion"]
        await client.send("PUT", f"{LEASES.path(LEASE_NS, name)}?fieldValidation=Ignore", renewal)


async def measure(b: Bench, args: argparse.Namespace, pid: int) -> None:
    await warm_up(b.client)
    spy = None
    if args.pyspy and args.pyspy_op != "lease_put":
        spy = pyspy(pid, args.pyspy, args.pyspy_seconds, args.pyspy_gil)
    await bench_pods(b, args.objects)
    if spy is not None:
        spy.wait()
    elif args.pyspy:
        spy = pyspy(pid, args.pyspy, args.pyspy_seconds, args.pyspy_gil)
    await bench_leases(b, args.objects, args.rounds)
    if spy is not None:
        spy.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("https", "inprocess"), default="https")
    p.add_argument("--objects", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="Lease renewals per Lease")
    p.add_argument("--pyspy", default="", help="py-spy raw profile of the server to FILE")
    p.add_argument("--pyspy-op", default="pods", choices=("pods", "lease_put"))
    p.add_argument("--pyspy-seconds", type=int, default=10)
    p.add_argument("--pyspy-gil", action="store_true", help="sample only the thread holding the GIL")
    args = p.parse_args()
    import uvloop  # as the kubelite processes run

    results = uvloop.run(run_https(args) if args.mode == "https" else run_inprocess(args))
    out = {"bench": "write_cost", "mode": args.mode, "concurrency": args.concurrency, "ops": results}
    out["machine"] = machine()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
