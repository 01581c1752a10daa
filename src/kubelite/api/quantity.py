"""Resource quantities (``resource.Quantity`` of apimachinery 1.32), kept exact.

A quantity is a decimal number with an optional suffix: binary ``Ki Mi Gi Ti Pi Ei``,
decimal ``n u m k M G T P E`` or an exponent ``e3``/``E-3``.  Parsing rounds the
magnitude up to a whole number of nano-units (as Kubernetes does) and caps binary
quantities at 2^63-1; the value is returned as an exact :class:`~decimal.Decimal`.

Formatting follows ``Quantity.String``: the canonical form for a suffix style
(``1500m``, ``1Gi``, ``128974848``, ``12e6``).  :func:`canonical_quantity` gives
the string the API server writes back for a stored quantity, which keeps the
client's text when Kubernetes does (``100m``, ``1Ki``) and canonicalises otherwise
(``1000`` -> ``1k``, ``0.5`` -> ``500m``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

Format = Literal["BinarySI", "DecimalSI", "DecimalExponent"]
QuantityInput = str | int | float | Decimal

_SPLIT_RE_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{_SPLIT_RE_TEXT}'"
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

# sign, integer digits, fraction digits, suffix (letters, optional sign, digits)
_QUANTITY_RE = re.compile(r"^([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)$")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}
_NANO = 10**9
_MAX_BINARY = 2**63 - 1
_MAX_EXPONENT = 1000  # |10-exponent| accepted; Kubernetes takes any int32, absurd here


@dataclass(frozen=True)
class _Scanned:
    negative: bool
    whole: str  # integer digits without leading zeros ('' for none)
    fraction: str  # digits after the '.'
    base: int  # 10 or 2
    exponent: int  # power of base
    format: Format


@dataclass(frozen=True)
class Quantity:
    """An exact quantity: ``value`` in units, its ``format``, and the text Kubernetes keeps."""

    value: Decimal
    format: Format
    kept: str | None = None  # the client's own text when Kubernetes echoes it unchanged

    @classmethod
    def parse(cls, s: QuantityInput) -> Quantity:
        """``resource.ParseQuantity`` (after the JSON decoder's whitespace trim); ValueError if bad."""
        text = _input_text(s)
        if text == "0":
            return cls(Decimal(0), "DecimalSI", "0")
        scanned = _scan(text)
        nanos = _to_nanos(scanned)
        fmt = scanned.format
        if fmt == "BinarySI":
            nanos = max(-_MAX_BINARY * _NANO, min(nanos, _MAX_BINARY * _NANO))
            if 0 < abs(nanos) < _NANO:
                fmt = "DecimalSI"
        kept = text if _text_is_kept(scanned) else None
        return cls(_nanos_to_decimal(nanos), fmt, kept)

    def __str__(self) -> str:
        return self.kept if self.kept is not None else format_quantity(self.value, self.format)


def _input_text(s: QuantityInput) -> str:
    if isinstance(s, bool):
        raise ValueError(FORMAT_ERROR)
    if isinstance(s, float):
        if not math.isfinite(s):
            raise ValueError(FORMAT_ERROR)
        return repr(s)
    if isinstance(s, Decimal):
        if not s.is_finite():
            raise ValueError(FORMAT_ERROR)
        return str(s)
    if isinstance(s, int):
        return str(s)
    if not isinstance(s, str):
        raise ValueError(FORMAT_ERROR)
    text = s.strip()
    if not text:
        raise ValueError(FORMAT_ERROR)
    return text


def _scan(text: str) -> _Scanned:
    m = _QUANTITY_RE.match(text)
    if m is None:
        raise ValueError(FORMAT_ERROR)
    sign, whole, fraction, suffix = m.group(1), m.group(2), m.group(3) or "", m.group(4)
    base, exponent, fmt = _interpret_suffix(suffix)
    return _Scanned(sign == "-", whole.lstrip("0"), fraction, base, exponent, fmt)


def _interpret_suffix(suffix: str) -> tuple[int, int, Format]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], "DecimalSI"
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], "BinarySI"
    if len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[+-]?[0-9]+", suffix[1:]):
        exponent = int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(SUFFIX_ERROR)
        return 10, exponent, "DecimalExponent"
    raise ValueError(SUFFIX_ERROR)


def _to_nanos(q: _Scanned) -> int:
    """The value in nano-units, magnitude rounded up (away from zero) like ``inf.RoundUp``."""
    digits = int((q.whole or "0") + q.fraction)
    exact = Fraction(digits, 10 ** len(q.fraction)) * Fraction(q.base) ** q.exponent * _NANO
    magnitude = math.ceil(exact)
    return -magnitude if q.negative else magnitude


def _text_is_kept(q: _Scanned) -> bool:
    """Whether Kubernetes keeps the client's text (its int64 fast path with a canonical-looking input)."""
    whole = q.whole or "0"
    if q.format == "BinarySI":
        if q.fraction or len(whole) > 15 - q.exponent * 3 // 10 - 1:
            return False
        return int(whole) & 0x07 != 0
    shifted = whole + q.fraction
    scale = q.exponent - len(q.fraction)
    if len(shifted) > 18 or scale < -9 or scale % 3 != 0:
        return False
    return not shifted.endswith("000") and shifted[0] != "0"


def _nanos_to_decimal(nanos: int) -> Decimal:
    if nanos == 0:
        return Decimal(0)
    mantissa, exponent = _strip_factors(nanos, 10, limit=9)
    return Decimal(f"{mantissa}E{exponent - 9}") if exponent < 9 else Decimal(nanos // _NANO)


def _strip_factors(n: int, base: int, limit: int | None = None) -> tuple[int, int]:
    """``(m, k)`` with ``n == m * base**k``, removing as many factors as possible (up to ``limit``)."""
    k = 0
    while n and n % base == 0 and (limit is None or k < limit):
        n //= base
        k += 1
    return n, k


def _exact(value: QuantityInput | Fraction) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str | float):
        return Fraction(Quantity.parse(value).value)
    if isinstance(value, bool):
        raise ValueError(FORMAT_ERROR)
    return Fraction(value)


def _nanos_of(value: QuantityInput | Fraction) -> int:
    exact = _exact(value) * _NANO
    magnitude = math.ceil(abs(exact))
    return -magnitude if exact < 0 else magnitude


def format_quantity(value: QuantityInput | Fraction, suffix_style: Format = "DecimalSI") -> str:
    """Canonical text of ``value`` in ``suffix_style``, as ``Quantity.String`` writes it.

    DecimalSI uses the largest power-of-1000 suffix that keeps an integer mantissa
    (``1500m``, ``1k``, ``12M``); BinarySI uses powers of 1024 for integers of magnitude
    >= 1024 and falls back to DecimalSI otherwise (``1Gi``, ``1536Mi``, ``512``, ``500m``);
    DecimalExponent writes ``12e6``.  Values beyond the ``E`` suffix use the exponent form
    (Kubernetes would drop the suffix there).
    """
    nanos = _nanos_of(value)
    if nanos == 0:
        return "0"
    if suffix_style == "BinarySI" and abs(nanos) >= 1024 * _NANO and nanos % _NANO == 0:
        return _format_binary(nanos // _NANO)
    return _format_decimal(nanos, "DecimalExponent" if suffix_style == "DecimalExponent" else "DecimalSI")


def _format_binary(units: int) -> str:
    mantissa, power = _strip_factors(abs(units), 1024, limit=6)
    sign = "-" if units < 0 else ""
    return f"{sign}{mantissa}{_BINARY_BY_POWER[power]}"


def _format_decimal(nanos: int, style: Format) -> str:
    mantissa, k = _strip_factors(abs(nanos), 10)
    exponent = k - 9
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    sign = "-" if nanos < 0 else ""
    if style == "DecimalSI" and exponent in _DECIMAL_BY_EXPONENT:
        return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"
    return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")


def parse_quantity(s: QuantityInput) -> Decimal:
    """The exact value of a quantity (``"100m"`` -> ``Decimal("0.1")``); ValueError if invalid."""
    return Quantity.parse(s).value


def canonical_quantity(s: QuantityInput) -> str:
    """The text the API server stores and returns for a quantity field (``"1000"`` -> ``"1k"``)."""
    return str(Quantity.parse(s))


def is_valid_quantity(s: object) -> bool:
    """True when ``s`` parses as a quantity."""
    try:
        Quantity.parse(s)  # type: ignore[arg-type]
    except (ValueError, InvalidOperation, TypeError):
        return False
    return True


def _scaled(value: QuantityInput | Fraction, scale: int) -> int:
    """``ScaledValue``: the value in units of 10^scale, rounded away from zero."""
    exact = _exact(value) / Fraction(10) ** scale
    magnitude = math.ceil(abs(exact))
    return -magnitude if exact < 0 else magnitude


def value(s: QuantityInput | Fraction) -> int:
    """``Quantity.Value``: whole units, rounded up (``"1500m"`` -> 2)."""
    return _scaled(s, 0)


def milli_value(s: QuantityInput | Fraction) -> int:
    """``Quantity.MilliValue``: thousandths, rounded up (``"0.1m"`` -> 1, ``"1Gi"`` -> 1073741824000)."""
    return _scaled(s, -3)
