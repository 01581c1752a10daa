"""CustomResourceDefinitions: custom resources served dynamically.

The registry keeps the resource index, discovery and OpenAPI in step with the stored
CRDs (loaded at start, then followed through a store watch) and marks each CRD
``NamesAccepted`` and ``Established`` as the apiextensions server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kubelite.api import errors
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.objects import event_object
from kubelite.registry.resources import ResourceInfo, Subresource
from kubelite.schema import crd as crd_schema

log = logging.getLogger("kubelite.crds")
Obj = dict[str, Any]


def _infos(crd: Obj) -> list[ResourceInfo]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    versions = [v for v in spec.get("versions") or [] if v.get("served")]
    storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), "")
    out = []
    for v in versions:
        subs: list[Subresource] = []
        sr = v.get("subresources") or {}
        if "status" in sr:
            subs.append(Subresource("status", names.get("kind", ""), ("get", "patch", "update")))
        if "scale" in sr:
            subs.append(Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"))
        out.append(
            ResourceInfo(
                group=group,
                version=v["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(subs),
                crd=True,
                preferred=v["name"] == (versions[0]["name"] if versions else storage),
            )
        )
    return out


class CRDRegistry:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.crds: dict[str, Obj] = {}  # CRD name -> CRD
        self._task: asyncio.Task[None] | None = None
        info = ctx.index.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None
        self.info = info

    async def start(self) -> None:
        page = await self.ctx.objects.list(self.info, "")
        for crd in page.items:
            self._register(crd)
        self._task = asyncio.create_task(self._follow(page.revision), name="crd-registry")
        for crd in page.items:
            await self._establish(crd)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _follow(self, revision: int) -> None:
        while True:
            try:
                async for batch in self.ctx.objects.watch_events(self.info, "", revision):
                    for ev in batch:
                        revision = ev.revision
                        typ, obj, _ = event_object(ev)
                        await self._apply(typ, obj)
                return
            except errors.Gone:
                page = await self.ctx.objects.list(self.info, "")
                revision = page.revision
                for crd in page.items:
                    self._register(crd)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("crd watch failed; retrying")
                await asyncio.sleep(1)

    async def _apply(self, typ: str, crd: Obj) -> None:
        if typ == "DELETED":
            self._unregister(crd["metadata"]["name"])
            return
        self._register(crd)
        if (crd.get("metadata") or {}).get("deletionTimestamp"):
            await self._finish_deletion(crd)
            return
        await self._establish(crd)

    def _register(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        self._unregister(name)
        self.crds[name] = crd
        for info in _infos(crd):
            self.ctx.index.add(info)
        self._invalidate(crd)

    def _unregister(self, name: str) -> None:
        old = self.crds.pop(name, None)
        if old is None:
            return
        for info in _infos(old):
            self.ctx.index.remove(info.group, info.version, info.plural)
        self._invalidate(old)

    def _invalidate(self, crd: Obj) -> None:
        self.ctx.discovery.invalidate()
        group = (crd.get("spec") or {}).get("group", "")
        for v in (crd.get("spec") or {}).get("versions") or []:
            self.ctx.openapi.invalidate(group, v.get("name", ""))

    async def _establish(self, crd: Obj) -> None:
        conds = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
        if conds.get("Established") == "True" and conds.get("NamesAccepted") == "True":
            return
        now = self.ctx.now()

        def mutate(cur: Obj) -> Obj | None:
            names = (cur.get("spec") or {}).get("names") or {}
            status = cur.setdefault("status", {})
            status["acceptedNames"] = names
            status["storedVersions"] = [
                v["name"] for v in (cur.get("spec") or {}).get("versions") or [] if v.get("storage")
            ]
            status["conditions"] = [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ]
            return cur

        with contextlib.suppress(errors.NotFound):
            await self.ctx.objects.guaranteed_update(self.info, "", crd["metadata"]["name"], mutate)

    async def _finish_deletion(self, crd: Obj) -> None:
        """Delete every custom resource of a terminating CRD, then drop its finalizer."""
        for info in _infos(crd)[:1]:
            page = await self.ctx.objects.list(info, "")
            for obj in page.items:
                meta = obj["metadata"]
                with contextlib.suppress(errors.NotFound):
                    await self.ctx.objects.guaranteed_update(
                        info, meta.get("namespace", ""), meta["name"], lambda _c: None
                    )

        def drop(cur: Obj) -> Obj | None:
            fins = [
                f
                for f in cur["metadata"].get("finalizers") or []
                if f != "customresourcecleanup.apiextensions.k8s.io"
            ]
            cur["metadata"]["finalizers"] = fins
            if not fins:
                return None
            return cur

        with contextlib.suppress(errors.NotFound):
            await self.ctx.objects.guaranteed_update(self.info, "", crd["metadata"]["name"], drop)

    # ------------------------------------------------------------------ per-resource facts

    def crd_for(self, info: ResourceInfo) -> Obj | None:
        return self.crds.get(f"{info.plural}.{info.group}")

    def version_spec(self, info: ResourceInfo) -> Obj:
        crd = self.crd_for(info) or {}
        for v in (crd.get("spec") or {}).get("versions") or []:
            if v.get("name") == info.version:
                return dict(v)
        return {}

    def schema(self, info: ResourceInfo) -> Obj | None:
        s = (self.version_spec(info).get("schema") or {}).get("openAPIV3Schema")
        return s if isinstance(s, dict) else None

    def printer_columns(self, info: ResourceInfo) -> list[Obj]:
        return list(self.version_spec(info).get("additionalPrinterColumns") or [])

    def schemas_for(self, group: str, version: str) -> dict[str, Obj]:
        out: dict[str, Obj] = {}
        for crd in self.crds.values():
            spec = crd.get("spec") or {}
            if spec.get("group") != group:
                continue
            for v in spec.get("versions") or []:
                if v.get("name") == version and v.get("served"):
                    s = (v.get("schema") or {}).get("openAPIV3Schema") or {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                    out[(spec.get("names") or {}).get("kind", "")] = s
        return out

    def validate(self, info: ResourceInfo, obj: Obj, mode: str, warnings: list[str]) -> None:
        schema = self.schema(info)
        if schema is None:
            return
        removed = crd_schema.prune(obj, schema)
        if removed and mode == "Strict":
            raise errors.BadRequest(
                "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in removed)
            )
        if removed and mode == "Warn":
            warnings.extend(f'unknown field "{p}"' for p in removed)
        crd_schema.apply_defaults(obj, schema)
        causes = crd_schema.validate_custom_resource(obj, schema)
        if causes:
            raise errors.invalid(info.kind, info.group, (obj.get("metadata") or {}).get("name", ""), causes)
