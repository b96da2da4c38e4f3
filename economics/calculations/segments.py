"""Margin by model and by segment (region, tier, any metadata key): cross-subsidy views.

Revenue is earned by customers, not by models or segments, so it is allocated: **a
customer's revenue is split over the models (or segments) it used in proportion to its AI
cost on each**, in whole cents by largest remainder, so every customer's parts — and hence
the grand total — add up to its revenue exactly. A customer whose usage rows all cost 0 has
its revenue split evenly over them; a customer with revenue and no usage row at all puts it
under :data:`UNALLOCATED`, shown as its own line rather than lost. For a segment that is a
customer attribute, give each customer one row with its segment and the split is trivial.
Money is USD; cost is unrounded, revenue whole cents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from economics.calculations.allocation import allocate
from economics.calculations.base import CENT, ZERO, sort_token, to_decimal
from economics.calculations.policy import (
    DEFAULT_POLICY,
    Band,
    Policy,
    band,
    cost_ratio,
    margin_pct,
)

UNALLOCATED: Final = "unallocated"


@dataclass(frozen=True)
class DimensionUsage:
    """A customer's AI cost (USD) on one model or segment value."""

    customer: Hashable
    key: Hashable
    cost: Decimal


@dataclass(frozen=True)
class DimensionMargin:
    """One model or segment value: cost, allocated revenue and margin (USD), band."""

    key: Hashable
    customers: int
    cost: Decimal
    revenue: Decimal
    margin: Decimal
    margin_pct: Decimal | None
    cost_ratio: Decimal | None
    band: Band


def allocate_revenue(
    usage: Iterable[DimensionUsage],
    revenue: Mapping[Hashable, Decimal],
    *,
    quantum: Decimal = CENT,
) -> dict[tuple[Hashable, Hashable], Decimal]:
    """Each (customer, key)'s share of the customer's revenue, by its share of AI cost.

    Customers with revenue and no usage get a ``(customer, UNALLOCATED)`` entry.
    """
    weights: dict[Hashable, dict[Hashable, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in usage:
        weights[row.customer][row.key] += to_decimal(row.cost, name="cost")
    shares: dict[tuple[Hashable, Hashable], Decimal] = {}
    for customer, amount in revenue.items():
        parts = weights.get(customer) or {UNALLOCATED: ZERO}
        for key, part in allocate(amount, parts, quantum=quantum).items():
            shares[customer, key] = part
    return shares


def margin_by_dimension(
    usage: Iterable[DimensionUsage],
    revenue: Mapping[Hashable, Decimal],
    policy: Policy = DEFAULT_POLICY,
    *,
    internal: Collection[Hashable] = (),
    quantum: Decimal = CENT,
) -> tuple[DimensionMargin, ...]:
    """Cost, allocated revenue and margin per model/segment value, costliest first.

    ``usage`` is per (customer, key) AI cost; ``revenue`` the customers' recognized revenue
    for the period (multiples of ``quantum``). Customers in ``internal`` are left out.
    Margin here is revenue − AI cost (overhead is not split by model or segment).
    """
    usage = [row for row in usage if row.customer not in internal]
    revenue = {c: amount for c, amount in revenue.items() if c not in internal}
    cost: dict[Hashable, Decimal] = defaultdict(Decimal)
    income: dict[Hashable, Decimal] = defaultdict(Decimal)
    customers: dict[Hashable, set] = defaultdict(set)
    for row in usage:
        cost[row.key] += to_decimal(row.cost, name="cost")
        customers[row.key].add(row.customer)
    for (customer, key), amount in allocate_revenue(usage, revenue, quantum=quantum).items():
        income[key] += amount
        customers[key].add(customer)
    result = []
    for key in set(cost) | set(income):
        margin = income[key] - cost[key]
        result.append(
            DimensionMargin(
                key=key,
                customers=len(customers[key]),
                cost=cost[key],
                revenue=income[key],
                margin=margin,
                margin_pct=margin_pct(margin, income[key]),
                cost_ratio=cost_ratio(cost[key], income[key]),
                band=band(cost[key], income[key], policy),
            )
        )
    result.sort(key=lambda row: (-row.cost, sort_token(row.key)))
    return tuple(result)
