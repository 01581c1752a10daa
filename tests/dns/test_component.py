"""``kubelite up``/``kubelite dns`` wiring: when DNS runs and with which settings."""

from __future__ import annotations

import os

import pytest

from kubelite.cli import build_parser
from kubelite.dns import DNSServer, component, config_from_args
from kubelite.dns.acl import local_addresses


@pytest.mark.parametrize(
    "flags",
    [["--no-dns"], ["--no-agent"], ["--simulated-nodes", "3"], ["--network", "none"]],
)
async def test_up_skips_dns_without_a_real_cni_node(flags: list[str]) -> None:
    args = build_parser().parse_args(["up", *flags])
    assert await component(None, args) is None  # type: ignore[arg-type]


async def test_up_needs_root_and_runc(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelite.agent.agent as agent

    args = build_parser().parse_args(["up", "--node-ip", "10.1.2.3", "--dns-upstream", "10.0.0.2"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert await component(None, args) is None  # type: ignore[arg-type]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(agent, "runc_works", lambda: False)
    assert await component(None, args) is None  # type: ignore[arg-type]
    monkeypatch.setattr(agent, "runc_works", lambda: True)
    server = await component(None, args)  # type: ignore[arg-type]
    assert isinstance(server, DNSServer)
    cfg = server.config
    assert (cfg.bind_address, cfg.port, cfg.cluster_domain) == ("10.1.2.3", 53, "cluster.local")
    assert (cfg.cluster_cidr, cfg.service_cidr) == ("10.244.0.0/16", "10.96.0.0/12")
    assert cfg.upstreams == [("10.0.0.2", 53)]
    assert cfg.publish_name and cfg.node_name == cfg.publish_name
    assert "10.1.2.3" in cfg.node_ips


def test_standalone_dns_settings() -> None:
    argv = ["dns", "--bind-address", "127.0.0.1", "--dns-port", "5300", "--cluster-domain", "k.example"]
    argv += ["--cluster-cidr", "10.50.0.0/16", "--service-cidr", "10.60.0.0/16"]
    argv += ["--dns-upstream", "127.0.0.1:5300", "--dns-upstream", "[fd00::2]:53"]
    cfg = config_from_args(build_parser().parse_args(argv))
    assert (cfg.bind_address, cfg.port, cfg.cluster_domain) == ("127.0.0.1", 5300, "k.example")
    assert (cfg.cluster_cidr, cfg.service_cidr) == ("10.50.0.0/16", "10.60.0.0/16")
    assert cfg.upstreams == [("fd00::2", 53)]  # never itself
    assert cfg.node_name == ""
    assert set(local_addresses()) <= set(cfg.node_ips)


def test_wildcard_bind_publishes_the_primary_address() -> None:
    from kubelite.agent.nodeinfo import primary_ip

    cfg = config_from_args(
        build_parser().parse_args(["dns", "--bind-address", "0.0.0.0", "--dns-upstream", "10.0.0.2"])
    )
    assert cfg.bind_address == "0.0.0.0" and cfg.publish_address == primary_ip()
    assert "0.0.0.0" not in cfg.node_ips
