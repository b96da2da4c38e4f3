"""Query filters of the accounts API; parameters are named after the API fields."""

from __future__ import annotations

import django_filters

from accounts.models import Customer, Feature, Plan, ProviderKey
from metron.api.filters import StrictBooleanFilter


class CustomerFilter(django_filters.FilterSet):
    customer_id = django_filters.CharFilter(field_name="external_id")
    is_internal = StrictBooleanFilter()
    needs_review = StrictBooleanFilter()
    plan = django_filters.CharFilter(
        field_name="current_plan_code", label="Code of the plan in force now."
    )
    started_on = django_filters.DateFilter()
    started_after = django_filters.DateFilter(
        field_name="started_on", lookup_expr="gte", label="Started on or after this date."
    )
    started_before = django_filters.DateFilter(
        field_name="started_on", lookup_expr="lt", label="Started before this date."
    )

    class Meta:
        model = Customer
        fields = ["status", "segment", "region"]


class PlanFilter(django_filters.FilterSet):
    is_free = StrictBooleanFilter()
    is_trial = StrictBooleanFilter()
    is_active = StrictBooleanFilter()

    class Meta:
        model = Plan
        fields = ["code", "currency", "interval"]


class FeatureFilter(django_filters.FilterSet):
    needs_review = StrictBooleanFilter()

    class Meta:
        model = Feature
        fields = ["key", "status", "team"]


class ProviderKeyFilter(django_filters.FilterSet):
    feature = django_filters.CharFilter(field_name="feature__key", label="Feature key.")
    mapped = StrictBooleanFilter(
        field_name="feature", lookup_expr="isnull", exclude=True, label="Mapped to a feature."
    )

    class Meta:
        model = ProviderKey
        fields = ["provider", "key_id", "environment", "status", "team"]
