"""Shared arithmetic of the economics calculator: one Decimal context, safe ratios.

Money is ``Decimal`` in the currency's major unit (USD); ratios and shares are ``Decimal``
fractions of 1 (0.25 = 25 %). Nothing here rounds money: costs keep the ledger's sub-cent
places so that totals equal the ledger's exactly; storage and presentation round once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import date
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Final, TypeVar

K = TypeVar("K", bound=Hashable)

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
# The USD minor unit, the default quantum of allocations. It equals metron.money's
# MONEY_DECIMAL_PLACES (a test checks); that module is not imported because it also
# defines Django model fields, and this package imports no Django.
CENT: Final = Decimal("0.01")

# An explicit context, so that results never depend on a caller's thread-local one.
# 28 significant digits (Python's default) hold 16 integer digits and the ledger's 12
# decimal places of a cost exactly.
CONTEXT: Final = Context(
    prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)


def to_decimal(value: Decimal | int | str, *, name: str = "value") -> Decimal:
    """``value`` as a ``Decimal``; floats and booleans are refused (binary fractions lie)."""
    if isinstance(value, bool | float):
        raise TypeError(f"{name} must be a Decimal, an int or a numeric string, not {value!r}")
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numeric, not {value!r}") from error
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, not {value!r}")
    return result


def divide(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """``numerator ÷ denominator`` in the calculator's context; ``None`` when dividing by 0."""
    if not denominator:
        return None
    return CONTEXT.divide(Decimal(numerator), Decimal(denominator))


def share(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """``part`` as a fraction of ``whole`` (of cost, of accounts); ``None`` if ``whole`` is 0."""
    return divide(part, whole)


def decimal_sum(values: Iterable[Decimal | int]) -> Decimal:
    """Sum of ``Decimal`` values in the calculator's context (``0`` for none)."""
    total = ZERO
    for value in values:
        total = CONTEXT.add(total, Decimal(value))
    return total


def sort_token(key: object) -> tuple[str, object]:
    """A total order over arbitrary keys, for deterministic tie-breaking.

    Keys of one type order naturally when the type is a plain scalar (``str``, ``int``,
    ``Decimal``, ``date``); anything else (tuples, ``None``) orders by its ``repr``.
    """
    natural = isinstance(key, str | int | Decimal | date) and not isinstance(key, bool)
    return (type(key).__name__, key if natural else repr(key))
