"""Serializers of the findings API: findings, remediation items, budgets, the weekly review.

Output serializers render rows; input serializers only validate the shape of a request
and the views hand ``validated_data`` to the services, which enforce the workflow's
rules. People are named by username; related rows by their natural key (customer id,
feature key, plan code, provider key id), looked up in the caller's organization only.
Money is USD as decimal strings rounded half-up to cents (cost per request: 6 places).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import MultipleObjectsReturned
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.models import Customer, Environment, Feature, Plan, ProviderKey, User
from findings.models import (
    WASTE_KINDS,
    Budget,
    Finding,
    FindingActivity,
    FindingComment,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationTransition,
)
from findings.services.budgets import budget_percent, budget_scope_label
from metron.api.fields import OrganizationSlugRelatedField

CATEGORIES = ["waste", "alert"]
PROVIDER_KEY_AMBIGUOUS = (
    "Key id “{value}” exists for several providers in this organization; send `provider` too."
)


def money(**kwargs) -> serializers.DecimalField:
    """USD as a decimal string rounded half-up to cents."""
    return serializers.DecimalField(
        max_digits=None, decimal_places=2, rounding=ROUND_HALF_UP, read_only=True, **kwargs
    )


def per_request(**kwargs) -> serializers.DecimalField:
    """USD per request: a fraction of a cent, six places."""
    return serializers.DecimalField(
        max_digits=None, decimal_places=6, rounding=ROUND_HALF_UP, read_only=True, **kwargs
    )


def fraction(**kwargs) -> serializers.DecimalField:
    """A fraction of 1 ("0.25" = 25 %), four places."""
    return serializers.DecimalField(
        max_digits=None, decimal_places=4, rounding=ROUND_HALF_UP, read_only=True, **kwargs
    )


def username(source: str, **kwargs) -> serializers.CharField:
    """A person by username; null when there is none."""
    return serializers.CharField(
        source=f"{source}.username", read_only=True, default=None, **kwargs
    )


class ScopeOutputSerializer(serializers.Serializer):
    """The scope references a finding, item or budget names (null or "" when not set)."""

    customer_id = serializers.CharField(
        source="customer.external_id", read_only=True, default=None, help_text="Customer id."
    )
    feature = serializers.CharField(
        source="feature.key", read_only=True, default=None, help_text="Feature key."
    )
    plan = serializers.CharField(
        source="plan.code", read_only=True, default=None, help_text="Plan code."
    )
    api_key_id = serializers.CharField(
        source="provider_key.key_id", read_only=True, default=None,
        help_text="The provider's key id (never the secret).",
    )  # fmt: skip


# --- findings ---------------------------------------------------------------------------


@extend_schema_serializer(component_name="Finding")
class FindingOutputSerializer(ScopeOutputSerializer, serializers.ModelSerializer):
    category = serializers.SerializerMethodField(
        help_text="`waste` (one of the six detectors: `monthly_savings` is the saving) or "
        "`alert` (`monthly_savings` is the monthly cost at stake)."
    )
    owner = username("owner", help_text="Username of the owner; null when unassigned.")
    monthly_savings = money(help_text="USD a month.")

    class Meta:
        model = Finding
        fields = [
            "id", "kind", "category", "title", "monthly_savings", "confidence",
            "confidence_reason", "evidence", "remediation", "remediation_kind", "status",
            "owner", "dismiss_reason", "snoozed_until", "auto_resolved", "customer_id",
            "feature", "plan", "api_key_id", "provider", "model", "environment",
            "prompt_version", "window_start", "window_end", "first_seen_at", "last_seen_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=CATEGORIES))
    def get_category(self, finding: Finding) -> str:
        return "waste" if finding.kind in WASTE_KINDS else "alert"


class FindingActivitySerializer(serializers.ModelSerializer):
    actor = username("actor", help_text="Null: a detector run or the scheduler.")
    at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = FindingActivity
        fields = ["at", "actor", "action", "from_status", "to_status", "reason", "details"]
        read_only_fields = fields


class FindingRemediationSerializer(serializers.ModelSerializer):
    class Meta:
        model = RemediationItem
        fields = ["id", "kind", "title", "state"]
        read_only_fields = fields


@extend_schema_serializer(component_name="FindingDetail")
class FindingDetailSerializer(FindingOutputSerializer):
    activity = FindingActivitySerializer(
        many=True, read_only=True, help_text="Every change, oldest first (append-only)."
    )
    remediations = FindingRemediationSerializer(
        many=True, read_only=True, help_text="Remediation items requested from this finding."
    )

    class Meta(FindingOutputSerializer.Meta):
        fields = [*FindingOutputSerializer.Meta.fields, "activity", "remediations"]
        read_only_fields = fields


class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why; kept in the log."
    )


class DismissInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Why the finding is not worth acting on (required).",
    )  # fmt: skip


class SnoozeInputSerializer(ReasonInputSerializer):
    until = serializers.DateField(
        help_text="A UTC date after today; the finding reopens by itself on that day."
    )


class AssignInputSerializer(ReasonInputSerializer):
    owner = OrganizationSlugRelatedField(
        model=User, slug_field="username", allow_null=True,
        help_text="Username of a member of the organization; null to unassign.",
    )  # fmt: skip


@extend_schema_serializer(component_name="FindingComment")
class CommentOutputSerializer(serializers.ModelSerializer):
    author = username("author")

    class Meta:
        model = FindingComment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = fields


@extend_schema_serializer(component_name="FindingComment")
class CommentInputSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, trim_whitespace=True)


# --- remediation items ------------------------------------------------------------------


class ApprovalOutputSerializer(serializers.ModelSerializer):
    approver = username("approver")
    at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = RemediationApproval
        fields = ["approver", "decision", "reason", "at"]
        read_only_fields = fields


class TransitionOutputSerializer(serializers.ModelSerializer):
    actor = username("actor", help_text="Null: the scheduler.")
    at = serializers.DateTimeField(source="created_at", read_only=True)
    from_state = serializers.CharField(read_only=True, help_text='"" for the creation of the item.')
    amounts = serializers.DictField(
        child=serializers.CharField(allow_null=True), read_only=True,
        help_text="USD figures at the time, as decimal strings (null: not measured yet).",
    )  # fmt: skip

    class Meta:
        model = RemediationTransition
        fields = ["at", "actor", "from_state", "to_state", "reason", "amounts"]
        read_only_fields = fields


class VerificationOutputSerializer(serializers.ModelSerializer):
    """How realized savings were measured: the scope's daily cost before and after."""

    baseline_daily_cost = money(allow_null=True, help_text="USD a day before.")
    verified_daily_cost = money(allow_null=True, help_text="USD a day after.")

    class Meta:
        model = RemediationItem
        fields = [
            "baseline_start", "baseline_end", "baseline_daily_cost", "verification_start",
            "verification_end", "verified_daily_cost",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="Remediation")
class RemediationOutputSerializer(ScopeOutputSerializer, serializers.ModelSerializer):
    requested_by = username("requested_by")
    estimated_monthly_savings = money(help_text="USD a month, estimated when requested.")
    realized_monthly_savings = money(
        allow_null=True, help_text="USD a month measured after implementation (null before)."
    )
    verification = VerificationOutputSerializer(source="*", read_only=True)
    approvals = ApprovalOutputSerializer(many=True, read_only=True)
    transitions = TransitionOutputSerializer(
        many=True, read_only=True, help_text="Every change of state, oldest first (append-only)."
    )

    class Meta:
        model = RemediationItem
        fields = [
            "id", "finding", "kind", "title", "description", "parameters", "state",
            "needs_finance", "approvals_required", "requested_by", "estimated_monthly_savings",
            "realized_monthly_savings", "customer_id", "feature", "plan", "api_key_id",
            "provider", "model", "environment", "submitted_at", "decided_at", "implemented_at",
            "verified_at", "verification", "approvals", "transitions", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="RemediationDetail")
class RemediationDetailSerializer(RemediationOutputSerializer):
    allowed_actions = serializers.SerializerMethodField(
        help_text="What the caller may do now (submit, approve, …); the server still decides."
    )

    class Meta(RemediationOutputSerializer.Meta):
        fields = [*RemediationOutputSerializer.Meta.fields, "allowed_actions"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_actions(self, item: RemediationItem) -> list[str]:
        return sorted(self.context.get("allowed_actions", {}).get(item.pk, ()))


class ProviderKeyField(OrganizationSlugRelatedField):
    """A provider key by its key id; the item's ``provider`` tells apart equal key ids."""

    default_error_messages = {"ambiguous": PROVIDER_KEY_AMBIGUOUS}

    def __init__(self, **kwargs):
        super().__init__(model=ProviderKey, slug_field="key_id", **kwargs)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except MultipleObjectsReturned:
            provider = (getattr(self.parent, "initial_data", None) or {}).get("provider")
            match = self.get_queryset().filter(key_id=data, provider=provider or "").first()
            if match is None:
                self.fail("ambiguous", value=data)
            return match


@extend_schema_serializer(component_name="Remediation")
class RemediationInputSerializer(serializers.Serializer):
    """A remediation item's content. From a finding, what is not sent is copied from it."""

    finding = OrganizationSlugRelatedField(
        model=Finding, slug_field="id", required=False, allow_null=True,
        help_text="Id of the finding it remedies: its kind, dollars and scope are copied. "
        "Set on create only.",
    )  # fmt: skip
    kind = serializers.ChoiceField(choices=RemediationKind.choices, required=False)
    title = serializers.CharField(max_length=300, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    parameters = serializers.DictField(
        required=False, help_text='What exactly changes, e.g. {"to_model": "gpt-4o-mini"}.'
    )
    estimated_monthly_savings = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=Decimal(0), required=False,
        help_text="USD a month.",
    )  # fmt: skip
    customer_id = OrganizationSlugRelatedField(
        model=Customer, slug_field="external_id", source="customer", required=False,
        allow_null=True,
    )  # fmt: skip
    feature = OrganizationSlugRelatedField(
        model=Feature, slug_field="key", required=False, allow_null=True
    )
    plan = OrganizationSlugRelatedField(
        model=Plan, slug_field="code", required=False, allow_null=True
    )
    api_key_id = ProviderKeyField(source="provider_key", required=False, allow_null=True)
    provider = serializers.CharField(max_length=50, required=False, allow_blank=True)
    model = serializers.CharField(max_length=255, required=False, allow_blank=True)
    environment = serializers.ChoiceField(
        choices=Environment.choices, required=False, allow_blank=True
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why; kept in the log."
    )


# --- budgets ----------------------------------------------------------------------------


@extend_schema_serializer(component_name="Budget")
class BudgetOutputSerializer(ScopeOutputSerializer, serializers.ModelSerializer):
    scope_label = serializers.SerializerMethodField()
    monthly_limit = money(help_text="USD.")
    month_spend = money(help_text="USD spent in `month` at the last evaluation.")
    percent_used = serializers.SerializerMethodField(
        help_text="Month spend as a percentage of the limit, one place."
    )

    class Meta:
        model = Budget
        fields = [
            "id", "name", "scope", "scope_label", "customer_id", "feature", "plan",
            "api_key_id", "monthly_limit", "warning_percent", "active", "state", "month",
            "month_spend", "percent_used", "evaluated_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_scope_label(self, budget: Budget) -> str:
        return budget_scope_label(budget)

    @extend_schema_field(serializers.DecimalField(max_digits=None, decimal_places=1))
    def get_percent_used(self, budget: Budget) -> str | None:
        percent = budget_percent(budget.month_spend, budget.monthly_limit)
        return None if percent is None else str(percent)


# --- weekly review ----------------------------------------------------------------------


class WeeklyReviewQuerySerializer(serializers.Serializer):
    week_start = serializers.DateField(
        required=False,
        help_text="First day of the week (UTC); the week is 7 days from it. Default: the "
        "Monday of the last complete week.",
    )


class PromptVersionCostSerializer(serializers.Serializer):
    prompt_version = serializers.CharField()
    requests = serializers.IntegerField()
    cost = money()
    cost_per_request = per_request(allow_null=True)


class FeaturePathSerializer(serializers.Serializer):
    feature_id = serializers.IntegerField(allow_null=True)
    feature_key = serializers.CharField(allow_null=True)
    feature_name = serializers.CharField()
    plan_code = serializers.CharField()
    cost = money()
    revenue = money(help_text="Active users × the plan's revenue per active user.")
    margin = money()
    margin_pct = fraction(allow_null=True)
    invocations = serializers.IntegerField()
    active_users = serializers.IntegerField()
    cost_per_active_user = money(allow_null=True)
    revenue_per_active_user = money(allow_null=True)
    band = serializers.CharField(allow_null=True)
    prompt_versions = PromptVersionCostSerializer(many=True)


class PromptVersionChangeSerializer(serializers.Serializer):
    feature_id = serializers.IntegerField(allow_null=True)
    feature_key = serializers.CharField(allow_null=True)
    feature_name = serializers.CharField()
    prompt_version = serializers.CharField()
    first_seen = serializers.DateField()
    previous_versions = serializers.ListField(child=serializers.CharField())
    requests_before = serializers.IntegerField()
    cost_before = money()
    cost_per_request_before = per_request(allow_null=True)
    requests_after = serializers.IntegerField()
    cost_after = money()
    cost_per_request_after = per_request(allow_null=True)
    cost_per_request_change = per_request(allow_null=True)
    cost_per_request_change_pct = fraction(allow_null=True)
    feature_requests_in_week = serializers.IntegerField()
    monthly_margin_impact = money(
        allow_null=True, help_text="USD a month; negative when the version costs more."
    )


class BudgetChangeSerializer(serializers.Serializer):
    transition_id = serializers.IntegerField()
    budget_id = serializers.IntegerField()
    budget_name = serializers.CharField()
    scope = serializers.CharField()
    scope_label = serializers.CharField()
    at = serializers.DateTimeField()
    month = serializers.DateField()
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    spend = money()
    limit = money()


class TenantActionSerializer(serializers.Serializer):
    remediation_id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    estimated_monthly_savings = money()
    customer_id = serializers.CharField(source="customer_external_id", allow_null=True)
    customer_name = serializers.CharField(allow_null=True)
    plan_code = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_change_at = serializers.DateTimeField()


class OutlierTenantSerializer(serializers.Serializer):
    customer_id = serializers.CharField(source="customer_external_id")
    customer_name = serializers.CharField()
    plan_code = serializers.CharField(allow_null=True)
    ai_cost = money()
    revenue = money()
    contribution_margin = money()
    cost_ratio = fraction(allow_null=True)
    band = serializers.CharField()
    underwater = serializers.BooleanField()
    in_tail = serializers.BooleanField()
    tail_threshold = money(allow_null=True)


@extend_schema_serializer(component_name="WeeklyReview", many=False)
class WeeklyReviewSerializer(serializers.Serializer):
    """The week ``[week_start, week_end)``; margins come from the snapshot named here."""

    organization = serializers.CharField(source="organization_name")
    week_start = serializers.DateField()
    week_end = serializers.DateField(help_text="Exclusive.")
    generated_at = serializers.DateTimeField()
    snapshot_kind = serializers.CharField(allow_null=True)
    snapshot_period_start = serializers.DateField(allow_null=True)
    snapshot_period_end = serializers.DateField(allow_null=True, help_text="Exclusive.")
    snapshot_as_of = serializers.DateTimeField(allow_null=True)
    snapshot_stale = serializers.BooleanField()
    negative_margin_paths = FeaturePathSerializer(many=True)
    prompt_version_changes = PromptVersionChangeSerializer(many=True)
    budget_changes = BudgetChangeSerializer(many=True)
    tenant_actions = TenantActionSerializer(many=True)
    outliers_without_action = OutlierTenantSerializer(many=True)
    outlier_count = serializers.IntegerField(
        help_text="Outliers without an action in all (the list shows the costliest)."
    )
