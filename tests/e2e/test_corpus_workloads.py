"""The Folding@home and BOINC workloads of the shared corpus on 3 simulated nodes.

Each manifest is applied as its README says (plain files with ``kubectl apply -f``, the
kustomize overlay with ``kubectl apply -k``, Helm charts pre-rendered with their default
values into ``tests/e2e/fixtures/corpus/``), after the steps the README asks of the user
(creating the referenced Secrets, labelling nodes).  Then the right number of pods must be
Running on the right nodes: DaemonSets on every eligible node, StatefulSets with their
claims, Deployments within their node selectors and (anti-)affinity.

The nodes are bigger than the default simulated ones so that every workload of the module
fits at once (their requests add up to more than 3 x 4 CPUs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.workloads import dump, pods, running_by_node, wait_for, workload_cluster
from tests.paths import CORPUS as SHARED_CORPUS

pytestmark = pytest.mark.e2e
CORPUS = SHARED_CORPUS
FIXTURES = Path(__file__).parent / "fixtures" / "corpus"
NODES = ["sim-node-0", "sim-node-1", "sim-node-2"]
KUBE_DEMO = CORPUS / "cstradtman__kube-demo"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    extra = ("--simulated-node-cpu", "32", "--simulated-node-memory", "128Gi")
    with workload_cluster(Path(tmp_path_factory.mktemp("corpus")), *extra) as c:
        yield c


def namespace(c: Cluster, name: str) -> str:
    c.kubectl("create", "namespace", name)
    return name


def apply_file(c: Cluster, path: Path, ns: str) -> None:
    c.kubectl("apply", "-n", ns, "-f", str(path))


def expect_running(
    c: Cluster, ns: str, selector: str, nodes: list[str], timeout: float = 30
) -> dict[str, str]:
    """Wait until exactly ``nodes`` (a multiset) host the Running+Ready pods of ``selector``."""

    def check() -> dict[str, str] | None:
        running = running_by_node(c, ns, selector)
        return running if sorted(running.values()) == sorted(nodes) else None

    try:
        out: dict[str, str] = wait_for(f"{selector} running on {nodes}", check, timeout)
        return out
    except AssertionError as e:
        raise AssertionError(f"{e}\n{dump(c, ns)}") from None


@pytest.fixture
def production(sim: Cluster) -> Iterator[list[str]]:
    """kube-demo's README: the compute nodes carry ``workload=production`` (not the master)."""
    chosen = NODES[:2]
    for n in chosen:
        sim.kubectl("label", "node", n, "workload=production", "--overwrite")
    yield chosen
    for n in chosen:
        sim.kubectl("label", "node", n, "workload-", check=False)


def boinc_secret(c: Cluster, ns: str, name: str, weak_key: str) -> None:
    """The Secret kube-demo's README has the user create (it is not in the repo)."""
    c.kubectl(
        "create",
        "secret",
        "generic",
        name,
        "-n",
        ns,
        "--from-literal=boinc_gui_rpc_password.txt=secret",
        f"--from-literal={weak_key}=0_0123456789abcdef",
    )


# ---------------------------------------------------------------------------- DaemonSets


@pytest.mark.parametrize(
    ("files", "selector"),
    [
        (["richstokes__k8s-folding-at-home/folding-daemonset.yaml"], "app=fah"),
        (["richstokes__k8s-fah/folding-daemonset.yaml"], "app=fah"),
        (
            [
                "wind0r__k8s-supporting-folding-at-home/kubernetes/serviceaccount.yaml",
                "wind0r__k8s-supporting-folding-at-home/kubernetes/daemonset.yaml",
            ],
            "app.kubernetes.io/name=k8s-supporting-folding-at-home",
        ),
    ],
    ids=["richstokes-fah", "richstokes-fah-2020", "wind0r-kubectl"],
)
def test_folding_daemonsets_run_on_every_node(
    sim: Cluster, files: list[str], selector: str, request: pytest.FixtureRequest
) -> None:
    ns = namespace(sim, "ds-" + request.node.callspec.id)
    for f in files:
        apply_file(sim, CORPUS / f, ns)
    expect_running(sim, ns, selector, NODES)


def test_folding_helm_daemonset_runs_on_every_node(sim: Cluster) -> None:
    ns = namespace(sim, "ds-wind0r-helm")
    apply_file(sim, FIXTURES / "wind0r-helm-daemonset.yaml", ns)
    expect_running(sim, ns, "app.kubernetes.io/instance=fah", NODES)


def test_boinc_daemonsets_run_on_production_nodes(sim: Cluster, production: list[str]) -> None:
    ns = namespace(sim, "ds-kube-demo")
    boinc_secret(sim, ns, "rosetta-secrets", "rosetta_weak_key.txt")
    boinc_secret(sim, ns, "wcg-secrets", "wcg_weak_key.txt")
    for f in ("rosetta.yaml", "world-community-grid.yaml"):
        apply_file(sim, KUBE_DEMO / "history" / "328afa9-daemonset" / f, ns)
    for ds in ("rosetta-deployment", "wcg-deployment"):
        wait_for(f"{ds} scheduled", lambda ds=ds: sim.json("get", "ds", ds, "-n", ns).get("status", {}))
    expect_running(sim, ns, "app=boinc", production)
    expect_running(sim, ns, "app=WCG", production)
    st = sim.json("get", "ds", "rosetta-deployment", "-n", ns)["status"]
    assert (st["desiredNumberScheduled"], st["numberMisscheduled"]) == (2, 0)


# ---------------------------------------------------------------------------- StatefulSets


def test_fahclient_chart_statefulset_with_claim(sim: Cluster) -> None:
    ns = namespace(sim, "sts-fahclient")
    apply_file(sim, FIXTURES / "pcktdmp-fahclient.yaml", ns)
    got = wait_for("fah-fahclient-0 running", lambda: running_by_node(sim, ns, "app=fah-fahclient"), 30)
    assert list(got) == ["fah-fahclient-0"] and got["fah-fahclient-0"] in NODES
    claim = sim.json("get", "pvc", "fah-fah-fahclient-0", "-n", ns)
    assert claim["metadata"]["labels"] == {"app": "fah-fahclient"}
    wait_for(
        "claim bound",
        lambda: sim.json("get", "pvc", "fah-fah-fahclient-0", "-n", ns)["status"].get("phase") == "Bound",
    )
    pod = sim.json("get", "pod", "fah-fahclient-0", "-n", ns)
    assert pod["spec"]["hostname"] == "fah-fahclient-0" and pod["spec"]["subdomain"] == "fah-fahclient"


def test_eumel8_chart_defaults_are_refused_and_fixed_values_run(sim: Cluster) -> None:
    ns = namespace(sim, "sts-eumel8")
    res = sim.kubectl("apply", "-n", ns, "-f", str(FIXTURES / "eumel8-helm-defaults.yaml"), check=False)
    assert res.returncode != 0
    assert 'no matches for kind "Ingress" in version "extensions/v1beta1"' in res.stderr
    apply_file(sim, FIXTURES / "eumel8-helm-statefulset.yaml", ns)
    got = wait_for("folding-at-home-0 running", lambda: running_by_node(sim, ns, "app=folding-at-home"), 30)
    assert list(got) == ["folding-at-home-0"]
    st = sim.json("get", "sts", "folding-at-home", "-n", ns)["status"]
    assert (st["replicas"], st["readyReplicas"]) == (1, 1)


# ---------------------------------------------------------------------------- Deployments


@pytest.mark.parametrize(
    ("path", "selector", "count"),
    [
        (
            "jgrumboe__folding-at-home-on-kubernetes/deploy/apply/deployment.yaml",
            "application=folding-at-home",
            1,
        ),
        (
            "kvietmeier__k8s-supporting-folding-at-home/kubernetes/deployment.yaml",
            "app.kubernetes.io/name=folding-at-home",
            1,
        ),
        ("Slingshot-Simulations__Boinc-K8-RosettaAtHome/boinc.yaml", "app=boinc", 1),
    ],
    ids=["jgrumboe", "kvietmeier", "slingshot"],
)
def test_single_deployments(
    sim: Cluster, path: str, selector: str, count: int, request: pytest.FixtureRequest
) -> None:
    ns = namespace(sim, "deploy-" + request.node.callspec.id)
    apply_file(sim, CORPUS / path, ns)
    got = wait_for(f"{count} pods running", lambda: len(running_by_node(sim, ns, selector)) == count, 30)
    assert got


def test_fah_cpu_anti_affinity_spreads_pods(sim: Cluster) -> None:
    ns = namespace(sim, "deploy-fah-cpu")
    apply_file(sim, CORPUS / "richstokes__k8s-folding-at-home" / "folding-cpu.yaml", ns)
    got = wait_for(
        "2 pods", lambda: (lambda r: r if len(r) == 2 else None)(running_by_node(sim, ns, "app=fah-cpu"))
    )
    assert len(set(got.values())) == 2  # required anti-affinity: one per node


def test_fah_worker_affinity_leaves_extra_replicas_pending(sim: Cluster) -> None:
    workers = NODES[1:]
    for n in workers:
        sim.kubectl("label", "node", n, "role=worker", "--overwrite")
    try:
        ns = namespace(sim, "deploy-marcinbojko")
        apply_file(sim, CORPUS / "marcinbojko__k8s-fah" / "folding.yaml", ns)
        expect_running(sim, ns, "app=fah", workers)
        pending = wait_for(
            "2 pending pods",
            lambda: [p for p in pods(sim, ns, "app=fah") if p["status"].get("phase") == "Pending"] or None,
        )
        assert len(pending) == 2 and all(not p["spec"].get("nodeName") for p in pending)
        events = sim.kubectl("get", "events", "-n", ns, "--field-selector", "reason=FailedScheduling").stdout
        assert "0/3 nodes are available" in events
    finally:
        for n in workers:
            sim.kubectl("label", "node", n, "role-", check=False)


def test_boinc_deployments_stay_on_production_nodes(sim: Cluster, production: list[str]) -> None:
    ns = namespace(sim, "deploy-kube-demo")
    boinc_secret(sim, ns, "milkyway-secrets", "milkyway_weak_key.txt")
    boinc_secret(sim, ns, "wcg-secrets", "wcg_weak_key.txt")
    for f in ("milkyway.yaml", "world-community-grid.yaml"):
        apply_file(sim, KUBE_DEMO / f, ns)
    for app in ("MW", "WCG"):
        running = wait_for(
            f"3 {app} pods",
            lambda app=app: (lambda r: r if len(r) == 3 else None)(running_by_node(sim, ns, f"app={app}")),
            90,  # usually < 1 s; one CI run in six needed more than 30 s (cause not yet found, see the note)
        )
        assert set(running.values()) <= set(production), dump(sim, ns)


def test_boinc_kustomize_overlay_is_refused(sim: Cluster) -> None:
    """The overlay's strategic-merge patch carries a ``$setElementOrder/containers``
    directive that kubectl's kustomize keeps in the Deployment it sends, and a 1.32 API
    server decodes strictly: the Namespace and the Secret are created, the Deployment is
    refused, so no pod runs (as on a real cluster)."""
    res = sim.kubectl("apply", "-k", str(CORPUS / "tmcsantos__k8s-boinc" / "scienceunited"), check=False)
    assert res.returncode != 0
    assert "namespace/united created" in res.stdout
    assert "secret/boinc-united-" in res.stdout
    assert (
        'strict decoding error: unknown field "spec.template.spec.$setElementOrder/containers"' in res.stderr
    )
    assert sim.kubectl("get", "deploy", "-n", "united", "-o", "name").stdout == ""
