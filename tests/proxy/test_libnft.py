"""The in-process libnftables backend, exercised in a network namespace of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import asyncio, json
from kubelite.proxy.nft import Nft, NftError
from kubelite.proxy.model import TableModel
from kubelite.proxy.render import RenderContext, base_chains, base_maps
from tests.proxy.builders import ep, eps_slice, render, svc

async def main():
    ctx = RenderContext("node-a", "10.244.0.0/16", "10.96.0.0/12")
    nft = Nft("nft", "kltest-lib", in_process=True)
    out = {"in_process": nft.lib is not None}
    model = TableModel("kltest-lib", base_chains(ctx), base_maps())
    frag = render(svc(sessionAffinity="ClientIP"), eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3")]))
    plan = model.plan_full({"default/web": frag}, *(await nft.existing()))
    await nft.apply(plan.text)
    model.commit(plan)
    chains, sets = await nft.existing()
    out["chains"], out["sets"] = sorted(chains), sorted(sets)
    try:
        await nft.apply("add rule ip kltest-lib no-such-chain accept\n")
    except NftError as e:
        out["error"] = str(e)
    await nft.delete_table()
    await nft.delete_table()  # already gone: fine
    out["after"] = [sorted(x) for x in await nft.existing()]
    nft.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def test_libnftables_backend_applies_lists_and_deletes() -> None:
    ns = f"kltest-h2-lib-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": root}
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=True,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    out = json.loads(proc.stdout)
    assert out["in_process"] is True
    assert "services" in out["chains"] and any(c.startswith("endpoint-") for c in out["chains"])
    assert {"cluster-ips", "hairpin-endpoints"} <= set(out["sets"])
    assert sum(s.startswith("affinity-") for s in out["sets"]) == 2
    assert "No such file or directory" in out["error"]
    assert out["after"] == [[], []]
