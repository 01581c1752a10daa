"""Subresources: status, scale, pods/binding, pods/eviction, namespaces/finalize,
the streaming ones (log, exec, attach, portforward) and the access reviews."""

from __future__ import annotations

import copy
from typing import Any

from kubelite.api import errors, selectors
from kubelite.apiserver import bodies, rest
from kubelite.apiserver.context import ServerContext
from kubelite.apiserver.http import Request, Send, send_json, success_status
from kubelite.apiserver.rest import Target
from kubelite.apiserver.writes import WriteOptions, admit_update, check_resource_version, delete_mutation
from kubelite.registry.resources import ResourceInfo

Obj = dict[str, Any]


# ------------------------------------------------------------------ scale


def _scale_of(info: ResourceInfo, obj: Obj) -> Obj:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    sel = spec.get("selector")
    if info.kind == "ReplicationController":
        selector = ",".join(f"{k}={v}" for k, v in sorted((sel or {}).items()))
    else:
        selector = selectors.selector_to_string(sel or {})
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int(spec.get("replicas") or 0)},
        "status": {"replicas": int(status.get("replicas") or 0), "selector": selector},
    }


async def scale(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    if req.method == "GET":
        obj = await ctx.objects.get(t.info, t.namespace, t.name)
        await send_json(send, 200, _scale_of(t.info, obj))
        return
    opts = rest.write_options(req, "scale")
    raw = await req.body()
    if req.method == "PUT":
        body = bodies.parse_object(raw, req.content_type)
    else:
        body = bodies.parse_document(raw, req.content_type)
    ct = req.content_type

    def mutate(cur: Obj) -> Obj | None:
        current_scale = _scale_of(t.info, cur)
        if req.method == "PUT":
            new_scale = body
        else:
            if ct == "application/apply-patch+yaml":
                raise errors.UnsupportedMediaType("server-side apply to /scale is not supported")
            new_scale = rest.apply_patch(
                t.info,
                copy.deepcopy(current_scale),
                body,
                "application/merge-patch+json" if "strategic" in ct else ct,
            )
        if not isinstance(new_scale, dict):
            raise errors.BadRequest("the body must be a Scale object")
        rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            check_resource_version(t.info, {"metadata": {"resourceVersion": rv}}, cur)
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                "autoscaling",
                t.name,
                [
                    errors.Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                        "spec.replicas",
                    )
                ],
            )
        new = copy.deepcopy(cur)
        new.setdefault("spec", {})["replicas"] = replicas
        return admit_update(ctx, t.info, new, cur, WriteOptions(opts.manager, opts.dry_run, ""))

    out = await ctx.objects.update_object(t.info, t.namespace, t.name, mutate, dry_run=opts.dry_run)
    await send_json(send, 200, _scale_of(t.info, out))


# ------------------------------------------------------------------ binding


async def bind(ctx: ServerContext, req: Request, send: Send, namespace: str, pod_name: str) -> None:
    body = bodies.parse_object(await req.body(), req.content_type)
    target = body.get("target") or {}
    node = target.get("name")
    if not node:
        raise errors.invalid(
            "Binding", "", pod_name, [errors.Cause("FieldValueRequired", "Required value", "target.name")]
        )
    name = pod_name or (body.get("metadata") or {}).get("name", "")
    pods = ctx.index.get("", "v1", "pods")
    assert pods is not None

    def mutate(cur: Obj) -> Obj | None:
        spec = cur.setdefault("spec", {})
        if cur["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", "", name, "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict(
                "pods", "", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
            )
        spec["nodeName"] = node
        status = cur.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append(
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": ctx.now()}
        )
        status["conditions"] = conds
        return cur

    await ctx.objects.update_object(pods, namespace, name, mutate)
    await send_json(send, 201, success_status())


# ------------------------------------------------------------------ eviction


async def evict(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    body = bodies.parse_object(await req.body(), req.content_type)
    checker = ctx.extra.get("eviction_check")
    pod = await ctx.objects.get(t.info, t.namespace, t.name)
    if checker is not None:
        await checker(ctx, pod)
    options = body.get("deleteOptions") or {}
    mutate = delete_mutation(ctx, t.info, options)
    await ctx.objects.update_object(t.info, t.namespace, t.name, mutate)
    await send_json(send, 201, success_status())


# ------------------------------------------------------------------ namespaces/finalize


async def finalize(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    body = bodies.parse_object(await req.body(), req.content_type)
    finalizers = list((body.get("spec") or {}).get("finalizers") or [])

    def mutate(cur: Obj) -> Obj | None:
        cur.setdefault("spec", {})["finalizers"] = finalizers
        if not finalizers:
            cur["spec"].pop("finalizers")
            meta = cur["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                return None
        return cur

    out = await ctx.objects.update_object(t.info, "", t.name, mutate)
    await send_json(send, 200, out)


# ------------------------------------------------------------------ streams


async def stream(ctx: ServerContext, req: Request, send: Send, t: Target) -> None:
    pod = await ctx.objects.get(t.info, t.namespace, t.name)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.BadRequest(f"pod {t.name} does not have a host assigned")
    if ctx.node_proxy is None:
        raise errors.ServiceUnavailable(
            f'no node agent is serving node "{node}": cannot {t.subresource} pod {t.name}'
        )
    await ctx.node_proxy.handle(ctx, req, send, t, pod)


# ------------------------------------------------------------------ reviews


def _all_rules() -> Obj:
    return {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False,
    }


async def review(ctx: ServerContext, req: Request, send: Send, info: ResourceInfo) -> None:
    body = bodies.parse_object(await req.body(), req.content_type)
    bodies.check_type_meta(info, body)
    user = req.user
    if info.kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        body["status"] = {
            "allowed": user == "admin" or user.startswith("system:"),
            "reason": "kubelite: the admin may do everything" if user == "admin" else "",
        }
    elif info.kind == "SelfSubjectRulesReview":
        body["status"] = _all_rules()
    elif info.kind == "SelfSubjectReview":
        body["status"] = {
            "userInfo": {"username": user, "groups": ["system:masters", "system:authenticated"]}
        }
    elif info.kind == "TokenReview":
        token = (body.get("spec") or {}).get("token", "")
        who = ctx.tokens.get(token)
        body["status"] = {"authenticated": who is not None, **({"user": {"username": who}} if who else {})}
    body.setdefault("metadata", {})["creationTimestamp"] = None
    await send_json(send, 201, body)
