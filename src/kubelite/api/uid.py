"""Object UIDs: random (version 4) UUIDs, like apimachinery's ``uuid.NewUUID``.

``uuid.uuid4()`` asks the kernel for 16 random bytes per call; in a busy API server that
syscall also hands the GIL to another thread and waits to get it back.  Here the random
bytes come from the same source (``os.urandom``) a few kilobytes at a time.
"""

from __future__ import annotations

import os
import threading

_CHUNK = 4096  # 256 UUIDs per system call

_lock = threading.Lock()
_pool = b""
_offset = 0


def _reset() -> None:
    """A forked child must not hand out the parent's remaining bytes again."""
    global _pool, _offset
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_reset)


def new_uid() -> str:
    """A fresh random UUID in its canonical text form."""
    global _pool, _offset
    with _lock:
        if _offset + 16 > len(_pool):
            _pool, _offset = os.urandom(_CHUNK), 0
        raw = _pool[_offset : _offset + 16]
        _offset += 16
    # Version and variant bits set as ``uuid.UUID(bytes=raw, version=4)`` sets them, formatted
    # directly: the same text for a third of the cost (~1 us against ~3.4 us per create).
    b = bytearray(raw)
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
