"""The real container runtime: runc as root, one supervisor (``shim.py``) per container, forked by
a per-agent zygote (:class:`ShimZygote`) rather than started as a new interpreter each time.

Layout under the agent's data dir (``root``)::

    runc/                       runc --root (never /run/runc)
    sandboxes/<sid>/            pod namespaces and /etc files (see sandbox.py)
    containers/<cid>/           the OCI bundle: config.json, rootfs (overlay), upper/, work/, pid,
                                meta.json (who it is), state.json (pid, start time; by the shim),
                                exit.json (exit code, OOM, finish time; by the shim), runc.log,
                                termination-log, container.log unless the agent names a log path

Container ids are ``<sandbox id>-<container name>-<attempt>`` so a restarted agent recomputes them,
and every fact lives in those files, so adoption is just reading them: the supervisors keep running
while the agent is away and record exit codes themselves (runtime-notes §5.3, approach A: the shim
runs ``runc run --keep`` in the foreground).  Logs are CRI-format lines with timestamps, rotated
by the supervisor like the kubelet's ``containerLogMaxSize`` / ``containerLogMaxFiles``.
Resources go to cgroup v1 via ``linux.resources`` with a relative ``cgroupsPath``
``<cgroup parent>/<cid>``; the pod parents are removed with the sandbox.  OOM kills are read from
``memory.oom_control`` before ``runc delete``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubelite.agent.runtime import cgroups
from kubelite.agent.runtime.base import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    Sandbox,
    SandboxConfig,
)
from kubelite.agent.runtime.bundle import BundleSpec, config_json
from kubelite.agent.runtime.exec_session import RuncExecSession
from kubelite.agent.runtime.sandbox import NetworkSetup, NetworkTeardown, SandboxManager, cgroup_parent
from kubelite.agent.runtime.util import read_json, run_cmd, umount, write_json

SHIM = Path(__file__).with_name("shim.py")
CONTAINER_LOG_MAX_SIZE = 10 * 1024 * 1024  # the kubelet's containerLogMaxSize default (10Mi)
CONTAINER_LOG_MAX_FILES = 5  # the kubelet's containerLogMaxFiles default
MAX_ID = 64
TERMINATION_MESSAGE_LIMIT = 4096
_libc = ctypes.CDLL(None, use_errno=True)


def container_id(sandbox_id: str, name: str, attempt: int) -> str:
    """``<sandbox>-<name>-<attempt>``, at most 64 characters (long names get a short hash)."""
    cid = f"{sandbox_id}-{name}-{attempt}"
    if len(cid) <= MAX_ID:
        return cid
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = MAX_ID - len(sandbox_id) - len(str(attempt)) - len(digest) - 3
    return f"{sandbox_id}-{name[:room]}{digest}-{attempt}"


def remove_log_files(log: Path) -> None:
    """``log`` and its rotated files (``<log>.<timestamp>[.gz]``, see the supervisor's LogWriter)."""
    for p in [log, *log.parent.glob(log.name + ".*")]:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


class ZygoteUnavailableError(Exception):
    """The request never reached a zygote (it could not be started or had just died)."""


class ZygoteGoneError(Exception):
    """The zygote died with the request in flight."""


_EXITING_ZYGOTES: set[subprocess.Popen[bytes]] = set()  # closed, reaped once they have exited


class ShimZygote:
    """The agent's end of ``shim.py --zygote``: requests (JSON lines) go to its stdin, the forked
    supervisors' replies come back on its stdout, matched by request id.  One zygote per runtime
    and event loop; it exits when the agent closes its stdin (or exits), the supervisors stay."""

    def __init__(self, python: str, root: Path) -> None:
        self.python = python
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def _usable(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.loop is asyncio.get_running_loop()

    def _start(self) -> None:
        self.close()
        with open(self.root / "shim-zygote.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-I", "-S", str(SHIM), "--zygote", str(self.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.loop = asyncio.get_running_loop()
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.loop.add_reader(self.proc.stdout.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                reply = json.loads(line)
                fut = self.pending.pop(int(reply.pop("id")), None)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if fut is not None and not fut.done():
                fut.set_result(reply)

    def close(self) -> None:
        """Close our ends (the zygote sees EOF and exits); fail what is in flight."""
        proc, self.proc = self.proc, None
        for old in list(_EXITING_ZYGOTES):  # reap the ones that exited since
            if old.poll() is not None:
                _EXITING_ZYGOTES.discard(old)
        if proc is not None:
            _EXITING_ZYGOTES.add(proc)
            if self.loop is not None and not self.loop.is_closed() and proc.stdout is not None:
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(proc.stdout.fileno())
            for f in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    f.close() if f is not None else None
        self.buf = b""
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ZygoteGoneError())

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def prestart(self) -> None:
        """Start the zygote now (it takes ~50 ms to come up), so the first container start does
        not wait for it; a zygote that cannot start is retried by :meth:`spawn`."""
        if not self._usable():
            with contextlib.suppress(OSError):
                self._start()

    async def spawn(self, argv: list[str], timeout: float) -> dict[str, Any]:
        """Have the zygote fork a supervisor for ``argv``; its reply (``{"ok": ...}``)."""
        try:
            if not self._usable():
                self._start()
            assert self.proc is not None and self.proc.stdin is not None and self.loop is not None
            self.next_id += 1
            rid = self.next_id
            fut: asyncio.Future[dict[str, Any]] = self.loop.create_future()
            self.pending[rid] = fut
            os.write(self.proc.stdin.fileno(), json.dumps({"id": rid, "argv": argv}).encode() + b"\n")
        except OSError as e:
            self.close()
            raise ZygoteUnavailableError(str(e)) from e
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(rid, None)


def _rfc3339_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _exit_reason(code: int, oom: bool) -> str:
    if oom and code == 137:
        return "OOMKilled"
    return "Completed" if code == 0 else "Error"


class RuncRuntime:
    """The :class:`~kubelite.agent.runtime.base.Runtime` backed by runc (root, cgroup v1, overlayfs)."""

    name = "runc"
    limitations: tuple[str, ...] = ()

    def __init__(
        self,
        root: Path,
        *,
        runc: str = "runc",
        network_setup: NetworkSetup | None = None,
        network_teardown: NetworkTeardown | None = None,
        python: str = sys.executable,
        container_log_max_size: int = CONTAINER_LOG_MAX_SIZE,
        container_log_max_files: int = CONTAINER_LOG_MAX_FILES,
    ) -> None:
        self.root = Path(root)
        self.container_log_max_size = container_log_max_size
        self.container_log_max_files = container_log_max_files
        self.runc = runc
        self.python = python
        self.runc_root = self.root / "runc"
        self.containers_dir = self.root / "containers"
        self.sandboxes = self._sandbox_manager(network_setup, network_teardown)
        self.zygote = ShimZygote(python, self.root)
        for d in (self.runc_root, self.containers_dir, self.sandboxes.dir):
            d.mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------- hooks for the rootless runtime
    def _sandbox_manager(
        self, setup: NetworkSetup | None, teardown: NetworkTeardown | None
    ) -> SandboxManager:
        return SandboxManager(self.root, setup, teardown)

    def _global_flags(self) -> list[str]:
        return []

    def _runc_argv(self) -> list[str]:
        return [self.runc, "--root", str(self.runc_root), *self._global_flags()]

    def _bundle_spec(self, sandbox: Sandbox, config: ContainerConfig, cid: str, bundle: Path) -> BundleSpec:
        ns_files = self.sandboxes.namespace_paths(sandbox.id)
        return BundleSpec(
            hostname=sandbox.config.hostname if "uts" in ns_files else "",
            etc_files=self.sandboxes.etc_files(sandbox.id),
            namespaces=self._namespaces(sandbox, ns_files),
            cgroups_path=f"{cgroup_parent(sandbox.config)}/{cid}",
            termination_log=str(bundle / "termination-log"),
        )

    def _namespaces(self, sandbox: Sandbox, ns_files: dict[str, str]) -> list[dict[str, str]]:
        spaces: list[dict[str, str]] = [{"type": "mount"}, self._pid_namespace(sandbox)]
        spaces += [{"type": t, "path": p} for t, p in ns_files.items()]
        if sandbox.netns_path:
            spaces.append({"type": "network", "path": sandbox.netns_path})
        return spaces

    def _pid_namespace(self, sandbox: Sandbox) -> dict[str, str]:
        """Own PID namespace, or with ``shareProcessNamespace`` the one of a running container of
        the pod (the first container creates it; there is no pause process to hold it)."""
        if sandbox.config.share_process_namespace:
            for meta, state in self._pod_containers(sandbox.id):
                if state is not None and not (self.containers_dir / meta["id"] / "exit.json").exists():
                    pid_ns = f"/proc/{state['pid']}/ns/pid"
                    if os.path.exists(pid_ns):
                        return {"type": "pid", "path": pid_ns}
        return {"type": "pid"}

    async def _prepare_rootfs(self, bundle: Path, layers: tuple[str, ...]) -> None:
        """Overlay: the image layers read-only (highest first in lowerdir), a per-container upper."""
        for d in ("upper", "work", "rootfs"):
            (bundle / d).mkdir(exist_ok=True)
        lowers = list(reversed(layers))
        if not lowers:
            (bundle / "empty").mkdir(exist_ok=True)
            lowers = [str(bundle / "empty")]
        opts = f"lowerdir={':'.join(lowers)},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
        if len(opts) >= 4096:
            raise ContainerRuntimeError(f"overlay options too long ({len(lowers)} layers)")
        if _libc.mount(b"overlay", os.fsencode(bundle / "rootfs"), b"overlay", 0, opts.encode()) != 0:
            err = ctypes.get_errno()
            raise ContainerRuntimeError(f"cannot mount the container rootfs (overlay): {os.strerror(err)}")

    def _cleanup_cmds(self, bundle: Path) -> list[list[str]]:
        return [["umount", "-l", str(bundle / "rootfs")]]

    def _release_rootfs(self, bundle: Path) -> None:
        umount(bundle / "rootfs")

    def prepare(self) -> None:
        """A pod is about to start (called by the agent when it gets a pod worker): bring the
        supervisor zygote up while the pod's image is looked up or pulled."""
        self.zygote.prestart()

    # ----------------------------------------------------------------------------- sandboxes
    async def create_sandbox(self, config: SandboxConfig) -> Sandbox:
        return await self.sandboxes.create(config)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Remove the pod's containers (killing any still running), then its namespaces and cgroups."""
        for meta, _state in self._pod_containers(sandbox.id):
            await self.remove_container(meta["id"])
        await self.sandboxes.remove(sandbox)

    async def list_sandboxes(self) -> list[Sandbox]:
        return self.sandboxes.list()

    # ---------------------------------------------------------------------------- containers
    def _bundle(self, cid: str) -> Path:
        return self.containers_dir / cid

    def _pod_containers(self, sid: str) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(meta, state) of the sandbox's containers; their ids start with ``<sandbox id>-``, so only
        those bundles are read (not every container on the node)."""
        out = []
        for d in sorted(self.containers_dir.glob(f"{sid}-*")) if self.containers_dir.is_dir() else []:
            meta = read_json(d / "meta.json")
            if meta is not None and meta.get("sandbox_id") == sid:
                out.append((meta, read_json(d / "state.json")))
        return out

    async def start_container(self, sandbox: Sandbox, config: ContainerConfig) -> ContainerStatus:
        """Create and start the container; idempotent for an id that already started (adoption)."""
        cid = container_id(sandbox.id, config.name, config.attempt)
        bundle = self._bundle(cid)
        if (bundle / "state.json").exists() or (bundle / "exit.json").exists():
            return await self.container_status(cid)
        if bundle.exists():  # a start interrupted by an agent crash: start over
            await self.remove_container(cid)
        bundle.mkdir(parents=True)
        try:
            await self._write_bundle(sandbox, config, cid, bundle)
        except BaseException:
            self._release_rootfs(bundle)
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        reply = await self._spawn_shim(cid, bundle, config)
        if not reply.get("ok"):
            raise ContainerRuntimeError(str(reply.get("error") or "the container did not start"))
        return await self.container_status(cid)

    async def _write_bundle(self, sandbox: Sandbox, config: ContainerConfig, cid: str, bundle: Path) -> None:
        log_path = Path(config.log_path) if config.log_path else bundle / "container.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        (bundle / "termination-log").touch()
        os.chmod(bundle / "termination-log", 0o666)  # any runAsUser may write its last words
        if config.stdin:
            os.mkfifo(bundle / "stdin", 0o600)
        await self._prepare_rootfs(bundle, config.rootfs_layers)
        spec = self._bundle_spec(sandbox, config, cid, bundle)
        (bundle / "config.json").write_text(json.dumps(config_json(config, spec)))
        meta = {
            "id": cid,
            "name": config.name,
            "attempt": config.attempt,
            "sandbox_id": sandbox.id,
            "image_ref": config.image_ref,
            "log_path": str(log_path),
            "created_at": _rfc3339_now(),
        }
        write_json(bundle / "meta.json", meta)

    def _shim_argv(self, cid: str, bundle: Path, config: ContainerConfig) -> list[str]:
        meta = read_json(bundle / "meta.json") or {}
        flags = self._global_flags()
        argv = [
            self.runc,
            str(self.runc_root),
            str(bundle),
            cid,
            meta.get("log_path", str(bundle / "container.log")),
            str(self.container_log_max_size),
            str(self.container_log_max_files),
        ]
        argv += [str(bundle / "stdin") if config.stdin else "", str(len(flags)), *flags]
        for cmd in self._cleanup_cmds(bundle):
            argv += ["--", *cmd]
        return argv

    async def _spawn_shim(self, cid: str, bundle: Path, config: ContainerConfig) -> dict[str, Any]:
        """A supervisor forked by the zygote; a standalone one when the zygote cannot run."""
        argv = self._shim_argv(cid, bundle, config)
        try:
            return await self.zygote.spawn(argv, 60.0)
        except ZygoteUnavailableError:
            return await self._spawn_shim_process(argv, bundle)
        except (ZygoteGoneError, TimeoutError):
            return {"ok": False, "error": f"the container supervisor failed (see {bundle}/shim.log)"}

    async def _spawn_shim_process(self, argv: list[str], bundle: Path) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            self.python,
            "-I",
            "-S",
            str(SHIM),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        finally:
            await proc.wait()  # the intermediate process exits at once; the supervisor is detached
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            reply = {"ok": False, "error": f"the container supervisor failed (see {bundle}/shim.log)"}
        return reply

    # ------------------------------------------------------------------------------- status
    async def container_status(self, container_id: str) -> ContainerStatus:
        bundle = self._bundle(container_id)
        meta = read_json(bundle / "meta.json")
        if meta is None:
            return ContainerStatus(container_id, "", ContainerState.UNKNOWN, message="no such container")
        base: dict[str, Any] = {"id": container_id, "name": meta["name"], "attempt": meta.get("attempt", 0)}
        state = read_json(bundle / "state.json") or {}
        done = read_json(bundle / "exit.json")
        if done is not None:
            return self._exited(bundle, base, state, done)
        if not state:
            return ContainerStatus(**base, state=ContainerState.CREATED)
        if _alive(state.get("shim_pid", 0)):
            return ContainerStatus(
                **base, state=ContainerState.RUNNING, started_at=state.get("started_at", "")
            )
        return await self._lost(container_id, base, state)

    def _exited(
        self, bundle: Path, base: dict[str, Any], state: dict[str, Any], done: dict[str, Any]
    ) -> ContainerStatus:
        code = int(done.get("exit_code", 255))
        oom = bool(done.get("oom_killed")) and code == 137
        message = done.get("message") or _termination_message(bundle)
        return ContainerStatus(
            **base,
            state=ContainerState.EXITED,
            exit_code=code,
            oom_killed=oom,
            started_at=state.get("started_at", ""),
            finished_at=done.get("finished_at", ""),
            reason=done.get("reason") or _exit_reason(code, oom),
            message=message,
        )

    async def _lost(self, cid: str, base: dict[str, Any], state: dict[str, Any]) -> ContainerStatus:
        """The supervisor is gone (killed, or the machine rebooted): trust runc's state."""
        rc, out = await run_cmd(*self._runc_argv(), "state", cid)
        status = json.loads(out).get("status", "") if rc == 0 and out.startswith("{") else ""
        if status in ("running", "paused", "created"):
            return ContainerStatus(
                **base, state=ContainerState.RUNNING, started_at=state.get("started_at", "")
            )
        return ContainerStatus(
            **base,
            state=ContainerState.EXITED,
            exit_code=255,
            started_at=state.get("started_at", ""),
            finished_at=_rfc3339_now(),
            reason="Error",
            message="the container's supervisor died; exit code unknown",
        )

    async def list_containers(self, sandbox: Sandbox) -> list[ContainerStatus]:
        metas = self._pod_containers(sandbox.id)
        return [await self.container_status(m["id"]) for m, _ in metas]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Event-driven while the supervisor runs (a pidfd on it: it exits right after recording the
        exit code), so idle pods cost no polling; a slow re-check covers everything else."""
        delay = 0.02
        while True:
            status = await self.container_status(container_id)
            if status.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                return status
            state = read_json(self._bundle(container_id) / "state.json") or {}
            if status.state is ContainerState.RUNNING and await _wait_pid(
                int(state.get("shim_pid", 0)), 30.0
            ):
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    # ------------------------------------------------------------------------------ stopping
    async def _wait_exit(self, cid: str, timeout: float) -> ContainerStatus | None:
        try:
            return await asyncio.wait_for(self.wait_container(cid), max(timeout, 0.0))
        except TimeoutError:
            return None

    async def _kill(self, cid: str, sig: str) -> None:
        if not self._signal_init(cid, signal.Signals["SIG" + sig]):
            await run_cmd(*self._runc_argv(), "kill", cid, sig)

    def _signal_init(self, cid: str, sig: int) -> bool:
        """``runc kill`` without starting a runc (a fork of the agent costs ~10 ms): signal the
        container's init process found in runc's state, through a pidfd and only after checking
        its start time, so a reused pid is never signalled.  False when it has to be runc (not
        root, no state or pidfd)."""
        if os.geteuid() != 0 or not hasattr(os, "pidfd_open"):
            return False
        state = read_json(self.runc_root / cid / "state.json")
        try:
            pid = int((state or {})["init_process_pid"])
            start = str((state or {})["init_process_start"])
        except (KeyError, ValueError, TypeError):
            return False
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True  # already gone: runc kill would do nothing either
        except OSError:
            return False
        try:
            if _start_time(pid) == start:
                signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        except OSError:
            return False
        finally:
            os.close(fd)
        return True

    async def stop_container(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        """SIGTERM, up to ``grace_seconds`` for the exit, then SIGKILL (Kubernetes' graceful stop)."""
        status = await self.container_status(container_id)
        if status.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
            return status
        if grace_seconds > 0:
            await self._kill(container_id, "TERM")
            done = await self._wait_exit(container_id, grace_seconds)
            if done is not None:
                return done
        await self._kill(container_id, "KILL")
        done = await self._wait_exit(container_id, 10.0)
        if done is not None:
            return done
        await run_cmd(*self._runc_argv(), "delete", "--force", container_id)
        return await self.container_status(container_id)

    async def remove_container(self, container_id: str) -> None:
        """Stop (kill) if needed, delete from runc, unmount, remove the bundle and the container's
        log with its rotated files (the kubelet's container GC removes a dead container's logs
        with it; the newest dead attempt is kept by the caller for ``logs --previous``)."""
        bundle = self._bundle(container_id)
        if not bundle.exists():
            return
        log_path = self.log_path(container_id)
        status = await self.container_status(container_id)
        if status.state in (ContainerState.RUNNING, ContainerState.CREATED):
            await self.stop_container(container_id, 0)
        if (self.runc_root / container_id).exists():  # the supervisor normally deleted it already
            await run_cmd(*self._runc_argv(), "delete", "--force", container_id)
        self._release_rootfs(bundle)
        shutil.rmtree(bundle, ignore_errors=True)
        if log_path:
            remove_log_files(Path(log_path))

    # ---------------------------------------------------------------------------- exec, stats
    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        """``runc exec`` with stdout+stderr captured; raises TimeoutError (the process is killed) and
        ContainerRuntimeError when the container is not running."""
        status = await self.container_status(container_id)
        if status.state is not ContainerState.RUNNING:
            raise ContainerRuntimeError(f"container {container_id} is not running ({status.state.value})")
        pid_file = self._bundle(container_id) / f"exec-{os.getpid()}-{time.monotonic_ns()}.pid"
        proc = await asyncio.create_subprocess_exec(
            *self._runc_argv(),
            "exec",
            "--pid-file",
            str(pid_file),
            container_id,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            await _kill_exec(proc, pid_file)
            raise
        finally:
            pid_file.unlink(missing_ok=True)
        code = proc.returncode or 0
        return ExecResult(128 - code if code < 0 else code, out)

    def exec_stream(self, container_id: str, argv: list[str], tty: bool, stdin: bool) -> RuncExecSession:
        return RuncExecSession(self._runc_argv(), container_id, argv, tty, stdin)

    def _cgroup_dirs(self, container_id: str) -> dict[str, Path]:
        state = read_json(self._bundle(container_id) / "state.json") or {}
        if not state or (self._bundle(container_id) / "exit.json").exists():
            return {}
        return cgroups.proc_cgroups(int(state["pid"]))

    async def stats(self, container_id: str) -> ContainerStats | None:
        dirs = self._cgroup_dirs(container_id)
        return cgroups.read_stats(dirs) if dirs else None

    def log_path(self, container_id: str) -> str:
        """Where the container's CRI-format log is (for ``kubectl logs``)."""
        meta = read_json(self._bundle(container_id) / "meta.json") or {}
        return str(meta.get("log_path", ""))

    def stdin_path(self, container_id: str) -> str:
        """The FIFO feeding the container's stdin (``stdin: true``; for ``kubectl attach``), or ""."""
        p = self._bundle(container_id) / "stdin"
        return str(p) if p.exists() else ""


async def _wait_pid(pid: int, timeout: float) -> bool:
    """Wait (up to ``timeout``) for a process that need not be our child to exit; False when it
    cannot be watched (no pidfd support, or already gone)."""
    if pid <= 0 or not hasattr(os, "pidfd_open"):
        return False
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    try:
        loop.add_reader(fd, exited.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(exited.wait(), timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return True


def _start_time(pid: int) -> str:
    """The process's start time (clock ticks after boot), as runc records ``init_process_start``."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive (the agent may be the supervisor's parent in tests)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


async def _kill_exec(proc: asyncio.subprocess.Process, pid_file: Path) -> None:
    """Kill the exec'd process itself and let ``runc exec`` reap it (killing runc first would leave
    the process running, or a zombie under the container's PID 1)."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    try:
        await asyncio.wait_for(proc.wait(), 2.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _termination_message(bundle: Path) -> str:
    try:
        with open(bundle / "termination-log", "rb") as f:
            return f.read(TERMINATION_MESSAGE_LIMIT).decode(errors="replace")
    except OSError:
        return ""
