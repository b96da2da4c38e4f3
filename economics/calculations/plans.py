"""Plan economics: per-account averages, the spread of per-account AI cost, and the tail.

The **tail** of a plan is its accounts whose AI cost for the period is at or above
``policy.tail_threshold_ratio`` × the plan's price for that period (default 0.40 × price);
an account that costs nothing is never in it (so a free plan's tail is every account that
costs anything). Statistics follow :mod:`economics.calculations.stats` (population standard
deviation, nearest-rank P95). Money is USD, unrounded; shares are fractions of 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from economics.calculations.base import ZERO, decimal_sum, divide, share, sort_token, to_decimal
from economics.calculations.customers import CustomerEconomics
from economics.calculations.policy import (
    DEFAULT_POLICY,
    Band,
    Policy,
    band,
    cost_ratio,
    margin_pct,
)
from economics.calculations.stats import median, percentile, population_stddev

P95: Final = Decimal("0.95")
MONTHS_PER_INTERVAL: Final = {"month": 1, "year": 12}


def monthly_price(price: Decimal, interval: str) -> Decimal:
    """A plan's list price per calendar month, USD (a yearly price ÷ 12, unrounded)."""
    try:
        months = MONTHS_PER_INTERVAL[interval]
    except KeyError as error:
        raise ValueError(f"unknown plan interval {interval!r}") from error
    return divide(to_decimal(price, name="price"), months)


@dataclass(frozen=True)
class PlanAccount:
    """One account's period figures on a plan, USD."""

    customer: Hashable
    ai_cost: Decimal
    revenue: Decimal
    overhead: Decimal = ZERO


@dataclass(frozen=True)
class PlanEconomics:
    """A plan's unit economics for the period (USD; shares and % as fractions of 1).

    Tail figures are ``None`` when the plan's price is unknown; shares are ``None`` when
    there is nothing to share (no accounts, no cost). ``overconsuming`` lists the tail's
    accounts, costliest first.
    """

    plan: Hashable | None
    price: Decimal | None
    accounts: int
    ai_cost: Decimal
    overhead: Decimal
    cost_to_serve: Decimal
    revenue: Decimal
    average_ai_cost: Decimal | None
    average_revenue: Decimal | None
    contribution_margin: Decimal
    contribution_margin_per_account: Decimal | None
    contribution_margin_pct: Decimal | None
    cost_ratio: Decimal | None
    band: Band
    cost_stddev: Decimal | None
    cost_median: Decimal | None
    cost_p95: Decimal | None
    tail_threshold: Decimal | None
    tail_accounts: int | None
    tail_account_share: Decimal | None
    tail_cost_share: Decimal | None
    overconsuming: tuple[PlanAccount, ...] | None


def in_tail(ai_cost: Decimal, price: Decimal, policy: Policy = DEFAULT_POLICY) -> bool:
    """Whether an account's AI cost (USD) reaches the tail threshold of a plan ``price``."""
    return ai_cost > 0 and ai_cost >= policy.tail_threshold_ratio * price


def plan_economics(
    plan: Hashable | None,
    price: Decimal | None,
    accounts: Iterable[PlanAccount],
    policy: Policy = DEFAULT_POLICY,
) -> PlanEconomics:
    """One plan's economics from its accounts' period figures; ``price`` per period, USD."""
    accounts = tuple(accounts)
    if len({account.customer for account in accounts}) != len(accounts):
        raise ValueError(f"an account appears more than once on plan {plan!r}")
    costs = [to_decimal(account.ai_cost, name="ai_cost") for account in accounts]
    ai_cost = decimal_sum(costs)
    revenue = decimal_sum(account.revenue for account in accounts)
    overhead = decimal_sum(account.overhead for account in accounts)
    margin = revenue - (ai_cost + overhead)

    tail_threshold = tail_count = account_share = cost_share = overconsuming = None
    if price is not None:
        price = to_decimal(price, name="price")
        tail_threshold = policy.tail_threshold_ratio * price
        tail = sorted(
            (account for account in accounts if in_tail(account.ai_cost, price, policy)),
            key=lambda account: (-account.ai_cost, sort_token(account.customer)),
        )
        tail_count = len(tail)
        account_share = share(tail_count, len(accounts))
        cost_share = share(decimal_sum(account.ai_cost for account in tail), ai_cost)
        overconsuming = tuple(tail)

    return PlanEconomics(
        plan=plan,
        price=price,
        accounts=len(accounts),
        ai_cost=ai_cost,
        overhead=overhead,
        cost_to_serve=ai_cost + overhead,
        revenue=revenue,
        average_ai_cost=divide(ai_cost, len(accounts)),
        average_revenue=divide(revenue, len(accounts)),
        contribution_margin=margin,
        contribution_margin_per_account=divide(margin, len(accounts)),
        contribution_margin_pct=margin_pct(margin, revenue),
        cost_ratio=cost_ratio(ai_cost, revenue),
        band=band(ai_cost, revenue, policy),
        cost_stddev=population_stddev(costs),
        cost_median=median(costs),
        cost_p95=percentile(costs, P95),
        tail_threshold=tail_threshold,
        tail_accounts=tail_count,
        tail_account_share=account_share,
        tail_cost_share=cost_share,
        overconsuming=overconsuming,
    )


def plans_from_customers(
    rows: Iterable[CustomerEconomics],
    prices: Mapping[Hashable, Decimal],
    policy: Policy = DEFAULT_POLICY,
) -> tuple[PlanEconomics, ...]:
    """Plan economics from customer rows grouped by their plan; ordered by plan key.

    ``prices`` maps a plan to its price for the period (USD); a plan missing from it gets no
    tail figures. The customer rows already exclude internal accounts, so plans do too.
    """
    by_plan: dict[Hashable | None, list[PlanAccount]] = defaultdict(list)
    for row in rows:
        by_plan[row.plan].append(PlanAccount(row.customer, row.ai_cost, row.revenue, row.overhead))
    return tuple(
        plan_economics(plan, prices.get(plan), accounts, policy)
        for plan, accounts in sorted(by_plan.items(), key=lambda item: sort_token(item[0]))
    )
