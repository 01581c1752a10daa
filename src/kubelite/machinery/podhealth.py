"""Re-export of :mod:`kubelite.api.podhealth` (the pure pod/node helpers live in ``api`` so
the API server's eviction check can use them too)."""

from kubelite.api.podhealth import (
    Obj,
    condition,
    controller_ref,
    is_pod_ready,
    is_terminal,
    is_terminating,
    matches,
    meta,
    namespace_index,
    node_name_index,
    now_rfc3339,
    pod_ip,
    selector_of,
    set_condition,
    timestamp,
    tolerates,
)

__all__ = [
    "Obj",
    "condition",
    "controller_ref",
    "is_pod_ready",
    "is_terminal",
    "is_terminating",
    "matches",
    "meta",
    "namespace_index",
    "node_name_index",
    "now_rfc3339",
    "pod_ip",
    "selector_of",
    "set_condition",
    "timestamp",
    "tolerates",
]
