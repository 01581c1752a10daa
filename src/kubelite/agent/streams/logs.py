"""``GET /containerLogs/<ns>/<pod>/<container>``: the kubelet's log endpoint.

Query options are the pod ``log`` subresource's: ``follow``, ``previous``, ``tailLines``,
``sinceSeconds`` / ``sinceTime``, ``timestamps``, ``limitBytes``.  The answer is
``text/plain``, streamed (chunked) while following; it ends when the container has exited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from kubelite.agent.streams.asgi import Receive, Send, StreamError, until_disconnect
from kubelite.agent.streams.protocol import cri_log
from kubelite.agent.streams.targets import ContainerTarget, NodeAgent, find_container

Query = dict[str, list[str]]


def _q(query: Query, name: str) -> str:
    v = query.get(name)
    return v[-1] if v else ""


def _bool(query: Query, name: str) -> bool:
    return _q(query, name).lower() in ("true", "1")


def _int(query: Query, name: str, minimum: int) -> int | None:
    raw = _q(query, name)
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as e:
        raise StreamError(400, f'invalid value for {name}: "{raw}"') from e
    if value < minimum:
        raise StreamError(400, f"{name}: Invalid value: {value}: must be greater than or equal to {minimum}")
    return value


def log_options(query: Query, now: dt.datetime) -> cri_log.LogOptions:
    since_seconds = _int(query, "sinceSeconds", 1)
    since_time = _q(query, "sinceTime")
    if since_seconds is not None and since_time:
        raise StreamError(400, "at most one of sinceTime or sinceSeconds may be specified")
    since: dt.datetime | None = None
    if since_seconds is not None:
        since = now - dt.timedelta(seconds=since_seconds)
    elif since_time:
        try:
            since = cri_log.parse_time(since_time)
        except cri_log.LogFormatError as e:
            raise StreamError(400, f'invalid value for sinceTime: "{since_time}"') from e
    return cri_log.LogOptions(
        tail_lines=_int(query, "tailLines", 0),
        since=since,
        timestamps=_bool(query, "timestamps"),
        limit_bytes=_int(query, "limitBytes", 1),
        follow=_bool(query, "follow"),
    )


def _pod_name(target: ContainerTarget) -> str:
    return str(target.pod["metadata"]["name"])


def _log_file(target: ContainerTarget, previous: bool) -> str:
    if previous:
        if not target.previous_log_path or not os.path.exists(target.previous_log_path):
            raise StreamError(
                400,
                f'previous terminated container "{target.name}" in pod "{_pod_name(target)}" not found',
            )
        return target.previous_log_path
    return target.log_path


async def follow_rotated(
    path: str, opts: cri_log.LogOptions, running: Callable[[], Awaitable[bool]]
) -> AsyncIterator[bytes]:
    """The log answer; while following, a file the supervisor rotates away (renamed, a new one
    started at ``path``) is read to its end and then the new file from its start, as the
    kubelet's ReadLogs reopens a rotated container log."""
    sent = 0
    while True:
        try:
            inode = os.stat(path).st_ino
        except FileNotFoundError:
            return
        rotated = False

        async def still_running(inode: int = inode) -> bool:
            nonlocal rotated
            with contextlib.suppress(FileNotFoundError):  # between the rename and the new file
                rotated = os.stat(path).st_ino != inode
            return not rotated and await running()

        async for chunk in cri_log.stream_log(path, opts, still_running):
            sent += len(chunk)
            yield chunk
        limit = opts.limit_bytes
        if not rotated or (limit is not None and sent >= limit):
            return
        opts = cri_log.LogOptions(
            None, opts.since, opts.timestamps, None if limit is None else limit - sent, True
        )


async def serve_logs(agent: NodeAgent, parts: list[str], query: Query, receive: Receive, send: Send) -> None:
    if len(parts) != 3:
        raise StreamError(404, "expected /containerLogs/<namespace>/<pod>/<container>")
    target = find_container(agent, parts[0], parts[1], parts[2])
    opts = log_options(query, dt.datetime.now(dt.UTC))
    previous = _bool(query, "previous")
    path = _log_file(target, previous)
    if previous:
        opts = cri_log.LogOptions(opts.tail_lines, opts.since, opts.timestamps, opts.limit_bytes, False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"no-cache, private")],
        }
    )

    async def pump() -> None:
        async for chunk in follow_rotated(path, opts, target.running):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    await until_disconnect(receive, pump())  # a follow ends when the caller goes away
