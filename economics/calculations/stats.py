"""Distribution statistics over ``Decimal`` values (per-account costs, USD).

Decided methods: the **population** standard deviation (divide by N: a plan's accounts are
the whole population, not a sample of it); the median averages the two middle values of an
even count; percentiles use the **nearest-rank** method — the smallest value with at least
q·N values at or below it, i.e. the value at 1-based rank ⌈q·N⌉ — so a P95 is always some
account's actual cost. Every function returns ``None`` for no values.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal

from economics.calculations.base import CONTEXT, ZERO, decimal_sum, divide, to_decimal


def mean(values: Iterable[Decimal]) -> Decimal | None:
    """Arithmetic mean."""
    values = tuple(values)
    return divide(decimal_sum(values), len(values))


def population_stddev(values: Iterable[Decimal]) -> Decimal | None:
    """Population standard deviation: √(Σ(x − μ)² ÷ N), in the values' unit."""
    values = tuple(values)
    mu = mean(values)
    if mu is None:
        return None
    squares = decimal_sum(CONTEXT.power(value - mu, 2) for value in values)
    return CONTEXT.sqrt(CONTEXT.divide(squares, Decimal(len(values))))


def median(values: Iterable[Decimal]) -> Decimal | None:
    """Middle value; the mean of the two middle values for an even count."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return CONTEXT.divide(ordered[middle - 1] + ordered[middle], Decimal(2))


def percentile(values: Iterable[Decimal], q: Decimal | str) -> Decimal | None:
    """Nearest-rank percentile, ``q`` a fraction in (0, 1] (``"0.95"`` for P95)."""
    q = to_decimal(q, name="q")
    if not ZERO < q <= 1:
        raise ValueError(f"q must be in (0, 1] (got {q})")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = int(CONTEXT.multiply(q, Decimal(len(ordered))).to_integral_value(ROUND_CEILING))
    return ordered[max(rank, 1) - 1]
