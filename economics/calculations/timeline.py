"""Time buckets whose width adapts to the range: daily, weekly or monthly.

Ranges are half-open ``[start, end)`` of UTC dates. Up to 31 days is shown daily (a calendar
month has at most 31), up to 180 days weekly (about 26 points), anything longer monthly.
Weeks are ISO weeks (Monday first), months calendar months; the first and last bucket are
clipped to the range, so every bucket carries its own ``[start, end)`` and partial buckets
are visible as such. Money is USD, unrounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

from economics.calculations.base import ZERO, to_decimal
from economics.calculations.policy import cost_ratio, margin_pct

DAILY_MAX_DAYS: Final = 31
WEEKLY_MAX_DAYS: Final = 180


class Granularity(StrEnum):
    """Width of a time bucket."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _check_range(start: date, end: date) -> None:
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise TypeError("ranges are dates (UTC days), not datetimes")
    if end <= start:
        raise ValueError(f"empty range: end {end} is not after start {start}")


def granularity(start: date, end: date) -> Granularity:
    """Bucket width for ``[start, end)``: ≤ 31 days daily, ≤ 180 days weekly, else monthly."""
    _check_range(start, end)
    days = (end - start).days
    if days <= DAILY_MAX_DAYS:
        return Granularity.DAY
    if days <= WEEKLY_MAX_DAYS:
        return Granularity.WEEK
    return Granularity.MONTH


def bucket_start(day: date, width: Granularity) -> date:
    """The start of the (unclipped) bucket holding ``day``: itself, its Monday, its 1st."""
    if width is Granularity.DAY:
        return day
    if width is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_bucket(day: date, width: Granularity) -> date:
    start = bucket_start(day, width)
    if width is Granularity.DAY:
        return start + timedelta(days=1)
    if width is Granularity.WEEK:
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def buckets(
    start: date, end: date, width: Granularity | None = None
) -> tuple[tuple[date, date], ...]:
    """The buckets covering ``[start, end)`` as half-open ranges, clipped to the range."""
    _check_range(start, end)
    width = width or granularity(start, end)
    result = []
    cursor = start
    while cursor < end:
        following = min(_next_bucket(cursor, width), end)
        result.append((cursor, following))
        cursor = following
    return tuple(result)


@dataclass(frozen=True)
class Bucket:
    """A total (USD or a count) over ``[start, end)``."""

    start: date
    end: date
    total: Decimal


def bucket_sums(
    values: Iterable[tuple[date, Decimal]],
    start: date,
    end: date,
    width: Granularity | None = None,
) -> tuple[Bucket, ...]:
    """Sum dated values into the range's buckets (every bucket present, empty ones 0).

    Values dated outside ``[start, end)`` are left out. ``width`` defaults to
    :func:`granularity` of the range.
    """
    width = width or granularity(start, end)
    ranges = buckets(start, end, width)
    sums: dict[date, Decimal] = defaultdict(Decimal)
    for day, value in values:
        if start <= day < end:
            # The first bucket is clipped, so it is keyed by the range's start.
            sums[max(bucket_start(day, width), start)] += to_decimal(value)
    return tuple(Bucket(lo, hi, sums.get(lo, ZERO)) for lo, hi in ranges)


@dataclass(frozen=True)
class TrendPoint:
    """Revenue, cost and margin (USD) over ``[start, end)``; ratio and % as fractions."""

    start: date
    end: date
    revenue: Decimal
    cost: Decimal
    margin: Decimal
    margin_pct: Decimal | None
    cost_ratio: Decimal | None


def margin_trend(
    days: Iterable[tuple[date, Decimal, Decimal]],
    start: date,
    end: date,
    width: Granularity | None = None,
) -> tuple[TrendPoint, ...]:
    """Margin over time from daily ``(day, revenue, cost)`` rows, in adaptive buckets."""
    days = tuple(days)
    revenue = bucket_sums(((day, income) for day, income, _ in days), start, end, width)
    cost = bucket_sums(((day, spent) for day, _, spent in days), start, end, width)
    return tuple(
        TrendPoint(
            start=income.start,
            end=income.end,
            revenue=income.total,
            cost=spent.total,
            margin=income.total - spent.total,
            margin_pct=margin_pct(income.total - spent.total, income.total),
            cost_ratio=cost_ratio(spent.total, income.total),
        )
        for income, spent in zip(revenue, cost, strict=True)
    )
