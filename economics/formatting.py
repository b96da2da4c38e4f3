"""How economics figures read: exact decimal text for exports, rounded text for people.

Money and ratios arrive as ``Decimal`` or as the decimal strings snapshots store (USD;
ratios are fractions of 1). Rounding happens here, once, for display only.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

DASH = "—"


def to_decimal(value: Decimal | str | int | None) -> Decimal | None:
    """``value`` as a ``Decimal`` (``None`` and "" stay ``None``)."""
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def decimal_text(value: Decimal | str | None, *, min_places: int = 2) -> str:
    """``value`` exactly, in plain notation, with at least ``min_places`` decimals
    ("0.30", "0.3125", "1500.00"); ``None`` is ""."""
    number = to_decimal(value)
    if number is None:
        return ""
    places = max(min_places, -number.normalize().as_tuple().exponent)
    return f"{number:.{places}f}"


def percent_value(value: Decimal | str | None) -> Decimal | None:
    """A fraction of 1 as an exact percentage (0.3125 → 31.25)."""
    number = to_decimal(value)
    return None if number is None else number.scaleb(2)


def money(value: Decimal | str | None, *, places: int = 2, signed: bool = False) -> str:
    """USD for people: "$1,234.57" (half-up), "−$5.00"; "—" when unknown."""
    number = to_decimal(value)
    if number is None:
        return DASH
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "−" if rounded < 0 else ("+" if signed and rounded > 0 else "")
    return f"{sign}${abs(rounded):,.{places}f}"


def percent(value: Decimal | str | None, *, places: int = 1, signed: bool = False) -> str:
    """A fraction of 1 as a percentage for people: 0.3125 → "31.3 %"; "—" when unknown."""
    number = percent_value(value)
    if number is None:
        return DASH
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "−" if rounded < 0 else ("+" if signed and rounded > 0 else "")
    return f"{sign}{abs(rounded):,.{places}f} %"


def count(value: int | None) -> str:
    """A whole number with thousands separators; "—" when unknown."""
    return DASH if value is None else f"{value:,}"
