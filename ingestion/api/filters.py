"""Query filters of the usage API; parameters are named after the API fields."""

from __future__ import annotations

import django_filters

from ingestion.models import DailyUsage, UsageEvent
from metron.api.filters import StrictBooleanFilter


class UsageEventFilter(django_filters.FilterSet):
    customer_id = django_filters.CharFilter(field_name="customer__external_id")
    feature = django_filters.CharFilter(field_name="feature__key")
    plan = django_filters.CharFilter(field_name="plan__code")
    since = django_filters.IsoDateTimeFilter(
        field_name="timestamp", lookup_expr="gte", label="Events at or after this time."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="timestamp", lookup_expr="lt", label="Events before this time."
    )
    batch = StrictBooleanFilter()
    billable = StrictBooleanFilter()

    class Meta:
        model = UsageEvent
        fields = [
            "provider", "model", "environment", "cost_status", "cost_source",
            "attribution_source", "status", "user_id", "workflow", "prompt_version",
        ]  # fmt: skip


class DailyUsageFilter(django_filters.FilterSet):
    customer_id = django_filters.CharFilter(field_name="customer__external_id")
    feature = django_filters.CharFilter(field_name="feature__key")
    plan = django_filters.CharFilter(field_name="plan__code")
    since = django_filters.DateFilter(field_name="day", lookup_expr="gte", label="From this day.")
    until = django_filters.DateFilter(field_name="day", lookup_expr="lt", label="Before this day.")
    batch = StrictBooleanFilter()
    billable = StrictBooleanFilter()

    class Meta:
        model = DailyUsage
        fields = ["day", "provider", "model", "environment"]
