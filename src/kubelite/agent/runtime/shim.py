"""Per-container supervisor (a tiny conmon/containerd-shim): it outlives the agent.

Normally forked from the agent's *zygote* (``python -I -S shim.py --zygote <root>``, one per
agent, see :func:`zygote`): a fork shares the interpreter's pages and costs well under a
millisecond, where starting an interpreter per container cost ~15 ms of CPU and ~8 MB.  Standalone
(``python -I -S shim.py <args>``, the fallback) it imports only ``os``, ``sys``, ``time``,
``select`` and ``_thread`` (and ``ctypes`` for the inotify watch) and double-forks.  Either way
the supervisor runs in its own session so killing or restarting the agent never touches it.
Then (runtime-notes §5.3 A):

1. ``runc run --keep --pid-file`` in the foreground, with the container's stdout/stderr on pipes;
   the container has started once the pid file exists (a failed create exits runc without it).
   The supervisor sleeps on an inotify watch of the bundle until the file appears instead of
   polling for it (in a burst, a hundred supervisors polling every 2 ms while their runc waits
   for a CPU cost more CPU than the containers' starts);
2. writes ``state.json`` (init pid, start time) and answers the agent with one JSON line on its
   stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``);
3. copies the pipes into the log file in the CRI format the kubelet uses
   (``<RFC3339Nano> stdout|stderr F|P <text>``), so ``kubectl logs --timestamps`` works;
4. waits for runc (its exit code is the container's, 128+signal when killed), reads
   ``memory.oom_control`` while ``--keep`` still holds the cgroup, ``runc delete``s the container,
   runs the cleanup commands (overlay unmount) and only then writes ``exit.json`` atomically, so the
   exit code is never lost, even when the agent is down at that moment.
"""

from __future__ import annotations

import _thread
import os
import select
import sys
import time

MAX_LINE = 16 * 1024  # longer lines are split into "P" (partial) records, like containerd
POLL = 0.002  # without inotify: how often to look for runc's pid file
WATCH_POLL = 0.02  # with inotify: how often to look whether runc exited without one
IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x8, 0x80, 0x100
START_TIMEOUT = 50.0  # the agent gives up after 60 s
PR_SET_NAME = 15


def rfc3339(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def jstr(s: str) -> str:
    """A JSON string literal (json is not imported: it costs more than the rest of the shim)."""
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in out) + '"'


def jobj(fields: dict[str, object]) -> str:
    parts = []
    for k, v in fields.items():
        val = (
            ("true" if v else "false")
            if isinstance(v, bool)
            else str(v)
            if isinstance(v, int)
            else jstr(str(v))
        )
        parts.append(f"{jstr(k)}: {val}")
    return "{" + ", ".join(parts) + "}"


def write_json(path: str, fields: dict[str, object]) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, jobj(fields).encode())
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, path)


def remove(path: str) -> None:
    try:  # noqa: SIM105 (contextlib is not imported: the shim stays small)
        os.unlink(path)
    except FileNotFoundError:
        pass


def compress(path: str) -> None:
    """``path`` to ``path.gz`` through a ``.tmp`` (a reader never sees half an archive), as the
    kubelet's compressLog does.  gzip is imported only here: most supervisors never rotate."""
    import gzip

    tmp = path + ".gz.tmp"
    with open(path, "rb") as src, gzip.open(tmp, "wb") as dst:
        while chunk := src.read(1 << 16):
            dst.write(chunk)
    os.replace(tmp, path + ".gz")
    os.unlink(path)


class LogWriter:
    """Serialises CRI log records from both streams into one append-only file, rotated like the
    kubelet's container log manager (``containerLogMaxSize`` / ``containerLogMaxFiles``): once
    the file is larger than ``max_size`` it is renamed to ``<name>.<YYYYMMDD-HHMMSS>`` and a new
    file is started, at a record boundary (the writer owns the file, so no record is lost or
    split, where the kubelet asks the runtime to reopen).  Afterwards, off the writing path: at
    most ``max_files - 1`` rotated files are kept (oldest removed first) and all but the newest
    are gzipped to ``.gz``.  ``max_size`` 0 never rotates."""

    def __init__(self, path: str, max_size: int = 0, max_files: int = 5) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.max_size = max_size
        self.max_files = max(max_files, 2)  # the kubelet refuses fewer than 2
        self.lock = _thread.allocate_lock()
        self.tidy_lock = _thread.allocate_lock()  # held while a clean-up thread runs
        self.tidy_again = False
        self.open_streams = 0

    def record(self, stream: str, tag: str, text: bytes) -> None:
        line = f"{rfc3339()} {stream} {tag} ".encode() + text + b"\n"
        with self.lock:
            if self.max_size and self.size > self.max_size:
                self.rotate()  # before the write: the current file always has the last record
            os.write(self.fd, line)
            self.size += len(line)

    def rotate(self) -> None:
        """Rename the current file and start a new one (called with ``lock`` held).  Names have
        the kubelet's one-second resolution: a second rotation within the same second waits for
        the next one (the kubelet looks only every 10 s, so its files overshoot too)."""
        rotated = self.path + "." + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        if os.path.exists(rotated) or os.path.exists(rotated + ".gz"):
            return
        os.rename(self.path, rotated)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.close(self.fd)
        self.fd, self.size = fd, 0
        if self.tidy_lock.acquire(False):
            _thread.start_new_thread(self.tidy, ())
        else:
            self.tidy_again = True  # the running clean-up goes round once more

    def rotated_files(self) -> list[str]:
        """The rotated files (plain or ``.gz``), oldest first, after removing what an
        interrupted clean-up left: ``.tmp`` files and plain files whose ``.gz`` exists."""
        folder, base = os.path.split(self.path)
        prefix = base + "."
        names = set(n for n in os.listdir(folder or ".") if n.startswith(prefix))
        keep = []
        for name in sorted(names):
            if name.endswith(".tmp") or name + ".gz" in names:
                remove(os.path.join(folder, name))
            else:
                keep.append(os.path.join(folder, name))
        return keep

    def tidy(self) -> None:
        """The clean-up thread (started holding ``tidy_lock``): keep ``max_files - 1`` rotated
        files, gzip all but the newest, as the kubelet's rotateLog does."""
        while True:
            self.tidy_once()
            with self.lock:  # atomically with rotate()'s look at tidy_lock
                if not self.tidy_again:
                    self.tidy_lock.release()
                    return
                self.tidy_again = False

    def tidy_once(self) -> None:
        try:
            logs = self.rotated_files()
            excess = max(len(logs) - (self.max_files - 1), 0)
            for name in logs[:excess]:
                remove(name)
            for name in logs[excess:-1]:
                if not name.endswith(".gz"):
                    compress(name)
        except Exception as e:  # the clean-up must not die holding tidy_lock
            os.write(2, f"log rotation of {self.path}: {e}\n".encode())

    def pump(self, fd: int, stream: str) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.record(stream, "F", line)
            while len(buf) > MAX_LINE:
                self.record(stream, "P", buf[:MAX_LINE])
                buf = buf[MAX_LINE:]
        if buf:
            self.record(stream, "F", buf)
        os.close(fd)
        with self.lock:
            self.open_streams -= 1

    def start(self, fd: int, stream: str) -> None:
        with self.lock:
            self.open_streams += 1
        _thread.start_new_thread(self.pump, (fd, stream))

    def drain(self, timeout: float) -> None:
        """Wait for both pipes to reach EOF (processes left in a shared PID ns may hold them)."""
        deadline = time.monotonic() + timeout
        while self.open_streams and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.tidy_lock.acquire(True, max(deadline - time.monotonic(), 0.5)):
            self.tidy_lock.release()  # a compression under way has finished


def spawn(argv: list[str], stdin: int, stdout: int, stderr: int) -> int:
    actions = [
        (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run_quiet(argv: list[str]) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.waitpid(spawn(argv, null, null, null), 0)
    except OSError:
        pass
    finally:
        os.close(null)


def runc_error(bundle: str, fallback: str) -> str:
    """The last error runc logged (its own message, not the container's output)."""
    import json  # only on this failure path

    msg = fallback
    try:
        with open(bundle + "/runc.log") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("error", "fatal"):
                    msg = str(rec.get("msg", msg))
    except OSError:
        pass
    return msg


def memory_dir(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, ctl, rel = line.rstrip("\n").split(":", 2)
                if "memory" in ctl.split(","):
                    return "/sys/fs/cgroup/memory" + rel
    except OSError:
        pass
    return ""


def oom_killed(mem_dir: str) -> bool:
    try:
        with open(mem_dir + "/memory.oom_control") as f:
            for line in f:
                key, _, val = line.partition(" ")
                if key == "oom_kill":
                    return int(val) > 0
    except (OSError, ValueError):
        pass
    return False


def watch_dir(path: str) -> int:
    """An inotify descriptor watching files written or renamed into ``path``, or -1 (then the
    caller polls).  ctypes is loaded already in a zygote-forked supervisor."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK))
        if fd < 0:
            return -1
        if libc.inotify_add_watch(fd, path.encode(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0:
            os.close(fd)
            return -1
        return fd
    except (OSError, AttributeError):
        return -1


def wait_change(watch: int) -> None:
    """Sleep until the watched directory changes (at most WATCH_POLL), or POLL without a watch."""
    if watch < 0:
        time.sleep(POLL)
        return
    ready, _, _ = select.select([watch], [], [], WATCH_POLL)
    if ready:
        try:  # noqa: SIM105 (contextlib is not imported: the shim stays small)
            os.read(watch, 65536)  # consume the events; the caller looks at the files itself
        except BlockingIOError:
            pass


class Shim:
    def __init__(self, argv: list[str], reply_id: int | None = None) -> None:
        self.reply_id = reply_id  # zygote mode: the request this supervisor answers
        self.answered = False
        (
            self.runc,
            self.root,
            self.bundle,
            self.cid,
            self.log,
            log_max,
            log_files,
            self.stdin,
            n_flags,
            *rest,
        ) = argv
        self.log_max_size, self.log_max_files = int(log_max), int(log_files)
        self.flags = rest[: int(n_flags)]
        self.cleanup_cmds: list[list[str]] = []
        self.runc_status: int | None = None
        for word in rest[int(n_flags) :]:
            if word == "--":
                self.cleanup_cmds.append([])
            else:
                self.cleanup_cmds[-1].append(word)

    def answer(self, reply: int, fields: dict[str, object]) -> None:
        """The one JSON line for the agent (tagged with the request id in zygote mode)."""
        if self.answered:
            return
        self.answered = True
        if self.reply_id is not None:
            fields = {"id": self.reply_id, **fields}
        try:
            os.write(reply, (jobj(fields) + "\n").encode())
        finally:
            os.close(reply)

    def runc_argv(self, *cmd: str) -> list[str]:
        log = ["--log", self.bundle + "/runc.log", "--log-format", "json"]
        return [self.runc, "--root", self.root, *log, *self.flags, *cmd]

    def finish(self, code: int, oom: bool, reason: str = "", message: str = "") -> None:
        run_quiet(self.runc_argv("delete", "--force", self.cid))
        for cmd in self.cleanup_cmds:
            run_quiet(cmd)
        fields: dict[str, object] = {"exit_code": code, "oom_killed": oom, "finished_at": rfc3339()}
        write_json(self.bundle + "/exit.json", {**fields, "reason": reason, "message": message})

    def start(self, log: LogWriter) -> tuple[int, int] | str:
        """``runc run``; (runc's pid, the container's pid) once started, or runc's error message."""
        stdin = os.open(self.stdin, os.O_RDWR) if self.stdin else os.open(os.devnull, os.O_RDONLY)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        log.start(out_r, "stdout")
        log.start(err_r, "stderr")
        pid_file = self.bundle + "/pid"
        argv = self.runc_argv("run", "--keep", "--bundle", self.bundle, "--pid-file", pid_file, self.cid)
        watch = watch_dir(self.bundle)  # before runc starts, so the pid file cannot be missed
        runc = spawn(argv, stdin, out_w, err_w)
        for fd in (stdin, out_w, err_w):
            os.close(fd)
        try:
            return self.wait_started(runc, pid_file, watch)
        finally:
            if watch >= 0:
                os.close(watch)

    def wait_started(self, runc: int, pid_file: str, watch: int) -> tuple[int, int] | str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(pid_file):
                with open(pid_file) as f:
                    text = f.read().strip()
                if text:
                    return runc, int(text)
            if self.runc_status is None:
                done, status = os.waitpid(runc, os.WNOHANG)
                if done:
                    self.runc_status = status  # exited already: started and finished, or never started
                    continue  # look at the pid file once more
            elif not os.path.exists(pid_file):
                return runc_error(self.bundle, f"runc run exited with {exit_code(self.runc_status)}")
            wait_change(watch)
        os.kill(runc, 9)
        return f"the container did not start within {START_TIMEOUT:.0f}s"

    def supervise(self, reply: int) -> None:
        log = LogWriter(self.log, self.log_max_size, self.log_max_files)
        result = self.start(log)
        if isinstance(result, str):
            log.drain(1.0)
            self.finish(128, False, "ContainerCannotRun", result)
            self.answer(reply, {"ok": False, "error": result})
            return
        runc, pid = result
        mem = memory_dir(pid)
        write_json(
            self.bundle + "/state.json", {"pid": pid, "started_at": rfc3339(), "shim_pid": os.getpid()}
        )
        self.answer(reply, {"ok": True, "pid": pid})
        code = self.wait(runc)
        oom = bool(mem) and oom_killed(mem)
        log.drain(2.0)
        self.finish(code, oom)

    def wait(self, runc: int) -> int:
        if self.runc_status is None:
            _, self.runc_status = os.waitpid(runc, 0)
        return exit_code(self.runc_status)


def run_supervisor(shim: Shim) -> None:
    """In the supervisor process: own session, stdio detached (the reply goes to the agent over
    the inherited stdout), supervise until the container exits."""
    os.setsid()
    reply = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    shim_log = os.open(shim.bundle + "/shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(shim_log, 2)
    os.close(devnull)
    os.close(shim_log)
    try:
        shim.supervise(reply)
    except BaseException as e:  # the supervisor must always leave an exit record
        try:
            shim.finish(128, False, "ContainerCannotRun", f"shim: {e}")
            shim.answer(reply, {"ok": False, "error": f"shim: {e}"})
        except OSError:
            pass
        raise


def zygote() -> None:
    """``shim.py --zygote <root>``: fork one supervisor per request instead of starting a Python
    interpreter per container (a fork costs well under a millisecond and shares the interpreter's
    pages).  Requests are JSON lines on stdin (``{"id": n, "argv": [...]}``); each supervisor
    answers on the shared stdout with one line tagged with its id (shorter than PIPE_BUF, so the
    lines never interleave).  EOF on stdin (the agent exited) ends the zygote; the supervisors
    are in their own sessions and live on, and still record their containers' exits."""
    import ctypes
    import gc
    import json
    import signal

    libc = ctypes.CDLL(None)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished supervisors
    gc.freeze()  # keep the supervisors' garbage collections off the shared pages
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            shim = Shim([str(a) for a in req["argv"]], int(req["id"]))
        except (ValueError, KeyError, TypeError):
            continue
        if os.fork() == 0:
            code = 0
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                libc.prctl(PR_SET_NAME, b"kubelite-shim", 0, 0, 0)  # its name in ps/top
                run_supervisor(shim)
            except BaseException:
                code = 1
            finally:
                os._exit(code)


def main() -> None:
    if sys.argv[1:2] == ["--zygote"]:
        zygote()
        return
    shim = Shim(sys.argv[1:])
    if os.fork() > 0:
        os._exit(0)  # the agent reaps this intermediate at once; the supervisor is reparented
    run_supervisor(shim)


if __name__ == "__main__":
    main()
