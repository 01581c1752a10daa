"""libnftables in-process: nft transactions without a fork/exec each.

The same parser and cache logic as the ``nft`` binary (libnftables.so.1), called through
ctypes on one worker thread (the calls release the GIL; a context is not thread-safe),
so the event loop never blocks.  Used when the proxy is configured with the plain
``nft`` command and the library is present; otherwise the binary is spawned.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from concurrent.futures import ThreadPoolExecutor

OUTPUT_JSON = 1 << 4
OUTPUT_TERSE = 1 << 11


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p]
    for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p]
        getattr(lib, fn).restype = ctypes.c_char_p
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    return lib


class LibNftables:
    """One libnftables context; :meth:`run` is ``nft -f -`` (or ``nft -j -t`` with ``json``)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.ctx = ctypes.c_void_p(lib.nft_ctx_new(0))
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="libnftables")

    @classmethod
    def create(cls) -> LibNftables | None:
        lib = _load()
        return cls(lib) if lib is not None else None

    def _run(self, text: str, json: bool) -> tuple[int, str, str]:
        self.lib.nft_ctx_output_set_flags(self.ctx, OUTPUT_JSON | OUTPUT_TERSE if json else 0)
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
        out = self.lib.nft_ctx_get_output_buffer(self.ctx) or b""
        err = self.lib.nft_ctx_get_error_buffer(self.ctx) or b""
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    async def run(self, text: str, json: bool = False) -> tuple[int, str, str]:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._run, text, json)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.lib.nft_ctx_free(self.ctx)
