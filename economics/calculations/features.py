"""Feature economics: unit costs by plan tier, feature health, cost by prompt version.

**Feature health** = the feature's cost per active user ÷ its plan's recognized revenue per
active user, classified in the same bands as customers. A free plan (revenue 0) makes any
feature cost margin-negative. Health is unknown (``None``) when the plan's revenue per
active user is not given, or when the feature has no active users (events without a user).
Rows come from SQL aggregates with internal accounts already excluded; a row whose ``plan``
is ``None`` stands for the feature across all plans. Money is USD, unrounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from economics.calculations.base import divide, sort_token, to_decimal
from economics.calculations.policy import DEFAULT_POLICY, Band, Policy, band, cost_ratio


@dataclass(frozen=True)
class FeatureUsage:
    """A feature's aggregates on one plan tier: cost (USD), invocations, distinct end users."""

    feature: Hashable
    plan: Hashable | None
    cost: Decimal
    invocations: int
    active_users: int


@dataclass(frozen=True)
class FeatureEconomics:
    """A feature on one plan tier: unit costs (USD) and health against the plan's revenue."""

    feature: Hashable
    plan: Hashable | None
    cost: Decimal
    invocations: int
    active_users: int
    cost_per_invocation: Decimal | None
    cost_per_active_user: Decimal | None
    plan_revenue_per_active_user: Decimal | None
    health_ratio: Decimal | None
    band: Band | None


def revenue_per_active_user(revenue: Decimal, active_users: int) -> Decimal | None:
    """A plan's recognized revenue (USD) ÷ its distinct active end users; ``None`` for none."""
    return divide(revenue, active_users)


def feature_row(
    usage: FeatureUsage,
    plan_revenue_per_active_user: Decimal | None,
    policy: Policy = DEFAULT_POLICY,
) -> FeatureEconomics:
    """One feature-on-plan row: cost per invocation and per active user, health and band."""
    cost = to_decimal(usage.cost, name="cost")
    per_user = divide(cost, usage.active_users)
    known = per_user is not None and plan_revenue_per_active_user is not None
    return FeatureEconomics(
        feature=usage.feature,
        plan=usage.plan,
        cost=cost,
        invocations=usage.invocations,
        active_users=usage.active_users,
        cost_per_invocation=divide(cost, usage.invocations),
        cost_per_active_user=per_user,
        plan_revenue_per_active_user=plan_revenue_per_active_user,
        health_ratio=cost_ratio(per_user, plan_revenue_per_active_user) if known else None,
        band=band(per_user, plan_revenue_per_active_user, policy) if known else None,
    )


def feature_economics(
    rows: Iterable[FeatureUsage],
    plan_revenue_per_active_user: Mapping[Hashable | None, Decimal],
    policy: Policy = DEFAULT_POLICY,
) -> tuple[FeatureEconomics, ...]:
    """Every feature-on-plan row, costliest first (ties by feature, then plan).

    ``plan_revenue_per_active_user`` maps a plan (``None``: all plans) to its revenue per
    active user, USD (see :func:`revenue_per_active_user`); a plan missing from it leaves
    that row's health unknown.
    """
    result = [feature_row(row, plan_revenue_per_active_user.get(row.plan), policy) for row in rows]
    result.sort(key=lambda row: (-row.cost, sort_token(row.feature), sort_token(row.plan)))
    return tuple(result)


@dataclass(frozen=True)
class PromptVersionUsage:
    """A feature's cost (USD) and invocations under one prompt version (e.g. for one day)."""

    feature: Hashable
    prompt_version: str
    cost: Decimal
    invocations: int


@dataclass(frozen=True)
class PromptVersionCost:
    """A feature's cost (USD), invocations and cost per invocation under one prompt version."""

    feature: Hashable
    prompt_version: str
    cost: Decimal
    invocations: int
    cost_per_invocation: Decimal | None


def cost_by_prompt_version(rows: Iterable[PromptVersionUsage]) -> tuple[PromptVersionCost, ...]:
    """Sum rows per (feature, prompt version); ordered by feature, then version."""
    cost: dict[tuple, Decimal] = defaultdict(Decimal)
    invocations: dict[tuple, int] = defaultdict(int)
    for row in rows:
        key = (row.feature, row.prompt_version)
        cost[key] += to_decimal(row.cost, name="cost")
        invocations[key] += row.invocations
    return tuple(
        PromptVersionCost(
            feature=feature,
            prompt_version=version,
            cost=cost[feature, version],
            invocations=invocations[feature, version],
            cost_per_invocation=divide(cost[feature, version], invocations[feature, version]),
        )
        for feature, version in sorted(cost, key=lambda k: (sort_token(k[0]), sort_token(k[1])))
    )
