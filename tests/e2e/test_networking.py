"""Issue 5 acceptance on one node: real runc pods on the CNI bridge, the nftables Service proxy,
cluster DNS, NetworkPolicy, driven with the real kubectl.

The node is a network namespace the test creates (``netns_helpers``): ``kubelite up`` runs inside
it, so the bridge, routes, sysctls and nftables tables it programs never touch this machine's own
network.  One cluster serves the whole module; each test works in a namespace of its own.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import KUBECTL, Cluster
from tests.e2e.netns_helpers import (
    Api,
    Net,
    create_host,
    deployment,
    exec_in,
    fetch_many,
    finish,
    force_cleanup,
    http_get,
    is_ready,
    leftovers,
    names,
    sandbox_netns,
    service,
    start_cluster_in,
    wait_for,
    wait_ready,
    web_container,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    host = create_host()
    data = tmp_path_factory.mktemp("net") / "data"
    seen: set[str] = set()
    try:
        cluster = start_cluster_in(host, data)
        try:
            assert "runtime=runc" in cluster.ready_line, cluster.ready_line
            yield Net(host, cluster, Api(cluster), data)
            seen = sandbox_netns(data / "agent")
        finally:
            rc = finish(cluster)
        left = leftovers(host, data / "agent", seen)
        assert rc == 0, "".join(cluster.output[-50:])
        assert left == [], f"kubelite left these behind in {host.name}: {left}"
    finally:
        force_cleanup(data / "agent")
        host.delete()


@pytest.fixture
def ns(net: Net, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from net.namespace("n-", request.node.name)


def web(
    net: Net, ns: str, name: str, replicas: int, labels: dict[str, str], **kw: Any
) -> list[dict[str, Any]]:
    net.cluster.apply(deployment(name, ns, replicas, labels, **kw))
    sel = ",".join(f"{k}={v}" for k, v in labels.items())
    return wait_ready(net.api, ns, sel, replicas)


def served_by(net: Net, ns: str, url: str, want: set[str], n: int = 30, timeout: float = 30) -> Counter[str]:
    """Fetch ``url`` from the client pod until one batch of ``n`` requests succeeds completely and
    reaches exactly the pods ``want``; return that batch's counts."""

    def batch() -> Counter[str] | None:
        got = Counter(fetch_many(net.cluster, ns, "client", url, n))
        assert set(got) == want, f"{url}: {dict(got)} (want {sorted(want)})"
        return got

    return wait_for(batch, timeout, f"{url} served by {sorted(want)}", step=0.5)


# --------------------------------------------------------------------------------- pod network
def test_pod_to_pod_by_ip_on_one_node(net: Net, ns: str) -> None:
    pods = web(net, ns, "web", 2, {"app": "web"})
    net.client(ns)
    node = net.api.get("/api/v1/nodes")["items"][0]
    cidr = ipaddress.IPv4Network(node["spec"]["podCIDR"])
    assert cidr.subnet_of(ipaddress.IPv4Network("10.244.0.0/16")), cidr
    for p in pods:
        ip = p["status"]["podIP"]
        assert ipaddress.ip_address(ip) in cidr, (ip, cidr)
        assert fetch_many(net.cluster, ns, "client", f"http://{ip}:8080/", 3) == [p["metadata"]["name"]] * 3
    # the node reaches its pods too (the agent's host network namespace)
    ip = pods[0]["status"]["podIP"]
    assert net.host.get(ip, 8080) == pods[0]["metadata"]["name"]


# --------------------------------------------------------------------------------- Services + DNS
@pytest.fixture
def default_ns(net: Net) -> Iterator[str]:
    """The ``default`` namespace (``web.default`` must resolve); emptied afterwards."""
    yield "default"
    for kind in ("deployment/web", "service/web", "pod/client"):
        net.cluster.kubectl("delete", kind, "-n", "default", "--wait=false", check=False)


def test_clusterip_by_dns_names_reaches_all_replicas(net: Net, default_ns: str) -> None:
    ns = default_ns
    pods = web(net, ns, "web", 3, {"app": "web"})
    net.cluster.apply(service("web", ns, {"app": "web"}))
    net.client(ns)
    vip = net.service_ip(ns, "web")
    assert ipaddress.ip_address(vip) in ipaddress.ip_network("10.96.0.0/12")
    for name in ("web", "web.default", "web.default.svc.cluster.local", vip):
        served_by(net, ns, f"http://{name}/", names(pods))
    resolv = exec_in(net.cluster, ns, "client", "cat /etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv, resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv, resolv
    assert "ndots:5" in resolv, resolv


def test_not_ready_pod_gets_no_traffic_until_ready_again(net: Net, ns: str) -> None:
    pods = web(net, ns, "web", 3, {"app": "web"})
    net.cluster.apply(service("web", ns, {"app": "web"}))
    net.client(ns)
    everyone = names(pods)
    served_by(net, ns, "http://web/", everyone)
    victim = sorted(everyone)[0]
    net.cluster.kubectl("exec", "-n", ns, victim, "--", "rm", "/tmp/ready")
    wait_for(
        lambda: not is_ready(net.api.get(f"/api/v1/namespaces/{ns}/pods/{victim}")), 15, f"{victim} not Ready"
    )
    got = served_by(net, ns, "http://web/", everyone - {victim}, n=40)
    assert victim not in got
    net.cluster.kubectl("exec", "-n", ns, victim, "--", "touch", "/tmp/ready")
    wait_for(lambda: is_ready(net.api.get(f"/api/v1/namespaces/{ns}/pods/{victim}")), 15, f"{victim} Ready")
    served_by(net, ns, "http://web/", everyone)


class Stream:
    """A client pod requesting ``url`` in a loop, each line "<uptime> <answer>" (boot clock)."""

    def __init__(self, cluster: Cluster, ns: str, pod: str, url: str, seconds: int) -> None:
        script = (
            f"read up _ < /proc/uptime; end=$(( ${{up%.*}} + {seconds} )); "
            f'while read up _ < /proc/uptime && [ "${{up%.*}}" -lt "$end" ]; do '
            f'echo "$up $(timeout 2 wget -qO- {url} 2>/dev/null)"; done'
        )
        cmd = [
            KUBECTL,
            "--cache-dir",
            str(cluster.cache_dir),
            "exec",
            "-n",
            ns,
            pod,
            "--",
            "sh",
            "-c",
            script,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=cluster.env())

    def lines(self) -> list[tuple[float, str]]:
        out, _ = self.proc.communicate(timeout=120)
        rows = []
        for line in out.splitlines():
            t, _, body = line.partition(" ")
            rows.append((float(t), body.strip()))
        return rows


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def test_scaling_changes_backends_within_a_second(net: Net, ns: str) -> None:
    """A client pod requests the ClusterIP in a tight loop while the Deployment scales 2 -> 3 -> 2.
    The new pod must get traffic within a second of its endpoint becoming ready, and the removed
    one none later than a second after its endpoint went away (it keeps serving for its 5 s grace
    period, so traffic to it would still be answered if the rules were stale); no request fails."""
    labels = {"app": "web"}
    dep = deployment("web", ns, 2, labels)
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    net.cluster.apply(dep)
    pods = wait_ready(net.api, ns, "app=web", 2)
    net.cluster.apply(service("web", ns, labels))
    net.client(ns)
    vip = net.service_ip(ns, "web")
    served_by(net, ns, f"http://{vip}/", names(pods))
    stream = Stream(net.cluster, ns, "client", f"http://{vip}/", 16)
    time.sleep(1.0)

    t_scale = boottime()
    before = net.api.ready_endpoints(ns, "web")
    net.cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=3")
    new_ip, t_up = _wait_endpoints(net, ns, before, lambda eps: len(eps) == 3, "3 ready endpoints")
    time.sleep(3.0)
    ips = {p["status"]["podIP"]: p["metadata"]["name"] for p in net.api.pods(ns, "app=web")}
    new_name = ips[new_ip]
    before = net.api.ready_endpoints(ns, "web")
    net.cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=2")
    gone_ip, t_down = _wait_endpoints(net, ns, before, lambda eps: len(eps) == 2, "2 ready endpoints")
    gone = ips[gone_ip]
    rows = stream.lines()
    assert rows, "the client stream printed nothing"
    assert rows[-1][0] > t_down + 5, "the stream ended too soon after the scale-down"
    first_new = next((t for t, body in rows if body == new_name), None)
    assert first_new is not None, f"{new_name} never answered"
    last_gone = max((t for t, body in rows if body == gone), default=0.0)
    failures = [(t, b) for t, b in rows if not b]
    latency_up = first_new - t_up
    latency_down = max(0.0, last_gone - t_down)
    print(
        f"scale-up: kubectl scale -> traffic {first_new - t_scale:.2f}s, endpoint ready -> traffic "
        f"{latency_up:.3f}s; scale-down: endpoint removed -> last traffic {latency_down:.3f}s; "
        f"{len(rows)} requests, {len(failures)} failed"
    )
    assert latency_up < 1.0, f"new backend got traffic {latency_up:.3f}s after it became ready"
    assert latency_down < 1.0, f"removed backend still got traffic {latency_down:.3f}s after removal"
    assert not failures, f"requests failed during scaling: {failures[:5]}"


def _wait_endpoints(
    net: Net, ns: str, first: set[str], done: Callable[[set[str]], bool], what: str
) -> tuple[str, float]:
    """Poll the Service's ready endpoints (every 20 ms) until ``done``; the endpoint that changed
    against ``first`` (read before the scale command: the change can land before the first
    poll) and the boot-clock time the change was first seen."""

    def check() -> tuple[str, float] | None:
        eps = net.api.ready_endpoints(ns, "web")
        if not done(eps):
            return None
        changed = sorted(eps - first) or sorted(first - eps)
        return changed[0], boottime()

    return wait_for(check, 60, what, step=0.02)


# --------------------------------------------------------------------------------- NodePort, LB
def test_nodeport_answers_on_localhost_of_the_node(net: Net, ns: str) -> None:
    pods = web(net, ns, "web", 2, {"app": "web"})
    net.cluster.apply(service("web", ns, {"app": "web"}, type="NodePort"))
    svc = net.api.get(f"/api/v1/namespaces/{ns}/services/web")
    port = int(svc["spec"]["ports"][0]["nodePort"])
    assert 30000 <= port <= 32767

    def answers() -> set[str] | None:
        got = {net.host.get("127.0.0.1", port) for _ in range(30)}
        assert got == names(pods), got
        return got

    wait_for(answers, 15, f"NodePort {port} on 127.0.0.1 inside {net.host.name}")
    # and on the node's address, from outside the node
    assert {net.host.get(net.host.ip, port) for _ in range(30)} <= names(pods)
    assert http_get(net.host.ip, port) in names(pods)


def test_loadbalancer_gets_ingress_address_and_answers(net: Net, ns: str) -> None:
    pods = web(net, ns, "web", 2, {"app": "web"})
    net.cluster.apply(service("web", ns, {"app": "web"}, port=8081, type="LoadBalancer"))

    def ingress() -> list[dict[str, Any]] | None:
        svc = net.api.get(f"/api/v1/namespaces/{ns}/services/web")
        return list(((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []) or None

    ing = wait_for(ingress, 15, "status.loadBalancer.ingress")
    assert [i.get("ip") for i in ing] == [net.host.ip], ing
    wait_for(lambda: http_get(net.host.ip, 8081) in names(pods), 15, "LB address answers from outside")
    got = {net.host.get(net.host.ip, 8081) for _ in range(30)}
    assert got == names(pods), got


# --------------------------------------------------------------------------------- StatefulSet DNS
def _lookup(net: Net, ns: str, name: str) -> list[str]:
    out = exec_in(net.cluster, ns, "client", f"nslookup {name} 2>&1 || true")
    answer = out.split("Name:", 1)[1] if "Name:" in out else ""
    return re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.M)


def test_statefulset_pods_resolve_by_stable_name(net: Net, ns: str) -> None:
    labels = {"app": "db"}
    headless = service("db", ns, labels, port=8080, clusterIP="None")
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "serviceName": "db",
            "replicas": 2,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [web_container()], "terminationGracePeriodSeconds": 1},
            },
        },
    }
    net.cluster.apply(headless)
    net.cluster.apply(sts)
    pods = wait_ready(net.api, ns, "app=db", 2)
    net.client(ns)
    fqdn = f"web-0.db.{ns}.svc.cluster.local"
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}

    wait_for(lambda: _lookup(net, ns, fqdn) == [ips["web-0"]], 20, f"{fqdn} -> {ips['web-0']}", step=0.5)
    assert _lookup(net, ns, f"web-1.db.{ns}.svc.cluster.local") == [ips["web-1"]]
    assert sorted(_lookup(net, ns, f"db.{ns}.svc.cluster.local")) == sorted(ips.values())
    assert fetch_many(net.cluster, ns, "client", "http://web-0.db:8080/", 2) == ["web-0", "web-0"]

    old_uid = next(p["metadata"]["uid"] for p in pods if p["metadata"]["name"] == "web-0")
    net.cluster.kubectl("delete", "pod", "-n", ns, "web-0")

    def recreated() -> dict[str, Any] | None:
        p = net.api.find(f"/api/v1/namespaces/{ns}/pods/web-0")  # None between delete and re-create
        if p is None or p["metadata"]["uid"] == old_uid:
            return None
        return p if is_ready(p) and p["status"].get("podIP") else None

    new = wait_for(recreated, 60, "web-0 recreated and Ready")
    new_ip = new["status"]["podIP"]
    wait_for(lambda: _lookup(net, ns, fqdn) == [new_ip], 20, f"{fqdn} -> {new_ip}", step=0.5)
    wait_for(
        lambda: fetch_many(net.cluster, ns, "client", f"http://{fqdn}:8080/", 2) == ["web-0", "web-0"],
        10,
        "web-0 answers by name after its restart",
    )


# --------------------------------------------------------------------------------- canary
def test_canary_splits_traffic_by_ready_replicas(net: Net, ns: str) -> None:
    stable = web(net, ns, "stable", 3, {"app": "shop", "track": "stable"})
    canary = web(net, ns, "canary", 1, {"app": "shop", "track": "canary"})
    net.cluster.apply(service("shop", ns, {"app": "shop"}))
    net.client(ns)
    served_by(net, ns, "http://shop/", names(stable) | names(canary), n=40)
    got = Counter(fetch_many(net.cluster, ns, "client", "http://shop/", 400))
    total = sum(got.values())
    to_canary = sum(n for name, n in got.items() if name.startswith("canary-"))
    to_stable = sum(n for name, n in got.items() if name.startswith("stable-"))
    print(f"canary split: stable {to_stable}, canary {to_canary} of {total} ({dict(got)})")
    assert to_stable + to_canary == total == 400, dict(got)
    # expected 100 of 400 (sd ~8.7): a tolerant band, yet far from an even 2-way split (200)
    assert 60 <= to_canary <= 150, dict(got)
    assert set(got) == names(stable) | names(canary)


# --------------------------------------------------------------------------------- NetworkPolicy
def _policy(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _reaches(net: Net, ns: str, pod: str, ip: str) -> bool:
    out = exec_in(net.cluster, ns, pod, f"timeout 2 wget -qO- http://{ip}:8080/ 2>/dev/null || echo FAIL")
    return out.strip() not in ("", "FAIL")


def test_network_policy_default_deny_then_allow_one_label(net: Net, ns: str) -> None:
    server = web(net, ns, "db", 1, {"app": "db"})[0]
    ip = server["status"]["podIP"]
    net.client(ns, "friend", {"role": "friend", "access": "granted"})
    net.client(ns, "stranger", {"role": "stranger"})
    assert _reaches(net, ns, "friend", ip) and _reaches(net, ns, "stranger", ip)

    net.cluster.apply(_policy(ns, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    wait_for(
        lambda: not _reaches(net, ns, "friend", ip) and not _reaches(net, ns, "stranger", ip),
        15,
        "default deny",
        step=0.3,
    )

    allow = {
        "podSelector": {"matchLabels": {"app": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"access": "granted"}}}], "ports": [{"port": 8080}]}
        ],
    }
    net.cluster.apply(_policy(ns, "allow-granted", allow))
    wait_for(lambda: _reaches(net, ns, "friend", ip), 15, "the allowed client gets in", step=0.3)
    assert not _reaches(net, ns, "stranger", ip)
    assert not _reaches(net, ns, "stranger", ip)
    # the readiness probe (exec) kept the server Ready; the policy only filters pod traffic
    assert is_ready(net.api.get(f"/api/v1/namespaces/{ns}/pods/{server['metadata']['name']}"))
    # removing the deny-all leaves only the allow policy, which still isolates the server
    net.cluster.kubectl("delete", "networkpolicy", "-n", ns, "default-deny")
    time.sleep(1)
    assert _reaches(net, ns, "friend", ip) and not _reaches(net, ns, "stranger", ip)
