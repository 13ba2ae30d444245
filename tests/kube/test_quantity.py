"""Quantities round-trip as the API server's resource.Quantity does (expectations from
quantity_test.go, quantity_golden_test.go and quantity_subnano_test.go upstream)."""

from decimal import Decimal

import pytest

from tests.kube.quantity import QuantityError, canonical, canonical_resource, parse

FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        # DecimalSI: the largest suffix that loses nothing
        ("1000m", "1"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        ("0.1", "100m"),
        ("1000", "1k"),
        ("1000M", "1G"),
        ("100M", "100M"),
        ("512", "512"),
        ("1536", "1536"),
        ("0", "0"),
        ("0m", "0"),
        ("-0", "0"),
        ("0.0", "0"),
        (".", "0"),
        ("300.2T", "300200G"),
        ("1.01E", "1010P"),
        ("-1.5", "-1500m"),
        ("-100m", "-100m"),
        (" 1 ", "1"),  # UnmarshalJSON trims
        # JSON numbers
        (2, "2"),
        (0.25, "250m"),
        (1024, "1024"),
        (1.5, "1500m"),
        (1000.0, "1k"),
        (10**30, "1e30"),
        # BinarySI: the largest power of 1024 that divides the value
        ("1Ki", "1Ki"),
        ("512Ki", "512Ki"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("-9.5Gi", "-9728Mi"),
        ("1025Ki", "1025Ki"),
        # ...and DecimalSI when that would lose precision or is below 1024
        ("0.5Ki", "512"),
        ("0.1Gi", "107374182400m"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        ("-9.5000000001Gi", "-10200547328107374183n"),
        # BinarySI is capped at 2^63-1
        ("8Ei", "9223372036854775807"),
        ("-20Ei", "-9223372036854775807"),
        ("9223372036854775807Ki", "9223372036854775807"),
        # DecimalExponent: exponents that are multiples of 3
        ("1e3", "1e3"),
        ("12e6", "12e6"),
        ("1E6", "1E6"),
        ("1.2e3", "1200"),
        ("1.3E+6", "1300e3"),
        ("1e100", "10e99"),
        ("1e2147483647", "10e2147483646"),
        # no DecimalSI suffix beyond E: exponent notation
        ("1E", "1E"),
        ("100E", "100E"),
        ("1000E", "1e21"),
        # finer than nano rounds up, away from zero
        ("0.0000000001", "1n"),
        ("0.000000000000001", "1n"),
        ("-0.0000000000001", "-1n"),
        ("3.001n", "4n"),
        ("1.1E-9", "2e-9"),
        ("1e-100", "1e-9"),
        ("1e-2147483647", "1e-9"),
        (".000000000001Ki", "2n"),
        ("0.00000000000000000000001Ki", "1n"),
        # large integers stay exact
        ("9223372036854775808", "9223372036854775808"),
        ("18446744073709551616", "18446744073709551616"),
    ],
)
def test_canonical(given, stored):
    assert canonical(given) == stored


@pytest.mark.parametrize(
    "given",
    # The parser keeps these verbatim: its fast path takes them as canonical already
    # (upstream #138165), so the API server returns them as sent.
    ["+1", "01", "1.", "1.G", "1.441", "1.000001", "100.035k", "1.500", "9223372036854775807"],
)
def test_strings_the_parser_keeps_verbatim(given):
    assert canonical(given) == given


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", FORMAT_WRONG),
        ("aoeu", FORMAT_WRONG),
        ("1.1.M", FORMAT_WRONG),
        ("1+1.0M", FORMAT_WRONG),
        ("0.1am", FORMAT_WRONG),
        ("1KiB", FORMAT_WRONG),
        ("1 Gi", FORMAT_WRONG),
        (True, FORMAT_WRONG),
        (float("nan"), FORMAT_WRONG),
        (None, FORMAT_WRONG),
        ("1i", "unable to parse quantity's suffix"),
        (".5i", "unable to parse quantity's suffix"),
        ("0.1mi", "unable to parse quantity's suffix"),
        ("-3.01e-", "unable to parse quantity's suffix"),
        ("1K", "unable to parse quantity's suffix"),
        ("1e4294967297", "unable to parse quantity's suffix"),
        ("e-10", "unable to parse numeric part of quantity"),
    ],
)
def test_not_quantities(given, message):
    with pytest.raises(QuantityError) as raised:
        canonical(given)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("100u", "1m"),
        ("1500u", "2m"),
        ("-1500u", "-2m"),
        ("5n", "1m"),
        ("0.0001", "1m"),
        ("1.441", "1.441"),  # milli already: the kept string stays
        ("0.5", "500m"),
        ("0.1Gi", "107374182400m"),
        ("2Gi", "2Gi"),
        ("0n", "0"),
    ],
)
def test_canonical_resource_rounds_up_to_milli(given, stored):
    assert canonical_resource(given) == stored


@pytest.mark.parametrize(
    ("given", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1Gi", Decimal(2**30)),
        ("1.5", Decimal("1.5")),
        ("0.0000000001", Decimal("1e-9")),
        ("8Ei", Decimal(2**63 - 1)),
        (3, Decimal(3)),
    ],
)
def test_parse(given, value):
    assert parse(given) == value


def test_parse_orders_requests_and_limits():
    assert parse("500m") < parse("1") < parse("1001m")
    assert parse("1Gi") > parse("1G")
