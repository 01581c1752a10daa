"""API discovery documents: aggregated (apidiscovery.k8s.io/v2) and legacy.

kubectl takes aggregated discovery from ``/api`` and ``/apis`` (recognised only by the
reply's Content-Type) and still needs the legacy per-group-version ``APIResourceList``
(drain looks for ``pods/eviction`` there; ``auth can-i`` checks resources exist).
"""

from __future__ import annotations

from typing import Any

import orjson

from kubelite.registry.resources import ResourceIndex, ResourceInfo, Subresource


def _scope(r: ResourceInfo) -> str:
    return "Namespaced" if r.namespaced else "Cluster"


def _sub_kind(r: ResourceInfo, s: Subresource) -> dict[str, str]:
    return {"group": s.group or r.group, "version": s.version or r.version, "kind": s.kind}


def _aggregated_resource(r: ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": _scope(r),
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    if r.subresources:
        out["subresources"] = [
            {"subresource": s.name, "responseKind": _sub_kind(r, s), "verbs": list(s.verbs)}
            for s in r.subresources
        ]
    return out


def _legacy_resources(index: ResourceIndex, group: str, version: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in index.in_group_version(group, version):
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for s in r.subresources:
            sub: dict[str, Any] = {
                "name": f"{r.plural}/{s.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": list(s.verbs),
            }
            if s.group or s.version:
                sub["group"] = s.group or r.group
                sub["version"] = s.version or r.version
            out.append(sub)
    return out


class Discovery:
    """Discovery documents for one resource index, cached until ``invalidate()``."""

    def __init__(self, index: ResourceIndex) -> None:
        self.index = index
        self._cache: dict[str, bytes] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    def _cached(self, key: str, build: Any) -> bytes:
        hit = self._cache.get(key)
        if hit is None:
            hit = orjson.dumps(build())
            self._cache[key] = hit
        return hit

    def aggregated(self, legacy_core: bool, version: str = "v2") -> bytes:
        return self._cached(f"agg:{legacy_core}:{version}", lambda: self._aggregated(legacy_core, version))

    def _aggregated(self, legacy_core: bool, version: str) -> dict[str, Any]:
        items = []
        for group, versions in self.index.group_versions().items():
            if (group == "") != legacy_core:
                continue
            meta: dict[str, Any] = {"creationTimestamp": None}
            if group:
                meta["name"] = group
            items.append(
                {
                    "metadata": meta,
                    "versions": [
                        {
                            "version": v,
                            "resources": [
                                _aggregated_resource(r) for r in self.index.in_group_version(group, v)
                            ],
                            "freshness": "Current",
                        }
                        for v in versions
                    ],
                }
            )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {},
            "items": items,
        }

    def api_versions(self, server_address: str) -> bytes:
        return orjson.dumps(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
            }
        )

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def api_group_list(self) -> bytes:
        def build() -> dict[str, Any]:
            groups = [self._group(g, vs) for g, vs in self.index.group_versions().items() if g]
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

        return self._cached("apis", build)

    def api_group(self, group: str) -> bytes | None:
        versions = self.index.group_versions().get(group)
        if not group or not versions:
            return None
        return orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **self._group(group, versions)})

    def resource_list(self, group: str, version: str) -> bytes | None:
        if version not in self.index.group_versions().get(group, []):
            return None

        def build() -> dict[str, Any]:
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": _legacy_resources(self.index, group, version),
            }

        return self._cached(f"rl:{group}/{version}", build)
