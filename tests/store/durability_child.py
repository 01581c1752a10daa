"""Child process of the durability test.

Opens a SQLite store on ``argv[1]``, starts ``argv[2]`` concurrent creates and
prints each key on stdout (flushed) the moment its create is acknowledged; prints
``DONE`` at the end.  The parent kills it with SIGKILL part-way through.
"""

from __future__ import annotations

import asyncio
import sys

from kubelite.store.sqlite import SqliteStore


async def main(path: str, total: int) -> None:
    store = SqliteStore(path, max_batch=20)  # small batches: many commits in the burst
    await store.start()

    async def create(i: int) -> None:
        key = f"/registry/pods/default/p{i:05d}"
        await store.create(key, b'{"kind":"Pod","metadata":{"name":"p%05d"}}' % i)
        sys.stdout.write(key + "\n")
        sys.stdout.flush()

    await asyncio.gather(*(create(i) for i in range(total)))
    print("DONE", flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
