"""resource.Quantity parsing and formatting, checked against apimachinery 1.32 behaviour."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kubelite.api.quantity import (
    FORMAT_ERROR,
    SUFFIX_ERROR,
    Format,
    Quantity,
    canonical_quantity,
    format_quantity,
    is_valid_quantity,
    milli_value,
    parse_quantity,
    value,
)


@pytest.mark.parametrize(
    ("text", "expected", "fmt"),
    [
        ("0", "0", "DecimalSI"),
        ("0Ki", "0", "BinarySI"),
        ("1", "1", "DecimalSI"),
        ("100m", "0.1", "DecimalSI"),
        ("1500m", "1.5", "DecimalSI"),
        ("1n", "0.000000001", "DecimalSI"),
        ("5u", "0.000005", "DecimalSI"),
        ("2k", "2000", "DecimalSI"),
        ("3M", "3000000", "DecimalSI"),
        ("4G", "4000000000", "DecimalSI"),
        ("5T", "5e12", "DecimalSI"),
        ("6P", "6e15", "DecimalSI"),
        ("7E", "7e18", "DecimalSI"),
        ("1Ki", "1024", "BinarySI"),
        ("7Mi", "7340032", "BinarySI"),
        ("1Gi", "1073741824", "BinarySI"),
        ("1Ti", str(2**40), "BinarySI"),
        ("2Pi", str(2 * 2**50), "BinarySI"),
        ("3Ei", str(3 * 2**60), "BinarySI"),
        ("1.5Gi", "1610612736", "BinarySI"),
        (".5Ki", "512", "BinarySI"),
        ("0.5", "0.5", "DecimalSI"),
        ("1e3", "1000", "DecimalExponent"),
        ("12E3", "12000", "DecimalExponent"),
        ("1E-3", "0.001", "DecimalExponent"),
        ("1e+3", "1000", "DecimalExponent"),
        ("-1.5", "-1.5", "DecimalSI"),
        ("+2", "2", "DecimalSI"),
        ("010", "10", "DecimalSI"),
        (".", "0", "DecimalSI"),
        # Kubernetes' scanner reads a missing number as zero
        ("+", "0", "DecimalSI"),
        ("Ki", "0", "BinarySI"),
        ("1.", "1", "DecimalSI"),
        # rounded up to nano units, away from zero
        ("1e-12", "0.000000001", "DecimalExponent"),
        ("0.0000000011", "0.000000002", "DecimalSI"),
        ("-1.5n", "-0.000000002", "DecimalSI"),
        # fractional binary below 1 becomes DecimalSI
        (".000000001Ki", "0.000001024", "DecimalSI"),
        # binary quantities are capped at 2^63-1
        ("8Ei", str(2**63 - 1), "BinarySI"),
        ("-16Ei", str(-(2**63 - 1)), "BinarySI"),
        # decimal ones are not
        ("100E", "1e20", "DecimalSI"),
    ],
)
def test_parse(text: str, expected: str, fmt: Format) -> None:
    q = Quantity.parse(text)
    assert q.value == Decimal(expected)
    assert q.format == fmt
    assert parse_quantity(text) == Decimal(expected)


def test_parse_accepts_json_numbers_and_trims_like_the_json_decoder() -> None:
    assert parse_quantity(2) == 2
    assert parse_quantity(0.25) == Decimal("0.25")
    assert parse_quantity(1e-05) == Decimal("0.00001")
    assert parse_quantity(Decimal("1.5")) == Decimal("1.5")
    assert parse_quantity(" 1Gi ") == 2**30


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_ERROR),
        ("aoeu", FORMAT_ERROR),
        ("1.1.M", FORMAT_ERROR),
        ("1+1.0M", FORMAT_ERROR),
        ("0.1am", FORMAT_ERROR),
        ("1 Gi", FORMAT_ERROR),
        ("1Gi ", None),  # trimmed, valid
        ("0.1mi", SUFFIX_ERROR),
        (".5i", SUFFIX_ERROR),
        ("1i", SUFFIX_ERROR),
        ("-3.01e-", SUFFIX_ERROR),
        ("1K", SUFFIX_ERROR),
        ("1e", SUFFIX_ERROR),
        ("1Ki3", SUFFIX_ERROR),
        ("1KiB", FORMAT_ERROR),
        ("1e3e3", FORMAT_ERROR),
        ("1-3", SUFFIX_ERROR),
    ],
)
def test_invalid(text: str, message: str | None) -> None:
    if message is None:
        assert is_valid_quantity(text)
        return
    assert not is_valid_quantity(text)
    with pytest.raises(ValueError) as exc:
        parse_quantity(text)
    assert str(exc.value) == message


def test_format_error_quotes_kubernetes_regex() -> None:
    assert FORMAT_ERROR == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    assert not is_valid_quantity(True)
    assert not is_valid_quantity(None)
    assert not is_valid_quantity(float("nan"))


@pytest.mark.parametrize(
    ("amount", "fmt", "expected"),
    [
        (2**30, "BinarySI", "1Gi"),
        (300 * 2**20, "BinarySI", "300Mi"),
        (1001 * 2**30, "BinarySI", "1001Gi"),
        (5, "BinarySI", "5"),
        (Decimal("0.5"), "BinarySI", "500m"),
        (1025, "BinarySI", "1025"),
        (Decimal("1536.5"), "BinarySI", "1536500m"),
        (1234567 * 2**10, "BinarySI", "1234567Ki"),
        (10**9, "DecimalSI", "1G"),
        (Decimal("0.001"), "DecimalSI", "1m"),
        (Decimal("0.08"), "DecimalSI", "80m"),
        (Decimal("1.08"), "DecimalSI", "1080m"),
        (300 * 10**6, "DecimalSI", "300M"),
        (1234567 * 10**6, "DecimalSI", "1234567M"),
        (3000, "DecimalSI", "3k"),
        (Decimal("1.5"), "DecimalSI", "1500m"),
        (128974848, "DecimalSI", "128974848"),
        (Decimal("0.00000108"), "DecimalSI", "1080n"),
        (Decimal("0.00108"), "DecimalSI", "1080u"),
        (10**9, "DecimalExponent", "1e9"),
        (Decimal("0.001"), "DecimalExponent", "1e-3"),
        (Decimal("0.08"), "DecimalExponent", "80e-3"),
        (300 * 10**6, "DecimalExponent", "300e6"),
        (1500, "DecimalExponent", "1500"),
        (0, "BinarySI", "0"),
        (0, "DecimalExponent", "0"),
        (Fraction(1, 3), "DecimalSI", "333333334n"),
        (Decimal("1e-12"), "DecimalSI", "1n"),
        (10**21, "DecimalSI", "1e21"),
    ],
)
def test_format(amount: int | Decimal | Fraction, fmt: Format, expected: str) -> None:
    assert format_quantity(amount, fmt) == expected
    if amount:
        assert format_quantity(-amount, fmt) == "-" + expected


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        # kept as written
        ("100m", "100m"),
        ("1Ki", "1Ki"),
        ("12Mi", "12Mi"),
        ("1025Ki", "1025Ki"),
        ("1e3", "1e3"),
        ("+1", "+1"),
        ("010", "010"),
        ("1080m", "1080m"),
        ("-100m", "-100m"),
        # canonicalised
        ("1000", "1k"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        ("1.0", "1"),
        ("1000m", "1"),
        ("8Ki", "8Ki"),
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        ("1.5Gi", "1536Mi"),
        ("0.1Ki", "102400m"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000000001Ki", "2n"),
        ("-.000000000001Ki", "-2n"),
        ("1e2", "100"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("-0", "0"),
        ("0Mi", "0"),
        ("8Ei", "9223372036854775807"),
    ],
)
def test_canonical_quantity_matches_api_server_round_trip(text: str, stored: str) -> None:
    assert canonical_quantity(text) == stored


@pytest.mark.parametrize(
    ("text", "units", "millis"),
    [
        ("1", 1, 1000),
        ("100m", 1, 100),
        ("1500m", 2, 1500),
        ("0.1m", 1, 1),
        ("1n", 1, 1),
        ("1Gi", 2**30, 2**30 * 1000),
        ("250m", 1, 250),
        ("2k", 2000, 2_000_000),
        ("-1500m", -2, -1500),
        ("0", 0, 0),
    ],
)
def test_value_and_milli_value_round_up(text: str, units: int, millis: int) -> None:
    assert value(text) == units
    assert milli_value(text) == millis


# --------------------------------------------------------------------------- property tests

_nanos = st.integers(min_value=-(10**24), max_value=10**24)
_styles = st.sampled_from(["BinarySI", "DecimalSI", "DecimalExponent"])


def _of_nanos(n: int) -> Decimal:
    return Decimal(n).scaleb(-9)


@given(_nanos, _styles)
def test_format_then_parse_is_identity(nanos: int, style: Format) -> None:
    amount = _of_nanos(nanos)
    text = format_quantity(amount, style)
    assert parse_quantity(text) == amount
    # the canonical text is kept as-is when read back; a BinarySI amount that needs no suffix
    # ("5000") reads back as DecimalSI, as in Kubernetes, whose canonical form is "5k"
    if style != "BinarySI" or text.endswith("i") or text in ("0", "-0"):
        assert canonical_quantity(text) == text
    else:
        assert parse_quantity(canonical_quantity(text)) == amount


@given(st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1))
def test_binary_integers_round_trip(units: int) -> None:
    text = format_quantity(units, "BinarySI")
    assert parse_quantity(text) == units


@given(_nanos, _nanos, _styles)
def test_format_preserves_order(a: int, b: int, style: Format) -> None:
    x, y = (
        parse_quantity(format_quantity(_of_nanos(a), style)),
        parse_quantity(format_quantity(_of_nanos(b), style)),
    )
    assert (a < b) == (x < y)
    assert (a == b) == (x == y)


_quantity_text = st.from_regex(
    r"\A[+-]?[0-9]{0,12}(\.[0-9]{0,12})?(|n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e-?[0-9])\Z"
).filter(bool)


@given(_quantity_text)
def test_canonical_form_is_stable_and_value_preserving(text: str) -> None:
    q = Quantity.parse(text)
    stored = str(q)
    again = Quantity.parse(stored)
    assert again.value == q.value
    assert str(again) == stored


_MULTIPLIER = {
    **{k: Fraction(10) ** e for k, e in {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9}.items()},
    **{k: Fraction(10) ** e for k, e in {"T": 12, "P": 15, "E": 18}.items()},
    **{k: Fraction(2) ** e for k, e in {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}.items()},
}


def _written_value(text: str) -> Fraction:
    """Reference reading of a generated quantity text (no rounding, no cap)."""
    end = next((i for i, c in enumerate(text) if c not in "+-0123456789."), len(text))
    digits, suffix = text[:end], text[end:]
    whole, _, frac = digits.lstrip("+-").partition(".")
    mantissa = Fraction(int((whole or "0") + frac), 10 ** len(frac))
    factor = Fraction(10) ** int(suffix[1:]) if suffix.startswith("e") else _MULTIPLIER[suffix]
    return (-1 if digits.startswith("-") else 1) * mantissa * factor


_CAP = 2**63 - 1


@given(_quantity_text)
def test_parse_rounds_magnitude_up_to_nano(text: str) -> None:
    exact = _written_value(text)
    got = Fraction(parse_quantity(text))
    if text.endswith("i") and abs(exact) > _CAP:
        assert got == (_CAP if exact > 0 else -_CAP)
        return
    assert abs(got) >= abs(exact)
    assert abs(got - exact) < Fraction(1, 10**9)
    assert got == 0 or (got < 0) == (exact < 0)


@given(_quantity_text, _quantity_text)
def test_parse_is_monotonic(a: str, b: str) -> None:
    # beyond int64 binary quantities saturate (see test_parse_rounds_magnitude_up_to_nano)
    assume(abs(_written_value(a)) <= _CAP and abs(_written_value(b)) <= _CAP)
    if _written_value(a) <= _written_value(b):
        assert parse_quantity(a) <= parse_quantity(b)
        assert milli_value(a) <= milli_value(b)
        assert value(a) <= value(b)
