"""``/exec/<ns>/<pod>/<container>`` and ``/attach/...`` over the ``v5.channel.k8s.io`` protocol.

Exec runs ``command`` (repeated query parameter) with ``runc exec``; attach joins the
container's main process: its output is followed from the container log (from now on) and
stdin goes to the container's stdin FIFO.  Channel frames flow as kubectl expects (see
:mod:`kubelite.agent.streams.protocol.wsv5`); the end is a Status on channel 3 then a normal
close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from kubelite.agent.runtime.base import ExecSession
from kubelite.agent.streams.asgi import StreamError, WebSocket
from kubelite.agent.streams.protocol import cri_log, wsv5
from kubelite.agent.streams.targets import ContainerTarget, NodeAgent, find_container

log = logging.getLogger("kubelite.agent.streams")
Query = dict[str, list[str]]


def _flag(query: Query, name: str) -> bool:
    v = query.get(name) or [""]
    return v[-1].lower() in ("true", "1")


def pick_protocol(offered: list[str]) -> str:
    for p in offered:
        if p in wsv5.SUPPORTED:
            return p
    raise StreamError(400, f"unsupported stream protocol(s) {offered}: this node speaks {wsv5.PROTOCOL_V5}")


async def _prepare(agent: NodeAgent, ws: WebSocket, parts: list[str]) -> tuple[ContainerTarget, str]:
    if len(parts) != 3:
        raise StreamError(404, "expected /<exec|attach>/<namespace>/<pod>/<container>")
    protocol = pick_protocol(ws.subprotocols)
    target = find_container(agent, parts[0], parts[1], parts[2])
    if not await target.running():
        raise StreamError(400, f'container "{target.name}" is not running')
    return target, protocol


async def serve_exec(agent: NodeAgent, ws: WebSocket, parts: list[str], query: Query) -> None:
    target, protocol = await _prepare(agent, ws, parts)
    argv = query.get("command") or []
    if not argv:
        raise StreamError(400, "you must specify at least one command for the container")
    tty = _flag(query, "tty")
    stdin = _flag(query, "stdin")
    session = target.runtime.exec_stream(target.container_id, list(argv), tty, stdin)
    await ws.accept(protocol)
    try:
        await session.start()
    except Exception as e:  # runc could not even start
        await _finish(ws, wsv5.failure_status(f"failed to exec in container: {e}"))
        return
    await _pump_session(ws, session, tty, protocol)


async def _pump_session(ws: WebSocket, session: ExecSession, tty: bool, protocol: str) -> None:
    reader = asyncio.create_task(_client_input(ws, session))
    try:
        async for channel, data in session.output():
            if tty and channel == wsv5.STDERR:
                channel = wsv5.STDOUT
            await ws.send(wsv5.encode(channel, data))
        code = await session.wait()
    except BaseException:
        kill = getattr(session, "kill", None)
        if kill is not None:
            await kill()
        raise
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
    await _finish(ws, wsv5.exit_status(code))


async def _finish(ws: WebSocket, status: bytes) -> None:
    with contextlib.suppress(Exception):
        await ws.send(wsv5.encode(wsv5.ERROR, status))
        await ws.close(1000)


async def _client_input(ws: WebSocket, session: ExecSession) -> None:
    """stdin, stdin EOF and terminal resizes from the client; a disconnect stops the command."""
    while True:
        msg = await ws.receive()
        if msg is None:
            kill = getattr(session, "kill", None)
            if kill is not None:
                await kill()
            return
        try:
            frame = wsv5.decode(msg)
        except wsv5.FrameError:
            continue
        if frame.closed and frame.channel == wsv5.STDIN:
            await session.close_stdin()
        elif frame.channel == wsv5.STDIN and not frame.closed:
            await session.write_stdin(frame.data)
        elif frame.channel == wsv5.RESIZE and not frame.closed:
            with contextlib.suppress(wsv5.FrameError):
                await session.resize(*wsv5.parse_resize(frame.data))


# ------------------------------------------------------------------ attach


async def serve_attach(agent: NodeAgent, ws: WebSocket, parts: list[str], query: Query) -> None:
    target, protocol = await _prepare(agent, ws, parts)
    tty = _flag(query, "tty")
    stdin_fifo = _stdin_path(target) if _flag(query, "stdin") else ""
    await ws.accept(protocol)
    reader = asyncio.create_task(_attach_input(ws, stdin_fifo))
    writer = asyncio.create_task(_attach_output(ws, target, tty))
    try:
        await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (reader, writer):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
    await _finish(ws, wsv5.success_status())


async def _attach_output(ws: WebSocket, target: ContainerTarget, tty: bool) -> None:
    async for channel, data in _follow_output(target):
        await ws.send(wsv5.encode(wsv5.STDOUT if tty else channel, data))


def _stdin_path(target: ContainerTarget) -> str:
    finder: Any = getattr(target.runtime, "stdin_path", None)
    return str(finder(target.container_id)) if finder is not None else ""


async def _follow_output(target: ContainerTarget) -> AsyncIterator[tuple[int, bytes]]:
    """The container's output from now on, until it exits (read from its CRI log)."""
    with open(target.log_path, "rb") as f:
        f.seek(0, os.SEEK_END)
        pending = b""
        exited = False
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    with contextlib.suppress(cri_log.LogFormatError):
                        e = cri_log.parse_line(line)
                        body = e.content if e.partial else e.content + b"\n"
                        yield (wsv5.STDERR if e.stream == "stderr" else wsv5.STDOUT), body
                continue
            if exited:
                return
            exited = not await target.running()
            if not exited:
                await asyncio.sleep(0.1)


async def _attach_input(ws: WebSocket, fifo: str) -> None:
    fd = -1
    if fifo:
        with contextlib.suppress(OSError):
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while (msg := await ws.receive()) is not None:
            with contextlib.suppress(wsv5.FrameError):
                frame = wsv5.decode(msg)
                if frame.channel == wsv5.STDIN and not frame.closed and fd >= 0:
                    await asyncio.to_thread(_write_all, fd, frame.data)
    finally:
        if fd >= 0:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    import select

    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
