"""Run ``nft`` as an asynchronous subprocess.

``command`` is split like a shell word list, so tests can run nft inside a network
namespace (``"ip netns exec kltest-x nft"``).  Scripts go through ``nft -f -``: nft
applies a whole script as one kernel transaction, so a ruleset update is atomic.
"""

from __future__ import annotations

import asyncio
import shlex


class NftError(RuntimeError):
    """nft refused a script or a command; the message carries nft's own error output."""


class Nft:
    def __init__(self, command: str = "nft") -> None:
        self.argv = shlex.split(command)

    async def run(self, *args: str, stdin: str | None = None) -> str:
        """Run ``nft args...``; return stdout or raise :class:`NftError`."""
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        if proc.returncode != 0:
            raise NftError(f"nft {' '.join(args)} failed (exit {proc.returncode}): {err.decode().strip()}")
        return out.decode()

    async def apply(self, script: str) -> None:
        """Apply ``script`` atomically with ``nft -f -``."""
        if script:
            await self.run("-f", "-", stdin=script)

    async def delete_table(self, table: str, family: str = "ip") -> None:
        """Delete the table; a table that is already gone is fine."""
        # "add" first makes the delete succeed whether or not the table exists.
        await self.apply(f"add table {family} {table}\ndelete table {family} {table}\n")
