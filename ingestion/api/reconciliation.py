"""``GET /api/v1/reconciliation/``: ledger estimate vs provider usage vs invoiced cost.

Read scope. One row per provider, UTC day and model by default (``level=key`` lists the
split by provider key). Amounts are USD decimal strings; percentages are decimal strings.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import mixins, serializers

from ingestion.models import ReconciliationLine
from ingestion.selectors_reconciliation import reconciliation_line_list
from metron.api.filters import StrictBooleanFilter
from metron.api.viewsets import OrganizationScopedViewSet


class ReconciliationLineFilter(django_filters.FilterSet):
    since = django_filters.DateFilter(field_name="day", lookup_expr="gte", label="From this day.")
    until = django_filters.DateFilter(field_name="day", lookup_expr="lt", label="Before this day.")
    flagged = StrictBooleanFilter(label="Only lines beyond tolerance (true) or within (false).")
    level = django_filters.ChoiceFilter(
        choices=ReconciliationLine.Level.choices, empty_label=None,
        label="model (default): one line per day and model; key: split by provider key.",
    )  # fmt: skip

    class Meta:
        model = ReconciliationLine
        fields = ["provider", "model", "api_key_id"]

    def filter_queryset(self, queryset):
        # Without an explicit level, a key filter means key lines; otherwise model lines.
        if not self.form.cleaned_data.get("level"):
            level = "key" if self.form.cleaned_data.get("api_key_id") else "model"
            queryset = queryset.filter(level=level)
        return super().filter_queryset(queryset)


@extend_schema_serializer(component_name="ReconciliationLine")
class ReconciliationLineSerializer(serializers.ModelSerializer):
    reasons = serializers.ListField(child=serializers.CharField())
    computed_at = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = ReconciliationLine
        fields = [
            "provider",
            "day",
            "model",
            "level",
            "api_key_id",
            "ledger_requests",
            "ledger_input_tokens",
            "ledger_cached_input_tokens",
            "ledger_cache_write_tokens",
            "ledger_output_tokens",
            "ledger_unpriced_requests",
            "ledger_cost",
            "provider_requests",
            "provider_input_tokens",
            "provider_cached_input_tokens",
            "provider_cache_write_tokens",
            "provider_output_tokens",
            "provider_usage_cost",
            "uninstrumented_cost",
            "invoiced_cost",
            "invoiced_basis",
            "variance",
            "variance_percent",
            "token_variance_percent",
            "tolerance_percent",
            "flagged",
            "reasons",
            "explanation",
            "computed_at",
        ]
        read_only_fields = fields


class ReconciliationLineViewSet(mixins.ListModelMixin, OrganizationScopedViewSet):
    """Reconciliation per provider, day and model: ledger estimate, provider usage cost
    (the provider's token counts at Metron's prices), invoiced cost, the variance
    (provider figure − ledger; invoiced when known) and its explanation. Lines beyond the
    connection's tolerance (default 2%) are `flagged`."""

    model = ReconciliationLine
    serializer_class = ReconciliationLineSerializer
    filterset_class = ReconciliationLineFilter
    ordering_fields = ["day", "variance", "variance_percent", "ledger_cost", "invoiced_cost"]

    def get_base_queryset(self, *, organization):
        return reconciliation_line_list(organization=organization)
