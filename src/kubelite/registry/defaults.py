"""Defaulting of built-in API objects: Kubernetes 1.32's ``SetDefaults_*`` functions.

``apply_defaults`` mutates the object in place, as the API server does when it decodes a
request body (and, for a few kinds, the normalisation its strategies do before validation:
Secret ``stringData`` is folded into ``data``; Service ``clusterIP``/``clusterIPs`` and IP
families are filled in, but no cluster IP is allocated; Namespace gets the ``kubernetes``
finalizer; a Job gets its generated selector and labels).

The Job selector uses ``metadata.uid``: the caller must assign the uid *before* calling
``apply_defaults`` on create. Unknown kinds (custom resources included) are left untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.registry.defaulting import core, other, pods, workloads
from kubelite.registry.defaulting.core import normalize_secret
from kubelite.registry.quantities import canonicalize_quantities

__all__ = ["apply_defaults", "normalize_secret"]

Obj = dict[str, Any]

_DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): pods.default_pod,
    ("", "PodTemplate"): core.default_pod_template,
    ("", "ReplicationController"): core.default_replication_controller,
    ("", "Service"): core.default_service,
    ("", "Secret"): core.default_secret,
    ("", "Namespace"): core.default_namespace,
    ("", "PersistentVolume"): core.default_pv,
    ("", "PersistentVolumeClaim"): core.default_pvc,
    ("", "Endpoints"): core.default_endpoints,
    ("", "LimitRange"): core.default_limit_range,
    ("", "Node"): core.default_node,
    ("apps", "Deployment"): workloads.default_deployment,
    ("apps", "ReplicaSet"): workloads.default_replica_set,
    ("apps", "StatefulSet"): workloads.default_statefulset,
    ("apps", "DaemonSet"): workloads.default_daemonset,
    ("batch", "Job"): workloads.default_job,
    ("batch", "CronJob"): workloads.default_cronjob,
    ("scheduling.k8s.io", "PriorityClass"): other.default_priority_class,
    ("storage.k8s.io", "StorageClass"): other.default_storage_class,
    ("storage.k8s.io", "CSIDriver"): other.default_csi_driver,
    ("networking.k8s.io", "NetworkPolicy"): other.default_network_policy,
    ("discovery.k8s.io", "EndpointSlice"): other.default_endpoint_slice,
    ("rbac.authorization.k8s.io", "RoleBinding"): other.default_role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): other.default_role_binding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): other.default_crd,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): lambda o: (
        other.default_webhook_configuration(o, mutating=True)
    ),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): lambda o: (
        other.default_webhook_configuration(o, mutating=False)
    ),
}


def apply_defaults(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill in the defaults Kubernetes 1.32 sets for ``group/version, Kind=kind`` (in place);
    resource quantities are rewritten in their canonical form first."""
    canonicalize_quantities(group, version, kind, obj)
    if group == "autoscaling" and kind == "HorizontalPodAutoscaler":
        other.default_hpa(obj, version)
        return
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)
