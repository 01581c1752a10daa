"""Issue 5 acceptance: after ``kubelite up`` stops, nothing of its pod network remains on the node:
no pod network namespaces, no bridge or veths, no routes, no nftables tables, sysctls restored.

The node is a network namespace the test creates, so the check can be exact (the namespace had
only ``lo`` and ``eth0`` before) without being disturbed by other runs on this machine.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.netns_helpers import (
    Api,
    HostNetns,
    create_host,
    deployment,
    finish,
    force_cleanup,
    leftovers,
    netns_names,
    sandbox_netns,
    service,
    start_cluster_in,
    stop_process,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e
NS = "cleanup"
SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet")


def _sysctls(host: HostNetns) -> dict[str, str]:
    return {k: host.sh("sysctl", "-n", k).strip() for k in SYSCTLS}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_nothing_of_kubelite_remains_after_up_stops(tmp_path: Path, sig: signal.Signals) -> None:
    host = create_host()
    data = tmp_path / "data"
    seen: set[str] = set()
    try:
        before = _sysctls(host)
        assert leftovers(host, data / "agent", set()) == []
        cluster = start_cluster_in(host, data)
        try:
            api = Api(cluster)
            cluster.kubectl("create", "namespace", NS)
            cluster.apply(deployment("web", NS, 2, {"app": "web"}))
            cluster.apply(service("web", NS, {"app": "web"}, type="NodePort"))
            cluster.apply(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "deny-egress", "namespace": NS},
                    "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
                }
            )
            pods = wait_ready(api, NS, "app=web", 2)
            vip = api.get(f"/api/v1/namespaces/{NS}/services/web")["spec"]["clusterIP"]
            want = {p["metadata"]["name"] for p in pods}
            wait_for(lambda: host.get(vip, 80) in want, 15, f"the node reaches {vip}")
            seen = sandbox_netns(data / "agent")
            assert len(seen) >= 2 and seen <= netns_names(), (seen, netns_names())
            # while it runs the checker sees everything it must later find gone
            running = leftovers(host, data / "agent", seen)
            for thing in ("link kubelite0", "nft table ip kubelite-proxy", "nft table ip kubelite-policy"):
                assert thing in running, running
            assert "nft table ip kubelite-node" in running, running
            assert any("10.96.0.0/12" in r for r in running), running
            assert any(r.startswith("container ") for r in running), running
        finally:
            rc = stop_process(cluster.proc, sig)
            finish(cluster)
        assert rc == 0, "".join(cluster.output[-40:])
        assert leftovers(host, data / "agent", seen) == []
        assert _sysctls(host) == before
    finally:
        force_cleanup(data / "agent")
        host.delete()
