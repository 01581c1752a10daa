"""Resource usage for ``/stats/summary`` (the kubelet Summary API subset metrics-server reads)
and ``/metrics`` (Prometheus text).

CPU usage is a rate: cumulative CPU time (cgroup ``cpuacct.usage``, ``/proc/stat`` for the node)
sampled twice; the agent keeps the previous sample per container so a request normally needs no
wait, and samples twice 250 ms apart for containers it has not seen yet.  Memory is the working
set (usage minus inactive file pages), as the kubelet reports it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Any

from kubelite.agent.streams.targets import NodeAgent

Obj = dict[str, Any]
MIN_WINDOW = 0.2
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    cpu_ns: int
    memory: int


def node_sample() -> Sample:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    ticks = [int(x) for x in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # minus idle and iowait
    mem: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            mem[key] = int(rest.split()[0]) * 1024
    used = mem.get("MemTotal", 0) - mem.get("MemAvailable", mem.get("MemFree", 0))
    return Sample(time.monotonic(), busy * 1_000_000_000 // _CLK_TCK, used)


class UsageMeter:
    """Turns cumulative CPU samples into nanocores, remembering the last sample per key."""

    def __init__(self) -> None:
        self.last: dict[str, Sample] = {}

    def needs_second_sample(self, key: str, now: float) -> bool:
        prev = self.last.get(key)
        return prev is None or now - prev.at < MIN_WINDOW

    def rate(self, key: str, cur: Sample) -> int:
        prev = self.last.get(key)
        if prev is None or cur.at - prev.at < MIN_WINDOW / 4 or cur.cpu_ns < prev.cpu_ns:
            self.last[key] = cur
            return 0
        nanocores = int((cur.cpu_ns - prev.cpu_ns) / (cur.at - prev.at))
        if cur.at - prev.at >= MIN_WINDOW:
            self.last[key] = cur
        return nanocores


def _rfc3339(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _container_samples(agent: NodeAgent) -> dict[tuple[str, str, str], tuple[Obj, Sample]]:
    """(namespace, pod, container) -> (pod, sample) for every running container on the node."""
    out: dict[tuple[str, str, str], tuple[Obj, Sample]] = {}
    for pod in list(agent.informer.list()):
        meta = pod.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        for c in (pod.get("spec") or {}).get("containers") or []:
            found = agent.container_for(ns, name, str(c["name"]))
            if found is None:
                continue
            runtime, cid, _, _ = found
            try:
                st = await runtime.stats(cid)
            except Exception:
                st = None
            if st is not None:
                out[(ns, name, str(c["name"]))] = (
                    pod,
                    Sample(time.monotonic(), st.cpu_usage_ns, st.memory_working_set_bytes),
                )
    return out


class StatsCollector:
    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent
        self.meter = UsageMeter()
        self.lock = asyncio.Lock()

    async def summary(self) -> Obj:
        async with self.lock:
            now = time.monotonic()
            samples = await _container_samples(self.agent)
            node = await asyncio.to_thread(node_sample)
            keys = ["node", *("/".join(k) for k in samples)]
            if any(self.meter.needs_second_sample(k, now) for k in keys):
                for k, (_, s) in samples.items():
                    self.meter.rate("/".join(k), s)
                self.meter.rate("node", node)
                await asyncio.sleep(MIN_WINDOW + 0.05)
                samples = await _container_samples(self.agent)
                node = await asyncio.to_thread(node_sample)
            return self._build(samples, node)

    def _build(self, samples: dict[tuple[str, str, str], tuple[Obj, Sample]], node: Sample) -> Obj:
        stamp = _rfc3339(dt.datetime.now(dt.UTC))
        pods: dict[tuple[str, str], Obj] = {}
        for (ns, name, cname), (pod, s) in samples.items():
            entry = pods.setdefault(
                (ns, name),
                {
                    "podRef": {"name": name, "namespace": ns, "uid": pod["metadata"].get("uid", "")},
                    "startTime": (pod.get("status") or {}).get("startTime"),
                    "containers": [],
                },
            )
            entry["containers"].append(
                {"name": cname, **_usage(stamp, self.meter.rate(f"{ns}/{name}/{cname}", s), s)}
            )
        for entry in pods.values():
            cpu = sum(c["cpu"]["usageNanoCores"] for c in entry["containers"])
            mem = sum(c["memory"]["workingSetBytes"] for c in entry["containers"])
            entry["cpu"] = {"time": stamp, "usageNanoCores": cpu}
            entry["memory"] = {"time": stamp, "workingSetBytes": mem}
        return {
            "node": {"nodeName": self.agent.node_name, **_usage(stamp, self.meter.rate("node", node), node)},
            "pods": list(pods.values()),
        }


def _usage(stamp: str, nanocores: int, s: Sample) -> Obj:
    return {
        "cpu": {"time": stamp, "usageNanoCores": nanocores, "usageCoreNanoSeconds": s.cpu_ns},
        "memory": {"time": stamp, "workingSetBytes": s.memory},
    }


def prometheus(summary: Obj) -> bytes:
    """The resource metrics in Prometheus text format (names as the kubelet's /metrics/resource)."""
    lines = [
        "# HELP node_cpu_usage_seconds_total Cumulative cpu time consumed by the node in core-seconds",
        "# TYPE node_cpu_usage_seconds_total counter",
        f"node_cpu_usage_seconds_total {summary['node']['cpu']['usageCoreNanoSeconds'] / 1e9}",
        "# HELP node_memory_working_set_bytes Current working set of the node in bytes",
        "# TYPE node_memory_working_set_bytes gauge",
        f"node_memory_working_set_bytes {summary['node']['memory']['workingSetBytes']}",
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed by the container",
        "# TYPE container_cpu_usage_seconds_total counter",
    ]
    mem = [
        "# HELP container_memory_working_set_bytes Current working set of the container in bytes",
        "# TYPE container_memory_working_set_bytes gauge",
    ]
    for pod in summary["pods"]:
        ref = pod["podRef"]
        for c in pod["containers"]:
            labels = f'container="{c["name"]}",namespace="{ref["namespace"]}",pod="{ref["name"]}"'
            lines.append(
                f"container_cpu_usage_seconds_total{{{labels}}} {c['cpu']['usageCoreNanoSeconds'] / 1e9}"
            )
            mem.append(f"container_memory_working_set_bytes{{{labels}}} {c['memory']['workingSetBytes']}")
    lines += mem
    lines += [
        "# HELP kubelite_agent_running_pods Pods with at least one running container",
        "# TYPE kubelite_agent_running_pods gauge",
        f"kubelite_agent_running_pods {len(summary['pods'])}",
    ]
    return ("\n".join(lines) + "\n").encode()
