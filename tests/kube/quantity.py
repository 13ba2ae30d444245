"""Kubernetes resource quantities (``k8s.io/apimachinery/pkg/api/resource``) as the API server
parses and serialises them, ported from ``quantity.go``, ``amount.go`` and ``suffix.go``.

The API server decodes every quantity field with ``Quantity.UnmarshalJSON`` and writes back
``Quantity.String()``; :func:`canonical` is that round trip. Ported faithfully, quirks included:

* the three formats: ``DecimalSI`` (``m``, ``k``, ``M``, ...), ``BinarySI`` (``Ki``, ``Mi``, ...)
  and ``DecimalExponent`` (``e3``, ``E-6``): a quantity is written back in the format it was given
  in, with the largest exponent that loses no precision (a multiple of 3 for the decimal formats,
  the largest power of 1024 that divides the value for BinarySI);
* BinarySI values that are fractional or smaller than 1024 in magnitude are written as DecimalSI
  ("0.5Ki" -> "512", "0.1Gi" -> "107374182400m");
* non-zero values finer than a nano are rounded up (away from zero) to 1n; BinarySI values are
  capped at 2^63-1;
* the parser keeps the input string verbatim when its fast path considers it canonical already
  (``ParseQuantity`` caches it in ``q.s`` and ``MarshalJSON`` writes the cache back): "100M",
  "1e3", "12e6", but also "+1", "01" and "1.441" (kubernetes/kubernetes#138165) come back as sent;
* a DecimalSI exponent with no suffix (beyond E or below n) falls back to exponent notation
  ("1000E" -> "1e21"), as upstream does since the fix for #140459.

:func:`canonical_resource` adds what ``SetDefaults_ResourceList`` does to the quantities of a
ResourceList (container requests and limits): round up to milli first ("100u" -> "1m").
"""

from __future__ import annotations

import decimal
import json
import math
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["QuantityError", "canonical", "canonical_resource", "parse"]

# Go's error values, worded exactly as the API server reports them.
SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_WRONG = f"quantities must match the regular expression '{SPLIT_RE}'"
NUMERIC = "unable to parse numeric part of quantity"
SUFFIX = "unable to parse quantity's suffix"

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {exponent: suffix for suffix, exponent in _BINARY_SUFFIXES.items()}

_MAX_INT64 = (1 << 63) - 1
_MAX_INT32 = (1 << 31) - 1
# maxInt64Factors: digits the int64 fast path accepts (19 since the fix for #135487).
_MAX_INT64_FACTORS = 19
_NANO = -9
_MILLI = -3
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")

# Exact arithmetic on arbitrary exponents ("1e-2147483647" is a valid quantity): never round
# implicitly, never overflow. Only multiplications and quantize run in it, so no operation
# can blow up the precision.
_CONTEXT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
)


class QuantityError(ValueError):
    """Not a quantity; the message is the decoder's (FORMAT_WRONG, NUMERIC or SUFFIX)."""


@dataclass(frozen=True)
class _Quantity:
    value: Decimal
    format: str
    # The input kept verbatim by the parser's fast path (Go's q.s), if any.
    cached: str | None
    # True when Go holds the value as an int64Amount (the fast path), whose scale is `scale`.
    int64: bool
    scale: int


def canonical(value: str | int | float) -> str:
    """The string the API server stores and returns for this quantity."""
    return _render(_parse(_as_text(value)))


def canonical_resource(value: str | int | float) -> str:
    """A quantity of a ResourceList as stored: rounded up to milli, then :func:`canonical`."""
    return _render(_round_up(_parse(_as_text(value)), _MILLI))


def parse(value: str | int | float) -> Decimal:
    """The exact value the API server holds for this quantity (after its rounding)."""
    return _parse(_as_text(value)).value


def _as_text(value: str | int | float) -> str:
    """The bytes UnmarshalJSON sees: a string as is, a JSON number as it is written."""
    if isinstance(value, bool):
        raise QuantityError(FORMAT_WRONG)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(FORMAT_WRONG)
        return json.dumps(value)
    if isinstance(value, str):
        # UnmarshalJSON trims surrounding whitespace before parsing.
        return value.strip()
    raise QuantityError(FORMAT_WRONG)


def _scan(text: str) -> tuple[bool, str, str, str, str]:
    """parseQuantityString: (positive, value, num, denom, suffix); the value keeps its sign."""
    positive = True
    pos = 0
    end = len(text)
    if text[:1] == "-":
        positive = False
        pos = 1
    elif text[:1] == "+":
        pos = 1

    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""

    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""

    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value = text[:pos]

    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, as quantitySuffixer.interpret."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        digits = rest[1:] if rest[0] in "+-" else rest
        if digits and all(char in _DIGITS for char in digits):
            exponent = int(rest)
            # Upstream rejects exponents that do not fit the int32 scale they are stored in.
            if -_MAX_INT32 <= exponent <= _MAX_INT32:
                return 10, exponent, DECIMAL_EXPONENT
    raise QuantityError(SUFFIX)


def _parse(text: str) -> _Quantity:
    """ParseQuantity."""
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return _Quantity(Decimal(0), DECIMAL_SI, "0", True, 0)

    positive, value, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)

    fast = _fast_path(text, positive, num, denom, exponent, fmt)
    if fast is not None:
        return fast

    try:
        amount = Decimal(value)
    except decimal.InvalidOperation:
        raise QuantityError(NUMERIC) from None
    if base == 10:
        amount = amount.scaleb(exponent, _CONTEXT)
    else:
        amount = _CONTEXT.multiply(amount, Decimal(1 << exponent))

    negative = amount.is_signed()
    amount = amount.copy_abs()
    # Round non-zero values up to the smallest representable amount: asking for a sliver of a
    # resource should get some of it, not nothing.
    if amount and _exponent(amount) < _NANO:
        amount = amount.quantize(Decimal(1).scaleb(_NANO), decimal.ROUND_UP, _CONTEXT)
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = Decimal(_MAX_INT64)
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    if negative:
        amount = amount.copy_negate()
    return _Quantity(amount, fmt, None, False, 0)


def _fast_path(
    text: str, positive: bool, num: str, denom: str, exponent: int, fmt: str
) -> _Quantity | None:
    """ParseQuantity's int64 path, which also decides whether the input string is kept."""
    if fmt == BINARY_SI:
        if exponent < 0 or denom:
            return None
        scale = 0
        mantissa = 1 << exponent
        precision = 15 - len(num) - exponent * 3 // 10 - 1
    else:
        scale = exponent
        mantissa = 1
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))
    if precision < 0:
        return None
    scale -= len(denom)
    if scale < _NANO:
        return None
    shifted = num + denom
    parsed = int(shifted)
    result = parsed * mantissa
    if parsed > _MAX_INT64 or result > _MAX_INT64:
        return None
    if not positive:
        result = -result
    if fmt == BINARY_SI:
        keep = exponent % 10 == 0 and parsed & 0x07 != 0
    else:
        keep = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
    value = Decimal(result).scaleb(scale, _CONTEXT)
    return _Quantity(value, fmt, text if keep else None, True, scale)


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by construction
    return exponent


def _round_up(quantity: _Quantity, scale: int) -> _Quantity:
    """Quantity.RoundUp(scale): an int64 amount already that coarse keeps its cached string."""
    if quantity.int64 and quantity.scale >= scale:
        return quantity
    value = quantity.value
    if value and _exponent(value) < scale:
        value = value.quantize(Decimal(1).scaleb(scale), decimal.ROUND_UP, _CONTEXT)
    return _Quantity(value, quantity.format, None, quantity.int64, max(quantity.scale, scale))


def _render(quantity: _Quantity) -> str:
    """MarshalJSON: the cached input if the parser kept it, else CanonicalizeBytes."""
    if quantity.cached is not None:
        return quantity.cached
    return _canonicalize(quantity.value, quantity.format)


def _canonicalize(value: Decimal, fmt: str) -> str:
    if not value:
        return "0"
    if fmt == BINARY_SI and (
        -1024 < value < 1024 or value != value.to_integral_value(context=_CONTEXT)
    ):
        # Small or fractional binary amounts would lose precision in base 1024.
        fmt = DECIMAL_SI
    sign = "-" if value < 0 else ""
    if fmt == BINARY_SI:
        mantissa = abs(int(value))
        exponent = 0
        while mantissa >= 1024 and mantissa % 1024 == 0:
            mantissa //= 1024
            exponent += 10
        if exponent in _BINARY_BY_EXPONENT:
            return f"{sign}{mantissa}{_BINARY_BY_EXPONENT[exponent]}"
        # Beyond Ei there is no binary suffix: the exact decimal form.
        return _canonicalize(value, DECIMAL_SI)

    _, digits, _ = value.as_tuple()
    coefficient = int("".join(map(str, digits)))
    power = _exponent(value)
    while coefficient % 10 == 0:
        coefficient //= 10
        power += 1
    while power % 3:
        coefficient *= 10
        power -= 1
    if fmt == DECIMAL_SI and power in _DECIMAL_BY_EXPONENT:
        return f"{sign}{coefficient}{_DECIMAL_BY_EXPONENT[power]}"
    return f"{sign}{coefficient}" + (f"e{power}" if power else "")
