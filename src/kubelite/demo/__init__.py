"""``kubelite up --demo``: an offline volunteer-computing workload on a fresh cluster.

Builds the busybox-static image into the node agent's image store (no registry needed)
and creates the objects of ``volunteer-computing.yaml`` (a CPU-limited DaemonSet and a
parallel Indexed Job) through the API, like ``kubectl apply`` would.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import yaml

from kubelite.api import errors
from kubelite.client.base import Client, Resource

log = logging.getLogger("kubelite.demo")
MANIFEST = Path(__file__).with_name("volunteer-computing.yaml")
IMAGE = "kubelite.local/busybox:1"
RESOURCES = {
    "Namespace": Resource("", "v1", "namespaces", namespaced=False),
    "DaemonSet": Resource("apps", "v1", "daemonsets"),
    "Job": Resource("batch", "v1", "jobs"),
}


def _build_image(agent_dir: Path) -> None:
    from kubelite.agent.images import builder
    from kubelite.agent.images.importer import import_image_object
    from kubelite.agent.images.store import ImageStore

    store = ImageStore(agent_dir / "images")
    if store.get_image(IMAGE) is None:
        import_image_object(store, builder.busybox_image(), IMAGE)


class Demo:
    def __init__(self, client: Client, agent_dir: Path) -> None:
        self.client = client
        self.agent_dir = agent_dir

    async def start(self) -> None:
        await asyncio.to_thread(_build_image, self.agent_dir)
        for doc in yaml.safe_load_all(MANIFEST.read_text()):
            res = RESOURCES[doc["kind"]]
            ns = doc["metadata"].get("namespace", "")
            try:
                await self.client.create(res, ns, doc, field_manager="kubelite-demo")
            except errors.AlreadyExists:
                continue
        log.info("demo workload created namespace=science")

    async def stop(self) -> None:
        return None


async def component(client: Client, args: Any) -> Demo | None:
    if not getattr(args, "demo", False):
        return None
    from kubelite.cli import default_data_dir

    return Demo(client, (args.data_dir or default_data_dir()).resolve() / "agent")
