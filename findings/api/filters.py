"""Query filters of the findings API; parameters are named after the API fields.

``kind``, ``status``, ``confidence`` and ``state`` may repeat (``?status=open&status=
acknowledged``); an unknown value is a 400 naming it.
"""

from __future__ import annotations

import django_filters
from django import forms

from findings.models import (
    ALERT_KINDS,
    WASTE_KINDS,
    Budget,
    BudgetState,
    Finding,
    FindingConfidence,
    FindingKind,
    FindingStatus,
    RemediationItem,
    RemediationKind,
    RemediationState,
)
from metron.api.filters import StrictBooleanFilter

CATEGORY_KINDS = {"waste": WASTE_KINDS, "alert": ALERT_KINDS}


class IdFilter(django_filters.NumberFilter):
    """A row's numeric id: a whole number, or a 400."""

    field_class = forms.IntegerField


class ScopeFilter(django_filters.FilterSet):
    customer_id = django_filters.CharFilter(field_name="customer__external_id")
    feature = django_filters.CharFilter(field_name="feature__key", label="Feature key.")
    plan = django_filters.CharFilter(field_name="plan__code", label="Plan code.")
    api_key_id = django_filters.CharFilter(
        field_name="provider_key__key_id", label="The provider's key id."
    )


class FindingFilter(ScopeFilter):
    kind = django_filters.MultipleChoiceFilter(choices=FindingKind.choices)
    category = django_filters.ChoiceFilter(
        choices=[("waste", "Waste"), ("alert", "Alert")],
        method="filter_category",
        label="`waste` (the six detectors) or `alert`.",
    )
    status = django_filters.MultipleChoiceFilter(choices=FindingStatus.choices)
    confidence = django_filters.MultipleChoiceFilter(choices=FindingConfidence.choices)
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner's username.")
    unassigned = StrictBooleanFilter(
        field_name="owner", lookup_expr="isnull", label="Without an owner."
    )
    min_savings = django_filters.NumberFilter(
        field_name="monthly_savings", lookup_expr="gte", label="At least this many USD a month."
    )

    class Meta:
        model = Finding
        fields = ["provider", "model", "environment", "prompt_version"]

    def filter_category(self, queryset, name, value):
        return queryset.filter(kind__in=CATEGORY_KINDS[value])


class RemediationFilter(ScopeFilter):
    kind = django_filters.MultipleChoiceFilter(choices=RemediationKind.choices)
    state = django_filters.MultipleChoiceFilter(choices=RemediationState.choices)
    finding = IdFilter(field_name="finding_id", label="Id of the finding.")
    requested_by = django_filters.CharFilter(
        field_name="requested_by__username", label="Requester's username."
    )
    needs_finance = StrictBooleanFilter(label="A pricing action (finance approves it).")

    class Meta:
        model = RemediationItem
        fields = ["provider", "model", "environment"]


class BudgetFilter(ScopeFilter):
    scope = django_filters.ChoiceFilter(choices=Budget.Scope.choices)
    state = django_filters.MultipleChoiceFilter(choices=BudgetState.choices)
    active = StrictBooleanFilter()

    class Meta:
        model = Budget
        fields = []
