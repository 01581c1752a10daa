"""Resource quantities for validation: parse, compare and print canonically.

A small private stand-in for ``resource.Quantity`` (``k8s.io/apimachinery/pkg/api/resource``):
exact values as :class:`fractions.Fraction`, and ``String()``'s canonical form for messages
(``0.5`` prints as ``500m``, ``1024Mi`` as ``1Gi``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eEinumkKMGTP]*[-+]?[0-9]*)")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}

QUANTITY_REGEX_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


@lru_cache(maxsize=4096)
def parse(text: str) -> tuple[Fraction, str]:
    """Value and format (``BinarySI``, ``DecimalSI`` or ``DecimalExponent``); ValueError if malformed."""
    m = _QUANTITY.fullmatch(text.strip()) if text else None
    if m is None:
        raise ValueError(QUANTITY_REGEX_MESSAGE)
    number, suffix = m.group(1), m.group(2)
    value = Fraction(number)
    if suffix in _BINARY:
        return value * 1024 ** _BINARY[suffix], "BinarySI"
    if suffix in _DECIMAL:
        return value * Fraction(10) ** _DECIMAL[suffix], "DecimalSI"
    if suffix[:1] in ("e", "E") and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
        return value * Fraction(10) ** int(suffix[1:]), "DecimalExponent"
    raise ValueError("unable to parse quantity's suffix")


def value_of(text: object) -> Fraction | None:
    """The value of a quantity given as a string or a JSON number, or None if malformed."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return Fraction(text)
    if not isinstance(text, str):
        return None
    try:
        return parse(text)[0]
    except (ValueError, ZeroDivisionError):
        return None


def canonical(text: object) -> str:
    """``Quantity.String()``: the canonical spelling (falls back to the input if malformed)."""
    if not isinstance(text, str):
        return str(text)
    try:
        value, fmt = parse(text)
    except ValueError:
        return text
    return format_quantity(value, fmt)


def format_quantity(value: Fraction, fmt: str = "DecimalSI") -> str:
    # values are rounded up to nano precision, like the API server stores them
    nanos = -((-value * 10**9) // 1)
    value = Fraction(nanos, 10**9)
    if fmt == "BinarySI" and value.denominator == 1 and abs(value) >= 1024:
        exp = 0
        n = int(value)
        while exp < 6 and n % 1024 == 0 and n != 0:
            n //= 1024
            exp += 1
        if exp:
            return f"{n}{_BINARY_SUFFIX[exp]}"
    return _format_decimal(value, "e" if fmt == "DecimalExponent" else "")


def _format_decimal(value: Fraction, exp_style: str) -> str:
    if value == 0:
        return "0"
    # smallest multiple-of-3 exponent that keeps the mantissa an integer, then the largest such
    mantissa, exp = value * 10**9, -9
    while exp < 18 and (mantissa / 1000).denominator == 1:
        mantissa /= 1000
        exp += 3
    if mantissa.denominator != 1:
        return str(float(value))
    if exp_style:
        return f"{int(mantissa)}" + (f"e{exp}" if exp else "")
    return f"{int(mantissa)}{_DECIMAL_SUFFIX[exp]}"
