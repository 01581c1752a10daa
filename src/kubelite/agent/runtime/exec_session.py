"""Interactive ``runc exec`` sessions (``kubectl exec`` / ``kubectl attach`` style streams).

Without a TTY the process gets three pipes (stdout and stderr stay apart, as the v5 channel
protocol wants).  With a TTY, ``runc exec --tty`` runs on a host pty we own: runc allocates the
container's pty and copies between the two, and a window-size change on our side reaches runc as
SIGWINCH, which it applies inside; that is how kubectl's terminal resizing works.  (runc only
hands out the pty master over ``--console-socket`` when detached, which loses the exit code.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import AsyncIterator

STDOUT, STDERR = 1, 2


class RuncExecSession:
    """One ``runc exec`` process; create with :meth:`RuncRuntime.exec_stream`, then ``start()``."""

    def __init__(
        self, runc_argv: list[str], container_id: str, argv: list[str], tty: bool, stdin: bool
    ) -> None:
        self.runc_argv = runc_argv
        self.container_id = container_id
        self.argv = argv
        self.tty = tty
        self.stdin = stdin
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._readers: list[asyncio.Task[None]] = []
        self._finisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.tty:
            await self._start_tty()
        else:
            await self._start_pipes()

    async def _start_pipes(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.runc_argv,
            "exec",
            self.container_id,
            *self.argv,
            stdin=asyncio.subprocess.PIPE if self.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._pump(self.proc.stdout, STDOUT)),
            asyncio.create_task(self._pump(self.proc.stderr, STDERR)),
        ]
        self._finisher = asyncio.create_task(self._finish())

    async def _start_tty(self) -> None:
        """``runc exec -t`` on a host pty: runc puts it in raw mode, proxies it to the container's pty
        and forwards SIGWINCH (sent by the kernel when we resize the host pty) as a resize."""
        master, slave = os.openpty()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.runc_argv,
                "exec",
                "--tty",
                self.container_id,
                *self.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                preexec_fn=lambda: _controlling_tty(slave),  # setsid + the pty as controlling terminal
            )
        finally:
            os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        self._readers = [asyncio.create_task(self._pump_master(master))]
        self._finisher = asyncio.create_task(self._finish())

    async def _pump(self, stream: asyncio.StreamReader, channel: int) -> None:
        while chunk := await stream.read(65536):
            await self.queue.put((channel, chunk))

    async def _pump_master(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the last process holding the slave exited
                    break
                if not chunk:
                    break
                await self.queue.put((STDOUT, chunk))
        finally:
            loop.remove_reader(fd)

    async def _finish(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        if self.master is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._readers), 1.0)
        else:
            await asyncio.gather(*self._readers)
        await self.queue.put(None)

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            await asyncio.to_thread(_write_all, self.master, data)
        elif self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            await self.write_stdin(b"\x04")  # EOF on a terminal is ^D
        elif self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()

    async def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self.queue.get()) is not None:
            yield item
        await self.queue.put(None)  # let a second reader (or wait()) see the end too

    async def wait(self) -> int:
        assert self.proc is not None, "start() first"
        code = await self.proc.wait()
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        """Stop the exec (the client went away): runc forwards the signal to the process."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


def _controlling_tty(slave: int) -> None:
    # setsid here and the slave by its own fd rather than start_new_session and fd 0: uvloop runs
    # preexec_fn right after fork, before it sets up the session and the standard streams.
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
