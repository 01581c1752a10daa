"""Events the workload controllers record: named as client-go's recorder names them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubelite.client.base import Resource
from kubelite.machinery.events import EventRecorder

Obj = dict[str, Any]


class CreateClient:
    def __init__(self) -> None:
        self.created: list[Obj] = []

    async def create(self, resource: Resource, ns: str, body: Obj) -> Obj:
        self.created.append(body)
        return body


def test_event_names_are_object_name_dot_hex_unix_nanos_and_distinct() -> None:
    client = CreateClient()
    recorder = EventRecorder(client, "replicaset-controller")  # type: ignore[arg-type]
    rs: Obj = {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {"name": "web", "namespace": "ns"}}
    before = time.time_ns()

    async def body() -> None:
        for i in range(50):
            await recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: web-{i}")

    asyncio.run(body())
    after = time.time_ns() + 50
    names = [e["metadata"]["name"] for e in client.created]
    assert len(set(names)) == 50
    stamps = [int(n.removeprefix("web."), 16) for n in names]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after
    assert client.created[0]["involvedObject"]["name"] == "web"
