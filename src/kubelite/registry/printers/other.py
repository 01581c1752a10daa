"""Tables for policy, RBAC bindings, storage classes, priority classes and leases.

Mirrors ``printPodDisruptionBudget`` (MIN AVAILABLE / MAX UNAVAILABLE or ``N/A``),
``printRoleBinding`` / ``printClusterRoleBinding`` (ROLE ``Kind/name``; wide USERS,
GROUPS, SERVICEACCOUNTS ``namespace/name``), ``printStorageClass`` (``name (default)``,
reclaim policy ``Delete`` and binding mode ``Immediate`` by default),
``printPriorityClass`` and ``printLease``. Roles and cluster roles have no printer in
Kubernetes and use the default table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import (
    Obj,
    Printer,
    age,
    age_col,
    col,
    dicts,
    dig,
    doc,
    intstr,
    name_col,
    name_of,
    num,
    txt,
)

DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def _pdb_bound(obj: Obj, field: str) -> str:
    value = dig(obj, "spec", field)
    return intstr(value) if value is not None else "N/A"


PDB = Printer(
    (
        name_col(),
        col("Min Available", "string", "The minimum number of pods that must be available."),
        col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        col(
            "Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."
        ),
        age_col(),
    ),
    lambda obj, now: [
        name_of(obj),
        _pdb_bound(obj, "minAvailable"),
        _pdb_bound(obj, "maxUnavailable"),
        num(obj, "status", "disruptionsAllowed"),
        age(obj, now),
    ],
)


def subjects_strings(obj: Obj) -> tuple[str, str, str]:
    """``rbac.SubjectsStrings``: users, groups and ``namespace/name`` service accounts."""
    users, groups, sas = [], [], []
    for subject in dicts(obj, "subjects"):
        kind, name = txt(subject, "kind"), txt(subject, "name")
        if kind == "ServiceAccount":
            sas.append(f"{txt(subject, 'namespace')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def _binding_cells(obj: Obj, now: datetime) -> list[Any]:
    role = f"{txt(obj, 'roleRef', 'kind')}/{txt(obj, 'roleRef', 'name')}"
    return [name_of(obj), role, age(obj, now), *subjects_strings(obj)]


def _binding_printer(what: str, definition: str) -> Printer:
    return Printer(
        (
            name_col(),
            col("Role", "string", doc(definition, "roleRef")),
            age_col(),
            col("Users", "string", f"Users in the {what}", 1),
            col("Groups", "string", f"Groups in the {what}", 1),
            col("ServiceAccounts", "string", f"ServiceAccounts in the {what}", 1),
        ),
        _binding_cells,
    )


def is_default_class(obj: Obj) -> bool:
    return any(dig(obj, "metadata", "annotations", a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)


def _storage_class_cells(obj: Obj, now: datetime) -> list[Any]:
    name = name_of(obj) + (" (default)" if is_default_class(obj) else "")
    return [
        name,
        txt(obj, "provisioner"),
        txt(obj, "reclaimPolicy") or "Delete",
        txt(obj, "volumeBindingMode") or "Immediate",
        dig(obj, "allowVolumeExpansion") is True,
        age(obj, now),
    ]


STORAGE_CLASS = Printer(
    (
        name_col(),
        col("Provisioner", "string", doc("storage.v1.StorageClass", "provisioner")),
        col("ReclaimPolicy", "string", doc("storage.v1.StorageClass", "reclaimPolicy")),
        col("VolumeBindingMode", "string", doc("storage.v1.StorageClass", "volumeBindingMode")),
        col("AllowVolumeExpansion", "string", doc("storage.v1.StorageClass", "allowVolumeExpansion")),
        age_col(),
    ),
    _storage_class_cells,
)

PRIORITY_CLASS = Printer(
    (
        name_col(),
        col("Value", "integer", doc("scheduling.v1.PriorityClass", "value")),
        col("Global-Default", "boolean", doc("scheduling.v1.PriorityClass", "globalDefault")),
        age_col(),
        col("PreemptionPolicy", "string", doc("scheduling.v1.PriorityClass", "preemptionPolicy")),
    ),
    lambda obj, now: [
        name_of(obj),
        num(obj, "value"),
        dig(obj, "globalDefault") is True,
        age(obj, now),
        txt(obj, "preemptionPolicy"),
    ],
)

LEASE = Printer(
    (name_col(), col("Holder", "string", doc("coordination.v1.LeaseSpec", "holderIdentity")), age_col()),
    lambda obj, now: [name_of(obj), txt(obj, "spec", "holderIdentity"), age(obj, now)],
)

PRINTERS = {
    ("policy", "poddisruptionbudgets"): PDB,
    ("rbac.authorization.k8s.io", "rolebindings"): _binding_printer("roleBinding", "rbac.v1.RoleBinding"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _binding_printer(
        "clusterRoleBinding", "rbac.v1.ClusterRoleBinding"
    ),
    ("storage.k8s.io", "storageclasses"): STORAGE_CLASS,
    ("scheduling.k8s.io", "priorityclasses"): PRIORITY_CLASS,
    ("coordination.k8s.io", "leases"): LEASE,
}
