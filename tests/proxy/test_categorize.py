"""Which endpoints get traffic: readiness, terminating fallback, locality, topology hints."""

from __future__ import annotations

from kubelite.proxy.categorize import categorize
from kubelite.proxy.endpoints import Endpoint


def e(ip: str, node: str = "a", ready: bool = True, serving: bool | None = None, term: bool = False,
      zones: tuple[str, ...] | None = None) -> Endpoint:  # fmt: skip
    return Endpoint(ip, 80, node, ready, ready if serving is None else serving, term, zones)


def ips(eps: tuple[Endpoint, ...]) -> list[str]:
    return [x.ip for x in eps]


def test_ready_endpoints_only() -> None:
    cat = categorize((e("1"), e("2", ready=False), e("3", node="b")), "a")
    assert ips(cat.cluster) == ["1", "3"] and ips(cat.local) == ["1"] and cat.has_any


def test_serving_terminating_fallback_when_nothing_is_ready() -> None:
    eps = (e("1", ready=False, serving=True, term=True), e("2", ready=False), e("3", ready=False, term=True))
    cat = categorize(eps, "a")
    assert ips(cat.cluster) == ["1"] and cat.has_any
    # A ready endpoint anywhere wins over terminating ones.
    assert ips(categorize((*eps, e("4", node="b")), "a").cluster) == ["4"]


def test_local_falls_back_to_local_terminating() -> None:
    eps = (e("1", ready=False, serving=True, term=True), e("2", node="b"))
    cat = categorize(eps, "a")
    assert ips(cat.cluster) == ["2"] and ips(cat.local) == ["1"]


def test_nothing_usable() -> None:
    cat = categorize((e("1", ready=False), e("2", ready=False, serving=False, term=True)), "a")
    assert cat.cluster == () and cat.local == () and not cat.has_any


def test_topology_hints_for_this_zone() -> None:
    eps = (e("1", zones=("z1",)), e("2", zones=("z2",)), e("3", zones=("z1",)))
    assert ips(categorize(eps, "a", "z1", topology=True).cluster) == ["1", "3"]
    assert ips(categorize(eps, "a", "z1", topology=False).cluster) == ["1", "2", "3"]  # not asked for
    assert ips(categorize(eps, "a", "z9", topology=True).cluster) == ["1", "2", "3"]  # no hint for z9
    assert ips(categorize(eps, "a", "", topology=True).cluster) == ["1", "2", "3"]  # node has no zone
    partial = (*eps, e("4"))  # one ready endpoint without hints disables the filter
    assert ips(categorize(partial, "a", "z1", topology=True).cluster) == ["1", "2", "3", "4"]
