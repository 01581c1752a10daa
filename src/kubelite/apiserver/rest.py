"""REST verbs on resources: get, list, create, update, patch, apply, delete, deletecollection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kubelite.api import errors, fieldpath, selectors
from kubelite.apiserver import bodies, patch
from kubelite.apiserver.apply import server_side_apply
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import Request, Send, send_bytes, send_json, success_status
from kubelite.apiserver.negotiation import object_representation
from kubelite.apiserver.objects import Page
from kubelite.apiserver.tableconv import TableConverter, partial_metadata
from kubelite.apiserver.writes import (
    STATUS_IGNORED,
    WriteOptions,
    admit_create,
    admit_update,
    check_resource_version,
    delete_mutation,
    deletion_complete,
    manager_from_user_agent,
    prepare_new,
    prepare_replacement,
    schema_of,
)
from kubelite.registry.resources import ResourceInfo

Obj = dict[str, Any]


def clone(obj: Obj) -> Obj:
    """A deep copy of a JSON object (orjson round trip: several times faster than deepcopy)."""
    out: Obj = orjson.loads(orjson.dumps(obj))
    return out


PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass
class Target:
    info: ResourceInfo
    namespace: str
    name: str
    subresource: str = ""


def write_options(req: Request, subresource: str = "") -> WriteOptions:
    dry = req.query.get("dryRun", [])
    for d in dry:
        if d != "All":
            raise errors.BadRequest(f'unsupported dryRun value "{d}": only "All" is supported')
    manager = req.q("fieldManager")
    if len(manager) > 128:
        raise errors.BadRequest("fieldManager: Too long: may not be more than 128 bytes")
    return WriteOptions(
        manager=manager or manager_from_user_agent(req.headers.get("user-agent", "")),
        dry_run=bool(dry),
        subresource=subresource,
        warnings=req.warnings,
    )


# ---------------------------------------------------------------- reads


def list_filter(req: Request, info: ResourceInfo) -> Any:
    """A predicate for ?labelSelector= and ?fieldSelector= (None when neither is given)."""
    label_raw = req.q("labelSelector")
    field_raw = req.q("fieldSelector")
    if not label_raw and not field_raw:
        return None
    lsel = selectors.parse_label_selector(label_raw) if label_raw else None
    fsel = fieldpath.parse_field_selector_for(field_raw, info) if field_raw else None

    def match(obj: Obj) -> bool:
        if lsel is not None and not lsel.matches((obj.get("metadata") or {}).get("labels")):
            return False
        return fsel is None or fieldpath.matches_fields(fsel, obj)

    return match


def converter(ctx: ServerContext, info: ResourceInfo) -> TableConverter:
    cols = ctx.crds.printer_columns(info) if (info.crd and ctx.crds is not None) else None
    return TableConverter(info, cols)


async def respond_object(
    ctx: ServerContext, req: Request, send: Send, info: ResourceInfo, obj: Obj, status: int = 200
) -> None:
    rep = object_representation(req.headers.get("accept", ""))
    if rep == "Table":
        conv = converter(ctx, info)
        table = conv.table(
            [obj],
            ctx.clock(),
            req.q("includeObject", "Metadata"),
            {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
        )
        await send_json(send, status, table, req.warnings)
    elif rep == "PartialObjectMetadata":
        await send_json(send, status, partial_metadata(obj), req.warnings)
    else:
        await send_json(send, status, obj, req.warnings)


async def get(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    obj = await ctx.objects.get(t.info, t.namespace, t.name)
    await respond_object(ctx, req, send, t.info, obj)


def _list_revision(req: Request) -> int:
    rv = req.q("resourceVersion")
    match = req.q("resourceVersionMatch")
    if match not in ("", "Exact", "NotOlderThan"):
        raise errors.BadRequest(f'unsupported resourceVersionMatch "{match}"')
    if not rv or rv == "0":
        if match == "Exact":
            raise errors.BadRequest("resourceVersionMatch: Exact requires a non-zero resourceVersion")
        return 0
    try:
        n = int(rv)
    except ValueError as e:
        raise errors.BadRequest(f'invalid resourceVersion "{rv}"') from e
    return n if match == "Exact" else 0


async def list_page(ctx: ServerContext, req: Request, t: Target) -> Page:
    limit = req.q_int("limit")
    if limit < 0:
        raise errors.BadRequest("limit must not be negative")
    return await ctx.objects.list(
        t.info,
        t.namespace,
        match=list_filter(req, t.info),
        limit=limit,
        continue_token=req.q("continue"),
        revision=_list_revision(req),
    )


def _list_meta(page: Page) -> Obj:
    meta: Obj = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        meta["continue"] = page.continue_token
        if page.remaining:
            meta["remainingItemCount"] = page.remaining
    return meta


async def list_(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    page = await list_page(ctx, req, t)
    rep = object_representation(req.headers.get("accept", ""))
    meta = _list_meta(page)
    if rep == "Table":
        conv = converter(ctx, t.info)
        body: Obj = conv.table(page.items, ctx.clock(), req.q("includeObject", "Metadata"), meta)
        await send_json(send, 200, body, req.warnings)
        return
    if rep in ("PartialObjectMetadata", "PartialObjectMetadataList"):
        body = {
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": [partial_metadata(o) for o in page.items],
        }
        await send_json(send, 200, body, req.warnings)
        return
    head = orjson.dumps({"kind": t.info.list_kind, "apiVersion": t.info.group_version, "metadata": meta})
    items = page.encoded_items()
    await send_bytes(send, 200, head[:-1] + b',"items":[' + items + b"]}", warnings=req.warnings)


# ---------------------------------------------------------------- writes


def check_body(
    ctx: ServerContext, info: ResourceInfo, obj: Obj, mode: str, warnings: list[str], raw: bytes | None = None
) -> None:
    """Types, unknown fields (per fieldValidation) and, for custom resources, the CRD schema."""
    if info.crd:
        if ctx.crds is not None:
            ctx.crds.validate(info, obj, mode, warnings)
        return
    if not raw or raw.lstrip()[:1] != b"{" or _reencodes_to(obj, raw):
        raw = None  # not JSON, or JSON without a duplicate key: no second parse to find them
    bodies.check_fields(info, obj, mode, warnings, raw)


def check_patched(ctx: ServerContext, info: ResourceInfo, patched: Obj, cur: Obj, mode: str) -> None:
    """:func:`check_body` of a patch result (kube-apiserver decodes the patched JSON strictly).

    The fields the patch left as they were are the stored object's, which passed this check
    when they were written: only the top-level fields whose JSON differs are walked (a status
    patch does not re-check the spec).  Anything found there (a type error, an unknown
    field to warn about or drop) goes through the full check, so messages and pruning are
    exactly those of checking the whole object."""
    if info.crd:
        check_body(ctx, info, patched, mode, [])
        return
    changed = {k: v for k, v in patched.items() if not _same_json(cur.get(k, _ABSENT), v)}
    if changed and not bodies.passes_field_check(info, changed):
        check_body(ctx, info, patched, mode, [])


_ABSENT = object()


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, types included (``1``, ``1.0`` and ``true`` all differ)."""
    if a is b:
        return True
    if a is _ABSENT or type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        return bool(orjson.dumps(a) == orjson.dumps(b))
    return bool(a == b)


def _reencodes_to(obj: Obj, raw: bytes) -> bool:
    """True when ``raw`` is exactly the compact encoding of the object parsed from it (what
    kubectl and most clients send).  It then has no duplicate key: a duplicate is dropped
    by parsing, and no encoding of an object repeats a key."""
    return orjson.dumps(obj) == raw


async def _ensure_namespace(ctx: ServerContext, info: ResourceInfo, namespace: str, name: str = "") -> None:
    if not info.namespaced:
        return
    ns_info = ctx.index.get("", "v1", "namespaces")
    assert ns_info is not None
    try:
        ns = await ctx.objects.get(ns_info, "", namespace)
    except errors.NotFound as e:
        raise errors.NotFound(
            f'namespaces "{namespace}" not found', errors.StatusDetails(name=namespace, kind="namespaces")
        ) from e
    if (ns.get("metadata") or {}).get("deletionTimestamp"):
        raise errors.Forbidden(
            f'{info.qualified} "{name}" is forbidden: unable to create new content in namespace '
            f"{namespace} because it is being terminated",
            errors.StatusDetails(
                name=name,
                kind=info.plural,
                group=info.group,
                causes=[
                    errors.Cause(
                        "NamespaceTerminating",
                        f"namespace {namespace} is being terminated",
                        "metadata.namespace",
                    )
                ],
            ),
        )


def _check_namespace_of_body(t: Target, obj: Obj) -> None:
    meta = obj["metadata"]
    if t.info.namespaced:
        ns = meta.get("namespace")
        if ns and ns != t.namespace:
            raise errors.BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = t.namespace
    else:
        meta.pop("namespace", None)


async def create_object(
    ctx: ServerContext, info: ResourceInfo, namespace: str, obj: Obj, opts: WriteOptions
) -> Obj:
    t = Target(info, namespace, "")
    _check_namespace_of_body(t, obj)
    admit_create(ctx, info, obj, opts)
    await _ensure_namespace(ctx, info, namespace, obj["metadata"]["name"])
    hooks = ctx.extra.get("create_hooks", {}).get((info.group, info.kind))
    if hooks is not None:
        await hooks(ctx, obj, opts)
    if opts.dry_run:
        existing = await ctx.objects.get_kv(info, namespace, obj["metadata"]["name"])
        if existing is not None:
            raise errors.already_exists(info.plural, info.group, obj["metadata"]["name"])
        return obj
    return await ctx.objects.create(info, obj)


async def create(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    opts = write_options(req)
    raw = await req.body()
    obj = bodies.parse_object(raw, req.content_type)
    bodies.check_type_meta(t.info, obj)
    if not bodies.is_protobuf_body(req.content_type):
        check_body(
            ctx, t.info, obj, bodies.field_validation_mode(req.q("fieldValidation")), req.warnings, raw
        )
    if (obj.get("metadata") or {}).get("resourceVersion"):
        # kube-apiserver's storage refuses this (ErrResourceVersionSetOnCreate); a 400, not its 500
        raise errors.BadRequest("resourceVersion should not be set on objects to be created")
    created = await create_object(ctx, t.info, t.namespace, obj, opts)
    await respond_object(ctx, req, send, t.info, created, 201)


async def update(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    opts = write_options(req, t.subresource)
    raw = await req.body()
    new = bodies.parse_object(raw, req.content_type)
    bodies.check_type_meta(t.info, new)
    if not bodies.is_protobuf_body(req.content_type):
        check_body(
            ctx, t.info, new, bodies.field_validation_mode(req.q("fieldValidation")), req.warnings, raw
        )
    name = new["metadata"].get("name")
    if name != t.name:
        raise errors.BadRequest(
            f"the name of the object ({name}) does not match the name on the URL ({t.name})"
        )
    _check_namespace_of_body(t, new)
    # admission changes the body: the first attempt takes it as it is, a retry after a lost
    # compare-and-swap a fresh copy (encoding now is cheaper than copying on every attempt)
    pristine = orjson.dumps(new)
    attempts = 0

    def mutate(cur: Obj) -> Obj | None:
        nonlocal attempts
        attempts += 1
        body = new if attempts == 1 else orjson.loads(pristine)
        check_resource_version(t.info, body, cur)
        return admit_update(ctx, t.info, body, cur, opts)

    out = await ctx.objects.update_object(t.info, t.namespace, t.name, mutate, dry_run=opts.dry_run)
    await respond_object(ctx, req, send, t.info, out)


def apply_patch(info: ResourceInfo, cur: Obj, body: Any, content_type: str) -> Obj:
    if content_type == "application/json-patch+json":
        result = patch.apply_json_patch(cur, body)
    elif content_type == "application/merge-patch+json":
        result = patch.apply_merge_patch(cur, body)
    else:
        if info.crd:
            raise errors.UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            )
        if not isinstance(body, dict):
            raise errors.BadRequest("a strategic merge patch must be a JSON object")
        result = patch.apply_strategic_merge_patch(cur, body, schema_of(info))
    if not isinstance(result, dict):
        raise errors.BadRequest("the patch did not produce a JSON object")
    return result


async def patch_(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    ct = req.content_type
    if ct not in PATCH_TYPES:
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}"
        )
    opts = write_options(req, t.subresource)
    raw = await req.body()
    body = bodies.parse_document(raw, ct)
    if ct == "application/apply-patch+yaml":
        await _server_side_apply(ctx, req, send, t, body, opts)
        return
    mode = bodies.field_validation_mode(req.q("fieldValidation"))

    def mutate(cur: Obj) -> Obj | None:
        patched = apply_patch(t.info, clone(cur), body, ct)
        bodies.check_type_meta(t.info, patched)
        check_patched(ctx, t.info, patched, cur, mode)
        meta = patched["metadata"]
        if meta.get("name") != t.name:
            raise errors.BadRequest("the name of the object may not be changed by a patch")
        check_resource_version(t.info, patched, cur)
        _check_namespace_of_body(t, patched)
        return admit_update(ctx, t.info, patched, cur, opts)

    out = await ctx.objects.update_object(t.info, t.namespace, t.name, mutate, dry_run=opts.dry_run)
    await respond_object(ctx, req, send, t.info, out)


async def _server_side_apply(
    ctx: ServerContext, req: Request, send: Send, t: Target, body: Any, opts: WriteOptions
) -> None:
    if not isinstance(body, dict):
        raise errors.BadRequest("an apply patch must be a single object")
    if not req.q("fieldManager"):
        raise errors.BadRequest("PATCH requests with Apply content type must include a fieldManager")
    bodies.check_type_meta(t.info, body)
    check_body(ctx, t.info, body, bodies.field_validation_mode(req.q("fieldValidation")), req.warnings)
    if body["metadata"].get("name", t.name) != t.name:
        raise errors.BadRequest("the name of the object in the body does not match the name on the URL")
    body["metadata"]["name"] = t.name
    _check_namespace_of_body(t, body)
    force = req.q_bool("force")
    schema = schema_of(t.info)

    def do_apply(live: Obj | None) -> Obj:
        if opts.subresource == "status":
            return server_side_apply(
                live,
                body,
                opts.manager,
                t.info.group_version,
                schema,
                force,
                ctx.now(),
                "status",
                ignored=STATUS_IGNORED,
            )
        return server_side_apply(
            live,
            body,
            opts.manager,
            t.info.group_version,
            schema,
            force,
            ctx.now(),
            opts.subresource,
            ignore_status=t.info.has_status,
        )

    existing = await ctx.objects.get_kv(t.info, t.namespace, t.name)
    if existing is None:
        if t.subresource:
            raise errors.not_found(t.info.plural, t.info.group, t.name)
        obj = do_apply(None)
        managed = obj["metadata"].get("managedFields")
        prepare_new(ctx, t.info, obj)
        if managed is not None:
            obj["metadata"]["managedFields"] = managed
        await _ensure_namespace(ctx, t.info, t.namespace, t.name)
        created = obj if opts.dry_run else await ctx.objects.create(t.info, obj)
        await respond_object(ctx, req, send, t.info, created, 201)
        return

    def mutate(cur: Obj) -> Obj | None:
        applied = do_apply(clone(cur))
        managed = applied["metadata"].get("managedFields")
        prepare_replacement(t.info, applied, cur, opts)
        if managed is not None:
            applied["metadata"]["managedFields"] = managed
        return None if deletion_complete(applied) else applied

    out = await ctx.objects.update_object(t.info, t.namespace, t.name, mutate, dry_run=opts.dry_run)
    await respond_object(ctx, req, send, t.info, out)


async def delete(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    raw = await req.body()
    options: Obj = {}
    if raw.strip():
        doc = bodies.parse_document(raw, req.content_type or "application/json")
        if not isinstance(doc, dict):
            raise errors.BadRequest("DeleteOptions must be a JSON object")
        options = doc
    for key in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        if req.q(key):
            options[key] = int(req.q(key)) if key == "gracePeriodSeconds" else req.q(key)
    dry = bool(req.query.get("dryRun")) or bool(options.get("dryRun"))
    mutate = delete_mutation(ctx, t.info, options)
    old, new = await ctx.objects.guaranteed_update(t.info, t.namespace, t.name, mutate, dry_run=dry)
    if new is old:
        await respond_object(ctx, req, send, t.info, old)
        return
    await respond_object(ctx, req, send, t.info, new)


async def delete_collection(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    page = await ctx.objects.list(t.info, t.namespace, match=list_filter(req, t.info))
    raw = await req.body()
    options: Obj = {}
    if raw.strip():
        doc = bodies.parse_document(raw, req.content_type or "application/json")
        if isinstance(doc, dict):
            options = doc
    dry = bool(req.query.get("dryRun"))
    mutate = delete_mutation(ctx, t.info, options)
    deleted: list[Obj] = []
    for obj in page.items:
        meta = obj["metadata"]
        try:
            _, out = await ctx.objects.guaranteed_update(
                t.info, meta.get("namespace", ""), meta["name"], mutate, dry_run=dry
            )
            deleted.append(out)
        except errors.NotFound:
            continue
    body = {
        "kind": t.info.list_kind,
        "apiVersion": t.info.group_version,
        "metadata": {"resourceVersion": str(ctx.objects.revision)},
        "items": deleted,
    }
    await send_json(send, 200, body, req.warnings)


__all__ = [
    "Target",
    "create",
    "create_object",
    "delete",
    "delete_collection",
    "get",
    "list_",
    "patch_",
    "success_status",
    "update",
]
