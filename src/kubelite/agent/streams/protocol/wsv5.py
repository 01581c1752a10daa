"""The ``v5.channel.k8s.io`` WebSocket channel protocol (exec and attach).

Mirrors what kubelet/CRI streaming servers speak with kubectl (client-go
``tools/remotecommand``): every binary WebSocket message starts with one channel byte -
0 stdin, 1 stdout, 2 stderr, 3 error (a ``metav1.Status`` as JSON), 4 resize
(``{"Width":..,"Height":..}``) - and in v5 the two-byte message ``[255, ch]`` says that
channel ``ch`` is closed (kubectl sends ``[255, 0]`` at stdin EOF).  The command's end is
reported as a Status on channel 3; a non-zero exit code as ``NonZeroExitCode`` with an
``ExitCode`` cause, which makes kubectl exit with that code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PROTOCOL_V5 = "v5.channel.k8s.io"
PROTOCOL_V4 = "v4.channel.k8s.io"
SUPPORTED = (PROTOCOL_V5, PROTOCOL_V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255


class FrameError(ValueError):
    """A message that is not a valid channel frame."""


@dataclass(frozen=True)
class Frame:
    """One decoded message: ``closed`` is True for a v5 close signal of ``channel``."""

    channel: int
    data: bytes = b""
    closed: bool = False


def encode(channel: int, data: bytes) -> bytes:
    """The message carrying ``data`` on ``channel``."""
    if not 0 <= channel <= 254:
        raise FrameError(f"channel {channel} is out of range 0..254")
    return bytes((channel,)) + data


def encode_close(channel: int) -> bytes:
    """The v5 close signal for ``channel``."""
    if not 0 <= channel <= 254:
        raise FrameError(f"channel {channel} is out of range 0..254")
    return bytes((CLOSE, channel))


def decode(message: bytes) -> Frame:
    """Split a message into its channel and payload (or a close signal)."""
    if not message:
        raise FrameError("empty message: the first byte must be the channel")
    channel = message[0]
    if channel == CLOSE:
        if len(message) != 2:
            raise FrameError(f"a close signal is 2 bytes, got {len(message)}")
        return Frame(message[1], b"", closed=True)
    return Frame(channel, bytes(message[1:]))


def parse_resize(data: bytes) -> tuple[int, int]:
    """(width, height) from a channel-4 message body."""
    try:
        obj = orjson.loads(data)
        width, height = int(obj.get("Width", 0)), int(obj.get("Height", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as e:
        raise FrameError(f"invalid terminal size message: {data[:80]!r}") from e
    if not (0 <= width <= 65535 and 0 <= height <= 65535):
        raise FrameError(f"terminal size {width}x{height} out of range")
    return width, height


def success_status() -> bytes:
    return orjson.dumps({"metadata": {}, "status": "Success"})


def exit_status(code: int) -> bytes:
    """The channel-3 Status for a finished command: Success, or NonZeroExitCode."""
    if code == 0:
        return success_status()
    return orjson.dumps(
        {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    )


def failure_status(message: str, reason: str = "InternalError", code: int = 500) -> bytes:
    """A Status for a stream that failed before or while running (kubectl prints the message)."""
    body: dict[str, Any] = {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return orjson.dumps(body)
