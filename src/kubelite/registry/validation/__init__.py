"""Validation of built-in API objects, as kube-apiserver's strategies run it on every write.

``validate`` is a resource's ``Validate`` (``old is None``) or ``ValidateUpdate``;
``validate_status_update`` is the ``/status`` subresource's ``ValidateUpdate`` (metadata and
the shape of status). Both return :class:`~kubelite.api.errors.Cause` lists; the caller turns a
non-empty list into a 422 with :func:`kubelite.api.errors.invalid`. Unknown kinds (custom
resources included) yield no causes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.api.errors import Cause
from kubelite.registry.validation import apps, batch, core, other
from kubelite.registry.validation.common import (
    as_dict,
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.registry.validation.field import Errs, invalid, nonnegative

__all__ = ["validate", "validate_status_update"]

Validator = Callable[[dict[str, Any], dict[str, Any] | None], Errs]


def _meta_only(namespaced: bool) -> Validator:
    def check(obj: dict[str, Any], old: dict[str, Any] | None) -> Errs:
        if old is None:
            return validate_object_meta(obj.get("metadata"), namespaced, name_is_dns_subdomain)
        return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))

    return check


_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): core.validate_pod,
    ("", "PodTemplate"): core.validate_pod_template,
    ("", "ReplicationController"): core.validate_replication_controller,
    ("", "Service"): core.validate_service,
    ("", "ConfigMap"): core.validate_config_map,
    ("", "Secret"): core.validate_secret,
    ("", "Namespace"): core.validate_namespace,
    ("", "Node"): core.validate_node,
    ("", "ServiceAccount"): core.validate_service_account,
    ("", "PersistentVolume"): core.validate_pv,
    ("", "PersistentVolumeClaim"): core.validate_pvc,
    ("", "ResourceQuota"): core.validate_resource_quota,
    ("", "LimitRange"): core.validate_limit_range,
    ("", "Endpoints"): core.validate_endpoints,
    ("", "Event"): core.validate_event,
    ("apps", "Deployment"): apps.validate_deployment,
    ("apps", "ReplicaSet"): apps.validate_replica_set,
    ("apps", "StatefulSet"): apps.validate_statefulset,
    ("apps", "DaemonSet"): apps.validate_daemonset,
    ("apps", "ControllerRevision"): apps.validate_controller_revision,
    ("batch", "Job"): batch.validate_job,
    ("batch", "CronJob"): batch.validate_cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): other.validate_hpa,
    ("policy", "PodDisruptionBudget"): other.validate_pdb,
    ("scheduling.k8s.io", "PriorityClass"): other.validate_priority_class,
    ("coordination.k8s.io", "Lease"): other.validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): other.validate_endpoint_slice,
    ("networking.k8s.io", "Ingress"): other.validate_ingress,
    ("networking.k8s.io", "IngressClass"): other.validate_ingress_class,
    ("networking.k8s.io", "NetworkPolicy"): other.validate_network_policy,
    ("rbac.authorization.k8s.io", "Role"): other.validate_role,
    ("rbac.authorization.k8s.io", "ClusterRole"): other.validate_cluster_role,
    ("rbac.authorization.k8s.io", "RoleBinding"): other.validate_role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): other.validate_cluster_role_binding,
    ("storage.k8s.io", "StorageClass"): other.validate_storage_class,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): other.validate_crd,
    ("events.k8s.io", "Event"): _meta_only(True),
    ("storage.k8s.io", "CSIDriver"): _meta_only(False),
    ("storage.k8s.io", "VolumeAttachment"): _meta_only(False),
    ("node.k8s.io", "RuntimeClass"): _meta_only(False),
}


def validate(
    group: str, version: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
) -> list[Cause]:
    """Causes that make ``obj`` invalid (for an update, ``old`` is the stored object)."""
    check = _VALIDATORS.get((group, kind))
    if check is None:
        return []
    return _dedupe(check(obj, old))


def validate_status_update(
    group: str, version: str, kind: str, obj: dict[str, Any], old: dict[str, Any]
) -> list[Cause]:
    """A ``/status`` write: metadata rules of an update plus the status counters' shape."""
    if (group, kind) not in _VALIDATORS:
        return []
    errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    if group == "apps" and kind != "ControllerRevision":
        errs.extend(apps.validate_workload_status(obj))
        errs.extend(apps.validate_collision_count(obj, old))
    elif (group, kind) == ("batch", "Job"):
        status = as_dict(obj.get("status"))
        for key in ("active", "succeeded", "failed", "ready", "terminating"):
            errs.extend(nonnegative(f"status.{key}", status.get(key)))
    elif (group, kind) == ("", "ReplicationController"):
        errs.extend(apps.validate_workload_status(obj))
    elif (group, kind) == ("", "Namespace"):
        errs.extend(_namespace_status(obj))
    return _dedupe(errs)


def _namespace_status(obj: dict[str, Any]) -> Errs:
    phase = as_dict(obj.get("status")).get("phase")
    if not as_dict(obj.get("metadata")).get("deletionTimestamp"):
        if phase != "Active":
            return [
                invalid("status.Phase", phase or "", "may only be 'Active' if `deletionTimestamp` is empty")
            ]
    elif phase != "Terminating":
        return [
            invalid(
                "status.Phase", phase or "", "may only be 'Terminating' if `deletionTimestamp` is not empty"
            )
        ]
    return []


def _dedupe(errs: Errs) -> list[Cause]:
    """``ErrorList.ToAggregate`` drops errors whose printed text repeats."""
    if len(errs) < 2:
        return errs
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errs:
        key = (e.field, e.message)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
