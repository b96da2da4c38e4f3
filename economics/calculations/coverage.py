"""Attribution coverage: the share of cost whose feature, customer and plan are known.

Shown next to every figure it affects: a margin by feature over 60 % of the cost means
something else than one over 99 %. Shares are ``Decimal`` fractions in [0, 1] of the total
cost; ``None`` when the total is 0 (nothing to cover).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from economics.calculations.base import ZERO, share, to_decimal


@dataclass(frozen=True)
class CostAttribution:
    """Cost (USD) of one aggregate row and what it is attributed to (``None``/"" unknown)."""

    cost: Decimal
    feature: Hashable | None = None
    customer: Hashable | None = None
    plan: Hashable | None = None


@dataclass(frozen=True)
class Coverage:
    """Shares of ``total_cost`` (USD) with a known feature, customer and plan."""

    total_cost: Decimal
    feature: Decimal | None
    customer: Decimal | None
    plan: Decimal | None


def coverage_share(known: Decimal, total: Decimal) -> Decimal | None:
    """``known ÷ total`` clamped to [0, 1]; ``None`` when ``total`` is 0."""
    value = share(known, total)
    if value is None:
        return None
    return min(max(value, ZERO), Decimal(1))


def _known(value: Hashable | None) -> bool:
    return value is not None and value != ""


def attribution_coverage(rows: Iterable[CostAttribution]) -> Coverage:
    """Coverage of the rows' total cost by known feature, customer and plan."""
    total = feature = customer = plan = ZERO
    for row in rows:
        cost = to_decimal(row.cost, name="cost")
        total += cost
        feature += cost if _known(row.feature) else ZERO
        customer += cost if _known(row.customer) else ZERO
        plan += cost if _known(row.plan) else ZERO
    return Coverage(
        total_cost=total,
        feature=coverage_share(feature, total),
        customer=coverage_share(customer, total),
        plan=coverage_share(plan, total),
    )
