"""Tables for ``apps/v1``: deployments, replica sets, stateful sets, daemon sets, revisions.

Mirrors ``printDeployment`` (READY ``ready/desired``, UP-TO-DATE, AVAILABLE),
``printReplicaSet`` (DESIRED CURRENT READY), ``printStatefulSet`` (READY
``ready/desired``), ``printDaemonSet`` (DESIRED CURRENT READY UP-TO-DATE AVAILABLE
NODE SELECTOR) and ``printControllerRevision`` (CONTROLLER ``statefulset.apps/web``).
The wide columns list the template's containers, images and selector. A missing
``spec.replicas`` reads as 1, the API default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import (
    NONE,
    Obj,
    Printer,
    age,
    age_col,
    col,
    containers_cols,
    dicts,
    dig,
    doc,
    format_label_selector,
    format_labels,
    layout_container_cells,
    lst,
    mp,
    name_col,
    name_of,
    num,
    selector_string,
    txt,
)


def _containers(obj: Obj) -> tuple[str, str]:
    return layout_container_cells(lst(obj, "spec", "template", "spec", "containers"))


def _deployment_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = _containers(obj)
    desired = num(obj, "spec", "replicas", default=1)
    return [
        name_of(obj),
        f"{num(obj, 'status', 'readyReplicas')}/{desired}",
        num(obj, "status", "updatedReplicas"),
        num(obj, "status", "availableReplicas"),
        age(obj, now),
        names,
        images,
        selector_string(dig(obj, "spec", "selector")),
    ]


DEPLOYMENT = Printer(
    (
        name_col(),
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", doc("apps.v1.DeploymentStatus", "updatedReplicas")),
        col("Available", "string", doc("apps.v1.DeploymentStatus", "availableReplicas")),
        age_col(),
        *containers_cols(),
        col("Selector", "string", doc("apps.v1.DeploymentSpec", "selector"), 1),
    ),
    _deployment_cells,
)


def _replica_set_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = _containers(obj)
    return [
        name_of(obj),
        num(obj, "spec", "replicas", default=1),
        num(obj, "status", "replicas"),
        num(obj, "status", "readyReplicas"),
        age(obj, now),
        names,
        images,
        format_label_selector(dig(obj, "spec", "selector")),
    ]


REPLICA_SET = Printer(
    (
        name_col(),
        col("Desired", "integer", doc("apps.v1.ReplicaSetSpec", "replicas")),
        col("Current", "integer", doc("apps.v1.ReplicaSetStatus", "replicas")),
        col("Ready", "integer", doc("apps.v1.ReplicaSetStatus", "readyReplicas")),
        age_col(),
        *containers_cols(),
        col("Selector", "string", doc("apps.v1.ReplicaSetSpec", "selector"), 1),
    ),
    _replica_set_cells,
)


def _stateful_set_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = _containers(obj)
    desired = num(obj, "spec", "replicas", default=1)
    return [name_of(obj), f"{num(obj, 'status', 'readyReplicas')}/{desired}", age(obj, now), names, images]


STATEFUL_SET = Printer(
    (
        name_col(),
        col("Ready", "string", "Number of the pod with ready state"),
        age_col(),
        *containers_cols(),
    ),
    _stateful_set_cells,
)


def _daemon_set_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = _containers(obj)
    return [
        name_of(obj),
        num(obj, "status", "desiredNumberScheduled"),
        num(obj, "status", "currentNumberScheduled"),
        num(obj, "status", "numberReady"),
        num(obj, "status", "updatedNumberScheduled"),
        num(obj, "status", "numberAvailable"),
        format_labels(mp(obj, "spec", "template", "spec", "nodeSelector")),
        age(obj, now),
        names,
        images,
        format_label_selector(dig(obj, "spec", "selector")),
    ]


DAEMON_SET = Printer(
    (
        name_col(),
        col("Desired", "integer", doc("apps.v1.DaemonSetStatus", "desiredNumberScheduled")),
        col("Current", "integer", doc("apps.v1.DaemonSetStatus", "currentNumberScheduled")),
        col("Ready", "integer", doc("apps.v1.DaemonSetStatus", "numberReady")),
        col("Up-to-date", "integer", doc("apps.v1.DaemonSetStatus", "updatedNumberScheduled")),
        col("Available", "integer", doc("apps.v1.DaemonSetStatus", "numberAvailable")),
        col("Node Selector", "string", doc("core.v1.PodSpec", "nodeSelector")),
        age_col(),
        *containers_cols(),
        col("Selector", "string", doc("apps.v1.DaemonSetSpec", "selector"), 1),
    ),
    _daemon_set_cells,
)


def controller_name(obj: Obj) -> str:
    """``kind.group/name`` of the controlling owner (``statefulset.apps/web``), ``<none>`` if none."""
    for ref in dicts(obj, "metadata", "ownerReferences"):
        if ref.get("controller") is not True:
            continue
        api_version = txt(ref, "apiVersion")
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        kind = txt(ref, "kind")
        if not kind and not group:
            return txt(ref, "name")
        qualified = f"{kind}.{group}" if group else kind
        return f"{qualified.lower()}/{txt(ref, 'name')}"
    return NONE


CONTROLLER_REVISION = Printer(
    (
        name_col(),
        col("Controller", "string", "Controller of the object"),
        col("Revision", "string", doc("apps.v1.ControllerRevision", "revision")),
        age_col(),
    ),
    lambda obj, now: [name_of(obj), controller_name(obj), num(obj, "revision"), age(obj, now)],
)

PRINTERS = {
    ("apps", "deployments"): DEPLOYMENT,
    ("apps", "replicasets"): REPLICA_SET,
    ("apps", "statefulsets"): STATEFUL_SET,
    ("apps", "daemonsets"): DAEMON_SET,
    ("apps", "controllerrevisions"): CONTROLLER_REVISION,
}
