"""Reads of the usage ledger and its rollups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, DecimalField, Max, Min, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Customer, Organization
from ingestion.models import DailyUsage, EventConflict, UsageEvent
from metron.money import ZERO


def usage_event_list(*, organization: Organization) -> QuerySet[UsageEvent]:
    """Ledger rows with their catalog references joined, newest first."""
    return (
        UsageEvent.objects.filter(organization=organization)
        .select_related("customer", "feature", "plan")
        .order_by("-timestamp", "-id")
    )


def daily_usage_list(*, organization: Organization) -> QuerySet[DailyUsage]:
    """Rollup rows with their catalog references joined, newest day first."""
    return (
        DailyUsage.objects.filter(organization=organization)
        .select_related("customer", "feature", "plan")
        .order_by("-day", "provider", "model", "id")
    )


def unpriced_model_list(*, organization: Organization) -> QuerySet:
    """Models seen without a price: provider, model, events, first and last seen."""
    return (
        UsageEvent.objects.filter(organization=organization, cost_status="unpriced")
        .values("provider", "model")
        .annotate(events=Count("id"), first_seen=Min("timestamp"), last_seen=Max("timestamp"))
        .order_by("-events")
    )


def open_conflict_count(*, organization: Organization) -> int:
    return EventConflict.objects.filter(organization=organization, resolved=False).count()


@dataclass(frozen=True)
class UsageSummary:
    requests: int
    cost: Decimal  # USD, priced events only
    unpriced_requests: int
    open_conflicts: int


def usage_summary(*, organization: Organization, since: date) -> UsageSummary:
    """Requests, cost and unpriced count from ``since`` (UTC day) on, read from the rollups."""
    totals = DailyUsage.objects.filter(organization=organization, day__gte=since).aggregate(
        requests=Coalesce(Sum("requests"), 0),
        cost=Coalesce(Sum("cost"), Value(ZERO), output_field=DecimalField()),
        unpriced=Coalesce(Sum("unpriced_requests"), 0),
    )
    return UsageSummary(
        requests=totals["requests"],
        cost=totals["cost"],
        unpriced_requests=totals["unpriced"],
        open_conflicts=open_conflict_count(organization=organization),
    )


def daily_cost_series(*, organization: Organization, since: date) -> list[tuple[date, Decimal]]:
    """USD cost per UTC day from ``since`` on (days without usage omitted)."""
    return list(
        DailyUsage.objects.filter(organization=organization, day__gte=since)
        .values("day")
        .annotate(cost=Sum("cost"))
        .order_by("day")
        .values_list("day", "cost")
    )


def usage_event_search(*, queryset: QuerySet[UsageEvent], organization: Organization, term: str):
    """Events matching an exact event id, else customer id, else model name.

    Tried in that order with indexed lookups: an OR across them would scan the
    whole ledger.
    """
    if UsageEvent.objects.filter(organization=organization, event_id=term).exists():
        return queryset.filter(event_id=term)
    customer = (
        Customer.objects.filter(organization=organization, external_id=term)
        .values_list("pk", flat=True)
        .first()
    )
    if customer is not None:
        return queryset.filter(customer_id=customer)
    return queryset.filter(model=term)


ROLLUP_VALUES_TTL = 300  # seconds; a new model shows up in the filter within minutes


def rollup_values(*, organization: Organization, field: str) -> list[str]:
    """Distinct values of a rollup dimension (provider, model, …), cached for a few minutes.

    The rollups of a large organization hold millions of rows; the admin's
    filter sidebar must not scan them on every page view.
    """
    key = f"rollup-values:{organization.pk}:{field}"
    values = cache.get(key)
    if values is None:
        values = list(
            DailyUsage.objects.filter(organization=organization)
            .values_list(field, flat=True)
            .distinct()
            .order_by(field)
        )
        cache.set(key, values, ROLLUP_VALUES_TTL)
    return values
