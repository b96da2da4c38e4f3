"""Customer profitability for one period: cost-to-serve, margin, band, change, summary.

Input is one aggregate row per customer (AI cost, recognized revenue, requests, tokens and
cost per feature, from the rollups); internal and test accounts are dropped before anything
else, so they take no overhead and appear in no count or total. Money is USD, unrounded
except the allocated overhead (whole cents); ratios are fractions of 1.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final

from economics.calculations.allocation import allocate, overhead_weight
from economics.calculations.base import ZERO, decimal_sum, sort_token, to_decimal
from economics.calculations.policy import (
    BANDS,
    DEFAULT_POLICY,
    Band,
    Policy,
    Profitability,
    band,
    cost_ratio,
    is_underwater,
    margin_pct,
    profitability,
)

TOP_FEATURES: Final = 3
TOP_ACCOUNTS: Final = 10


@dataclass(frozen=True)
class CustomerUsage:
    """One customer's aggregates for the period: USD amounts, request and token counts.

    ``plan`` is the plan the customer is reported under for the period (the selector decides,
    e.g. the plan in force at the period's end). ``feature_costs`` maps a feature to its AI
    cost (USD); it need not cover all of ``ai_cost`` (unattributed usage).
    """

    customer: Hashable
    plan: Hashable | None
    ai_cost: Decimal
    revenue: Decimal
    requests: int = 0
    tokens: int = 0
    internal: bool = False
    feature_costs: Mapping[Hashable, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureCost:
    """A feature and its AI cost (USD) for one customer."""

    feature: Hashable
    cost: Decimal


@dataclass(frozen=True)
class CustomerChange:
    """Change against the previous period: current − previous (``None`` where either is)."""

    ai_cost: Decimal
    cost_to_serve: Decimal
    revenue: Decimal
    contribution_margin: Decimal
    contribution_margin_pct: Decimal | None
    cost_ratio: Decimal | None


@dataclass(frozen=True)
class CustomerEconomics:
    """One customer's economics for the period (USD; ratios and % as fractions of 1)."""

    customer: Hashable
    plan: Hashable | None
    ai_cost: Decimal
    overhead: Decimal
    cost_to_serve: Decimal
    revenue: Decimal
    cost_ratio: Decimal | None
    contribution_margin: Decimal
    contribution_margin_pct: Decimal | None
    band: Band
    underwater: bool
    profitability: Profitability
    top_features: tuple[FeatureCost, ...]
    change: CustomerChange | None = None


@dataclass(frozen=True)
class CustomerTotals:
    """The period's totals over the (non-internal) customers, USD."""

    ai_cost: Decimal
    overhead: Decimal
    cost_to_serve: Decimal
    revenue: Decimal
    cost_ratio: Decimal | None
    contribution_margin: Decimal
    contribution_margin_pct: Decimal | None
    band: Band


@dataclass(frozen=True)
class CustomerSummary:
    """Counts and totals of a period's customers.

    ``band_counts`` has every band (zeros included); ``at_risk`` counts the at-risk band only
    (margin-negative accounts are counted in their own band); ``unallocated_overhead`` is the
    policy's overhead when there was no customer to carry it.
    """

    customers: int
    band_counts: Mapping[Band, int]
    profitability_counts: Mapping[Profitability, int]
    underwater: int
    at_risk: int
    top_by_cost_ratio: tuple[CustomerEconomics, ...]
    totals: CustomerTotals
    unallocated_overhead: Decimal


@dataclass(frozen=True)
class CustomerReport:
    """Per-customer economics (in input order) and their summary."""

    customers: tuple[CustomerEconomics, ...]
    summary: CustomerSummary

    def by_customer(self) -> dict[Hashable, CustomerEconomics]:
        """The rows keyed by customer."""
        return {row.customer: row for row in self.customers}


def top_features(
    feature_costs: Mapping[Hashable, Decimal], limit: int = TOP_FEATURES
) -> tuple[FeatureCost, ...]:
    """The ``limit`` costliest features, cost descending (ties by feature key)."""
    ranked = sorted(
        (FeatureCost(feature, cost) for feature, cost in feature_costs.items() if cost > 0),
        key=lambda item: (-item.cost, sort_token(item.feature)),
    )
    return tuple(ranked[:limit])


def _cost_ratio_order(row: CustomerEconomics) -> tuple:
    # Worst first: cost with no revenue (no ratio, by cost), then by ratio, then the
    # accounts that cost nothing; cost and key break ties so the order is deterministic.
    if row.cost_ratio is None:
        group = 0 if row.ai_cost > 0 else 2
        return (group, ZERO, -row.ai_cost, sort_token(row.customer))
    return (1, -row.cost_ratio, -row.ai_cost, sort_token(row.customer))


def top_accounts_by_cost_ratio(
    rows: Iterable[CustomerEconomics], limit: int | None = TOP_ACCOUNTS
) -> tuple[CustomerEconomics, ...]:
    """Customers by AI cost ratio, worst first; cost without revenue counts as the worst."""
    ranked = sorted(rows, key=_cost_ratio_order)
    return tuple(ranked if limit is None else ranked[:limit])


def _change(current: CustomerEconomics, previous: CustomerEconomics) -> CustomerChange:
    def delta(now: Decimal | None, before: Decimal | None) -> Decimal | None:
        return None if now is None or before is None else now - before

    return CustomerChange(
        ai_cost=current.ai_cost - previous.ai_cost,
        cost_to_serve=current.cost_to_serve - previous.cost_to_serve,
        revenue=current.revenue - previous.revenue,
        contribution_margin=current.contribution_margin - previous.contribution_margin,
        contribution_margin_pct=delta(
            current.contribution_margin_pct, previous.contribution_margin_pct
        ),
        cost_ratio=delta(current.cost_ratio, previous.cost_ratio),
    )


def customer_row(
    usage: CustomerUsage,
    overhead: Decimal,
    policy: Policy = DEFAULT_POLICY,
    previous: CustomerEconomics | None = None,
) -> CustomerEconomics:
    """One customer's economics given its allocated ``overhead`` (USD)."""
    ai_cost = to_decimal(usage.ai_cost, name="ai_cost")
    overhead = to_decimal(overhead, name="overhead")
    revenue = to_decimal(usage.revenue, name="revenue")
    cost_to_serve = ai_cost + overhead
    margin = revenue - cost_to_serve
    row = CustomerEconomics(
        customer=usage.customer,
        plan=usage.plan,
        ai_cost=ai_cost,
        overhead=overhead,
        cost_to_serve=cost_to_serve,
        revenue=revenue,
        cost_ratio=cost_ratio(ai_cost, revenue),
        contribution_margin=margin,
        contribution_margin_pct=margin_pct(margin, revenue),
        band=band(ai_cost, revenue, policy),
        underwater=is_underwater(ai_cost, revenue, policy),
        profitability=profitability(revenue, cost_to_serve, policy),
        top_features=top_features(usage.feature_costs),
    )
    if previous is None:
        return row
    return replace(row, change=_change(row, previous))


def customer_totals(
    rows: Iterable[CustomerEconomics], policy: Policy = DEFAULT_POLICY
) -> CustomerTotals:
    """Totals (USD) over customer rows, with the organization-level ratio, margin and band."""
    rows = tuple(rows)
    ai_cost = decimal_sum(row.ai_cost for row in rows)
    overhead = decimal_sum(row.overhead for row in rows)
    revenue = decimal_sum(row.revenue for row in rows)
    cost_to_serve = ai_cost + overhead
    margin = revenue - cost_to_serve
    return CustomerTotals(
        ai_cost=ai_cost,
        overhead=overhead,
        cost_to_serve=cost_to_serve,
        revenue=revenue,
        cost_ratio=cost_ratio(ai_cost, revenue),
        contribution_margin=margin,
        contribution_margin_pct=margin_pct(margin, revenue),
        band=band(ai_cost, revenue, policy),
    )


def customer_economics(
    rows: Iterable[CustomerUsage],
    policy: Policy = DEFAULT_POLICY,
    *,
    previous: Iterable[CustomerEconomics] = (),
    top: int = TOP_ACCOUNTS,
) -> CustomerReport:
    """Every non-internal customer's economics for a period, and the period's summary.

    The policy's overhead is allocated by its rule over the non-internal customers (whole
    cents, summing exactly to the overhead). ``previous`` are the previous period's rows
    (e.g. ``report.customers``): customers found there get a ``change``. A customer listed
    twice is an error (aggregate first).
    """
    customers = [row for row in rows if not row.internal]
    keys = [row.customer for row in customers]
    if len(set(keys)) != len(keys):
        raise ValueError("a customer appears more than once: aggregate rows per customer first")
    weights = {
        row.customer: overhead_weight(
            policy.overhead_rule,
            requests=row.requests,
            tokens=row.tokens,
            revenue=to_decimal(row.revenue, name="revenue"),
        )
        for row in customers
    }
    overheads = allocate(policy.overhead, weights) if customers else {}
    before = {row.customer: row for row in previous}
    result = tuple(
        customer_row(row, overheads.get(row.customer, ZERO), policy, before.get(row.customer))
        for row in customers
    )
    band_counts = dict.fromkeys(BANDS, 0)
    profitability_counts = dict.fromkeys(Profitability, 0)
    for row in result:
        band_counts[row.band] += 1
        profitability_counts[row.profitability] += 1
    summary = CustomerSummary(
        customers=len(result),
        band_counts=band_counts,
        profitability_counts=profitability_counts,
        underwater=sum(row.underwater for row in result),
        at_risk=band_counts[Band.AT_RISK],
        top_by_cost_ratio=top_accounts_by_cost_ratio(result, top),
        totals=customer_totals(result, policy),
        unallocated_overhead=ZERO if customers else policy.overhead,
    )
    return CustomerReport(customers=result, summary=summary)
