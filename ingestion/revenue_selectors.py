"""Reads of revenue: lines for the API and admin, per-customer totals for economics.

Sums are done in SQL per (customer, day, currency); only those aggregates come
to Python, where each day's amount is converted at that day's stored FX rate
into the organization's reporting currency and rounded once per reported
figure. Amounts in different currencies are never added without a rate:
:class:`~ingestion.revenue_math.MissingFxRateError` or
:class:`~ingestion.revenue_math.CurrencyMismatchError` is raised instead.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Literal

from django.db.models import Q, QuerySet, Sum

from accounts.models import Organization
from ingestion.models import FxRate, RevenueLine, RevenueRecognition
from ingestion.revenue_math import (
    CurrencyMismatchError,
    MissingFxRateError,
    add_same_currency,
    convert,
    month_start,
)
from metron.money import quantize_money

__all__ = [
    "CurrencyMismatchError", "FxTable", "MissingFxRateError", "billed_collected_by_customer_month",
    "recognized_revenue_by_customer_day", "recognized_revenue_by_customer_month",
    "revenue_by_customer_period", "revenue_daily", "revenue_line_list",
]  # fmt: skip

Measure = Literal["recognized", "billed", "collected"]
Granularity = Literal["day", "month"]
ONE = Decimal(1)


def revenue_line_list(*, organization: Organization) -> QuerySet[RevenueLine]:
    """The organization's revenue lines, newest service period first, with customer and plan."""
    return (
        RevenueLine.objects.filter(organization=organization)
        .select_related("customer", "plan")
        .order_by("-service_start", "-pk")
    )


class FxTable:
    """Stored FX rates for one organization: its own rate in force on a day, else the
    global one. One query per currency pair, on first use."""

    def __init__(self, organization: Organization):
        self.organization = organization
        self._pairs: dict[tuple[str, str], tuple[list, list]] = {}

    def _load(self, currency: str, quote: str) -> tuple[list, list]:
        if (currency, quote) not in self._pairs:
            own: list[tuple[date, Decimal]] = []
            shared: list[tuple[date, Decimal]] = []
            rows = (
                FxRate.objects.filter(currency=currency, quote_currency=quote)
                .filter(Q(organization=self.organization) | Q(organization__isnull=True))
                .order_by("day")
                .values_list("organization_id", "day", "rate")
            )
            for organization_id, day, rate in rows:
                (own if organization_id else shared).append((day, rate))
            self._pairs[(currency, quote)] = (own, shared)
        return self._pairs[(currency, quote)]

    @staticmethod
    def _in_force(rates: list[tuple[date, Decimal]], day: date) -> Decimal | None:
        index = bisect.bisect_right([d for d, _ in rates], day)
        return rates[index - 1][1] if index else None

    def rate(self, currency: str, quote: str, day: date) -> Decimal:
        """``1 currency = rate quote`` on ``day``; raises MissingFxRateError if none is stored."""
        currency, quote = currency.upper(), quote.upper()
        if currency == quote:
            return ONE
        own, shared = self._load(currency, quote)
        rate = self._in_force(own, day)
        if rate is None:
            rate = self._in_force(shared, day)
        if rate is None:
            raise MissingFxRateError(currency, quote, day, self.organization.slug)
        return rate

    def to_reporting(self, amount: Decimal, currency: str, day: date) -> Decimal:
        """``amount`` in the organization's reporting currency, unrounded."""
        quote = self.organization.reporting_currency
        return convert(amount, self.rate(currency, quote, day))


def revenue_daily(
    *, organization: Organization, measure: Measure, start: date, end: date
) -> list[tuple[int | None, date, str, Decimal]]:
    """(customer id, day, currency, amount) of ``measure`` over ``[start, end)``, summed in SQL.

    ``recognized`` comes from the daily recognition rows; ``billed`` is dated by the
    day billed and ``collected`` by the day paid or refunded. Customer None is
    revenue of Stripe customers not matched to a Metron customer yet.
    """
    if measure == "recognized":
        rows = (
            RevenueRecognition.objects.filter(
                organization=organization, day__gte=start, day__lt=end
            )
            .values_list("customer_id", "day", "currency")
            .annotate(total=Sum("amount"))
        )
    elif measure in ("billed", "collected"):
        day_field = "billed_on" if measure == "billed" else "collected_on"
        rows = (
            RevenueLine.objects.filter(
                organization=organization,
                **{f"{day_field}__gte": start, f"{day_field}__lt": end},
            )
            .exclude(**{measure: 0})
            .values_list("customer_id", day_field, "currency")
            .annotate(total=Sum(measure))
        )
    else:
        raise ValueError(f"Unknown revenue measure {measure!r}.")
    return [(customer_id, day, currency, total) for customer_id, day, currency, total in rows]


def revenue_by_customer_period(
    *,
    organization: Organization,
    measure: Measure,
    start: date,
    end: date,
    granularity: Granularity = "month",
    reporting_currency: bool = True,
) -> dict[tuple[int | None, date], Decimal]:
    """Totals of ``measure`` per (customer id, first day of the day/month) over ``[start, end)``.

    With ``reporting_currency`` (the default) every day is converted at its FX rate
    into the organization's reporting currency (MissingFxRateError if a rate is
    missing). Without it, amounts stay in their own currency and a customer-period
    holding two currencies raises CurrencyMismatchError. Each total is rounded once,
    to its currency's minor unit.
    """
    fx = FxTable(organization) if reporting_currency else None
    grouped: dict[tuple[int | None, date], list[tuple[str, Decimal]]] = defaultdict(list)
    for customer_id, day, currency, amount in revenue_daily(
        organization=organization, measure=measure, start=start, end=end
    ):
        key = (customer_id, month_start(day) if granularity == "month" else day)
        if fx is not None:
            grouped[key].append(
                (organization.reporting_currency, fx.to_reporting(amount, currency, day))
            )
        else:
            grouped[key].append((currency, amount))
    totals = {}
    for key, amounts in grouped.items():
        currency, total = add_same_currency(amounts)
        totals[key] = quantize_money(total, currency or organization.reporting_currency)
    return totals


def recognized_revenue_by_customer_day(
    *, organization: Organization, start: date, end: date
) -> dict[tuple[int | None, date], Decimal]:
    """Recognized revenue per (customer, day), in the reporting currency."""
    return revenue_by_customer_period(
        organization=organization, measure="recognized", start=start, end=end, granularity="day"
    )


def recognized_revenue_by_customer_month(
    *, organization: Organization, start: date, end: date
) -> dict[tuple[int | None, date], Decimal]:
    """Recognized revenue per (customer, month), in the reporting currency."""
    return revenue_by_customer_period(
        organization=organization, measure="recognized", start=start, end=end
    )


def billed_collected_by_customer_month(
    *, organization: Organization, start: date, end: date
) -> dict[tuple[int | None, date], dict[str, Decimal]]:
    """Billed and collected revenue per (customer, month), in the reporting currency."""
    zero = quantize_money(Decimal(0), organization.reporting_currency)
    result: dict[tuple[int | None, date], dict[str, Decimal]] = {}
    for measure in ("billed", "collected"):
        totals = revenue_by_customer_period(
            organization=organization, measure=measure, start=start, end=end
        )
        for key, total in totals.items():
            result.setdefault(key, {"billed": zero, "collected": zero})[measure] = total
    return result
