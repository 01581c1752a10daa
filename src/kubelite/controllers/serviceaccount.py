"""ServiceAccounts controller: a ``default`` ServiceAccount in every active namespace.

Mirrors kube-controller-manager's ``serviceaccount-controller``: each namespace that is
not terminating gets the ServiceAccounts named in its list (``default``); one deleted
by a user is created again.  Since Kubernetes 1.24 no token Secret is created.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.podhealth import is_terminating
from kubelite.client.base import Client, Resource
from kubelite.machinery.informer import Informer
from kubelite.machinery.workqueue import Controller

log = logging.getLogger("kubelite.serviceaccount")
Obj = dict[str, Any]
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
MANAGED_NAMES = ("default",)


class ServiceAccountsController:
    def __init__(self, client: Client, namespaces: Informer, accounts: Informer) -> None:
        self.client = client
        self.namespaces = namespaces
        self.accounts = accounts
        self.ctrl = Controller("serviceaccount", self.reconcile, workers=1)
        namespaces.add_handler(self._on_namespace)
        accounts.add_handler(self._on_account)

    def _on_namespace(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.ctrl.queue.add(key)

    def _on_account(self, key: str, old: Obj | None, new: Obj | None) -> None:
        ns, _, name = key.partition("/")
        if new is None and name in MANAGED_NAMES:
            self.ctrl.queue.add(ns)

    async def start(self) -> None:
        for ns in list(self.namespaces.cache):
            self.ctrl.queue.add(ns)
        self.ctrl.start()

    async def stop(self) -> None:
        await self.ctrl.stop()

    async def reconcile(self, namespace: str) -> float | None:
        ns = self.namespaces.get(namespace)
        if ns is None or is_terminating(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        for name in MANAGED_NAMES:
            if self.accounts.get(f"{namespace}/{name}") is not None:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
            with contextlib.suppress(errors.AlreadyExists):
                try:
                    await self.client.create(SERVICE_ACCOUNTS, namespace, body)
                except errors.Forbidden:  # the namespace started terminating meanwhile
                    return None
                except errors.NotFound:
                    return None
            log.debug("service account created namespace=%s name=%s", namespace, name)
        return None


def new(ctx: Any) -> ServiceAccountsController:
    return ServiceAccountsController(
        ctx.client, ctx.informers.get(NAMESPACES), ctx.informers.get(SERVICE_ACCOUNTS)
    )
