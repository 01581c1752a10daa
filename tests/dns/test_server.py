"""The DNS server on real loopback sockets, fed by a real in-process API server.

Forwarding goes only to a fake upstream on another loopback port (never a real resolver).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dnslib import RCODE  # type: ignore[import-untyped]

from kubelite.api import errors
from kubelite.dns import DNSConfig, DNSServer
from tests.dns.net import BIG, FakeUpstream, ips, tcp_query, udp_query
from tests.dns.objects import endpoint, endpoint_slice, service
from tests.unit.lifecycle_api import SERVICES, SLICES, api_server, eventually

WEB = "web.default.svc.cluster.local"


@pytest.fixture
async def upstream() -> Any:
    up = FakeUpstream()
    await up.start()
    yield up
    await up.stop()


def _config(upstream_port: int, **kw: Any) -> DNSConfig:
    base: dict[str, Any] = {
        "bind_address": "127.0.0.1",
        "port": 0,
        "upstreams": [("127.0.0.1", upstream_port)],
        "upstream_timeout": 1.0,
    }
    return DNSConfig(**(base | kw))


async def test_serves_cluster_records_over_udp_and_tcp_and_follows_changes(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    async with api_server(tmp_path) as api:
        web = await api.client.create(
            SERVICES, "default", service("web", ports=[{"name": "http", "port": 80}])
        )
        cluster_ip = web["spec"]["clusterIP"]
        srv = DNSServer(api.client, _config(upstream.port))
        await srv.start()
        try:
            port = srv.port
            assert ips(await udp_query(port, WEB)) == [cluster_ip]
            a, srv_rec = await tcp_query(port, [(WEB.upper(), "A"), ("_http._tcp." + WEB, "SRV")])
            assert ips(a) == [cluster_ip] and str(a.rr[0].rname) == WEB.upper() + "."
            assert str(srv_rec.rr[0].rdata) == f"0 100 80 {WEB}."

            headless = service("db", ips=["None"], ports=[{"name": "pg", "port": 5432}])
            await api.client.create(SERVICES, "default", headless)
            eps = [endpoint("10.244.0.5", "db-0"), endpoint("10.244.0.6", "db-1", ready=False)]
            await api.client.create(SLICES, "default", endpoint_slice("db-1", "db", endpoints=eps))

            async def headless_ready() -> bool:
                r = await udp_query(port, "db.default.svc.cluster.local")
                return ips(r) == ["10.244.0.5"]

            await eventually(headless_ready)
            r = await udp_query(port, "db-0.db.default.svc.cluster.local")
            assert ips(r) == ["10.244.0.5"]

            await api.client.delete(SERVICES, "default", "web")

            async def web_gone() -> bool:
                return bool((await udp_query(port, WEB)).header.rcode == RCODE.NXDOMAIN)

            await eventually(web_gone)
            assert upstream.seen == []  # cluster names never leave the server
        finally:
            await srv.stop()


async def test_forwards_other_names_with_tcp_fallback(tmp_path: Path, upstream: FakeUpstream) -> None:
    async with api_server(tmp_path) as api:
        await api.client.create(SERVICES, "default", service("ext", external="example.com"))
        srv = DNSServer(api.client, _config(upstream.port))
        await srv.start()
        try:
            r = await udp_query(srv.port, "Example.com")
            assert ips(r) == ["192.0.2.1"] and r.header.rcode == RCODE.NOERROR
            big = await udp_query(srv.port, "big.example")
            assert ips(big) == BIG and big.header.tc == 0
            assert ("big.example", "udp") in upstream.seen and ("big.example", "tcp") in upstream.seen
            (tcp,) = await tcp_query(srv.port, [("example.com", "A")])
            assert ips(tcp) == ["192.0.2.1"]
            nx = await udp_query(srv.port, "missing.example")
            assert nx.header.rcode == RCODE.NXDOMAIN
            ext = await udp_query(srv.port, "ext.default.svc.cluster.local")
            assert [str(rr.rdata) for rr in ext.rr] == ["example.com.", "192.0.2.1"]
            ptr = await udp_query(srv.port, "1.2.0.192.in-addr.arpa", "PTR")  # not ours: forwarded
            assert ptr.header.rcode == RCODE.NXDOMAIN and ("1.2.0.192.in-addr.arpa", "udp") in upstream.seen
        finally:
            await srv.stop()


async def test_refuses_forwarding_for_clients_outside_the_cluster(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    async with api_server(tmp_path) as api:
        await api.client.create(SERVICES, "default", service("web", ports=[{"port": 80}]))
        cfg = _config(upstream.port, allow_loopback=False, node_ips=[])
        srv = DNSServer(api.client, cfg)
        await srv.start()
        try:
            refused = await udp_query(srv.port, "example.com")
            assert refused.header.rcode == RCODE.REFUSED and refused.rr == []
            (tcp_refused,) = await tcp_query(srv.port, [("example.com", "A")])
            assert tcp_refused.header.rcode == RCODE.REFUSED
            assert upstream.seen == []
            assert len(ips(await udp_query(srv.port, WEB))) == 1  # cluster names: still answered
        finally:
            await srv.stop()


async def test_servfail_when_upstreams_fail(tmp_path: Path, upstream: FakeUpstream) -> None:
    await upstream.stop()  # nothing listens on its port any more
    async with api_server(tmp_path) as api:
        srv = DNSServer(api.client, _config(upstream.port, upstream_timeout=0.3))
        await srv.start()
        try:
            r = await udp_query(srv.port, "example.com")
            assert r.header.rcode == RCODE.SERVFAIL
        finally:
            await srv.stop()
        none = DNSServer(api.client, _config(upstream.port, upstreams=[]))
        await none.start()
        try:
            assert (await udp_query(none.port, "example.com")).header.rcode == RCODE.SERVFAIL
        finally:
            await none.stop()


async def test_publishes_its_endpoint_slice_and_deletes_it_on_stop(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    async with api_server(tmp_path) as api:
        srv = DNSServer(api.client, _config(upstream.port, publish_name="Node-1", node_name="node-1"))
        await srv.start()
        try:
            eps = await api.client.get(SLICES, "kube-system", "kube-dns-node-1")
            assert eps["metadata"]["labels"] == {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "dns.kubelite.io",
            }
            assert eps["addressType"] == "IPv4"
            (ep,) = eps["endpoints"]
            assert ep["addresses"] == ["127.0.0.1"] and ep["nodeName"] == "node-1"
            assert ep["conditions"]["ready"] is True
            ports = {(p["name"], p["protocol"], p["port"]) for p in eps["ports"]}
            assert ports == {("dns", "UDP", srv.port), ("dns-tcp", "TCP", srv.port)}
            # the slice feeds the server's own state like any other
            r = await udp_query(srv.port, "1.0.0.127.in-addr.arpa", "PTR")
            assert r.header.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN)
        finally:
            await srv.stop()
        with pytest.raises(errors.NotFound):
            await api.client.get(SLICES, "kube-system", "kube-dns-node-1")
        # a restart replaces a slice left behind
        again = DNSServer(api.client, _config(upstream.port, publish_name="node-1"))
        await again.start()
        second = DNSServer(api.client, _config(upstream.port, publish_name="node-1"))
        await second.start()
        try:
            eps = await api.client.get(SLICES, "kube-system", "kube-dns-node-1")
            assert eps["ports"][0]["port"] == second.port
        finally:
            await second.stop()
            await again.stop()


async def test_a_taken_port_is_fatal_only_when_required(tmp_path: Path, upstream: FakeUpstream) -> None:
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        async with api_server(tmp_path) as api:
            required = DNSServer(api.client, _config(upstream.port, port=port))
            with pytest.raises(OSError, match=f"cluster DNS cannot listen on 127.0.0.1:{port}"):
                await required.start()
            assert all(inf._task is None for inf in required.informers)  # cleaned up
            optional = DNSServer(api.client, _config(upstream.port, port=port, required=False))
            await optional.start()
            assert optional.failure and optional.summary == " dns=unavailable"
            await optional.stop()
    finally:
        taken.close()


async def test_stop_closes_idle_tcp_connections(tmp_path: Path, upstream: FakeUpstream) -> None:
    import asyncio

    async with api_server(tmp_path) as api:
        srv = DNSServer(api.client, _config(upstream.port))
        await srv.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        await asyncio.sleep(0.05)
        await asyncio.wait_for(srv.stop(), 5)
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the server
        writer.close()


async def test_forwarded_answers_are_cached(tmp_path: Path, upstream: FakeUpstream) -> None:
    async with api_server(tmp_path) as api:
        srv = DNSServer(api.client, _config(upstream.port))
        await srv.start()
        try:
            for _ in range(3):
                assert ips(await udp_query(srv.port, "example.com")) == ["192.0.2.1"]
            assert upstream.seen.count(("example.com", "udp")) == 1
        finally:
            await srv.stop()
