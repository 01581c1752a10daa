"""Filter and score plugins: verdicts and the exact reasons kube-scheduler 1.32 prints."""

from __future__ import annotations

from typing import Any

from kubelite.scheduler.framework import Code, CycleState
from kubelite.scheduler.plugins.interpodaffinity import InterPodAffinity
from kubelite.scheduler.plugins.nodeaffinity import NodeAffinity
from kubelite.scheduler.plugins.noderesources import BalancedAllocation, NodeResourcesFit
from kubelite.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.podtopologyspread import PodTopologySpread
from kubelite.scheduler.plugins.tainttoleration import TaintToleration
from kubelite.scheduler.plugins.volumebinding import VolumeBinding
from tests.unit.scheduler_builders import cache_with, node, pinfo, pod

Obj = dict[str, Any]


def expr(key: str, op: str, *values: str) -> Obj:
    out: Obj = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


class Listers:
    def __init__(self, pvcs: dict[str, Obj] | None = None, pvs: dict[str, Obj] | None = None) -> None:
        self.pvcs = pvcs or {}
        self.pvs = pvs or {}
        self.classes = {"wffc": {"volumeBindingMode": "WaitForFirstConsumer"}}

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        return {"kubernetes.io/metadata.name": namespace}

    def pvc(self, namespace: str, name: str) -> Obj | None:
        return self.pvcs.get(f"{namespace}/{name}")

    def pv(self, name: str) -> Obj | None:
        return self.pvs.get(name)

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name)


def test_resources_fit_reports_every_shortfall() -> None:
    c = cache_with([node("n1", cpu="1", memory="1Gi", pods="1")], [pod("a", cpu="800m", node_name="n1")])
    ni = c.infos["n1"]
    st = NodeResourcesFit().filter(CycleState(), pinfo(pod("p", cpu="500m", memory="2Gi")), ni)
    assert st is not None and st.code == Code.UNSCHEDULABLE
    assert st.reasons == ("Too many pods", "Insufficient cpu", "Insufficient memory")


def test_resources_fit_extended_resources_and_zero_requests() -> None:
    c = cache_with([node("gpu", extra={"nvidia.com/gpu": "2"}), node("plain")])
    want = pod("p", resources=None)
    want["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    p = pinfo(want)
    fit = NodeResourcesFit()
    assert fit.filter(CycleState(), p, c.infos["gpu"]) is None
    st = fit.filter(CycleState(), p, c.infos["plain"])
    assert st is not None and st.reasons == ("Insufficient nvidia.com/gpu",)
    # a pod without requests fits even an overcommitted node
    assert fit.filter(CycleState(), pinfo(pod("be", cpu=None, memory=None)), c.infos["plain"]) is None


def test_least_allocated_and_balanced_scores() -> None:
    c = cache_with([node("n", cpu="4", memory="8Gi")], [pod("a", cpu="1", memory="1Gi", node_name="n")])
    ni = c.infos["n"]
    p = pinfo(pod("p", cpu="1", memory="1Gi"))
    # cpu: (4000-2000)*100/4000 = 50; memory: (8-2)/8 = 75 -> (50+75)//2
    assert NodeResourcesFit().score(CycleState(), p, ni) == 62
    # fractions 0.5 and 0.25 -> 100 * (1 - 0.125)
    assert BalancedAllocation().score(CycleState(), p, ni) == 87


def test_node_unschedulable_and_toleration() -> None:
    c = cache_with([node("n", unschedulable=True)])
    plugin = NodeUnschedulable()
    st = plugin.filter(CycleState(), pinfo(pod("p")), c.infos["n"])
    assert st is not None and st.reasons == ("node(s) were unschedulable",)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert plugin.filter(CycleState(), pinfo(pod("p", tolerations=tol)), c.infos["n"]) is None


def test_taint_toleration_filter_message_and_score() -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    prefer = {"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}
    c = cache_with([node("t", taints=[taint]), node("s", taints=[prefer]), node("ok")])
    plugin = TaintToleration()
    st = plugin.filter(CycleState(), pinfo(pod("p")), c.infos["t"])
    assert st is not None and st.reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    assert plugin.filter(CycleState(), pinfo(pod("p", tolerations=tol)), c.infos["t"]) is None
    exists = [{"operator": "Exists"}]
    assert plugin.filter(CycleState(), pinfo(pod("p", tolerations=exists)), c.infos["t"]) is None
    p = pinfo(pod("p"))
    scores = [plugin.score(CycleState(), p, c.infos[n]) for n in ("s", "ok")]
    plugin.normalize(CycleState(), p, scores)
    assert scores == [0, 100]


def test_node_affinity_selector_required_and_preferred() -> None:
    c = cache_with([node("a", labels={"disk": "ssd", "zone": "z1"}), node("b", labels={"zone": "z2"})])
    plugin = NodeAffinity()
    sel = pinfo(pod("p", nodeSelector={"disk": "ssd"}))
    assert plugin.filter(CycleState(), sel, c.infos["a"]) is None
    st = plugin.filter(CycleState(), sel, c.infos["b"])
    assert st is not None and st.reasons == ("node(s) didn't match Pod's node affinity/selector",)
    req = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expr("zone", "In", "z2")]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [expr("zone", "Exists")]}},
                {"weight": 30, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}},
            ],
        }
    }
    p = pinfo(pod("p", affinity=req))
    assert plugin.filter(CycleState(), p, c.infos["a"]) is not None
    assert plugin.filter(CycleState(), p, c.infos["b"]) is None
    scores = [plugin.score(CycleState(), p, c.infos[n]) for n in ("a", "b")]
    assert scores == [40, 10]
    plugin.normalize(CycleState(), p, scores)
    assert scores == [100, 25]


def _anti(topology: str, labels: dict[str, str]) -> Obj:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": labels}, "topologyKey": topology}
            ]
        }
    }


def test_inter_pod_anti_affinity_filter() -> None:
    web = {"app": "web"}
    existing = pod("w1", labels=web, node_name="a", affinity=_anti("kubernetes.io/hostname", web))
    c = cache_with([node("a"), node("b")], [existing])
    plugin = InterPodAffinity(Listers())
    incoming = pinfo(pod("w2", labels=web, affinity=_anti("kubernetes.io/hostname", web)))
    state = CycleState()
    plugin.pre_filter(state, incoming, c.snapshot)
    st = plugin.filter(state, incoming, c.infos["a"])
    assert st is not None and st.reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert plugin.filter(state, incoming, c.infos["b"]) is None
    # a pod without terms is still kept away by the existing pod's anti-affinity
    plain = pinfo(pod("w3", labels=web))
    state = CycleState()
    plugin.pre_filter(state, plain, c.snapshot)
    st = plugin.filter(state, plain, c.infos["a"])
    assert st is not None and st.reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)


def test_inter_pod_affinity_first_pod_and_followers() -> None:
    db = {"app": "db"}
    aff = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": db}, "topologyKey": "zone"}
            ]
        }
    }
    c = cache_with([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})])
    plugin = InterPodAffinity(Listers())
    first = pinfo(pod("db-0", labels=db, affinity=aff))
    state = CycleState()
    plugin.pre_filter(state, first, c.snapshot)
    assert plugin.filter(state, first, c.infos["a"]) is None  # self-match: the first pod goes anywhere
    c.set_pod(pinfo(pod("db-0", labels=db, node_name="b")))
    follower = pinfo(pod("app", labels={"app": "x"}, affinity=aff))
    state = CycleState()
    plugin.pre_filter(state, follower, c.snapshot)
    st = plugin.filter(state, follower, c.infos["a"])
    assert st is not None and st.reasons == ("node(s) didn't match pod affinity rules",)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert plugin.filter(state, follower, c.infos["b"]) is None


def test_topology_spread_hard_constraint() -> None:
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "s"}},
        }
    ]
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}), node("c")]
    c = cache_with(nodes, [pod("s0", labels={"app": "s"}, node_name="a")])
    plugin = PodTopologySpread()
    p = pinfo(pod("s1", labels={"app": "s"}, topologySpreadConstraints=spread))
    state = CycleState()
    plugin.pre_filter(state, p, c.snapshot)
    st = plugin.filter(state, p, c.infos["a"])
    assert st is not None and st.reasons == ("node(s) didn't match pod topology spread constraints",)
    assert plugin.filter(state, p, c.infos["b"]) is None
    st = plugin.filter(state, p, c.infos["c"])
    assert st is not None
    assert st.reasons == ("node(s) didn't match pod topology spread constraints (missing required label)",)


def test_topology_spread_soft_score_prefers_emptier_zone() -> None:
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "s"}},
        }
    ]
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})]
    c = cache_with(nodes, [pod("s0", labels={"app": "s"}, node_name="a")])
    plugin = PodTopologySpread()
    p = pinfo(pod("s1", labels={"app": "s"}, topologySpreadConstraints=spread))
    state = CycleState()
    assert plugin.pre_score(state, p, list(c.snapshot.nodes), c.snapshot)
    scores = [plugin.score(state, p, c.infos[n]) for n in ("a", "b")]
    plugin.normalize(state, p, scores)
    assert scores[1] > scores[0]


def test_volume_binding_local_pv_pins_node_and_missing_claim() -> None:
    pv = {
        "metadata": {"name": "pv1"},
        "spec": {
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [{"matchExpressions": [expr("kubernetes.io/hostname", "In", "b")]}]
                }
            }
        },
    }
    pvc = {"metadata": {"name": "data", "namespace": "default"}, "spec": {"volumeName": "pv1"}}
    plugin = VolumeBinding(Listers({"default/data": pvc}, {"pv1": pv}))
    c = cache_with([node("a"), node("b")])
    vols = [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]
    p = pinfo(pod("p", volumes=vols))
    state = CycleState()
    _, status = plugin.pre_filter(state, p, c.snapshot)
    assert status is None
    st = plugin.filter(state, p, c.infos["a"])
    assert st is not None and st.reasons == ("node(s) had volume node affinity conflict",)
    assert plugin.filter(state, p, c.infos["b"]) is None
    missing = pinfo(pod("q", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "nope"}}]))
    _, status = plugin.pre_filter(CycleState(), missing, c.snapshot)
    assert status is not None and status.message == 'persistentvolumeclaim "nope" not found'
