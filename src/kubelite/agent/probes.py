"""Container probes (liveness, readiness, startup) and the actions hooks share with them.

Mirrors the kubelet's prober: an action is ``exec`` (``runtime.exec_sync``; exit 0 succeeds),
``httpGet`` (GET with ``User-Agent: kube-probe/1.32``; 200-399 succeeds; ``host``, ``path``,
``scheme``, ``httpHeaders`` honoured), or ``tcpSocket`` (a connect).  A pod without a routable IP
(no pod network plugin) is probed *inside* its network namespace: the socket is created in that
namespace from a helper thread (``setns``), then used normally.  Timing: ``initialDelaySeconds``
after the container started, then every ``periodSeconds`` (10), each attempt limited by
``timeoutSeconds`` (1); ``successThreshold`` (1) / ``failureThreshold`` (3) consecutive results flip
the state.  Readiness starts False, liveness and startup start as success/unknown; liveness and
readiness wait for the startup probe to succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubelite.agent.runtime.base import ExecResult

Obj = dict[str, Any]
CLONE_NEWNET = 0x40000000
USER_AGENT = "kube-probe/1.32"
_libc = ctypes.CDLL(None, use_errno=True)


class Execer(Protocol):
    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult: ...


@dataclass(frozen=True)
class Target:
    """Where a container's network actions go."""

    container_id: str
    pod_ip: str = ""  # "" -> 127.0.0.1 inside netns_path (or on the host with hostNetwork)
    netns_path: str = ""


def _port(value: Any, container: Obj) -> int:
    if isinstance(value, int):
        return value
    for p in container.get("ports") or []:
        if p.get("name") == value:
            return int(p.get("containerPort"))
    try:
        return int(str(value))
    except ValueError:
        raise ValueError(f"port {value!r} not found in the container's ports") from None


# --------------------------------------------------------------------------------- sockets
def _socket_in_netns(netns: str) -> socket.socket:
    """A TCP socket living in the network namespace at ``netns`` (created from this thread)."""
    if not netns:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}: {os.strerror(ctypes.get_errno())}")
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - would poison the thread
                os._exit(70)
    finally:
        os.close(own)
        os.close(target)


def _connect(target: Target, host: str, port: int, timeout: float) -> socket.socket:
    sock = _socket_in_netns("" if target.pod_ip else target.netns_path)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def tcp_check(target: Target, port: int, timeout: float, host: str = "") -> tuple[bool, str]:
    addr = host or target.pod_ip or "127.0.0.1"
    try:
        _connect(target, addr, port, timeout).close()
    except TimeoutError:
        return False, f"dial tcp {addr}:{port}: i/o timeout"
    except OSError as e:
        return False, f"dial tcp {addr}:{port}: connect: {os.strerror(e.errno or 0).lower()}"
    return True, ""


def http_check(target: Target, action: Obj, port: int, timeout: float) -> tuple[bool, str]:
    """One HTTP GET; (success, message) as the kubelet's HTTP prober words it."""
    host = str(action.get("host") or target.pod_ip or "127.0.0.1")
    scheme = str(action.get("scheme") or "HTTP").upper()
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    for h in action.get("httpHeaders") or []:
        headers[str(h.get("name"))] = str(h.get("value"))
    url = f"{scheme.lower()}://{host}:{port}{path}"
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(target, host, port, timeout)
        if scheme == "HTTPS":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=host)
        with sock:
            req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            sock.sendall(req.encode())
            head = b""
            while b"\r\n" not in head and len(head) < 8192:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        return (
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
        )
    except OSError as e:
        reason = os.strerror(e.errno).lower() if e.errno else str(e)
        return False, f'Get "{url}": dial tcp {host}:{port}: connect: {reason}'
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f'Get "{url}": malformed HTTP response'
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def run_action(
    action: Obj, container: Obj, target: Target, runtime: Execer, timeout: float
) -> tuple[bool, str]:
    """Run an ``exec``/``httpGet``/``tcpSocket`` action (probe or hook): (success, message)."""
    if action.get("exec") is not None:
        argv = [str(a) for a in (action["exec"].get("command") or [])]
        try:
            res = await runtime.exec_sync(target.container_id, argv, timeout)
        except TimeoutError:
            return False, f"command {argv!r} timed out"
        except Exception as e:  # the container is gone, runc failed
            return False, str(e)
        out = res.output.decode(errors="replace")
        if res.exit_code == 0:
            return True, out
        return False, out or f"command {argv!r} exited with {res.exit_code}"
    if action.get("httpGet") is not None:
        try:
            port = _port(action["httpGet"].get("port"), container)
        except ValueError as e:
            return False, str(e)
        return await asyncio.to_thread(http_check, target, action["httpGet"], port, timeout)
    if action.get("tcpSocket") is not None:
        try:
            port = _port(action["tcpSocket"].get("port"), container)
        except ValueError as e:
            return False, str(e)
        return await asyncio.to_thread(
            tcp_check, target, port, timeout, str(action["tcpSocket"].get("host") or "")
        )
    if action.get("sleep") is not None:
        await asyncio.sleep(min(float(action["sleep"].get("seconds") or 0), timeout))
        return True, ""
    return False, "probe has no action (exec, httpGet or tcpSocket)"


# --------------------------------------------------------------------------------- the prober
@dataclass
class ProbeState:
    kind: str  # "liveness" | "readiness" | "startup"
    spec: Obj
    ok: bool
    successes: int = 0
    failures: int = 0
    last_message: str = ""

    def record(self, ok: bool, message: str) -> bool:
        """Count one result; True when the probe's state flipped."""
        threshold_ok = int(self.spec.get("successThreshold") or 1)
        threshold_fail = int(self.spec.get("failureThreshold") or 3)
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if not self.ok and self.successes >= threshold_ok:
                self.ok = True
                return True
        else:
            self.successes, self.failures = 0, self.failures + 1
            self.last_message = message
            if self.ok and self.failures >= threshold_fail:
                self.ok = False
                return True
            if not self.ok and self.kind != "readiness" and self.failures >= threshold_fail:
                return True
        return False


@dataclass
class ContainerProber:
    """Runs one container's probes until cancelled; reports through callbacks.

    ``on_change()`` after readiness/startup flips; ``on_unhealthy(kind, message)`` for each failed
    attempt (the ``Unhealthy`` event); ``on_kill(kind, message)`` when liveness or startup reached
    its failure threshold (the container must be restarted).
    """

    container: Obj
    target: Target
    runtime: Execer
    on_change: Callable[[], None]
    on_unhealthy: Callable[[str, str], None]
    on_kill: Callable[[str, str], None]
    started_at: float = field(default_factory=time.monotonic)
    states: dict[str, ProbeState] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind, key in (
            ("startup", "startupProbe"),
            ("liveness", "livenessProbe"),
            ("readiness", "readinessProbe"),
        ):
            spec = self.container.get(key)
            if spec:
                self.states[kind] = ProbeState(kind, spec, ok=kind == "liveness")

    @property
    def started(self) -> bool:
        st = self.states.get("startup")
        return st is None or st.ok

    @property
    def ready(self) -> bool:
        st = self.states.get("readiness")
        return self.started and (st is None or st.ok)

    def start(self) -> None:
        for kind in self.states:
            self._tasks.append(asyncio.create_task(self._loop(kind), name=f"probe-{kind}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _loop(self, kind: str) -> None:
        st = self.states[kind]
        spec = st.spec
        period = max(1, int(spec.get("periodSeconds") or 10))
        timeout = max(1, int(spec.get("timeoutSeconds") or 1))
        delay = self.started_at + int(spec.get("initialDelaySeconds") or 0) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            if kind == "startup" and st.ok:
                return  # the startup probe stops once it succeeded
            if kind == "startup" or self.started:
                ok, message = await run_action(spec, self.container, self.target, self.runtime, timeout)
                if not ok:
                    self.on_unhealthy(kind, message)
                flipped = st.record(ok, message)
                if flipped and kind in ("liveness", "startup") and not ok:
                    self.on_kill(kind, message)
                    return
                if flipped:
                    self.on_change()
            await asyncio.sleep(period)
