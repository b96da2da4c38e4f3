"""Cohort margin trend: customers grouped by start month, margin per month since start.

Month 1 is the calendar month in which the customer started (``started_on``), month 2 the
next, and so on. Rows dated before a customer's start month are left out (they belong to no
month since start). Margin is revenue − cost, whichever cost the caller passes (AI cost or
cost-to-serve); money is USD, unrounded; margin % is a fraction of revenue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from economics.calculations.base import to_decimal
from economics.calculations.policy import margin_pct


@dataclass(frozen=True)
class CohortUsage:
    """One customer's revenue and cost (USD) in one calendar month (any day of it)."""

    customer: Hashable
    started_on: date
    month: date
    revenue: Decimal
    cost: Decimal
    internal: bool = False


@dataclass(frozen=True)
class CohortPoint:
    """A cohort's figures in its ``month``-th month since start (1-based)."""

    month: int
    customers: int
    revenue: Decimal
    cost: Decimal
    margin: Decimal
    margin_pct: Decimal | None


@dataclass(frozen=True)
class Cohort:
    """Customers who started in ``start_month`` (its first day) and their monthly margins."""

    start_month: date
    customers: int
    points: tuple[CohortPoint, ...]


def month_start(day: date) -> date:
    """The first day of ``day``'s calendar month."""
    return day.replace(day=1)


def months_since_start(started_on: date, month: date) -> int:
    """1 for the start month itself, 2 for the next calendar month, …; < 1 before it."""
    return (month.year - started_on.year) * 12 + (month.month - started_on.month) + 1


def cohort_margins(rows: Iterable[CohortUsage], *, months: int | None = None) -> tuple[Cohort, ...]:
    """Cohorts by start month (oldest first), each with months 1…N where it has data.

    ``months`` caps N. A month with no row for the cohort is absent rather than zero, so a
    chart shows gaps where there is no data. Internal customers are left out.
    """
    members: dict[date, set] = defaultdict(set)
    revenue: dict[tuple[date, int], Decimal] = defaultdict(Decimal)
    cost: dict[tuple[date, int], Decimal] = defaultdict(Decimal)
    active: dict[tuple[date, int], set] = defaultdict(set)
    for row in rows:
        if row.internal:
            continue
        cohort = month_start(row.started_on)
        members[cohort].add(row.customer)
        index = months_since_start(row.started_on, row.month)
        if index < 1 or (months is not None and index > months):
            continue
        revenue[cohort, index] += to_decimal(row.revenue, name="revenue")
        cost[cohort, index] += to_decimal(row.cost, name="cost")
        active[cohort, index].add(row.customer)
    result = []
    for cohort in sorted(members):
        points = []
        for index in sorted(i for c, i in active if c == cohort):
            income, spent = revenue[cohort, index], cost[cohort, index]
            margin = income - spent
            points.append(
                CohortPoint(
                    month=index,
                    customers=len(active[cohort, index]),
                    revenue=income,
                    cost=spent,
                    margin=margin,
                    margin_pct=margin_pct(margin, income),
                )
            )
        result.append(Cohort(cohort, len(members[cohort]), tuple(points)))
    return tuple(result)
