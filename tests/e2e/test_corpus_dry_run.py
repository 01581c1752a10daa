"""``kubectl apply --dry-run=server -f`` for every Kubernetes manifest in the shared corpus.

The expected outcome of each file is written down below and is what a real kube-apiserver
1.32 (single-stack IPv4, default admission plugins, no CRDs installed) answers:

* ``"ok"``: every object in the file is accepted (``created (server dry run)``).
* any other string: kubectl fails and its output contains that text.

What is *not* fed to kubectl, and why (see ``_excluded``):

* Helm templates (``{{`` in a ``templates/`` folder), Helm ``Chart.yaml``/``values.yaml``:
  not Kubernetes objects until rendered.
* Docker Compose files and the awesome-compose config files (Prometheus, Grafana).
* Kustomize ``kustomization.yaml`` files.
* Seccomp profiles (``seccomp/profiles/*.json``): data for the node, not API objects.

Namespaces: the documentation these files come from tells the user to create the namespace
first (``kubectl create namespace qos-example``; the kube-demo repo ships ``namespace.yml``
for ``monitoring``). The test mirrors that user: it creates those namespaces for real before the
dry runs. The ServiceAccount ``build-robot`` that ``pod-projected-svc-token.yaml`` names is
created the same way (the docs create it first; kube-apiserver's ServiceAccount admission would
reject the Pod without it).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.e2e.conftest import Cluster
from tests.paths import CORPUS as SHARED_CORPUS

pytestmark = pytest.mark.e2e

CORPUS = SHARED_CORPUS
BATCH = 16  # accepted files per kubectl run
WEB = "kubernetes__website/content/en/examples/"
EMPTY_FILE = "kvietmeier__k8s-supporting-folding-at-home/service_acct/serviceaccount.yaml"


def _no_match(kind: str, version: str) -> str:
    return f'no matches for kind "{kind}" in version "{version}"'


def _unknown(field: str) -> str:
    return f'strict decoding error: unknown field "{field}"'


ARGO_WORKFLOWS = [
    "arguments-parameters",
    "coinflip-recursive",
    "coinflip",
    "conditionals-complex",
    "conditionals",
    "continue-on-fail",
    "daemon-nginx",
    "daemon-step",
    "dag-coinflip",
    "dag-continue-on-fail",
    "dag-diamond-steps",
    "dag-diamond",
    "dag-enhanced-depends",
    "dag-multiroot",
    "dag-nested",
    "dag-targets",
    "exit-handlers",
    "forever",
    "global-parameters",
    "hello-world",
    "init-container",
    "k8s-jobs",
    "loops-dag",
    "loops-maps",
    "loops-param-argument",
    "loops-param-result",
    "loops-sequence",
    "loops",
    "node-selector",
    "output-parameter",
    "parallelism-limit",
    "pod-resources",
    "retry-backoff",
    "retry-container",
    "scripts-bash",
    "scripts-python",
    "secrets",
    "sidecar-nginx",
    "sidecar",
    "steps",
    "suspend-template",
    "timeouts-step",
    "timeouts-workflow",
    "volumes-emptydir",
    "volumes-pvc",
    "workflow-template/workflow-template-ref",
]

OK_FILES = [
    "Slingshot-Simulations__Boinc-K8-RosettaAtHome/boinc.yaml",
    "cstradtman__kube-demo/example.yaml",
    "cstradtman__kube-demo/milkyway.yaml",
    "cstradtman__kube-demo/world-community-grid.yaml",
    "cstradtman__kube-demo/history/001f363-deployment/rosetta.yaml",
    "cstradtman__kube-demo/history/001f363-deployment/world-community-grid.yaml",
    "cstradtman__kube-demo/history/328afa9-daemonset/rosetta.yaml",
    "cstradtman__kube-demo/history/328afa9-daemonset/world-community-grid.yaml",
    "cstradtman__kube-demo/history/8d74def/prometheus/config-map.yml",
    "cstradtman__kube-demo/history/8d74def/prometheus/namespace.yml",
    "cstradtman__kube-demo/history/8d74def/prometheus/prometheus-deployment.yml",
    "jgrumboe__folding-at-home-on-kubernetes/deploy/apply/deployment.yaml",
    "kvietmeier__k8s-supporting-folding-at-home/kubernetes/deployment.yaml",
    "marcinbojko__k8s-fah/folding.yaml",
    "tmcsantos__k8s-boinc/base/deployment.yaml",
    "tmcsantos__k8s-boinc/scienceunited/namespace.yaml",
    "wind0r__k8s-supporting-folding-at-home/kubernetes/daemonset.yaml",
    "wind0r__k8s-supporting-folding-at-home/kubernetes/serviceaccount.yaml",
    *(
        f"{repo}/{name}.yaml"
        for repo in ("richstokes__k8s-fah", "richstokes__k8s-folding-at-home")
        for name in (
            "folding-cpu",
            "folding-daemonset",
            "folding-gpu-cpu",
            "folding-gpu",
            "folding-minikube",
        )
    ),
    *(
        WEB + f
        for f in (
            "access/certificate-signing-request/clusterrole-create.yaml",
            "access/certificate-signing-request/clusterrole-sign.yaml",
            "admin/cloud/ccm-example.yaml",
            "admin/dns/dns-horizontal-autoscaler.yaml",
            "admin/konnectivity/konnectivity-agent.yaml",
            "admin/konnectivity/konnectivity-rbac.yaml",
            "admin/logging/two-files-counter-pod-agent-sidecar.yaml",
            "admin/logging/two-files-counter-pod.yaml",
            "admin/namespace-dev.json",
            "admin/resource/cpu-constraints-pod-2.yaml",
            "admin/resource/cpu-constraints-pod-4.yaml",
            "admin/resource/cpu-constraints-pod.yaml",
            "admin/resource/cpu-constraints.yaml",
            "admin/resource/cpu-defaults-pod-3.yaml",
            "admin/resource/cpu-defaults.yaml",
            "admin/resource/limit-memory-ratio-pod.yaml",
            "admin/resource/limit-range-pod-2.yaml",
            "admin/resource/memory-constraints-pod-2.yaml",
            "admin/resource/memory-constraints-pod-3.yaml",
            "admin/resource/memory-constraints-pod.yaml",
            "admin/resource/memory-defaults-pod-3.yaml",
            "admin/resource/pvc-limit-greater.yaml",
            "admin/resource/pvc-limit-lower.yaml",
            "admin/resource/quota-mem-cpu.yaml",
            "admin/resource/quota-objects-pvc-2.yaml",
            "admin/resource/quota-objects-pvc.yaml",
            "admin/sched/my-scheduler.yaml",
            "admin/sched/pod1.yaml",
            "admin/snowflake-deployment.yaml",
            "application/canary/app-service.yaml",
            "application/canary/app-v2-deployment.yaml",
            "application/cassandra/cassandra-service.yaml",
            "application/cassandra/cassandra-statefulset.yaml",
            "application/deployment-sidecar-legacy.yaml",
            "application/deployment-sidecar.yaml",
            "application/guestbook/frontend-deployment.yaml",
            "application/guestbook/redis-follower-service.yaml",
            "application/hpa/php-apache.yaml",
            "application/job/job-sidecar.yaml",
            "application/job/rabbitmq/rabbitmq-statefulset.yaml",
            "application/job/redis/redis-pod.yaml",
            "application/job/redis/redis-service.yaml",
            "application/mongodb/mongo-service.yaml",
            "application/mysql/mysql-pv.yaml",
            "application/mysql/mysql-statefulset.yaml",
            "application/nginx-app.yaml",
            "application/nginx/nginx-svc.yaml",
            "application/simple_deployment.yaml",
            "application/ssa/nginx-deployment-no-replicas.yaml",
            "application/ssa/nginx-deployment.yaml",
            "application/web/web-parallel.yaml",
            "application/wordpress/mysql-deployment.yaml",
            "application/wordpress/wordpress-deployment.yaml",
            "configmap/configmaps.yaml",
            "controllers/daemonset-label-selector.yaml",
            "controllers/daemonset.yaml",
            "controllers/fluentd-daemonset-update.yaml",
            "controllers/fluentd-daemonset.yaml",
            "controllers/frontend.yaml",
            "controllers/hpa-rs.yaml",
            "controllers/job-pod-failure-policy-failjob.yaml",
            "controllers/job-success-policy.yaml",
            "controllers/nginx-deployment.yaml",
            "controllers/replicaset.yaml",
            "controllers/replication-nginx-1.14.2.yaml",
            "controllers/replication-nginx-1.16.1.yaml",
            "controllers/replication.yaml",
            "controllers/statefulset.yaml",
            "debug/event-exporter.yaml",
            "debug/termination.yaml",
            "pods/commands.yaml",
            "pods/config/redis-pod.yaml",
            "pods/init-containers.yaml",
            "pods/inject/dapi-volume-resources.yaml",
            "pods/inject/pod-secret-envFrom.yaml",
            "pods/inject/pod-single-secret-env-variable.yaml",
            "pods/inject/secret-envars-pod.yaml",
            "pods/inject/secret-pod.yaml",
            "pods/lifecycle-events.yaml",
            "pods/multi-container/ambassador.yaml",
            "pods/multi-container/localhost.yaml",
            "pods/multi-container/resources.yaml",
            "pods/multi-container/shared-volume.yaml",
            "pods/pod-configmap-env-var-valueFrom.yaml",
            "pods/pod-configmap-volume-specific-key.yaml",
            "pods/pod-multiple-configmap-env-variable.yaml",
            "pods/pod-nginx-preferred-affinity.yaml",
            "pods/pod-projected-svc-token.yaml",
            "pods/pod-rs.yaml",
            "pods/pod-single-configmap-env-variable.yaml",
            "pods/pod-with-node-affinity-1.yaml",
            "pods/pod-with-node-affinity.yaml",
            "pods/private-reg-pod.yaml",
            "pods/probe/grpc-liveness.yaml",
            "pods/probe/pod-with-http-healthcheck.yaml",
            "pods/probe/tcp-liveness-readiness.yaml",
            "pods/qos/qos-pod-2.yaml",
            "pods/qos/qos-pod-4.yaml",
            "pods/qos/qos-pod-5.yaml",
            "pods/qos/qos-pod.yaml",
            "pods/resource/extended-resource-pod-2.yaml",
            "pods/resource/extended-resource-pod.yaml",
            "pods/resource/memory-request-limit-2.yaml",
            # spec.resources (PodLevelResources) is in the 1.32 schema; the gate is off, so the
            # field is dropped, not rejected.
            "pods/resource/pod-level-resources.yaml",
            "pods/security/hello-apparmor.yaml",
            "pods/security/seccomp/ga/audit-pod.yaml",
            "pods/security/seccomp/ga/violation-pod.yaml",
            "pods/security/security-context-3.yaml",
            "pods/security/security-context.yaml",
            "pods/storage/pv-claim.yaml",
            "pods/storage/pv-pod.yaml",
            "pods/storage/pv-volume.yaml",
            "pods/storage/redis.yaml",
            "pods/topology-spread-constraints/one-constraint-with-nodeaffinity.yaml",
            "pods/topology-spread-constraints/one-constraint.yaml",
            "pods/topology-spread-constraints/two-constraints.yaml",
            "pods/two-container-pod.yaml",
            "policy/priority-class-resourcequota.yaml",
            "service/access/frontend-deployment.yaml",
            "service/explore-graceful-termination-nginx.yaml",
            "service/load-balancer-example.yaml",
            "service/networking/curlpod.yaml",
            "service/networking/hostaliases-pod.yaml",
            "service/networking/ingress-resource-backend.yaml",
            "service/networking/name-virtual-host-ingress-no-third-host.yaml",
            "service/networking/network-policy-allow-all-egress.yaml",
            "service/networking/network-policy-default-deny-ingress.yaml",
            "service/networking/nginx-secure-app.yaml",
            "service/networking/run-my-nginx.yaml",
            "service/networking/simple-fanout-example.yaml",
            "service/networking/tls-example-ingress.yaml",
            "service/nginx-service.yaml",
            "windows/daemonset.yaml",
            "windows/emptydir-pod.yaml",
            "windows/hostpath-volume-pod.yaml",
            "windows/run-as-username-pod.yaml",
            "windows/secret-pod.yaml",
        )
    ),
]

EXPECTED: dict[str, str] = {
    **dict.fromkeys(OK_FILES, "ok"),
    # Custom resources whose CRDs are not installed: kubectl's REST mapping fails.
    **{
        f"argoproj__argo-workflows/examples/{name}.yaml": _no_match("Workflow", "argoproj.io/v1alpha1")
        for name in ARGO_WORKFLOWS
    },
    "argoproj__argo-workflows/examples/cron-workflow.yaml": _no_match("CronWorkflow", "argoproj.io/v1alpha1"),
    "argoproj__argo-workflows/examples/workflow-template/templates.yaml": _no_match(
        "WorkflowTemplate", "argoproj.io/v1alpha1"
    ),
    WEB + "service/networking/gatewayclass.yaml": _no_match("GatewayClass", "gateway.networking.k8s.io/v1"),
    WEB + "service/networking/httproute.yaml": _no_match("HTTPRoute", "gateway.networking.k8s.io/v1"),
    # Component configuration files, not API objects: no server serves these kinds.
    WEB + "admin/konnectivity/egress-selector-configuration.yaml": _no_match(
        "EgressSelectorConfiguration", "apiserver.k8s.io/v1beta1"
    ),
    WEB + "audit/audit-policy.yaml": _no_match("Policy", "audit.k8s.io/v1"),
    # API versions Kubernetes removed (rbac v1beta1 in 1.22, PodSecurityPolicy in 1.25).
    "cstradtman__kube-demo/history/8d74def/prometheus/clusterRole.yml": _no_match(
        "ClusterRole", "rbac.authorization.k8s.io/v1beta1"
    ),
    WEB + "policy/baseline-psp.yaml": _no_match("PodSecurityPolicy", "policy/v1beta1"),
    WEB + "policy/example-psp.yaml": _no_match("PodSecurityPolicy", "policy/v1beta1"),
    WEB + "policy/restricted-psp.yaml": _no_match("PodSecurityPolicy", "policy/v1beta1"),
    # Not valid YAML (a TAB in the indentation): kubectl cannot parse it.
    WEB + "controllers/job-pod-failure-policy-ignore.yaml": "found a tab character that violates indentation",
    # An empty file.
    EMPTY_FILE: "no objects passed to apply",
    # Fields that do not exist in 1.32 (strict field validation, kubectl's default).
    WEB + "pods/emptydir-volume-mode.yaml": _unknown("spec.volumes[0].emptyDir.mode"),
    WEB + "pods/restart-policy/restart-all-containers.yaml": _unknown(
        "spec.initContainers[1].restartPolicyRules"
    ),
    WEB + "service/networking/dual-stack-ipv6-svc.yaml": _unknown("spec.ipFamily"),
    # A kustomize patch, not an object: its "$setElementOrder" directive is an unknown field.
    "tmcsantos__k8s-boinc/scienceunited/deployment.yaml": (
        'unknown field "spec.template.spec.$setElementOrder/containers"'
    ),
    # Validation (422): a template with an unsubstituted "$ITEM" placeholder in its name ...
    WEB + "application/job/job-tmpl.yaml": 'metadata.name: Invalid value: "process-item-$ITEM"',
    # ... and a fragment meant for server-side apply onto an existing Deployment.
    WEB + "application/ssa/nginx-deployment-replicas-only.yaml": "spec.selector: Required value",
    # IPv6 Services on a single-stack IPv4 cluster.
    WEB + "service/networking/dual-stack-ipfamilies-ipv6.yaml": (
        'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'
    ),
    WEB + "service/networking/dual-stack-prefer-ipv6-lb-svc.yaml": (
        'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'
    ),
    WEB + "service/networking/dual-stack-preferred-ipfamilies-svc.yaml": (
        'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'
    ),
}

# What the user creates first (see the module docstring).
SETUP_NAMESPACES = ("mem-example", "pod-resources-example", "qos-example")
SETUP_FILES = ("cstradtman__kube-demo/history/8d74def/prometheus/namespace.yml",)
SETUP_SERVICE_ACCOUNTS = (("default", "build-robot"),)


def _excluded(rel: str, text: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return (
        ("/templates/" in rel and "{{" in text)
        or name in ("Chart.yaml", "values.yaml", "kustomization.yaml", "compose.yaml")
        or rel.startswith("docker__awesome-compose/")
        or "/seccomp/profiles/" in rel
    )


def corpus_manifests() -> list[str]:
    out = []
    for p in sorted(CORPUS.rglob("*")):
        if not p.is_file() or p.suffix not in (".yaml", ".yml", ".json"):
            continue
        rel = str(p.relative_to(CORPUS))
        if not _excluded(rel, p.read_text(errors="replace")):
            out.append(rel)
    return out


def test_every_corpus_manifest_has_an_expected_outcome() -> None:
    found = set(corpus_manifests())
    assert found, "the corpus is empty"
    assert sorted(found - EXPECTED.keys()) == [], "manifests without an expected outcome"
    assert sorted(EXPECTED.keys() - found) == [], "expected outcomes for files that are gone"


def _setup(cluster: Cluster) -> None:
    for ns in SETUP_NAMESPACES:
        if cluster.kubectl("get", "ns", ns, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", ns)
    for rel in SETUP_FILES:
        cluster.kubectl("apply", "-f", str(CORPUS / rel))
    for ns, sa in SETUP_SERVICE_ACCOUNTS:
        if cluster.kubectl("get", "sa", sa, "-n", ns, check=False).returncode != 0:
            cluster.kubectl("create", "serviceaccount", sa, "-n", ns)


def _dry_run(cluster: Cluster, *rels: str) -> tuple[int, str]:
    files = [arg for rel in rels for arg in ("-f", str(CORPUS / rel))]
    res = cluster.kubectl("apply", "--dry-run=server", *files, check=False, timeout=120)
    return res.returncode, res.stdout + res.stderr


def _objects_in(rel: str) -> int:
    return sum(1 for doc in yaml.safe_load_all((CORPUS / rel).read_text()) if doc)


def _check_accepted(batch: list[str], code: int, out: str) -> str:
    """One kubectl run over files that must all be accepted: one ``created (server dry run)``
    (or ``unchanged``) line per object, no error."""
    accepted = [line for line in out.splitlines() if line.endswith("(server dry run)")]
    want = sum(_objects_in(rel) for rel in batch)
    if code == 0 and len(accepted) == want and "error" not in out.lower():
        return ""
    return f"{batch}: expected {want} objects accepted, kubectl exited {code}:\n{out.strip()}"


def _check_rejected(rel: str, code: int, out: str) -> str:
    want = EXPECTED[rel]
    if code != 0 and want in out and "InternalError" not in out:
        return ""
    return f"{rel}: expected {want!r}, kubectl exited {code}:\n{out.strip()}"


def _check_unmapped(batch: list[str], code: int, out: str) -> str:
    """One kubectl run over files whose kinds the server does not serve: kubectl names each file
    with its "no matches for kind" error."""
    lines = out.splitlines()
    missing = [
        rel for rel in batch if not any(str(CORPUS / rel) in ln and EXPECTED[rel] in ln for ln in lines)
    ]
    if code != 0 and not missing and "(server dry run)" not in out:
        return ""
    return f"{missing or batch}: expected 'no matches for kind', kubectl exited {code}:\n{out.strip()}"


def _batches(files: list[str]) -> list[list[str]]:
    return [files[i : i + BATCH] for i in range(0, len(files), BATCH)]


def test_corpus_dry_run_matches_kubernetes_1_32(cluster: Cluster) -> None:
    _setup(cluster)
    accepted = _batches(sorted(rel for rel, want in EXPECTED.items() if want == "ok"))
    unmapped = _batches(sorted(rel for rel, want in EXPECTED.items() if want.startswith("no matches")))
    rejected = sorted(
        rel for rel, want in EXPECTED.items() if want != "ok" and not want.startswith("no matches")
    )
    with ThreadPoolExecutor(max_workers=12) as pool:
        ok_runs = [(b, pool.submit(_dry_run, cluster, *b)) for b in accepted]
        unmapped_runs = [(b, pool.submit(_dry_run, cluster, *b)) for b in unmapped]
        single_runs = [(rel, pool.submit(_dry_run, cluster, rel)) for rel in rejected]
        wrong = [_check_accepted(b, *run.result()) for b, run in ok_runs]
        wrong += [_check_unmapped(b, *run.result()) for b, run in unmapped_runs]
        wrong += [_check_rejected(rel, *run.result()) for rel, run in single_runs]
    wrong = [w for w in wrong if w]
    assert not wrong, "\n\n".join(wrong)
    # Nothing was stored by the dry runs.
    assert cluster.kubectl("get", "pods,services", "-n", "qos-example", "-o", "name").stdout.strip() == ""
    stored = cluster.kubectl("get", "deployments,configmaps,pods", "-A", "-o", "name").stdout.split()
    for name in ("deployment.apps/fah-cpu", "configmap/foldingathome-config", "pod/qos-demo"):
        assert name not in stored


def test_rejections_name_the_problem_for_the_user(cluster: Cluster) -> None:
    """The server-side rejections are 4xx Status objects, not 500s, and say what is wrong."""
    out = _dry_run(cluster, WEB + "service/networking/dual-stack-ipfamilies-ipv6.yaml")[1]
    assert 'The Service "my-service" is invalid' in out
    out = _dry_run(cluster, WEB + "pods/emptydir-volume-mode.yaml")[1]
    assert "Error from server (BadRequest)" in out
    bad = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dual"},
            "spec": {"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}], "selector": {"a": "b"}},
        }
    )
    res = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=bad, check=False)
    assert res.returncode != 0
    assert "spec.ipFamilyPolicy" in res.stderr and "not configured for dual-stack services" in res.stderr


def test_alpha_pod_level_resources_are_dropped_and_quantities_canonical(cluster: Cluster) -> None:
    """PodLevelResources is off by default in 1.32: the field is in the schema (so strict
    validation accepts it) but kube-apiserver drops it from pods and pod templates. Quantities
    come back in canonical form (``cpu: "0.5"`` is served as ``500m``)."""
    _setup(cluster)
    pod_file = str(CORPUS / WEB / "pods/resource/pod-level-resources.yaml")
    pod = json.loads(cluster.kubectl("apply", "--dry-run=server", "-f", pod_file, "-o", "json").stdout)
    assert "resources" not in pod["spec"]
    first = pod["spec"]["containers"][0]["resources"]
    assert first == {
        "limits": {"cpu": "500m", "memory": "100Mi"},
        "requests": {"cpu": "500m", "memory": "50Mi"},
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "canonical"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}},
    }
    out = cluster.kubectl("create", "--dry-run=server", "-f", "-", "-o", "json", input=json.dumps(pvc))
    assert json.loads(out.stdout)["spec"]["resources"]["requests"] == {"storage": "1Gi"}
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "canonical"},
        "spec": {"hard": {"cpu": 2, "memory": "1.5Gi", "pods": "1000"}},
    }
    out = cluster.kubectl("create", "--dry-run=server", "-f", "-", "-o", "json", input=json.dumps(quota))
    assert json.loads(out.stdout)["spec"]["hard"] == {"cpu": "2", "memory": "1536Mi", "pods": "1k"}
