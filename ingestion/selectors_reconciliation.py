"""Reads of provider usage, cost lines and reconciliation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.db.models import Count, F, Q, QuerySet, Sum

from accounts.models import Organization
from ingestion.models import (
    ProviderConnection,
    ProviderCostLine,
    ProviderUsageBucket,
    ReconciliationLine,
)


def reconciliation_line_list(*, organization: Organization) -> QuerySet[ReconciliationLine]:
    """Reconciliation lines, newest day first, their provider key joined."""
    return (
        ReconciliationLine.objects.filter(organization=organization)
        .select_related("provider_key")
        .order_by("-day", "provider", "model", "level", "api_key_id", "pk")
    )


def provider_connection_list(*, organization: Organization) -> QuerySet[ProviderConnection]:
    return ProviderConnection.objects.filter(organization=organization).order_by("provider")


def provider_usage_bucket_list(*, organization: Organization) -> QuerySet[ProviderUsageBucket]:
    return (
        ProviderUsageBucket.objects.filter(organization=organization)
        .select_related("provider_key", "provider_key__feature")
        .order_by("-bucket_start", "provider", "model", "pk")
    )


def provider_cost_line_list(*, organization: Organization) -> QuerySet[ProviderCostLine]:
    return ProviderCostLine.objects.filter(organization=organization).order_by(
        "-day", "provider", "line_item", "pk"
    )


def provider_usage_by_feature(
    *, organization: Organization, since: date, until: date, provider: str | None = None
) -> list[dict]:
    """Provider-reported usage per feature through the key mapping, days ``[since, until)``.

    One row per (provider, feature key): tokens, requests and cost at Metron's prices (USD,
    priced buckets only; ``unpriced_buckets`` counts the others). ``feature`` is None for
    usage on unmapped keys or without a key: provider spend no feature has claimed.
    """
    buckets = ProviderUsageBucket.objects.filter(
        organization=organization, bucket_width="1d",
        bucket_start__gte=datetime.combine(since, time.min, tzinfo=UTC),
        bucket_start__lt=datetime.combine(until, time.min, tzinfo=UTC),
    )  # fmt: skip
    if provider:
        buckets = buckets.filter(provider=provider)
    return list(
        buckets.values("provider", feature=F("provider_key__feature__key"))
        .annotate(
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            requests=Sum("requests"),
            cost=Sum("estimated_cost"),
            unpriced_buckets=Count("id", filter=Q(estimated_cost__isnull=True)),
        )  # fmt: skip
        .order_by("provider", "feature")
    )
