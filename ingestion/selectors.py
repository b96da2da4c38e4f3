"""Reads of the usage ledger and its rollups."""

from __future__ import annotations

from django.db.models import Count, Max, Min, QuerySet

from accounts.models import Organization
from ingestion.models import DailyUsage, EventConflict, UsageEvent


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
