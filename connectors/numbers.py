"""Reading numbers and scaling them exactly (a field's ``scale``).

Amounts in exports are decimal text (``1,234.50`` yuan); standards keep money as
integer fen. :func:`scaled` multiplies in :class:`~decimal.Decimal`, so
``12.34 x 100`` is exactly 1234 (in binary floating point it is 1233.9999...), and
refuses a result that is not whole when the field is an integer: ``12.345`` yuan is
not a number of fen, and rounding it silently would publish a wrong amount.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext
from typing import Final

__all__ = ["INT_RANGES", "parse_decimal", "scaled"]

# Digits with an optional decimal part; thousands may be grouped with commas (1,234.50).
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]+)?")

INT_RANGES: Final = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
"""The values Avro's integer types can hold."""

Problem = tuple[str, str]  # (reason_code, message)


def parse_decimal(text: str) -> Decimal | None:
    """The number written in ``text`` (``-12.5``, ``1,234.50``), or None if it is not one."""
    if _NUMBER.fullmatch(text) is None:
        return None
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None


def scaled(text: str, factor: Decimal, avro_type: str) -> int | float | Problem:
    """``text`` times ``factor`` as the field's type (``int``, ``long``, ``float`` or
    ``double``), or ``(reason_code, message)``: ``type.number`` (not a number),
    ``scale.not_integral`` (an integer field and a result with a fraction) or
    ``type.range`` (outside the integer type's range)."""
    value = parse_decimal(text)
    if value is None:
        return (
            "type.number",
            f"{text!r} is not a number (digits, an optional decimal point, optionally "
            "thousands grouped with commas)",
        )
    with localcontext() as exact:
        exact.prec = len(text) + len(str(factor)) + 8  # enough digits for the exact product
        result = value * factor
    if avro_type not in INT_RANGES:
        return float(result)
    if result != result.to_integral_value():
        return (
            "scale.not_integral",
            f"{text} x {factor} = {result.normalize():f}, which is not a whole number; "
            "the field holds whole units (e.g. fen): check the amount's decimal places",
        )
    low, high = INT_RANGES[avro_type]
    whole = int(result)
    if not low <= whole <= high:
        return ("type.range", f"{text} x {factor} = {whole} is out of range for {avro_type}")
    return whole
