"""The resource metrics API, ``metrics.k8s.io/v1beta1`` (what metrics-server serves).

``GET /apis/metrics.k8s.io/v1beta1/[namespaces/<ns>/]pods[/<name>]`` answers PodMetrics
and ``.../nodes[/<name>]`` NodeMetrics, from a provider in ``ctx.extra["metrics_provider"]``:
an object with ``pod_metrics(namespace) -> list`` and ``node_metrics() -> list`` (the
simulated nodes' registry, later the node agents), or a callable returning one (or None).
Without a provider the API answers 503 ServiceUnavailable, as an aggregated API whose
backend is down does.  Label selectors filter the lists (``kubectl top pod -l ...``).
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Protocol

from kubelite.api import errors
from kubelite.api.selectors import parse_label_selector
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import Request, Send, send_json
from kubelite.apiserver.rest import Target

Obj = dict[str, Any]
GROUP_VERSION = "metrics.k8s.io/v1beta1"


class MetricsProvider(Protocol):
    def pod_metrics(self, namespace: str = "") -> list[Obj]: ...

    def node_metrics(self) -> list[Obj]: ...


def provider_of(ctx: ServerContext) -> MetricsProvider:
    found = ctx.extra.get("metrics_provider")
    if callable(found) and not hasattr(found, "pod_metrics"):
        found = found()
    if found is None:
        raise errors.ServiceUnavailable("the server is currently unable to handle the request")
    provider: MetricsProvider = found
    return provider


def _providers(ctx: ServerContext) -> list[Any]:
    """The simulator's provider (``metrics_provider``) and the node agents' one
    (``node_metrics_provider``, :mod:`kubelite.apiserver.nodemetrics`), whichever exist."""
    out: list[Any] = []
    with contextlib.suppress(errors.ServiceUnavailable):
        out.append(provider_of(ctx))
    agents = ctx.extra.get("node_metrics_provider")
    if agents is not None:
        out.append(agents)
    if not out:
        raise errors.ServiceUnavailable("the server is currently unable to handle the request")
    return out


async def _items(ctx: ServerContext, t: Target) -> list[Obj]:
    items: list[Obj] = []
    for provider in _providers(ctx):
        res = provider.pod_metrics(t.namespace) if t.info.plural == "pods" else provider.node_metrics()
        items.extend(await res if inspect.isawaitable(res) else res)
    return items


def _select(items: list[Obj], selector: str) -> list[Obj]:
    if not selector:
        return items
    sel = parse_label_selector(selector)
    return [i for i in items if sel.matches((i.get("metadata") or {}).get("labels") or {})]


async def handle(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    """GET one or a list of PodMetrics / NodeMetrics."""
    if req.method != "GET":
        raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
    items = await _items(ctx, t)
    if t.name:
        for item in items:
            if (item.get("metadata") or {}).get("name") == t.name:
                await send_json(send, 200, item)
                return
        raise errors.not_found(t.info.plural, t.info.group, t.name)
    items = _select(items, req.q("labelSelector") or "")
    body = {
        "kind": f"{t.info.kind}List",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": sorted(items, key=lambda i: ((i["metadata"].get("namespace") or ""), i["metadata"]["name"])),
    }
    await send_json(send, 200, body)


def handlers() -> dict[tuple[str, str], Any]:
    """Entries for ``ctx.extra["virtual_handlers"]``: (group, plural) -> handler."""
    return {("metrics.k8s.io", "pods"): handle, ("metrics.k8s.io", "nodes"): handle}
