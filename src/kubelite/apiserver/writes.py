"""The write path shared by create, update, patch, apply and the subresources:
server-owned metadata, defaults, validation, managedFields, finalizers and deletion."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.apiserver.apply import FieldSet, update_managed_fields
from kubelite.apiserver.context import ServerContext, rfc3339
from kubelite.apiserver.createfields import CreateFieldsCache
from kubelite.registry import defaults, strategy, validation
from kubelite.registry.resources import ResourceInfo
from kubelite.schema.definitions import schema_for_gvk

Obj = dict[str, Any]

_CREATE_FIELDS = CreateFieldsCache()
STALE_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"
STATUS_IGNORED = FieldSet.of([("f:spec",)])
PROPAGATION_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}


@dataclass
class WriteOptions:
    manager: str = ""
    dry_run: bool = False
    subresource: str = ""
    warnings: list[str] = field(default_factory=list)


def manager_from_user_agent(ua: str) -> str:
    """Kubernetes' default field manager: the user agent up to the first '/'."""
    return (ua.split("/", 1)[0] or "unknown")[:128]


def schema_of(info: ResourceInfo) -> Any:
    if info.crd:
        return None
    return schema_for_gvk(info.group, info.version, info.kind)


def validate_or_raise(info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
    if info.crd:
        return
    causes = validation.validate(info.group, info.version, info.kind, obj, old)
    if causes:
        raise errors.invalid(info.kind, info.group, obj.get("metadata", {}).get("name", ""), causes)


def _meta_causes(obj: Obj, old: Obj | None) -> list[errors.Cause]:
    meta = obj.get("metadata") or {}
    causes: list[errors.Cause] = []
    if old is not None:
        old_meta = old.get("metadata") or {}
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                causes.append(
                    errors.Cause(
                        "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {sorted(added)!r}",
                        "metadata.finalizers",
                    )
                )
    return causes


def admit_create(ctx: ServerContext, info: ResourceInfo, obj: Obj, opts: WriteOptions) -> Obj:
    prepare_new(ctx, info, obj)
    track_managed_fields(ctx, info, None, obj, opts)
    return obj


def prepare_new(ctx: ServerContext, info: ResourceInfo, obj: Obj) -> None:
    """Server-owned metadata, defaults and validation of an object being created (every write
    path: create, and server-side apply creating)."""
    strategy.prepare_create(info, obj, ctx.now())
    if not obj["metadata"].get("name"):
        raise errors.invalid(
            info.kind,
            info.group,
            "",
            [
                errors.Cause(
                    "FieldValueRequired", "Required value: name or generateName is required", "metadata.name"
                )
            ],
        )
    if not info.crd:
        defaults.apply_defaults(info.group, info.version, info.kind, obj)
    validate_or_raise(info, obj, None)


def track_managed_fields(
    ctx: ServerContext, info: ResourceInfo, old: Obj | None, new: Obj, opts: WriteOptions
) -> None:
    """managedFields for an Update operation (after defaulting, as kube-apiserver does)."""
    if opts.subresource == "status":
        update_managed_fields(
            old,
            new,
            opts.manager,
            info.group_version,
            schema_of(info),
            ctx.now(),
            "status",
            ignored=STATUS_IGNORED,
        )
        return
    schema = schema_of(info)
    now = ctx.now()

    def compute() -> None:
        update_managed_fields(
            old,
            new,
            opts.manager,
            info.group_version,
            schema,
            now,
            opts.subresource,
            ignore_status=info.has_status,
        )

    if old is None and not opts.subresource:
        context = (opts.manager, info.group_version, info.plural, info.has_status)
        _CREATE_FIELDS.apply(context, schema, new, now, compute)
    else:
        compute()


def _strip_managed(obj: Obj) -> Obj:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    meta.pop("resourceVersion", None)
    out["metadata"] = meta
    return out


# Resources whose Kubernetes registry strategy refuses unconditional updates
# (``AllowUnconditionalUpdate() == false``): a replacement must carry the resourceVersion it read.
CONDITIONAL_UPDATES_ONLY = frozenset({("coordination.k8s.io", "leases")})


def check_resource_version(info: ResourceInfo, new: Obj, current: Obj) -> None:
    rv = (new.get("metadata") or {}).get("resourceVersion")
    if not rv and (info.group, info.plural) in CONDITIONAL_UPDATES_ONLY:
        # as the generic registry's Update says it (naming the resource, not the kind)
        name = current["metadata"].get("name", "")
        message = "Invalid value: 0x0: must be specified for an update"
        cause = errors.Cause("FieldValueInvalid", message, "metadata.resourceVersion")
        raise errors.invalid(info.plural, info.group, name, [cause])
    if rv and rv != current["metadata"]["resourceVersion"]:
        raise errors.conflict(info.plural, info.group, current["metadata"].get("name", ""), STALE_MESSAGE)


def admit_update(
    ctx: ServerContext, info: ResourceInfo, new: Obj, old: Obj, opts: WriteOptions
) -> Obj | None:
    """Prepare ``new`` replacing ``old``; returns None when the write completes a deletion."""
    if info.group == "" and info.kind == "Service" and not opts.subresource:
        # a type change allocates (or releases) the ClusterIP and node ports, as kube-apiserver's
        # service REST update does
        ctx.extra["service_allocator"].on_update(new, old, dry_run=opts.dry_run)
    prepare_replacement(info, new, old, opts)
    if _strip_managed(new) == _strip_managed(old):
        return old
    new_meta = new["metadata"]
    if "managedFields" not in new_meta and (old.get("metadata") or {}).get("managedFields"):
        new_meta["managedFields"] = orjson.loads(orjson.dumps(old["metadata"]["managedFields"]))
    track_managed_fields(ctx, info, old, new, opts)
    if not new_meta.get("managedFields"):
        new_meta.pop("managedFields", None)
    if deletion_complete(new):
        return None
    return new


def prepare_replacement(info: ResourceInfo, new: Obj, old: Obj, opts: WriteOptions) -> None:
    """Strategy, defaults and validation of ``new`` replacing ``old`` (every write path: update,
    patch, and server-side apply to an existing object)."""
    if opts.subresource == "status":
        strategy.prepare_status_update(info, new, old)
    else:
        strategy.prepare_update(info, new, old)
    if not info.crd:
        defaults.apply_defaults(info.group, info.version, info.kind, new)
    causes = _meta_causes(new, old)
    if causes:
        raise errors.invalid(info.kind, info.group, new["metadata"].get("name", ""), causes)
    if opts.subresource == "status" and not info.crd:
        status_causes = validation.validate_status_update(info.group, info.version, info.kind, new, old)
        if status_causes:
            raise errors.invalid(info.kind, info.group, new["metadata"].get("name", ""), status_causes)
    elif opts.subresource != "status":
        validate_or_raise(info, new, old)


def deletion_complete(obj: Obj) -> bool:
    """A terminating object with no finalizers left (and no grace period pending) goes away."""
    meta = obj.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not meta.get("deletionGracePeriodSeconds")


def pod_grace_period(pod: Obj, requested: int | None) -> int:
    """Pods are deleted gracefully only when a kubelet has to stop them."""
    spec = pod.get("spec") or {}
    phase = (pod.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(0, requested)
    g = spec.get("terminationGracePeriodSeconds")
    return int(g) if isinstance(g, int) and g >= 0 else 30


def check_preconditions(info: ResourceInfo, obj: Obj, pre: dict[str, Any]) -> None:
    meta = obj["metadata"]
    uid = pre.get("uid")
    if uid and uid != meta.get("uid"):
        raise errors.conflict(
            info.plural,
            info.group,
            meta.get("name", ""),
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
        )
    rv = pre.get("resourceVersion")
    if rv and rv != meta.get("resourceVersion"):
        raise errors.conflict(
            info.plural,
            info.group,
            meta.get("name", ""),
            f"Precondition failed: ResourceVersion in precondition: {rv}, "
            f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )


def _propagation(options: Obj) -> str:
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is not None:
        policy = "Orphan" if options["orphanDependents"] else "Background"
    if policy not in (None, "Foreground", "Background", "Orphan"):
        raise errors.invalid(
            "DeleteOptions",
            "",
            "",
            [
                errors.Cause(
                    "FieldValueNotSupported",
                    f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
                    "propagationPolicy",
                )
            ],
        )
    return str(policy or "")


def delete_mutation(ctx: ServerContext, info: ResourceInfo, options: Obj) -> Any:
    """A guaranteed_update mutation implementing graceful deletion and finalizers."""
    policy = _propagation(options)
    grace_req = options.get("gracePeriodSeconds")
    if grace_req is not None and not isinstance(grace_req, int):
        raise errors.BadRequest("gracePeriodSeconds must be an integer")
    pre = options.get("preconditions") or {}

    def mutate(cur: Obj) -> Obj | None:
        check_preconditions(info, cur, pre)
        meta = cur["metadata"]
        finalizers = [f for f in meta.get("finalizers") or []]
        wanted = PROPAGATION_FINALIZERS.get(policy)
        if policy:
            finalizers = [f for f in finalizers if f not in PROPAGATION_FINALIZERS.values()]
            if wanted and _has_dependents_semantics(info):
                finalizers.append(wanted)
        grace = pod_grace_period(cur, grace_req) if info.kind == "Pod" and not info.group else 0
        namespace_pending = info.kind == "Namespace" and bool((cur.get("spec") or {}).get("finalizers"))
        if meta.get("deletionTimestamp"):
            if grace == 0 and info.kind == "Pod" and not finalizers:
                return None
            meta["finalizers"] = finalizers
            if not finalizers:
                meta.pop("finalizers")
            return cur if not deletion_complete(cur) else None
        if not finalizers and grace == 0 and not namespace_pending:
            return None
        meta["deletionTimestamp"] = rfc3339(ctx.clock() + dt.timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        else:
            meta.pop("finalizers", None)
        if info.kind == "Namespace":
            cur.setdefault("status", {})["phase"] = "Terminating"
        return cur

    return mutate


def _has_dependents_semantics(info: ResourceInfo) -> bool:
    return info.persisted
