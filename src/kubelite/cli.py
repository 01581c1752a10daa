"""The ``kubelite`` command.

``up`` runs the all-in-one cluster (API server, controllers, scheduler, simulated nodes on
request) in one process; ``server``, ``controller-manager``, ``scheduler`` and ``simulate``
run the parts separately against a kubeconfig.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kubelite.client.base import Client

if TYPE_CHECKING:  # the API server is imported only by the commands that run it (agents stay small)
    from kubelite.apiserver.server import RunningServer, ServerConfig

START = time.monotonic()
log = logging.getLogger("kubelite.cli")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# Components that ``kubelite up`` starts after the API answers, in order.  Each entry is
# "module:function" with ``async def function(client, args) -> Startable | None``
# (None: not enabled by these args).  The same functions serve the standalone commands.
UP_COMPONENTS: list[str] = [
    "kubelite.controllers.manager:component",
    "kubelite.simulator:component",
    "kubelite.scheduler:component",
    "kubelite.agent.agent:component",
    "kubelite.dns:component",
    "kubelite.demo:component",
    # -- more components above this line --
]


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kubelite")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kubelite"


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="state, certificates and kubeconfig (default /var/lib/kubelite for root, "
        "~/.local/share/kubelite otherwise)",
    )
    p.add_argument("--port", type=int, default=6443, help="HTTPS port of the API server (default 6443)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--datastore", default="", help="store URL (default sqlite://DATA_DIR/state.db)")
    p.add_argument("--service-cidr", default="10.96.0.0/12", help="ClusterIP range (default 10.96.0.0/12)")
    p.add_argument(
        "--tls-san", action="append", default=[], help="extra host name or IP for the serving certificate"
    )


def _log_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        default=os.environ.get("KUBELITE_LOG_LEVEL", "warning"),
        help="debug, info, warning (default) or error",
    )


def _controller_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node-monitor-grace-period",
        type=float,
        default=40.0,
        help="seconds without a node heartbeat before the node is marked unhealthy (default 40)",
    )
    p.add_argument(
        "--default-toleration-seconds",
        type=int,
        default=300,
        help="tolerationSeconds added for the not-ready/unreachable taints (default 300)",
    )
    p.add_argument(
        "--horizontal-pod-autoscaler-sync-period",
        type=float,
        default=15.0,
        help="seconds between HorizontalPodAutoscaler syncs (default 15)",
    )
    p.add_argument(
        "--job-backoff-base",
        type=float,
        default=10.0,
        help="seconds a failed Job pod's replacement waits, doubling per failure (default 10)",
    )
    p.add_argument(
        "--terminated-pod-gc-threshold",
        type=int,
        default=12500,
        help="terminated pods kept before the pod garbage collector deletes the oldest (default 12500)",
    )
    p.add_argument(
        "--cronjob-clock-scale", type=float, default=1.0, help=argparse.SUPPRESS
    )  # tests only: the CronJob controller's clock runs N times faster than real time
    p.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    _cluster_cidr_args(p)


def _cluster_cidr_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster-cidr",
        default="10.244.0.0/16",
        help="pod IP range; each node gets a --node-cidr-mask-size slice as spec.podCIDR "
        "(default 10.244.0.0/16)",
    )
    p.add_argument(
        "--node-cidr-mask-size",
        type=int,
        default=24,
        help="prefix length of each node's podCIDR (default 24)",
    )


def _simulator_args(p: argparse.ArgumentParser, flag: str = "--simulated-nodes") -> None:
    p.add_argument(
        flag,
        dest="simulated_nodes",
        type=int,
        default=0,
        help="register N simulated nodes (kwok-like: pods run instantly, no containers)",
    )
    p.add_argument("--simulated-node-cpu", default="4", help="CPU capacity of each simulated node")
    p.add_argument("--simulated-node-memory", default="16Gi", help="memory capacity of each simulated node")
    p.add_argument("--simulated-node-pods", type=int, default=110, help="pod capacity of each simulated node")
    p.add_argument("--simulated-zones", type=int, default=3, help="spread simulated nodes over N zones")
    p.add_argument(
        "--simulated-pod-start-delay",
        type=float,
        default=0.2,
        help="seconds from binding to Running/Ready for a simulated pod",
    )
    p.add_argument(
        "--simulated-job-duration",
        type=float,
        default=1.0,
        help="seconds a Job's simulated pod runs before it Succeeds",
    )
    p.add_argument(
        "--simulated-heartbeat",
        type=float,
        default=10.0,
        help="seconds between simulated node Lease renewals",
    )
    p.add_argument(
        "--simulated-node-taint",
        action="append",
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="taint simulated nodes (repeatable); see --simulated-tainted-nodes",
    )
    p.add_argument(
        "--simulated-tainted-nodes",
        type=int,
        default=0,
        help="put the --simulated-node-taint taints on the first N nodes only (default 0: all)",
    )
    p.add_argument(
        "--simulated-node-prefix",
        default="sim-node-",
        help="name prefix of simulated nodes (default sim-node-)",
    )
    p.add_argument(
        "--simulated-node-ephemeral-storage",
        default="100Gi",
        help="ephemeral-storage capacity of each simulated node",
    )
    p.add_argument(
        "--simulated-cleanup",
        action="store_true",
        help="delete the simulated nodes and their Leases on exit (default: keep them, like kwok)",
    )


def _kubeconfig_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig of the API server (default $KUBECONFIG)",
    )


def _agent_args(p: argparse.ArgumentParser, embedded: bool) -> None:
    if embedded:
        p.add_argument(
            "--no-agent", action="store_true", help="do not run the node agent (it runs when runc works)"
        )
        p.add_argument(
            "--demo",
            action="store_true",
            help="build the busybox demo image locally and run the volunteer-computing demo workload",
        )
    else:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="agent state: runc state, images, pod volumes and logs (default DATA_DIR/agent)",
        )
    p.add_argument("--node-name", default=None, help="the agent's Node name (default: the host name)")
    p.add_argument(
        "--agent-port",
        type=int,
        default=None,
        help="HTTPS port of the agent's endpoint for logs/exec/port-forward/stats (default 10250; "
        "when unset and 10250 is taken, an ephemeral port; 0 = always ephemeral)",
    )
    p.add_argument(
        "--crash-loop-backoff",
        type=float,
        default=10.0,
        help="initial CrashLoopBackOff delay in seconds, doubling to 5 minutes (default 10)",
    )
    p.add_argument(
        "--container-log-max-size",
        default="10Mi",
        help="rotate a container's log when it grows larger than this quantity (default 10Mi)",
    )
    p.add_argument(
        "--container-log-max-files",
        type=int,
        default=5,
        help="log files kept per container, the current one included (default 5, at least 2)",
    )
    _network_args(p, embedded)


def _network_args(p: argparse.ArgumentParser, embedded: bool) -> None:
    """Pod networking (CNI), the service proxy and cluster DNS settings of a node."""
    if not embedded:  # inside ``up`` these come from the server and controller options
        p.add_argument(
            "--service-cidr", default="10.96.0.0/12", help="ClusterIP range (default 10.96.0.0/12)"
        )
        p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod IP range (default 10.244.0.0/16)")
    p.add_argument(
        "--network",
        choices=["cni", "none"],
        default="cni",
        help="cni (default): pod IPs through the CNI plugins, the service proxy and network policies; "
        "none: every pod gets a private network namespace with loopback only",
    )
    p.add_argument(
        "--cni-bin-dir",
        default="/usr/lib/cni:/opt/cni/bin",
        help="where the CNI plugins are (colon-separated; default /usr/lib/cni:/opt/cni/bin)",
    )
    p.add_argument(
        "--cni-conf-dir",
        type=Path,
        default=None,
        help="CNI network configuration directory; the first *.conflist/*.conf is used and kubelite "
        "writes its bridge network there when it is empty (default DATA_DIR/agent/cni/net.d)",
    )
    p.add_argument("--node-ip", default=None, help="the node's InternalIP (default: the primary address)")
    p.add_argument("--bridge-name", default="kubelite0", help="the pod bridge (default kubelite0)")
    p.add_argument("--cluster-domain", default="cluster.local", help="DNS domain (default cluster.local)")
    p.add_argument(
        "--cluster-dns",
        default=None,
        help="nameserver written into pods' resolv.conf (default: the 10th address of --service-cidr)",
    )
    p.add_argument(
        "--masquerade-egress",
        action="store_true",
        help="let pods reach addresses outside the cluster (masqueraded); by default such traffic is "
        "dropped so pod traffic never leaves the machine",
    )


def _dns_args(p: argparse.ArgumentParser, embedded: bool) -> None:
    if embedded:
        p.add_argument("--no-dns", action="store_true", help="do not run the cluster DNS server")
    else:
        p.add_argument(
            "--bind-address",
            default=None,
            help="address the DNS server listens on (default: primary address)",
        )
        p.add_argument("--cluster-domain", default="cluster.local", help="DNS domain (default cluster.local)")
        p.add_argument(
            "--cluster-cidr",
            default="10.244.0.0/16",
            help="pod IP range; only pods, nodes and loopback may use the DNS server for forwarding",
        )
        p.add_argument(
            "--service-cidr", default="10.96.0.0/12", help="ClusterIP range (default 10.96.0.0/12)"
        )
    p.add_argument("--dns-port", type=int, default=53, help="port of the cluster DNS server (default 53)")
    p.add_argument(
        "--dns-upstream",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="resolver for names outside the cluster domain (repeatable; default: the host's "
        "/etc/resolv.conf nameservers)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelite", description="Kubernetes, re-made in Python and kept small."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser(
        "up",
        help="run the all-in-one cluster in the foreground",
        description="Run the all-in-one cluster in the foreground.",
    )
    _server_args(up)
    _controller_args(up)
    _simulator_args(up)
    _agent_args(up, embedded=True)
    _dns_args(up, embedded=True)
    _log_args(up)
    server = sub.add_parser(
        "server",
        help="run the API server alone",
        description="Run the API server alone (for multi-process setups).",
    )
    _server_args(server)
    _log_args(server)
    cm = sub.add_parser(
        "controller-manager",
        help="run the controllers against an API server",
        description="Run the controllers against a remote API server (with leader election).",
    )
    _kubeconfig_arg(cm)
    _controller_args(cm)
    _log_args(cm)
    sched = sub.add_parser(
        "scheduler",
        help="run the scheduler against an API server",
        description="Run the scheduler against a remote API server.",
    )
    _kubeconfig_arg(sched)
    _log_args(sched)
    sim = sub.add_parser(
        "simulate",
        help="register simulated nodes with an API server",
        description="Register simulated nodes (kwok-like) with a remote API server.",
    )
    _kubeconfig_arg(sim)
    _simulator_args(sim, "--nodes")
    _log_args(sim)
    agent = sub.add_parser(
        "agent",
        help="run the node agent (kubelet) against an API server",
        description="Run the node agent: register this machine as a Node and run its pods with runc.",
    )
    _kubeconfig_arg(agent)
    _agent_args(agent, embedded=False)
    _log_args(agent)
    dns = sub.add_parser(
        "dns",
        help="run the cluster DNS server against an API server",
        description="Serve cluster DNS (Services, pods, forwarding) and publish the kube-dns endpoints.",
    )
    _kubeconfig_arg(dns)
    _dns_args(dns, embedded=False)
    _log_args(dns)
    from kubelite.agent.images.cli import add_images_parser

    add_images_parser(sub)
    return parser


def _config(args: argparse.Namespace) -> ServerConfig:
    from kubelite.apiserver.server import ServerConfig

    return ServerConfig(
        data_dir=(args.data_dir or default_data_dir()).resolve(),
        port=args.port,
        bind=args.bind,
        datastore=args.datastore,
        service_cidr=args.service_cidr,
        advertise_hosts=list(args.tls_san),
        default_toleration_seconds=int(getattr(args, "default_toleration_seconds", 300)),
        advertise_address=_advertise_address(args),
    )


def _advertise_address(args: argparse.Namespace) -> str:
    """Where pods reach the API server (the ``kubernetes`` Service's endpoint): the bind address,
    or with a wildcard bind the node's address (127.0.0.1 would point pods at themselves)."""
    if args.bind not in ("0.0.0.0", "::"):
        return ""
    from kubelite.agent.nodeinfo import primary_ip

    return str(getattr(args, "node_ip", None) or primary_ip())


def _load(spec: str) -> Callable[[Client, argparse.Namespace], Awaitable[Startable | None]]:
    module, func = spec.split(":")
    fn: Callable[[Client, argparse.Namespace], Awaitable[Startable | None]] = getattr(
        importlib.import_module(module), func
    )
    return fn


async def start_components(client: Client, args: argparse.Namespace, specs: list[str]) -> list[Startable]:
    started: list[Startable] = []
    for spec in specs:
        comp = await _load(spec)(client, args)
        if comp is not None:
            await comp.start()
            started.append(comp)
    return started


def in_process_client(running: RunningServer, component: str) -> Client:
    """Inside ``kubelite up`` components use the in-process client (no sockets, same semantics)."""
    from kubelite.apiserver.app import App
    from kubelite.client.inprocess import ASGITransport

    ctx = running.ctx
    token = next(iter(ctx.tokens))
    return Client(ASGITransport(App(ctx), token), user_agent=f"{component}/v1.32.0")


def _run_up(cfg: ServerConfig, args: argparse.Namespace) -> int:
    async def ready(running: RunningServer) -> None:
        summary = ""
        if args.command == "up":
            client = in_process_client(running, "kubelite")
            from kubelite.simulator.metrics import active as simulated_metrics

            # metrics.k8s.io answers from the simulated nodes' usage (kubectl top, the HPA)
            running.ctx.extra.setdefault("metrics_provider", simulated_metrics)
            comps = await start_components(client, args, UP_COMPONENTS)

            async def stop_all() -> None:
                for c in reversed(comps):
                    await c.stop()

            running.ctx.extra.setdefault("on_shutdown", []).insert(0, stop_all)
            summary = f" components={len(comps)}"
            summary += "".join(str(getattr(c, "summary", "")) for c in comps)
            if args.simulated_nodes:
                summary += f" simulated-nodes={args.simulated_nodes}"
        took = time.monotonic() - START
        print(
            f"kubelite {args.command} ready in {took:.2f}s: https://{cfg.bind}:{cfg.port} "
            f"kubeconfig={cfg.kubeconfig_path} datastore={cfg.datastore_url.split('://')[0]}{summary}",
            flush=True,
        )
        print(f"  export KUBECONFIG={cfg.kubeconfig_path}", flush=True)

    from kubelite.apiserver.server import serve

    _event_loop(serve(cfg, ready))
    return 0


def _event_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        uvloop.run(main)
    except KeyboardInterrupt:
        pass


async def _run_remote(args: argparse.Namespace, specs: list[str], component: str) -> None:
    from kubelite.client.http import MAX_CONNECTIONS, HTTPTransport, load_kubeconfig

    if not args.kubeconfig:
        raise SystemExit(f"kubelite {args.command}: --kubeconfig (or $KUBECONFIG) is required")
    cfg = load_kubeconfig(Path(args.kubeconfig))
    transport = HTTPTransport(cfg, max_connections=REMOTE_POOL.get(args.command, MAX_CONNECTIONS))
    client = Client(transport, user_agent=f"{component}/v1.32.0")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    comps = await start_components(client, args, specs)
    summary = "".join(str(getattr(c, "summary", "")) for c in comps)
    print(f"kubelite {args.command} ready in {time.monotonic() - START:.2f}s{summary}", flush=True)
    await stop.wait()
    for c in reversed(comps):
        await c.stop()
    await client.close()


# Connection pools larger than the client's default: a standalone scheduler keeps many binds in
# flight (with 32 connections binding lagged pod creation at ~600 pods/s; 128 kept pace).
REMOTE_POOL = {"scheduler": 128}

REMOTE_COMMANDS = {
    "controller-manager": (["kubelite.controllers.manager:component"], "kube-controller-manager"),
    "scheduler": (["kubelite.scheduler:component"], "kube-scheduler"),
    "simulate": (["kubelite.simulator:component"], "kubelite-simulator"),
    "agent": (["kubelite.agent.agent:component"], "kubelet"),
    "dns": (["kubelite.dns:component"], "kubelite-dns"),
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
        stream=sys.stderr,
    )
    if args.command == "images":
        from kubelite.agent.images.cli import run_images

        return run_images(args)
    if args.command in REMOTE_COMMANDS:
        specs, component = REMOTE_COMMANDS[args.command]
        _event_loop(_run_remote(args, specs, component))
        return 0
    return _run_up(_config(args), args)


if __name__ == "__main__":
    sys.exit(main())
