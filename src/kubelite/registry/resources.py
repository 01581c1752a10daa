"""The table of served resources: one row per resource, data over code.

Short names, categories, scopes, verbs and subresources are those a real 1.32
kube-apiserver advertises in discovery.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""  # response kind's group ('' = same as the parent's)
    version: str = ""  # response kind's version ('' = same as the parent's)


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    subresources: tuple[Subresource, ...] = ()
    # extra field selectors beyond metadata.name / metadata.namespace
    field_selectors: tuple[str, ...] = ()
    # storage: versions of one resource share one storage key space
    storage_resource: str = ""  # '' = plural
    storage_group: str = "\0"  # '\0' = group
    # objects are persisted (False for virtual resources such as reviews)
    persisted: bool = True
    # served but removed in 1.32 (extensions/v1beta1 ...): requests get 404 like a real server
    crd: bool = False  # a custom resource (from a CustomResourceDefinition)
    preferred: bool = True  # the preferred version of its group

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @functools.cached_property
    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    @property
    def storage_prefix(self) -> str:
        """Key prefix in the store: /registry/<group or core>/<resource>/."""
        g = self.group if self.storage_group == "\0" else self.storage_group
        return f"/registry/{g or 'core'}/{self.storage_resource or self.plural}/"

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``: the name used in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, ("get", "patch", "update"))


def _scale() -> Subresource:
    return Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    subs: tuple[Subresource, ...] = (),
    verbs: tuple[str, ...] = STANDARD_VERBS,
    fields: tuple[str, ...] = (),
    persisted: bool = True,
    preferred: bool = True,
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        verbs=verbs,
        subresources=subs,
        field_selectors=fields,
        persisted=persisted,
        preferred=preferred,
    )


_NO_COLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")

POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
)
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

CORE: tuple[ResourceInfo, ...] = (
    _r("", "v1", "Binding", "bindings", verbs=("create",), persisted=False),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _r("", "v1", "Event", "events", short=("ev",), fields=EVENT_FIELDS),
    _r("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _r(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short=("ns",),
        subs=(Subresource("finalize", "Namespace", ("update",)), _status("Namespace")),
        verbs=_NO_COLLECTION,
        fields=("status.phase",),
    ),
    _r(
        "",
        "v1",
        "Node",
        "nodes",
        namespaced=False,
        short=("no",),
        subs=(
            Subresource("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")),
            _status("Node"),
        ),
        fields=("spec.unschedulable",),
    ),
    _r(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short=("pvc",),
        subs=(_status("PersistentVolumeClaim"),),
    ),
    _r(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        namespaced=False,
        short=("pv",),
        subs=(_status("PersistentVolume"),),
    ),
    _r(
        "",
        "v1",
        "Pod",
        "pods",
        short=("po",),
        cats=("all",),
        subs=(
            Subresource("attach", "PodAttachOptions", ("create", "get")),
            Subresource("binding", "Binding", ("create",)),
            Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
            Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
            Subresource("exec", "PodExecOptions", ("create", "get")),
            Subresource("log", "Pod", ("get",)),
            Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
            Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
            Subresource("resize", "Pod", ("get", "patch", "update")),
            _status("Pod"),
        ),
        fields=POD_FIELDS,
    ),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        short=("rc",),
        cats=("all",),
        subs=(_scale(), _status("ReplicationController")),
        fields=("status.replicas",),
    ),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), subs=(_status("ResourceQuota"),)),
    _r("", "v1", "Secret", "secrets", fields=("type",)),
    _r(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        short=("sa",),
        subs=(Subresource("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),),
    ),
    _r(
        "",
        "v1",
        "Service",
        "services",
        short=("svc",),
        cats=("all",),
        subs=(
            Subresource("proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")),
            _status("Service"),
        ),
        verbs=_NO_COLLECTION,
        fields=("spec.clusterIP", "spec.type"),
    ),
)

APPS = (
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), cats=("all",), subs=(_status("DaemonSet"),)),
    _r(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        cats=("all",),
        subs=(_scale(), _status("Deployment")),
    ),
    _r(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        cats=("all",),
        subs=(_scale(), _status("ReplicaSet")),
        fields=("status.replicas",),
    ),
    _r(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        cats=("all",),
        subs=(_scale(), _status("StatefulSet")),
    ),
)

OTHER = (
    _r("events.k8s.io", "v1", "Event", "events", short=("ev",)),
    _r(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        namespaced=False,
        verbs=("create",),
        persisted=False,
    ),
    _r(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        namespaced=False,
        verbs=("create",),
        persisted=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        verbs=("create",),
        persisted=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=("create",),
        persisted=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        namespaced=False,
        verbs=("create",),
        persisted=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        namespaced=False,
        verbs=("create",),
        persisted=False,
    ),
    _r(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        cats=("all",),
        subs=(_status("HorizontalPodAutoscaler"),),
    ),
    _r(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        cats=("all",),
        subs=(_status("HorizontalPodAutoscaler"),),
        preferred=False,
    ),
    _r("batch", "v1", "CronJob", "cronjobs", short=("cj",), cats=("all",), subs=(_status("CronJob"),)),
    _r("batch", "v1", "Job", "jobs", cats=("all",), subs=(_status("Job"),), fields=("status.successful",)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), subs=(_status("Ingress"),)),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    _r(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short=("pdb",),
        subs=(_status("PodDisruptionBudget"),),
    ),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=("sc",)),
    _r(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short=("crd", "crds"),
        cats=("api-extensions",),
        subs=(_status("CustomResourceDefinition"),),
    ),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False, short=("pc",)),
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
)

# The resource metrics API: an aggregated API in Kubernetes (metrics-server), so not part
# of the built-in table (no built-in OpenAPI schema); the API server adds these to its
# index at start and serves them from kubelite.apiserver.metrics.
METRICS: tuple[ResourceInfo, ...] = (
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=("get", "list"), persisted=False),
    _r(
        "metrics.k8s.io",
        "v1beta1",
        "NodeMetrics",
        "nodes",
        namespaced=False,
        verbs=("get", "list"),
        persisted=False,
    ),
)

# Group order as a real kube-apiserver lists them in /apis.
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
)

BUILTIN: tuple[ResourceInfo, ...] = CORE + APPS + OTHER

# API versions Kubernetes served once and 1.32 no longer does: a request gets 404 and
# kubectl says `no matches for kind "Deployment" in version "extensions/v1beta1"`.
REMOVED_GROUP_VERSIONS = frozenset(
    {
        "extensions/v1beta1",
        "apps/v1beta1",
        "apps/v1beta2",
        "policy/v1beta1",
        "batch/v1beta1",
        "autoscaling/v2beta1",
        "autoscaling/v2beta2",
        "networking.k8s.io/v1beta1",
        "rbac.authorization.k8s.io/v1beta1",
        "storage.k8s.io/v1beta1",
        "apiextensions.k8s.io/v1beta1",
        "scheduling.k8s.io/v1beta1",
        "coordination.k8s.io/v1beta1",
        "discovery.k8s.io/v1beta1",
        "events.k8s.io/v1beta1",
        "flowcontrol.apiserver.k8s.io/v1beta2",
    }
)


@dataclass
class ResourceIndex:
    """Lookup of resources by group/version/plural and by kind; CRDs are added at run time."""

    resources: list[ResourceInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceInfo] = {}
        for r in list(self.resources):
            self._index(r)

    def _index(self, r: ResourceInfo) -> None:
        self._by_path[(r.group, r.version, r.plural)] = r
        self._by_kind[(r.group, r.version, r.kind)] = r

    def add(self, r: ResourceInfo) -> None:
        self.remove(r.group, r.version, r.plural)
        self.resources.append(r)
        self._index(r)

    def remove(self, group: str, version: str, plural: str) -> None:
        old = self._by_path.pop((group, version, plural), None)
        if old is not None:
            self.resources.remove(old)
            self._by_kind.pop((old.group, old.version, old.kind), None)

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_kind.get((group, version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions, preferred first, groups in discovery order."""
        out: dict[str, list[str]] = {}
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        for r in sorted(self.resources, key=lambda r: (order.get(r.group, len(order)), r.group)):
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                if r.preferred:
                    versions.insert(0, r.version)
                else:
                    versions.append(r.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return sorted(
            (r for r in self.resources if r.group == group and r.version == version),
            key=lambda r: r.plural,
        )


def builtin_index() -> ResourceIndex:
    return ResourceIndex(list(BUILTIN))
