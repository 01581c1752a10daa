"""Per-resource table printers, split by API group (mirrors ``pkg/printers/internalversion``).

:func:`printer_for` finds the :class:`Printer` of a built-in resource; resources without
one (roles, limit ranges, CRDs, ...) get the default table, as in Kubernetes.
"""

from __future__ import annotations

from . import apps, autoscaling, batch, core, events, networking, other, pods
from ._base import Column, Printer

__all__ = ["PRINTERS", "Column", "Printer", "printer_for"]

PRINTERS: dict[tuple[str, str], Printer] = {
    **pods.PRINTERS,
    **core.PRINTERS,
    **events.PRINTERS,
    **apps.PRINTERS,
    **batch.PRINTERS,
    **networking.PRINTERS,
    **autoscaling.PRINTERS,
    **other.PRINTERS,
}


def printer_for(group: str, resource: str) -> Printer | None:
    """The printer of ``resource`` (plural) in ``group`` ('' for core), or None."""
    return PRINTERS.get((group, resource))
