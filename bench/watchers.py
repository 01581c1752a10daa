"""N concurrent pod watchers on a real `kubelite up` while pods change at a steady rate.

``--watchers`` HTTPS streaming watches (``GET /api/v1/pods?watch=true&resourceVersion=R``)
are spread over ``--procs`` client processes (asyncio, uvloop, raw TLS sockets, no JSON
parsing: each event is recognised by a regular expression on the stream).  A writer process
then changes ``--rate`` pods per second for ``--seconds`` seconds over one keep-alive HTTPS
connection, cycling create -> label patch -> delete, so every event (ADDED, MODIFIED,
DELETED) has a unique identity.  The writer records when each write's response completed;
each watcher records when it received the event.  Delivery latency = receipt - completion
(CLOCK_MONOTONIC is shared by all processes; an event can arrive before the writer has
read its response, which counts as 0).

Usage: python bench/watchers.py [--watchers 1000] [--procs 4] [--rate 100] [--seconds 20]
Prints one JSON line: events written, deliveries expected/received, missing, latency
percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import re
import ssl
import time
from typing import Any

import orjson
from common import machine, percentile, pod, start_server

EVENT_RE = re.compile(rb'\{"type":"(ADDED|MODIFIED|DELETED)","object":\{.{0,120}?"name":"(wb\d*-\d+)"')
NAMESPACE = "default"


# ---------------------------------------------------------------------------- watchers


class WatchProtocol(asyncio.Protocol):
    """One watch stream: remembers (type, name) -> receipt time for every event seen."""

    def __init__(self, request: bytes, seen: dict[tuple[bytes, bytes], float], ready: asyncio.Event) -> None:
        self.request = request
        self.seen = seen
        self.ready = ready
        self.buf = b""
        self.headers_done = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf + data
        if not self.headers_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"watch failed: {buf[:200]!r}")
            self.headers_done = True
            self.ready.set()
            buf = buf[end + 4 :]
        cut = buf.rfind(b"\n")
        if cut < 0:
            self.buf = buf
            return
        # one event per line; its type and name are near the start of the line: match there
        # instead of scanning every byte (the watchers share the server's two cores)
        seen = self.seen
        for line in buf[:cut].split(b"\n"):
            m = EVENT_RE.match(line, 0, 256)
            if m is not None:
                seen.setdefault((m.group(1), m.group(2)), now)
        self.buf = buf[cut + 1 :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run_watchers(
    count: int, port: int, token: str, ca: str, rv: str, go: Any, stop: Any
) -> list[dict[tuple[bytes, bytes], float]]:
    ctx = ssl.create_default_context(cafile=ca)
    path = f"/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=3600"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\nUser-Agent: bench-watchers\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    seens: list[dict[tuple[bytes, bytes], float]] = []
    transports = []
    for _ in range(count):
        seen: dict[tuple[bytes, bytes], float] = {}
        ready = asyncio.Event()
        transport, _proto = await loop.create_connection(
            lambda seen=seen, ready=ready: WatchProtocol(request, seen, ready),  # type: ignore[misc]
            "127.0.0.1",
            port,
            ssl=ctx,
        )
        await ready.wait()
        transports.append(transport)
        seens.append(seen)
    go.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for t in transports:
        t.close()
    return seens


def watcher_proc(count: int, port: int, token: str, ca: str, rv: str, go: Any, stop: Any, q: Any) -> None:
    import uvloop

    seens = uvloop.run(run_watchers(count, port, token, ca, rv, go, stop))
    q.put([{(t.decode(), n.decode()): ts for (t, n), ts in s.items()} for s in seens])


# ---------------------------------------------------------------------------- writer


def writer_proc(port: int, token: str, ca: str, rate: float, seconds: float, q: Any, tag: str = "") -> None:
    """create wb-i, then patch wb-(i-1) and delete wb-(i-2) in turn: rate writes per second."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/namespaces/{NAMESPACE}/pods"
    done: dict[tuple[str, str], float] = {}
    lat: list[float] = []
    total = int(rate * seconds)
    start = time.monotonic()
    created = patched = deleted = 0
    for n in range(total):
        target = start + n / rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        step = n % 3
        if step == 0 or patched >= created:
            name, typ = f"wb{tag}-{created:06d}", "ADDED"
            req: tuple[str, str, bytes, dict[str, str]] = (
                "POST",
                base,
                orjson.dumps(pod(name)),
                {**auth, "Content-Type": "application/json"},
            )
            created += 1
        elif step == 1 or deleted >= patched:
            name, typ = f"wb{tag}-{patched:06d}", "MODIFIED"
            body = orjson.dumps({"metadata": {"labels": {"changed": "yes"}}})
            req = ("PATCH", f"{base}/{name}", body, {**auth, "Content-Type": "application/merge-patch+json"})
            patched += 1
        else:
            name, typ = f"wb{tag}-{deleted:06d}", "DELETED"
            req = ("DELETE", f"{base}/{name}", b"", auth)
            deleted += 1
        t0 = time.monotonic()
        conn.request(req[0], req[1], req[2], req[3])
        resp = conn.getresponse()
        resp.read()
        t1 = time.monotonic()
        if resp.status >= 300:
            raise RuntimeError(f"{req[0]} {req[1]}: {resp.status}")
        lat.append(t1 - t0)
        done[(typ, name)] = t1
    q.put((done, lat, time.monotonic() - start))


# ---------------------------------------------------------------------------- main


def current_rv(port: int, token: str, ca: str) -> str:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
    conn.request("GET", "/api/v1/pods?limit=1", headers={"Authorization": f"Bearer {token}"})
    doc = json.loads(conn.getresponse().read())
    return str(doc["metadata"]["resourceVersion"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument(
        "--writers",
        type=int,
        default=1,
        help="writer processes sharing the rate, one keep-alive connection each (1: a single "
        "sequential client, whose rate drops when the server answers slowly)",
    )
    ap.add_argument("--drain", type=float, default=3.0, help="seconds to wait for late events")
    ap.add_argument(
        "--server-args",
        default="--no-scheduler",
        help="extra arguments of kubelite up (default --no-scheduler: with no nodes the scheduler "
        "would write a status update and an Event for every pod)",
    )
    args = ap.parse_args()
    srv = start_server(None, *args.server_args.split())
    try:
        rv = current_rv(srv.port, srv.token, srv.ca)
        q: Any = mp.Queue()
        stop = mp.Event()
        gos = [mp.Event() for _ in range(args.procs)]
        per = [
            args.watchers // args.procs + (1 if i < args.watchers % args.procs else 0)
            for i in range(args.procs)
        ]
        procs = [
            mp.Process(target=watcher_proc, args=(per[i], srv.port, srv.token, srv.ca, rv, gos[i], stop, q))
            for i in range(args.procs)
        ]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        for go, p in zip(gos, procs, strict=True):
            while not go.wait(0.5):
                if not p.is_alive() or time.monotonic() - t0 > 120:
                    raise RuntimeError("watchers did not connect")
        connect_s = time.monotonic() - t0
        rss_watching = srv.rss_mb()
        cpu0 = srv.cpu_times()
        wq: Any = mp.Queue()
        writers = [
            mp.Process(
                target=writer_proc,
                args=(srv.port, srv.token, srv.ca, args.rate / args.writers, args.seconds, wq, f"{k}"),
            )
            for k in range(args.writers)
        ]
        for w in writers:
            w.start()
        done, write_lat, write_wall = {}, [], 0.0
        for _ in writers:
            d, lat, wall = wq.get()
            done.update(d)
            write_lat.extend(lat)
            write_wall = max(write_wall, wall)
        for w in writers:
            w.join()
        cpu1 = srv.cpu_times()
        cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
        time.sleep(args.drain)
        stop.set()
        results: list[dict[tuple[str, str], float]] = []
        for _ in procs:
            results.extend(q.get())
        for p in procs:
            p.join()
    finally:
        srv.stop()
    latencies: list[float] = []
    missing = 0
    complete = 0
    for seen in results:
        got = 0
        for key, t_done in done.items():
            t_recv = seen.get(key)
            if t_recv is None:
                missing += 1
                continue
            got += 1
            latencies.append(max(0.0, t_recv - t_done))
        complete += got == len(done)
    print(
        json.dumps(
            {
                "bench": "watchers",
                "command": f"kubelite up {args.server_args}",
                "watchers": len(results),
                "writers": args.writers,
                "connect_s": round(connect_s, 2),
                "events_written": len(done),
                "write_rate_per_s": round(len(done) / write_wall, 1),
                "write_p99_ms": round(percentile(write_lat, 99) * 1000, 2),
                "deliveries": len(latencies),
                "missing": missing,
                "watchers_with_every_event": complete,
                "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                "max_ms": round(max(latencies, default=0) * 1000, 2),
                "server_cpu_user_s": round(cpu[0], 2),
                "server_cpu_system_s": round(cpu[1], 2),
                "server_cpu_us_per_delivery": round(sum(cpu) / max(1, len(latencies)) * 1e6, 1),
                "server_rss_mb_watching": round(rss_watching, 1),
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
