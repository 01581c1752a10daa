"""Content negotiation: which representation a client asked for in ``Accept``.

kubectl asks for Tables with ``application/json;as=Table;v=v1;g=meta.k8s.io`` and for
aggregated discovery with ``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``.
Replies are always JSON (protobuf is only ever accepted as a request body).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubelite.api import errors


@dataclass(frozen=True)
class MediaType:
    type: str
    params: dict[str, str]

    @property
    def as_kind(self) -> str:
        return self.params.get("as", "")


def parse_accept(accept: str) -> list[MediaType]:
    out: list[MediaType] = []
    for part in accept.split(","):
        part = part.strip()
        if not part:
            continue
        pieces = [p.strip() for p in part.split(";")]
        params: dict[str, str] = {}
        for p in pieces[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        out.append(MediaType(pieces[0].lower(), params))
    return out


def _is_jsonish(mt: MediaType) -> bool:
    return mt.type in (
        "application/json",
        "*/*",
        "application/*",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    )


def wants_aggregated_discovery(accept: str) -> str:
    """'v2' / 'v2beta1' when the client accepts aggregated discovery, else ''."""
    for mt in parse_accept(accept):
        if (
            mt.type == "application/json"
            and mt.params.get("g") == "apidiscovery.k8s.io"
            and mt.as_kind == "APIGroupDiscoveryList"
        ):
            return mt.params.get("v", "v2")
        if mt.type == "application/json" and not mt.params:
            return ""
    return ""


def object_representation(accept: str) -> str:
    """'Table', 'PartialObjectMetadata', 'PartialObjectMetadataList' or '' (the object itself)."""
    if not accept:
        return ""
    for mt in parse_accept(accept):
        kind = mt.as_kind
        if kind in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
            if mt.params.get("g", "meta.k8s.io") == "meta.k8s.io":
                return kind
            continue
        if _is_jsonish(mt) and not kind:
            return ""
    if any(mt.as_kind for mt in parse_accept(accept)):
        raise errors.NotAcceptable(
            "only the following media types are accepted: application/json, application/yaml, "
            "application/vnd.kubernetes.protobuf, application/json;as=Table;v=v1;g=meta.k8s.io"
        )
    return ""


DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
DISCOVERY_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
