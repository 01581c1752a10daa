"""Partial-sync diffs: only changed chains and elements are written; deletes are ordered."""

from __future__ import annotations

from kubelite.proxy import names as n
from kubelite.proxy.model import TableModel
from kubelite.proxy.render import base_chains, base_maps
from kubelite.proxy.ruleset import Fragment
from tests.proxy.builders import CTX, ep, eps_slice, render, svc

PID = n.port_id("default", "web", "tcp", "http")


def model_with(**frags: Fragment) -> TableModel:
    m = TableModel("t", base_chains(CTX), base_maps())
    m.commit(m.plan_full({k.replace("_", "/"): f for k, f in frags.items()}, set(), set()))
    return m


def test_unchanged_service_is_an_empty_plan() -> None:
    frag = render(svc(), eps_slice("web", [ep("10.244.0.2")]))
    m = model_with(default_web=frag)
    assert m.plan_partial({"default/web": render(svc(), eps_slice("web", [ep("10.244.0.2")]))}).empty


def test_new_affinity_endpoint_chain_is_created_before_rules_use_it() -> None:
    m = model_with(default_web=render(svc(sessionAffinity="ClientIP"), eps_slice("web", [ep("10.244.0.2")])))
    new = render(svc(sessionAffinity="ClientIP"), eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3")]))
    lines = m.plan_partial({"default/web": new}).text.splitlines()
    chain = n.endpoint_chain(PID, "10.244.0.3", 8080)
    assert lines[0].startswith("add set ip t affinity-")
    assert lines[1] == f"add chain ip t {chain}"
    assert lines[2] == f"flush chain ip t {n.service_chain(PID)}"


def test_endpoint_added_rewrites_only_its_service_chain() -> None:
    m = model_with(
        default_web=render(svc(), eps_slice("web", [ep("10.244.0.2")])),
        default_other=render(svc("other", "10.96.0.21"), eps_slice("other", [ep("10.244.0.9")])),
    )
    new = render(svc(), eps_slice("web", [ep("10.244.0.2"), ep("10.244.0.3")]))
    plan = m.plan_partial({"default/web": new})
    lines = plan.text.splitlines()
    chain = n.service_chain(PID)
    assert lines == [
        f"flush chain ip t {chain}",
        *(f"add rule ip t {chain} {rule}" for rule in new.chains[chain]),
        "add element ip t hairpin-endpoints { 10.244.0.3 . 10.244.0.3 }",
    ]  # nothing of "other"; the service-ips element already points at the service chain
    assert plan.changed == {"default/web"}
    m.commit(plan)
    assert m.fragments["default/web"] is new


def test_service_deleted_removes_elements_before_chains_and_sets() -> None:
    m = model_with(default_web=render(svc(sessionAffinity="ClientIP"), eps_slice("web", [ep("10.244.0.2")])))
    plan = m.plan_partial({"default/web": None})
    lines = plan.text.splitlines()
    kinds = [line.split()[0] + " " + line.split()[1] for line in lines]
    assert kinds == [
        "delete element",  # cluster-ips
        "delete element",  # service-ips
        "delete element",  # hairpin-endpoints
        "flush chain",
        "flush chain",
        "delete chain",
        "delete chain",
        "delete set",
    ]
    m.commit(plan)
    assert m.fragments == {} and m.elements[n.SERVICE_IPS] == {}


def test_losing_endpoints_swaps_service_ip_for_reject() -> None:
    m = model_with(default_web=render(svc(), eps_slice("web", [ep("10.244.0.2")])))
    plan = m.plan_partial({"default/web": render(svc(), eps_slice("web", [ep("10.244.0.2", ready=False)]))})
    assert "delete element ip t service-ips { 10.96.0.20 . tcp . 80 }" in plan.text
    assert "add element ip t no-endpoint-services { 10.96.0.20 . tcp . 80 : goto reject-chain }" in plan.text
    assert "cluster-ips" not in plan.text  # unchanged


def test_conflicting_map_keys_go_to_first_service() -> None:
    lb = {"type": "LoadBalancer", "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
    a = render(svc("a", "10.96.0.21", **lb), eps_slice("a", [ep("10.244.0.2")]))
    b = render(svc("b", "10.96.0.22", **lb), eps_slice("b", [ep("10.244.0.3")]))
    m = model_with(default_a=a, default_b=b)
    key = "192.0.2.1 . tcp . 80"
    ext_a = n.external_chain(n.port_id("default", "a", "tcp", "http"))
    ext_b = n.external_chain(n.port_id("default", "b", "tcp", "http"))
    assert m.elements[n.SERVICE_IPS][key] == f"goto {ext_a}"
    plan = m.plan_partial({"default/a": None})
    assert f"add element ip t service-ips {{ {key} : goto {ext_b} }}" in plan.text
    m.commit(plan)
    assert m.elements[n.SERVICE_IPS][key] == f"goto {ext_b}"
    assert m.plan_partial({"default/b": b}).empty


def test_full_plan_deletes_unknown_kernel_objects_and_keeps_affinity_state() -> None:
    m = TableModel("t", base_chains(CTX), base_maps())
    frag = render(svc(sessionAffinity="ClientIP"), eps_slice("web", [ep("10.244.0.2")]))
    plan = m.plan_full({"default/web": frag}, {"services", "endpoint-OLD"}, {"affinity-OLD", "cluster-ips"})
    lines = plan.text.splitlines()
    assert lines[0] == "add table ip t"
    assert lines[-3:] == [
        "flush chain ip t endpoint-OLD",
        "delete chain ip t endpoint-OLD",
        "delete set ip t affinity-OLD",
    ]
    assert not any(line.startswith("flush set ip t affinity-") for line in lines)
    assert "flush map ip t service-ips" in lines and "flush set ip t cluster-ips" in lines
