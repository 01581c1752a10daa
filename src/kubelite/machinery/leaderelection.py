"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does.

The holder renews ``renewTime`` every ``retry_period``; a candidate takes the lease when
it has not been renewed for ``lease_duration``.  Compare-and-swap on resourceVersion makes
the takeover safe.  ``run()`` calls ``on_started`` once leading and ``on_stopped`` when the
lease is lost (the caller should stop its controllers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api import errors
from kubelite.client.base import Client, Resource

log = logging.getLogger("kubelite.leaderelection")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
Obj = dict[str, Any]


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    try:
        return dt.datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            return dt.datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None


class LeaderElector:
    def __init__(
        self,
        client: Client,
        name: str,
        identity: str,
        namespace: str = "kube-system",
        lease_duration: float = 15.0,
        retry_period: float = 2.0,
    ) -> None:
        self.client = client
        self.name = name
        self.identity = identity
        self.namespace = namespace
        self.lease_duration = lease_duration
        self.retry_period = retry_period
        self.leading = False

    def _spec(self, now: dt.datetime, acquire: Obj | None) -> Obj:
        spec: Obj = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": _fmt(now),
        }
        if acquire is not None:
            spec["acquireTime"] = _fmt(now)
            spec["leaseTransitions"] = int(acquire.get("leaseTransitions") or 0) + (
                1 if acquire.get("holderIdentity") else 0
            )
        return spec

    async def try_acquire_or_renew(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
        except errors.NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, {}),
            }
            try:
                await self.client.create(LEASES, self.namespace, body)
                return True
            except errors.AlreadyExists:
                return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder and holder != self.identity and not expired:
            return False
        lease["spec"] = {**spec, **self._spec(now, None if holder == self.identity else spec)}
        try:
            await self.client.update(LEASES, self.namespace, lease)
            return True
        except (errors.Conflict, errors.NotFound):
            return False

    async def run(
        self, on_started: Callable[[], Awaitable[None]], on_stopped: Callable[[], Awaitable[None]]
    ) -> None:
        while True:
            try:
                ok = await self.try_acquire_or_renew()
            except Exception as e:
                log.warning("lease renew failed name=%s error=%s", self.name, e)
                ok = False
            if ok and not self.leading:
                self.leading = True
                log.info("became leader lease=%s identity=%s", self.name, self.identity)
                await on_started()
            elif not ok and self.leading:
                self.leading = False
                log.warning("lost leadership lease=%s identity=%s", self.name, self.identity)
                await on_stopped()
            await asyncio.sleep(self.retry_period)
