"""Running ``nft`` without blocking the event loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubelite.proxy.libnft import LibNftables


class NftError(RuntimeError):
    """nft refused a command or transaction; the message carries its stderr."""


async def run(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``argv`` (optionally feeding ``stdin``); return (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


class Nft:
    """nft commands on table ``ip <table>``: in-process via libnftables, or the binary."""

    def __init__(self, binary: str, table: str, in_process: bool = False) -> None:
        self.binary = binary
        self.table = table
        self.lib = LibNftables.create() if in_process else None

    async def _run(self, text: str, json: bool = False) -> tuple[int, str, str]:
        if self.lib is not None:
            return await self.lib.run(text, json)
        if json:  # one listing command, passed as arguments
            return await run([self.binary, "-j", "-t", *text.split()])
        return await run([self.binary, "-f", "-"], text)

    async def apply(self, text: str) -> None:
        """Apply ``text`` as one atomic ``nft -f -`` transaction."""
        code, _, err = await self._run(text)
        if code != 0:
            raise NftError(f"nft -f failed ({code}): {err.strip()[:2000]}")

    async def _list(self, what: str) -> list[dict[str, Any]]:
        code, out, err = await self._run(f"list {what} ip\n", json=True)
        if code != 0:
            raise NftError(f"nft list {what} failed ({code}): {err.strip()}")
        items = json.loads(out or "{}").get("nftables") or []
        return [i for i in items if isinstance(i, dict)]

    async def existing(self) -> tuple[set[str], set[str]]:
        """Names of the chains and of the sets currently in our table (empty if it is absent)."""
        chains = {i["chain"]["name"] for i in await self._list("chains") if self._ours(i, "chain")}
        sets = {i["set"]["name"] for i in await self._list("sets") if self._ours(i, "set")}
        return chains, sets

    def _ours(self, item: dict[str, Any], kind: str) -> bool:
        return bool(item.get(kind, {}).get("table") == self.table)

    async def delete_table(self) -> None:
        """Delete our table; a table that is already gone is fine."""
        code, _, err = await self._run(f"delete table ip {self.table}\n")
        if code != 0 and "No such file" not in err:
            raise NftError(f"nft delete table ip {self.table} failed ({code}): {err.strip()}")

    def close(self) -> None:
        if self.lib is not None:
            self.lib.close()
            self.lib = None
