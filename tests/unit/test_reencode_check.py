"""Strict field validation still finds duplicate keys when the body is compact JSON (the
shortcut that skips the second parse only applies to bodies without any)."""

from __future__ import annotations

import orjson
import pytest

from kubelite.api import errors
from kubelite.apiserver.rest import _reencodes_to, check_body
from kubelite.registry.resources import BUILTIN

CM = next(i for i in BUILTIN if i.plural == "configmaps" and i.group == "")


class _Ctx:
    crds = None


def test_compact_body_without_duplicates_reencodes() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}
    raw = orjson.dumps(obj)
    assert _reencodes_to(orjson.loads(raw), raw)
    assert not _reencodes_to(orjson.loads(raw + b"\n"), raw + b"\n")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"1","a":"2"}}',
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"1","a":"1"}}',
        b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1", "a": "2"}}',
    ],
)
def test_duplicates_are_still_rejected_in_strict_mode(raw: bytes) -> None:
    obj = orjson.loads(raw)
    assert not _reencodes_to(obj, raw)
    with pytest.raises(errors.BadRequest, match=r'duplicate field "data\.a"'):
        check_body(_Ctx(), CM, obj, "Strict", [], raw)  # type: ignore[arg-type]


def test_compact_body_passes_strict() -> None:
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"1"}}'
    check_body(_Ctx(), CM, orjson.loads(raw), "Strict", [], raw)  # type: ignore[arg-type]
