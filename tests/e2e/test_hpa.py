"""HorizontalPodAutoscaler end to end: simulated CPU usage (pod annotation
``kubelite.io/simulate-cpu``) served by ``metrics.k8s.io``, ``kubectl top``,
``kubectl autoscale`` scaling a Deployment up to its max and back down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster
from tests.e2e.lifecycle_helpers import deployment, ready_pods, wait_for

pytestmark = pytest.mark.e2e
CPU = "kubelite.io/simulate-cpu"
HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 4,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
            }
        ],
    },
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(
        tmp_path_factory.mktemp("hpa"),
        "--simulated-nodes",
        "3",
        "--horizontal-pod-autoscaler-sync-period",
        "1",
    )
    yield c
    stop_cluster(c)


def _replicas(c: Cluster) -> int:
    return int(c.json("get", "deployment", "web", "-n", "hpa")["spec"]["replicas"])


def test_autoscale_on_cpu(sim: Cluster) -> None:
    sim.kubectl("create", "namespace", "hpa")
    sim.kubectl(
        "apply", "-n", "hpa", "-f", "-", input=deployment("web", 2, cpu="100m", annotations={CPU: "150m"})
    )
    wait_for("2 ready pods", lambda: len(ready_pods(sim, "hpa", "app=web")) == 2)

    top = wait_for(
        "kubectl top", lambda: sim.kubectl("top", "pod", "-n", "hpa", "--no-headers", check=False).stdout
    )
    assert "150m" in top
    assert "sim-node-" in sim.kubectl("top", "node", "--no-headers").stdout

    sim.kubectl("apply", "-n", "hpa", "-f", "-", input=yaml.safe_dump(HPA))
    wait_for("scale up to the max", lambda: _replicas(sim) == 4, timeout=40)

    def status() -> Any:
        st = sim.json("get", "hpa", "web", "-n", "hpa").get("status") or {}
        return st if st.get("desiredReplicas") == 4 and st.get("currentMetrics") else None

    st = wait_for("HPA status", status)
    assert st["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 150
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["ScalingActive"]["reason"] == "ValidMetricFound"
    assert conds["AbleToScale"]["status"] == "True"
    events = sim.kubectl("get", "events", "-n", "hpa", "--field-selector", "reason=SuccessfulRescale").stdout
    assert "New size: 4; reason: cpu resource utilization (percentage of request) above target" in events
    row = sim.kubectl("get", "hpa", "web", "-n", "hpa", "--no-headers").stdout
    assert "150%/50%" in row

    # the default 300 s scale-down stabilization window, shortened for the test
    sim.kubectl(
        "patch",
        "hpa",
        "web",
        "-n",
        "hpa",
        "--type=merge",
        "-p",
        '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":0}}}}',
    )
    sim.kubectl("annotate", "pods", "-n", "hpa", "-l", "app=web", f"{CPU}=10m", "--overwrite")
    wait_for("scale down to the min", lambda: _replicas(sim) == 1, timeout=40)


def test_kubectl_autoscale_v1_object(sim: Cluster) -> None:
    """``kubectl autoscale`` writes autoscaling/v1; its status is kept in v1 form."""
    sim.kubectl("create", "namespace", "hpa1")
    sim.kubectl(
        "apply", "-n", "hpa1", "-f", "-", input=deployment("api", 1, cpu="100m", annotations={CPU: "200m"})
    )
    wait_for("ready pod", lambda: len(ready_pods(sim, "hpa1", "app=api")) == 1)
    sim.kubectl("autoscale", "deployment", "api", "-n", "hpa1", "--cpu-percent=50", "--min=1", "--max=3")
    scaled = lambda: int(sim.json("get", "deployment", "api", "-n", "hpa1")["spec"]["replicas"]) == 3  # noqa: E731
    wait_for("scale up to the max", scaled, timeout=40)

    def v1_status() -> Any:
        st = sim.json("get", "hpa.v1.autoscaling", "api", "-n", "hpa1").get("status") or {}
        return st if st.get("desiredReplicas") == 3 else None

    st = wait_for("v1 status", v1_status)
    assert st["currentCPUUtilizationPercentage"] == 200
