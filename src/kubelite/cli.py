"""The ``kubelite`` command: ``up`` (all-in-one cluster) and ``server`` (API server alone)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from kubelite.apiserver.server import RunningServer, ServerConfig, serve

START = time.monotonic()


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
        help="state, certificates and kubeconfig (default: %(default)s → /var/lib/kubelite "
        "for root, ~/.local/share/kubelite otherwise)",
    )
    p.add_argument("--port", type=int, default=6443, help="HTTPS port of the API server (default 6443)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--datastore", default="", help="store URL (default sqlite://DATA_DIR/state.db)")
    p.add_argument("--service-cidr", default="10.96.0.0/12", help="ClusterIP range (default 10.96.0.0/12)")
    p.add_argument(
        "--tls-san", action="append", default=[], help="extra host name or IP for the serving certificate"
    )
    p.add_argument(
        "--log-level",
        default=os.environ.get("KUBELITE_LOG_LEVEL", "warning"),
        help="debug, info, warning (default) or error",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelite", description="Kubernetes, re-made in Python and kept small."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser(
        "up",
        help="run the all-in-one cluster in the foreground",
        description="Run the all-in-one cluster (API server on an embedded store) in the foreground.",
    )
    _server_args(up)
    server = sub.add_parser(
        "server",
        help="run the API server alone",
        description="Run the API server alone (for multi-process setups).",
    )
    _server_args(server)
    return parser


def _config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        data_dir=(args.data_dir or default_data_dir()).resolve(),
        port=args.port,
        bind=args.bind,
        datastore=args.datastore,
        service_cidr=args.service_cidr,
        advertise_hosts=list(args.tls_san),
    )


def _run(cfg: ServerConfig, what: str) -> int:
    async def ready(running: RunningServer) -> None:
        if what == "up":
            await start_controllers(running)
        took = time.monotonic() - START
        print(
            f"kubelite {what} ready in {took:.2f}s: https://{cfg.bind}:{cfg.port} "
            f"kubeconfig={cfg.kubeconfig_path} datastore={cfg.datastore_url.split('://')[0]}",
            flush=True,
        )
        print(f"  export KUBECONFIG={cfg.kubeconfig_path}", flush=True)

    try:
        import uvloop

        uvloop.run(serve(cfg, ready))
    except ImportError:  # pragma: no cover - uvloop is a dependency, but stay usable without it
        asyncio.run(serve(cfg, ready))
    except KeyboardInterrupt:
        pass
    return 0


async def start_controllers(running: RunningServer) -> None:
    """Inside ``kubelite up`` the controllers use the in-process client (no sockets, same semantics)."""
    from kubelite.apiserver.app import App
    from kubelite.client.base import Client
    from kubelite.client.inprocess import ASGITransport
    from kubelite.controllers.manager import ControllerManager

    ctx = running.ctx
    token = next(iter(ctx.tokens))
    client = Client(ASGITransport(App(ctx), token), user_agent="kube-controller-manager/v1.32.0")
    manager = ControllerManager(client)
    await manager.start()
    ctx.extra.setdefault("on_shutdown", []).insert(0, manager.stop)


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
    return _run(_config(args), args.command)


if __name__ == "__main__":
    sys.exit(main())
