"""Issue 5 scope beyond the acceptance list, end to end on one node (real runc, CNI, nftables,
cluster DNS, kubectl): hairpin traffic, Services without endpoints failing fast, ClientIP session
affinity, service environment variables, hostPort and hostNetwork pods, headless Services with
only ready pods, ExternalName, SRV/pod/PTR records, and NetworkPolicy by namespace and for egress.

Like ``test_networking.py`` the node is a network namespace the test creates.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

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
    pod_netns,
    pod_spec,
    sandbox_netns,
    service,
    sleeper,
    socket_in,
    start_cluster_in,
    wait_for,
    wait_ready,
    web_container,
)

pytestmark = pytest.mark.e2e


UPSTREAM_PORT = 5399
OUTSIDE_NAME, OUTSIDE_IP = "www.example.org.", "192.0.2.123"


class FakeUpstream:
    """The node's "outside" resolver for the forwarding test: a UDP DNS responder on the host
    namespace's loopback (nothing leaves the machine) that knows one name."""

    def __init__(self, netns: str, port: int) -> None:
        self.sock = socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        from dnslib import QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]

        with contextlib.suppress(OSError):
            while True:
                data, peer = self.sock.recvfrom(4096)
                if peer is None:
                    return
                query = DNSRecord.parse(data)
                reply = query.reply()
                if str(query.q.qname) == OUTSIDE_NAME and query.q.qtype == QTYPE.A:
                    reply.add_answer(RR(OUTSIDE_NAME, QTYPE.A, rdata=A(OUTSIDE_IP), ttl=30))
                elif str(query.q.qname) != OUTSIDE_NAME:
                    reply.header.rcode = RCODE.NXDOMAIN
                self.sock.sendto(reply.pack(), peer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    host = create_host()
    data = tmp_path_factory.mktemp("netfeat") / "data"
    seen: set[str] = set()
    upstream = FakeUpstream(host.path, UPSTREAM_PORT)
    try:
        cluster = start_cluster_in(host, data, "--dns-upstream", f"127.0.0.1:{UPSTREAM_PORT}")
        try:
            yield Net(host, cluster, Api(cluster), data)
            seen = sandbox_netns(data / "agent")
        finally:
            rc = finish(cluster)
        assert rc == 0, "".join(cluster.output[-50:])
        assert leftovers(host, data / "agent", seen) == []
    finally:
        upstream.close()
        force_cleanup(data / "agent")
        host.delete()


@pytest.fixture
def ns(net: Net, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from net.namespace("f-", request.node.name)


def _web(net: Net, ns: str, replicas: int, **svc: Any) -> list[dict[str, Any]]:
    net.cluster.apply(deployment("web", ns, replicas, {"app": "web"}))
    net.cluster.apply(service("web", ns, {"app": "web"}, **svc))
    return wait_ready(net.api, ns, "app=web", replicas)


def _nslookup(net: Net, ns: str, *args: str) -> str:
    return exec_in(net.cluster, ns, "client", f"nslookup {' '.join(args)} 2>&1 || true")


def _answers(out: str) -> list[str]:
    """The IPv4 addresses of an nslookup answer (not the server's own "Address: IP:53" line)."""
    answer = out.split("Name:", 1)[1] if "Name:" in out else ""
    return sorted(re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.M))


# --------------------------------------------------------------------------------- Services
def test_pod_reaches_itself_through_its_service(net: Net, ns: str) -> None:
    """Hairpin: the only backend of a Service is the client itself."""
    pod = _web(net, ns, 1)[0]["metadata"]["name"]
    got = wait_for(
        lambda: fetch_many(net.cluster, ns, pod, "http://web/", 3) == [pod] * 3, 15, "hairpin", step=0.5
    )
    assert got


def test_service_without_endpoints_fails_fast(net: Net, ns: str) -> None:
    net.cluster.apply(service("nobody", ns, {"app": "nobody"}))
    net.client(ns)
    vip = net.api.get(f"/api/v1/namespaces/{ns}/services/nobody")["spec"]["clusterIP"]
    script = f"s=$(cut -d' ' -f1 /proc/uptime); timeout 5 wget -qO- http://{vip}/ 2>&1; echo; echo $s"
    script += "; cut -d' ' -f1 /proc/uptime"
    out = exec_in(net.cluster, ns, "client", script).split()
    took = float(out[-1]) - float(out[-2])
    assert took < 1.0, f"a request to a Service without endpoints took {took:.2f}s: {out}"
    assert "refused" in " ".join(out) or "unreachable" in " ".join(out), out


def test_client_ip_session_affinity(net: Net, ns: str) -> None:
    pods = _web(net, ns, 3, sessionAffinity="ClientIP")
    net.client(ns)
    up = names(pods)
    wait_for(lambda: fetch_many(net.cluster, ns, "client", "http://web/", 1)[0] in up, 15, "service up")
    got = Counter(fetch_many(net.cluster, ns, "client", "http://web/", 30))
    assert len(got) == 1 and sum(got.values()) == 30, dict(got)


def test_service_environment_variables(net: Net, ns: str) -> None:
    _web(net, ns, 1)
    net.client(ns)  # created after the Service: it gets its variables
    vip = net.api.get(f"/api/v1/namespaces/{ns}/services/web")["spec"]["clusterIP"]
    env = exec_in(net.cluster, ns, "client", "env").splitlines()
    assert f"WEB_SERVICE_HOST={vip}" in env, env
    assert "WEB_SERVICE_PORT=80" in env and "WEB_SERVICE_PORT_HTTP=80" in env, env
    assert f"WEB_PORT=tcp://{vip}:80" in env, env
    assert "KUBERNETES_SERVICE_HOST=10.96.0.1" in env and "KUBERNETES_SERVICE_PORT=443" in env, env


def test_kubernetes_service_reaches_the_api_server(net: Net, ns: str) -> None:
    net.client(ns)
    assert net.api.ready_endpoints("default", "kubernetes") == {net.host.ip}
    # from a pod: a TCP connection to kubernetes.default:443 (busybox's TLS client cannot talk to
    # the API server's TLS, so only the connection is checked: nc exits 0 once connected)
    out = exec_in(net.cluster, ns, "client", "timeout 3 nc kubernetes.default 443 </dev/null; echo rc=$?")
    assert out.strip().endswith("rc=0"), out
    # from the node: TLS through the VIP reaches the API server itself
    ctx = ssl.create_default_context(cafile=str(net.cluster.ca()))
    ctx.check_hostname = False
    with socket_in(net.host.path) as raw:
        raw.settimeout(5)
        raw.connect(("10.96.0.1", 443))
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"GET /version HTTP/1.0\r\nHost: kubernetes\r\n\r\n")
            body = b""
            while data := tls.recv(65536):
                body += data
    assert b"gitVersion" in body, body[:300]


class UdpEcho:
    """A UDP server answering every datagram with ``name``, on a socket inside a pod's network
    namespace (busybox has no UDP server), served by a thread of the test process."""

    def __init__(self, netns: str, port: int, name: str) -> None:
        self.sock = socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", port))
        self.name = name.encode()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # closed
            while True:
                _, peer = self.sock.recvfrom(2048)
                if peer is None:  # shut down
                    return
                self.sock.sendto(self.name, peer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_udp_flow_moves_to_the_new_endpoint(net: Net, ns: str) -> None:
    """UDP has no teardown: a flow keeps its conntrack entry (DNAT to the old endpoint) as long as
    packets keep coming.  When the endpoint goes, the proxy must delete those entries so the same
    flow (same source port) reaches the new endpoint, as kube-proxy does."""
    svc = service("echo", ns, {"app": "udp"}, port=5353)
    svc["spec"]["ports"][0].update(protocol="UDP", targetPort=5353)
    net.cluster.apply(svc)
    net.cluster.apply(sleeper("udp-a", ns, {"app": "udp", "role": "udp-a"}))
    net.cluster.apply(sleeper("client", ns, {"role": "client"}))
    a = wait_ready(net.api, ns, "role=udp-a", 1)[0]
    client_pod = wait_ready(net.api, ns, "role=client", 1)[0]
    vip = net.api.get(f"/api/v1/namespaces/{ns}/services/echo")["spec"]["clusterIP"]
    echoes = [UdpEcho(pod_netns(net.data / "agent", a), 5353, "udp-a")]
    flow = socket_in(pod_netns(net.data / "agent", client_pod), socket.AF_INET, socket.SOCK_DGRAM)
    flow.bind(("0.0.0.0", 40053))  # one flow: the same 5-tuple for every datagram
    flow.settimeout(0.2)

    def ask() -> str:
        with contextlib.suppress(OSError):
            flow.sendto(b"ping", (vip, 5353))
            return flow.recv(2048).decode()
        return ""

    try:
        wait_for(lambda: ask() == "udp-a", 20, "the UDP service answers from udp-a", step=0.05)
        net.cluster.apply(sleeper("udp-b", ns, {"app": "udp", "role": "udp-b"}))
        b = wait_ready(net.api, ns, "role=udp-b", 1)[0]
        echoes.append(UdpEcho(pod_netns(net.data / "agent", b), 5353, "udp-b"))
        net.cluster.kubectl("delete", "pod", "-n", ns, "udp-a", "--wait=false")
        wait_for(lambda: a["status"]["podIP"] not in net.api.ready_endpoints(ns, "echo"), 20, "udp-a removed")
        t0 = time.monotonic()
        got = wait_for(lambda: ask() == "udp-b", 10, "the same flow answered by udp-b", step=0.05)
        print(f"UDP flow moved to the new endpoint {time.monotonic() - t0:.2f}s after the old one left")
        assert got
    finally:
        flow.close()
        for e in echoes:
            e.close()


# --------------------------------------------------------------------------------- host ports
def test_host_port_and_host_network(net: Net, ns: str) -> None:
    c = web_container()
    c["ports"] = [{"containerPort": 8080, "hostPort": 18080, "protocol": "TCP"}]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hp", "namespace": ns, "labels": {"app": "hp"}},
        "spec": pod_spec(c),
    }
    hn = web_container(port=18090)
    hostnet = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hn", "namespace": ns, "labels": {"app": "hn"}},
        "spec": {**pod_spec(hn), "hostNetwork": True},
    }
    net.cluster.apply(pod)
    net.cluster.apply(hostnet)
    wait_ready(net.api, ns, "app=hp", 1)
    hn_pod = wait_ready(net.api, ns, "app=hn", 1)[0]
    assert hn_pod["status"]["podIP"] == net.host.ip, hn_pod["status"]
    wait_for(lambda: http_get(net.host.ip, 18080) == "hp", 15, "hostPort on the node address")
    assert net.host.get("127.0.0.1", 18080) == "hp"
    wait_for(lambda: http_get(net.host.ip, 18090) == "hn", 15, "hostNetwork pod on the node address")


# --------------------------------------------------------------------------------- DNS
def test_headless_service_resolves_to_ready_pods_only(net: Net, ns: str) -> None:
    net.cluster.apply(deployment("web", ns, 2, {"app": "web"}))
    net.cluster.apply(service("hl", ns, {"app": "web"}, clusterIP="None"))
    pods = wait_ready(net.api, ns, "app=web", 2)
    net.client(ns)
    ips = sorted(p["status"]["podIP"] for p in pods)
    fqdn = f"hl.{ns}.svc.cluster.local"
    wait_for(lambda: _answers(_nslookup(net, ns, fqdn)) == ips, 15, f"{fqdn} -> {ips}", step=0.5)
    everyone = service("hl-all", ns, {"app": "web"}, clusterIP="None", publishNotReadyAddresses=True)
    net.cluster.apply(everyone)
    all_fqdn = f"hl-all.{ns}.svc.cluster.local"
    wait_for(lambda: _answers(_nslookup(net, ns, all_fqdn)) == ips, 15, f"{all_fqdn} -> {ips}", step=0.5)
    victim = pods[0]
    net.cluster.kubectl("exec", "-n", ns, victim["metadata"]["name"], "--", "rm", "/tmp/ready")
    rest = sorted(set(ips) - {victim["status"]["podIP"]})
    wait_for(lambda: _answers(_nslookup(net, ns, fqdn)) == rest, 15, f"{fqdn} -> {rest}", step=0.5)
    # publishNotReadyAddresses: the not-ready pod is still published
    assert _answers(_nslookup(net, ns, all_fqdn)) == ips


def test_external_name_srv_pod_and_ptr_records(net: Net, ns: str) -> None:
    pods = _web(net, ns, 1)
    net.client(ns)
    vip = net.api.get(f"/api/v1/namespaces/{ns}/services/web")["spec"]["clusterIP"]
    svc = f"web.{ns}.svc.cluster.local"
    wait_for(lambda: _answers(_nslookup(net, ns, svc)) == [vip], 15, f"{svc} -> {vip}", step=0.5)

    alias = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "alias", "namespace": ns},
        "spec": {"type": "ExternalName", "externalName": svc},
    }
    net.cluster.apply(alias)

    def cname() -> str | None:
        out = _nslookup(net, ns, f"alias.{ns}.svc.cluster.local")
        return out if vip in out else None

    out = wait_for(cname, 15, "the ExternalName alias resolves through its CNAME", step=0.5)
    assert svc in out, out  # the CNAME target is shown

    srv = _nslookup(net, ns, "-type=SRV", f"_http._tcp.{svc}")
    assert re.search(rf"80\s+{re.escape(svc)}", srv), srv

    ip = pods[0]["status"]["podIP"]
    pod_name = f"{ip.replace('.', '-')}.{ns}.pod.cluster.local"
    assert _answers(_nslookup(net, ns, pod_name)) == [ip]

    ptr = _nslookup(net, ns, vip)
    assert svc in ptr, ptr


def test_names_outside_the_cluster_are_forwarded(net: Net, ns: str) -> None:
    net.client(ns)
    out = _nslookup(net, ns, OUTSIDE_NAME.rstrip("."))
    assert _answers(out) == [OUTSIDE_IP], out
    out = _nslookup(net, ns, "nowhere.example.org")
    assert "NXDOMAIN" in out and not _answers(out), out


def test_dns_policies_shape_resolv_conf(net: Net, ns: str) -> None:
    custom = sleeper("custom", ns, {"role": "custom"})
    custom["spec"].update(
        dnsPolicy="None",
        dnsConfig={
            "nameservers": ["10.96.0.10"],
            "searches": ["example.test"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
        },
    )
    host_dns = sleeper("hostdns", ns, {"role": "hostdns"})
    host_dns["spec"]["dnsPolicy"] = "Default"
    net.cluster.apply(custom)
    net.cluster.apply(host_dns)
    wait_ready(net.api, ns, "role=custom", 1)
    wait_ready(net.api, ns, "role=hostdns", 1)
    text = exec_in(net.cluster, ns, "custom", "cat /etc/resolv.conf")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "nameserver 10.96.0.10" in lines and "search example.test" in lines, lines
    assert any(line.startswith("options") and "ndots:2" in line and "edns0" in line for line in lines), lines
    text = exec_in(net.cluster, ns, "hostdns", "cat /etc/resolv.conf")
    assert "cluster.local" not in text and "10.96.0.10" not in text, text


# --------------------------------------------------------------------------------- NetworkPolicy
def _policy(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


def _reaches(net: Net, ns: str, pod: str, url: str) -> bool:
    out = exec_in(net.cluster, ns, pod, f"timeout 2 wget -qO- {url} 2>/dev/null || echo FAIL")
    return out.strip() not in ("", "FAIL")


def test_network_policy_by_namespace_and_for_egress(net: Net, ns: str) -> None:
    server = _web(net, ns, 1)[0]
    ip = server["status"]["podIP"]
    url = f"http://{ip}:8080/"
    friends = f"{ns}-friends"[:63]
    net.cluster.kubectl("create", "namespace", friends)
    try:
        net.cluster.kubectl("label", "namespace", friends, "team=friends")
        net.client(friends, "visitor")
        net.client(ns, "local")
        net.cluster.apply(
            _policy(
                ns,
                "from-friends",
                {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "friends"}}}]}],
                },
            )
        )
        wait_for(lambda: not _reaches(net, ns, "local", url), 15, "same-namespace client blocked", step=0.3)
        assert _reaches(net, friends, "visitor", url)

        # egress: the visitor may only talk to port 8080 (and DNS is then blocked too)
        net.cluster.apply(
            _policy(
                friends,
                "egress-8080",
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 8080}]}]},
            )
        )
        vip = net.api.get(f"/api/v1/namespaces/{ns}/services/web")["spec"]["clusterIP"]
        by_name = f"http://web.{ns}/"
        wait_for(lambda: not _reaches(net, friends, "visitor", by_name), 15, "DNS egress blocked", step=0.3)
        assert _reaches(net, friends, "visitor", url)
        # the Service port is 80: egress rules see the translated destination port (8080)
        assert _reaches(net, friends, "visitor", f"http://{vip}/")
    finally:
        net.cluster.kubectl("delete", "namespace", friends, "--wait=false", check=False)
    assert is_ready(net.api.get(f"/api/v1/namespaces/{ns}/pods/{server['metadata']['name']}"))
