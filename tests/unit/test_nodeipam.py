"""Node IPAM controller: CIDR set arithmetic and podCIDR assignment against a real API server."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelite.client.base import Client
from kubelite.controllers import nodeipam
from kubelite.controllers.manager import FACTORIES, controller_options
from kubelite.controllers.nodeipam import CIDRSet
from tests.unit.lifecycle_api import EVENTS, NODES, api_server, eventually, running

Obj = dict[str, Any]


def test_cidr_set_hands_out_subnets_in_order_and_skips_occupied() -> None:
    s = CIDRSet("10.244.0.0/16", 24)
    assert s.size == 256
    assert s.occupy("10.244.1.0/24", "sim-0")
    assert s.allocate_next("a") == "10.244.0.0/24"
    assert s.allocate_next("b") == "10.244.2.0/24"
    assert s.held_by("sim-0") == ["10.244.1.0/24"]
    assert not s.occupy("192.168.0.0/24", "x")  # outside the range: ignored


def test_cidr_set_round_robin_reuses_released_subnets_only_after_wrapping() -> None:
    s = CIDRSet("10.0.0.0/30", 31)  # two subnets
    assert s.allocate_next("a") == "10.0.0.0/31"
    assert s.allocate_next("b") == "10.0.0.2/31"
    assert s.allocate_next("c") is None
    s.release("10.0.0.0/31", "a")
    assert s.allocate_next("c") == "10.0.0.0/31"
    s.release("10.0.0.2/31", "someone-else")  # not b's to give back
    assert s.allocate_next("d") is None


def test_cidr_set_occupies_every_subnet_an_overlapping_range_covers() -> None:
    s = CIDRSet("10.96.0.0/16", 24)
    s.occupy("10.96.0.0/22", "<service-cidr>")  # four /24 subnets
    assert s.used() == 4
    assert s.allocate_next("a") == "10.96.4.0/24"
    s.occupy("10.0.0.0/8", "<service-cidr>")  # a larger range covers all of it
    assert s.used() == 256


@pytest.mark.parametrize(("cidr", "mask"), [("10.0.0.0/16", 8), ("10.0.0.0/8", 25), ("10.0.0.0/16", 33)])
def test_cidr_set_rejects_impossible_mask_sizes(cidr: str, mask: int) -> None:
    with pytest.raises(ValueError, match="mask size"):
        CIDRSet(cidr, mask)


@settings(max_examples=60, deadline=None)
@given(
    mask=st.integers(min_value=26, max_value=30),
    ops=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=40)), max_size=80),
)
def test_allocations_never_overlap_and_stay_in_range(mask: int, ops: list[tuple[bool, int]]) -> None:
    network = ipaddress.ip_network("10.1.0.0/24")
    s = CIDRSet(str(network), mask)
    held: dict[str, str] = {}
    for allocate, n in ops:
        name = f"n{n}"
        if allocate and name not in held:
            cidr = s.allocate_next(name)
            if cidr is None:
                assert len(held) == s.size
                continue
            held[name] = cidr
        elif not allocate and name in held:
            s.release(held.pop(name), name)
        nets = [ipaddress.ip_network(c) for c in held.values()]
        assert all(n.subnet_of(network) and n.prefixlen == mask for n in nets)  # type: ignore[arg-type]
        assert len(set(nets)) == len(nets) == s.used()


def test_manager_registers_node_ipam_with_cluster_cidr_options() -> None:
    assert FACTORIES["node-ipam-controller"] == "kubelite.controllers.nodeipam:new"

    class Args:
        cluster_cidr = "10.50.0.0/16"
        node_cidr_mask_size = 26

    opts = controller_options(Args())
    assert opts["cluster_cidr"] == "10.50.0.0/16" and opts["node_cidr_mask_size"] == 26
    assert opts["service_cidr"] == ""


async def _node(c: Client, name: str, pod_cidr: str = "") -> None:
    body: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}}
    if pod_cidr:
        body["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    await c.create(NODES, "", body)


async def _cidrs(c: Client) -> dict[str, str]:
    items = (await c.list(NODES, ""))["items"]
    return {n["metadata"]["name"]: (n.get("spec") or {}).get("podCIDR", "") for n in items}


async def test_nodes_get_free_pod_cidrs_and_full_range_is_reported(tmp_path: Path) -> None:
    options = {
        "cluster_cidr": "10.200.0.0/22",
        "node_cidr_mask_size": 24,
        "node_ipam_retry_seconds": 0.2,
    }
    async with api_server(tmp_path) as api:
        c = api.client
        await _node(c, "preset", "10.200.1.0/24")  # simulated nodes bring their own
        async with running(c, [nodeipam.new], options):
            for name in ("a", "b", "c"):
                await _node(c, name)

            async def assigned() -> dict[str, str]:
                got = await _cidrs(c)
                assert all(got.values()), got
                return got

            got = await eventually(assigned)
            assert got["preset"] == "10.200.1.0/24"
            assert sorted(got[n] for n in "abc") == ["10.200.0.0/24", "10.200.2.0/24", "10.200.3.0/24"]
            node_a = await c.get(NODES, "", "a")
            assert node_a["spec"]["podCIDRs"] == [node_a["spec"]["podCIDR"]]

            await _node(c, "late")

            async def not_available() -> bool:
                events = (await c.list(EVENTS, "default"))["items"]
                return any(
                    e["reason"] == "CIDRNotAvailable" and e["involvedObject"]["name"] == "late"
                    for e in events
                )

            await eventually(not_available)
            freed = got["b"]
            await c.delete(NODES, "", "b")

            async def late_gets_freed() -> bool:
                return (await _cidrs(c)).get("late") == freed

            await eventually(late_gets_freed)


async def test_restarted_controller_keeps_existing_assignments(tmp_path: Path) -> None:
    options = {"cluster_cidr": "10.201.0.0/23", "node_cidr_mask_size": 24}
    async with api_server(tmp_path) as api:
        c = api.client
        await _node(c, "old", "10.201.0.0/24")
        await _node(c, "fresh")
        async with running(c, [nodeipam.new], options):

            async def fresh_assigned() -> bool:
                return (await _cidrs(c)).get("fresh") == "10.201.1.0/24"

            await eventually(fresh_assigned)
