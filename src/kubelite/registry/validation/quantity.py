"""Resource quantities for validation: a cached adapter over :mod:`kubelite.api.quantity`.

Values come back as exact :class:`fractions.Fraction` (or None when malformed) so the
validators can compare and test integrality; :func:`canonical` is ``Quantity.String()``
for messages (``0.5`` prints as ``500m``, ``1024Mi`` as ``1Gi``).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from kubelite.api.quantity import FORMAT_ERROR, canonical_quantity, parse_quantity

QUANTITY_REGEX_MESSAGE = FORMAT_ERROR


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Fraction | None:
    try:
        return Fraction(parse_quantity(text))
    except (ValueError, ArithmeticError):
        return None


def value_of(raw: object) -> Fraction | None:
    """The value of a quantity given as a string or a JSON number, or None if malformed."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        return _parse_text(raw)
    if isinstance(raw, int | float):
        return _parse_text(str(raw))
    return None


def canonical(raw: object) -> str:
    """``Quantity.String()``: the canonical spelling (the input itself if malformed)."""
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        return _canonical_text(raw if isinstance(raw, str) else str(raw))
    return str(raw)


@lru_cache(maxsize=4096)
def _canonical_text(text: str) -> str:
    return canonical_quantity(text) if _parse_text(text) is not None else text
