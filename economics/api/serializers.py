"""Output serializers of the economics API, and the shapes of its responses for OpenAPI.

Customer rows are model rows; every other list is a snapshot's JSON (economics/SNAPSHOTS.md),
passed through these serializers so that each field is documented and money stays the exact
decimal string the snapshot stored. Money is USD; ratios and shares are fractions of 1
("0.3" = 30 %) as decimal strings, null where there is no revenue to divide by.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers

from economics.calculations import Band
from economics.models import CustomerEconomics, EconomicsSnapshot
from economics.selectors import snapshot_stale_since

BANDS = [band.value for band in Band]


def decimal_string(**kwargs) -> serializers.DecimalField:
    """A decimal string from snapshot JSON, shown as stored: no float, no rounding."""
    kwargs.setdefault("allow_null", False)
    return serializers.DecimalField(max_digits=None, decimal_places=None, read_only=True, **kwargs)


def ratio_string(**kwargs) -> serializers.DecimalField:
    """A fraction of 1 as a decimal string; null where there is no revenue."""
    return decimal_string(allow_null=True, **kwargs)


def band_field(**kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=BANDS, read_only=True, **kwargs)


# --- the period of every response -------------------------------------------------------------


class CoverageSerializer(serializers.Serializer):
    """Share of the period's cost with a known feature, customer and plan (null: no cost)."""

    feature = ratio_string()
    customer = ratio_string()
    plan = ratio_string()


class PeriodSerializer(serializers.Serializer):
    """The snapshot a response's figures come from."""

    period = serializers.SerializerMethodField(help_text='"YYYY-MM" or "rolling_30d".')
    period_start = serializers.DateField(read_only=True)
    period_end = serializers.DateField(read_only=True, help_text="Exclusive.")
    as_of = serializers.DateTimeField(
        read_only=True, help_text="Inputs up to this moment are included."
    )
    stale = serializers.SerializerMethodField(
        help_text="An input changed after as_of (new usage of the period, revenue, the "
        "policy); a recompute is due."
    )
    coverage = serializers.SerializerMethodField(
        help_text="Attribution coverage of the period, next to the figures it affects."
    )

    def get_period(self, snapshot: EconomicsSnapshot) -> str:
        if snapshot.kind == EconomicsSnapshot.Kind.MONTH:
            return snapshot.period_start.strftime("%Y-%m")
        return snapshot.kind

    def get_stale(self, snapshot: EconomicsSnapshot) -> bool:
        return snapshot_stale_since(snapshot=snapshot) is not None

    @extend_schema_field(CoverageSerializer(allow_null=True))
    def get_coverage(self, snapshot: EconomicsSnapshot) -> dict | None:
        coverage = snapshot.summary.get("coverage")
        return None if coverage is None else CoverageSerializer(coverage).data


# --- customers ----------------------------------------------------------------------------------


class FeatureCostSerializer(serializers.Serializer):
    feature_id = serializers.IntegerField(read_only=True, allow_null=True)
    feature = serializers.CharField(
        read_only=True, allow_null=True, help_text="Feature key; null for unattributed usage."
    )
    name = serializers.CharField(read_only=True)
    cost = decimal_string()


@extend_schema_serializer(component_name="CustomerEconomics")
class CustomerEconomicsSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="customer.external_id", read_only=True)
    name = serializers.CharField(source="customer.name", read_only=True)
    plan = serializers.CharField(
        source="plan.code", default=None, read_only=True, allow_null=True,
        help_text="Code of the plan the customer is reported under; null without one.",
    )  # fmt: skip
    top_features = serializers.SerializerMethodField(
        help_text="The three costliest features, cost descending."
    )

    class Meta:
        model = CustomerEconomics
        fields = [
            "customer_id", "name", "plan", "ai_cost", "provisional_cost", "overhead",
            "cost_to_serve", "revenue", "cost_ratio", "contribution_margin",
            "contribution_margin_pct", "band", "underwater", "profitability", "top_features",
            "requests", "tokens", "cost_change", "margin_change", "ratio_change",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(FeatureCostSerializer(many=True))
    def get_top_features(self, row: CustomerEconomics) -> list[dict]:
        return FeatureCostSerializer(row.feature_costs[:3], many=True).data


# --- lists from snapshot JSON -------------------------------------------------------------------


class FeatureRowSerializer(serializers.Serializer):
    feature_id = serializers.IntegerField(read_only=True, allow_null=True)
    feature = serializers.CharField(
        read_only=True, allow_null=True, help_text="Feature key; null for unattributed usage."
    )
    name = serializers.CharField(read_only=True)
    plan = serializers.CharField(
        read_only=True, allow_null=True, help_text="Plan code; null on the all-plans row."
    )
    cost = decimal_string()
    invocations = serializers.IntegerField(read_only=True)
    active_users = serializers.IntegerField(read_only=True)
    cost_per_invocation = decimal_string(allow_null=True)
    cost_per_active_user = decimal_string(allow_null=True)
    plan_revenue_per_active_user = decimal_string(allow_null=True)
    health_ratio = ratio_string(help_text="Cost per active user ÷ revenue per active user.")
    band = band_field(allow_null=True)


class DistributionBinSerializer(serializers.Serializer):
    lo = decimal_string()
    hi = decimal_string()
    accounts = serializers.IntegerField(read_only=True)


class PlanRowSerializer(serializers.Serializer):
    plan_id = serializers.IntegerField(read_only=True, allow_null=True)
    plan = serializers.CharField(read_only=True, allow_null=True, help_text="Plan code.")
    name = serializers.CharField(read_only=True)
    price = decimal_string(allow_null=True)
    accounts = serializers.IntegerField(read_only=True)
    ai_cost = decimal_string()
    revenue = decimal_string()
    average_ai_cost = decimal_string(allow_null=True)
    average_revenue = decimal_string(allow_null=True)
    contribution_margin = decimal_string()
    contribution_margin_pct = ratio_string()
    cost_ratio = ratio_string()
    band = band_field(allow_null=True)
    cost_stddev = decimal_string(allow_null=True)
    cost_median = decimal_string(allow_null=True)
    cost_p95 = decimal_string(allow_null=True)
    tail_threshold = decimal_string(
        allow_null=True, help_text="Per-account AI cost at which an account is in the tail."
    )
    tail_accounts = serializers.IntegerField(read_only=True, allow_null=True)
    tail_account_share = ratio_string()
    tail_cost_share = ratio_string()
    overconsuming = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Customer ids in the tail."
    )
    distribution = DistributionBinSerializer(
        many=True, read_only=True,
        help_text="Ten equal-width bins of per-account AI cost, for the chart.",
    )  # fmt: skip


class ModelMarginSerializer(serializers.Serializer):
    provider = serializers.CharField(read_only=True)
    model = serializers.CharField(read_only=True)
    customers = serializers.IntegerField(read_only=True)
    cost = decimal_string()
    revenue = decimal_string(help_text="Allocated by each customer's AI-cost share.")
    margin = decimal_string()
    margin_pct = ratio_string()
    cost_ratio = ratio_string()
    band = band_field(allow_null=True)


class SegmentRowSerializer(serializers.Serializer):
    key = serializers.CharField(read_only=True, allow_null=True, help_text="Segment value.")
    customers = serializers.IntegerField(read_only=True)
    cost = decimal_string()
    revenue = decimal_string()
    margin = decimal_string()
    margin_pct = ratio_string()
    cost_ratio = ratio_string()
    band = band_field(allow_null=True)


class SegmentDimensionSerializer(serializers.Serializer):
    dimension = serializers.CharField(
        read_only=True, help_text='Pass as ?dimension=, e.g. "region" or "metadata.industry".'
    )
    segments = serializers.IntegerField(read_only=True, help_text="Rows under the dimension.")


class CohortPointSerializer(serializers.Serializer):
    month = serializers.IntegerField(read_only=True, help_text="1 = the start month.")
    customers = serializers.IntegerField(read_only=True)
    revenue = decimal_string()
    cost = decimal_string()
    margin = decimal_string()
    margin_pct = ratio_string()


class CohortSerializer(serializers.Serializer):
    start_month = serializers.CharField(read_only=True, help_text="YYYY-MM.")
    customers = serializers.IntegerField(read_only=True)
    points = CohortPointSerializer(many=True, read_only=True)


class TrendPointSerializer(serializers.Serializer):
    start = serializers.DateField(read_only=True)
    end = serializers.DateField(read_only=True, help_text="Exclusive.")
    revenue = decimal_string()
    cost = decimal_string()
    margin = decimal_string()
    margin_pct = ratio_string()
    cost_ratio = ratio_string()


class TopAccountSerializer(serializers.Serializer):
    customer_id = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    plan = serializers.CharField(read_only=True, allow_null=True)
    ai_cost = decimal_string()
    revenue = decimal_string()
    cost_ratio = ratio_string()
    band = band_field()
    underwater = serializers.BooleanField(read_only=True)


class BandCountsSerializer(serializers.Serializer):
    healthy = serializers.IntegerField(read_only=True)
    watch = serializers.IntegerField(read_only=True)
    at_risk = serializers.IntegerField(read_only=True)
    margin_negative = serializers.IntegerField(read_only=True)


class ProfitabilityCountsSerializer(serializers.Serializer):
    profitable = serializers.IntegerField(read_only=True)
    break_even = serializers.IntegerField(read_only=True)
    unprofitable = serializers.IntegerField(read_only=True)


class SummaryFiguresSerializer(serializers.Serializer):
    """The period's totals and counts (its coverage is in the period fields)."""

    currency = serializers.CharField(read_only=True)
    granularity = serializers.ChoiceField(
        choices=["day", "week", "month"], read_only=True, help_text="Of the trend."
    )
    customers = serializers.IntegerField(read_only=True)
    band_counts = BandCountsSerializer(read_only=True)
    profitability_counts = ProfitabilityCountsSerializer(read_only=True)
    underwater = serializers.IntegerField(read_only=True)
    at_risk = serializers.IntegerField(read_only=True)
    ai_cost = decimal_string()
    provisional_cost = decimal_string()
    overhead = decimal_string()
    cost_to_serve = decimal_string()
    revenue = decimal_string()
    contribution_margin = decimal_string()
    contribution_margin_pct = ratio_string()
    cost_ratio = ratio_string()
    band = band_field()
    ledger_cost = decimal_string(help_text="All ledger cost of the period.")
    non_billable_cost = decimal_string(help_text="Internal/test accounts and non-production.")
    unattributed_cost = decimal_string(help_text="Billable usage with no known customer.")
    uninstrumented_cost = decimal_string(help_text="Provider bills no ledger event accounts for.")
    top_by_cost_ratio = TopAccountSerializer(
        many=True, read_only=True, help_text="Ten worst accounts by AI cost ratio."
    )
    previous_period_start = serializers.DateField(read_only=True, allow_null=True)


# --- response bodies (OpenAPI) ------------------------------------------------------------------
# The views assemble these bodies from the serializers above; these classes name their shapes.


@extend_schema_serializer(many=False)
class CustomerEconomicsPageSerializer(PeriodSerializer):
    """A page of customer rows with the period they belong to."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CustomerEconomicsSerializer(many=True)


@extend_schema_serializer(many=False)
class FeatureListSerializer(PeriodSerializer):
    """Feature rows of the period."""

    results = FeatureRowSerializer(many=True)


@extend_schema_serializer(many=False)
class PlanListSerializer(PeriodSerializer):
    """Plan rows of the period."""

    results = PlanRowSerializer(many=True)


@extend_schema_serializer(many=False)
class ModelMarginListSerializer(PeriodSerializer):
    """Margin by model for the period, with how revenue was allocated."""

    revenue_allocation = serializers.CharField()
    results = ModelMarginSerializer(many=True)


@extend_schema_serializer(many=False)
class SegmentListSerializer(PeriodSerializer):
    """Margin by segment of one dimension, or the dimensions available."""

    dimension = serializers.CharField(
        allow_null=True, help_text="The dimension listed; null when listing the dimensions."
    )
    revenue_allocation = serializers.CharField(help_text="How revenue is split over segments.")
    results = serializers.SerializerMethodField(
        help_text="The segments of ?dimension=; without it, the dimensions available."
    )

    @extend_schema_field(
        PolymorphicProxySerializer(
            component_name="SegmentResult",
            serializers=[SegmentRowSerializer, SegmentDimensionSerializer],
            resource_type_field_name=None,
            many=True,
        )
    )
    def get_results(self, body) -> list:
        # Segment rows or the list of dimensions, already shaped by the view.
        return body["results"]


@extend_schema_serializer(many=False)
class CohortListSerializer(PeriodSerializer):
    """Cohorts by start month with their margin month by month."""

    results = CohortSerializer(many=True)


@extend_schema_serializer(many=False)
class TrendSerializer(PeriodSerializer):
    """Revenue, cost and margin over the period at its granularity."""

    granularity = serializers.ChoiceField(choices=["day", "week", "month"])
    results = TrendPointSerializer(many=True)


@extend_schema_serializer(many=False)
class SummarySerializer(PeriodSerializer, SummaryFiguresSerializer):
    """The period's totals and counts with the period they belong to."""
