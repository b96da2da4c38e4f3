"""Economics in the admin: the policy finance edits (with its change history) and the
snapshots, read-only. The dashboards are views in ``economics.dashboards``, linked from here."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.decorators import display

from economics.dashboards.pages import dashboard_url
from economics.dashboards.tables import BAND_LABELS, PROFITABILITY_LABELS
from economics.formatting import decimal_text, money, percent
from economics.models import (
    CustomerEconomics,
    EconomicsPolicy,
    EconomicsPolicyChange,
    EconomicsSnapshot,
)
from economics.services import economics_policy_update, economics_policy_validate
from economics.services.policy import POLICY_FIELDS
from metron.tenancy.admin import (
    AppendOnlyAdminMixin,
    OrganizationScopedAdmin,
    OrganizationScopedTabularInline,
)

# --- policy -------------------------------------------------------------------------------

PERCENT_FIELDS = (
    "watch_threshold", "at_risk_threshold", "margin_negative_threshold",
    "underwater_threshold", "break_even_band", "tail_ratio",
)  # fmt: skip
POLICY_LABELS = {
    "watch_threshold": "Watch from (%)",
    "at_risk_threshold": "At risk from (%)",
    "margin_negative_threshold": "Margin-negative from (%)",
    "underwater_threshold": "Underwater from (%)",
    "break_even_band": "Break-even band (± %)",
    "tail_ratio": "Plan tail from (% of plan price)",
    "overhead_rule": "Spread overhead by",
    "monthly_overhead": "Monthly overhead (USD)",
    "use_reconciled_cost": "Use invoiced provider cost",
}
POLICY_HELP = {
    "watch_threshold": "AI cost as a % of recognized revenue at which an account leaves "
    "healthy. Default 30.",
    "at_risk_threshold": "Must be above the watch threshold. Default 40.",
    "margin_negative_threshold": "Must be above the at-risk threshold. Default 100: AI cost "
    "equal to revenue. Any cost with no revenue is margin-negative.",
    "underwater_threshold": "AI cost as a % of revenue at or above which an account counts as "
    "underwater. Default 40.",
    "break_even_band": "A contribution margin within ± this % of revenue is break-even; above "
    "it profitable, below it unprofitable. Default 5.",
    "tail_ratio": "An account is in its plan's tail when its AI cost for the period is at "
    "least this % of the plan price. Empty: the underwater threshold.",
}  # fmt: skip


class PercentField(forms.DecimalField):
    """A fraction of 1 entered and shown as a percentage (30 ↔ 0.30), converted exactly."""

    def __init__(self, **kwargs):
        # The model field's own digits describe the fraction; the same bounds hold here.
        kwargs.update(max_digits=12, decimal_places=6, min_value=Decimal(0))
        super().__init__(**kwargs)

    def to_python(self, value):
        number = super().to_python(value)
        if number is None:
            return None
        if number.as_tuple().exponent < -4:
            raise ValidationError("Use at most four decimal places.", code="max_decimal_places")
        return number.scaleb(-2)

    def prepare_value(self, value):
        # Bound forms hand back what was typed (a string); stored values are fractions.
        return decimal_text(value.scaleb(2), min_places=0) if isinstance(value, Decimal) else value

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "step": "any"}


class EconomicsPolicyForm(forms.ModelForm):
    """The policy in percentages; the calculator's own checks run before anything saves."""

    class Meta:
        model = EconomicsPolicy
        fields = POLICY_FIELDS
        labels = POLICY_LABELS
        help_texts = POLICY_HELP
        field_classes = dict.fromkeys(PERCENT_FIELDS, PercentField)

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                values = {name: cleaned.get(name) for name in POLICY_FIELDS}
                economics_policy_validate(values=values)
            except ValidationError as error:
                self.add_error(None, _in_percent(error, values))
        return cleaned


def _in_percent(error: ValidationError, values: dict) -> ValidationError:
    """The calculator's band-order error in the form's own terms (percentages)."""
    below = {
        "at_risk_threshold": "watch_threshold",
        "margin_negative_threshold": "at_risk_threshold",
    }
    messages = {}
    for field, errors in error.message_dict.items():
        if field in below and errors[0].startswith("band thresholds"):
            previous = values[below[field]].scaleb(2)
            label = POLICY_LABELS[below[field]].removesuffix(" (%)").lower()
            errors = [
                f"Must be above “{label}” ({decimal_text(previous, min_places=0)} %): "
                "the bands ascend from healthy to margin-negative."
            ]
        messages[field] = errors
    return ValidationError(messages)


def policy_value_display(field: str, value: str) -> str:
    """A value of the change history (stored as exact text) as people read it."""
    if value == "":
        return "(empty)"
    if field in PERCENT_FIELDS:
        return f"{decimal_text(Decimal(value).scaleb(2), min_places=0)} %"
    if field == "monthly_overhead":
        return money(value)
    if field == "use_reconciled_cost":
        return "Yes" if value == "True" else "No"
    return value


class EconomicsPolicyChangeInline(OrganizationScopedTabularInline):
    """The policy's change history: who changed what, from which value to which. Read-only."""

    model = EconomicsPolicyChange
    fields = ("changed_at", "changed_by", "what_changed")
    readonly_fields = fields
    ordering = ("-changed_at", "-id")
    verbose_name = "change"
    verbose_name_plural = "Change history"
    hide_title = True  # the row's own name repeats what the "What changed" column says
    can_delete = False
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="What changed")
    def what_changed(self, obj):
        return format_html_join(
            "",
            "<div>{}: {} → {}</div>",
            (
                (
                    POLICY_LABELS.get(field, field),
                    policy_value_display(field, old),
                    policy_value_display(field, new),
                )
                for field, (old, new) in obj.changes.items()
            ),
        )


def _percent_display(field: str):
    """A read-only admin column showing a policy ratio as a percentage (for view-only staff)."""

    @admin.display(description=POLICY_LABELS[field])
    def show(self, obj):
        value = getattr(obj, field)
        if value is None:
            return "(empty: the underwater threshold)"
        return f"{decimal_text(value.scaleb(2), min_places=0)} %"

    return show


@admin.register(EconomicsPolicy)
class EconomicsPolicyAdmin(OrganizationScopedAdmin):
    """One policy per organization: its list opens it straight away (created with the
    defaults on the first visit); every save goes through ``economics_policy_update``."""

    form = EconomicsPolicyForm
    inlines = (EconomicsPolicyChangeInline,)
    list_display = ("__str__", "updated_by", "updated_at")
    readonly_fields = (
        "updated_by", "updated_at", "monthly_overhead_display",
        *(f"{field}_display" for field in PERCENT_FIELDS),
    )  # fmt: skip
    stale_note = (
        "Saving a change marks this organization's economics snapshots stale until they are "
        "recomputed with the new policy."
    )

    def get_fieldsets(self, request, obj=None):
        editable = self.has_change_permission(request, obj)

        def names(*fields):
            if editable:
                return fields
            return tuple(
                f"{field}_display" if field in (*PERCENT_FIELDS, "monthly_overhead") else field
                for field in fields
            )

        return (
            (
                "Health bands by AI cost ratio",
                {
                    "fields": names(
                        "watch_threshold", "at_risk_threshold", "margin_negative_threshold"
                    ),
                    "description": "AI cost as a % of recognized revenue: healthy below watch, "
                    "then watch, at risk and margin-negative. " + self.stale_note,
                },
            ),
            (
                "Underwater and profitability",
                {"fields": names("underwater_threshold", "break_even_band")},
            ),
            ("Plan tail", {"fields": names("tail_ratio")}),
            (
                "Cost-to-serve",
                {"fields": names("overhead_rule", "monthly_overhead", "use_reconciled_cost")},
            ),
            ("Last change", {"fields": ("updated_by", "updated_at")}),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("updated_by")

    watch_threshold_display = _percent_display("watch_threshold")
    at_risk_threshold_display = _percent_display("at_risk_threshold")
    margin_negative_threshold_display = _percent_display("margin_negative_threshold")
    underwater_threshold_display = _percent_display("underwater_threshold")
    break_even_band_display = _percent_display("break_even_band")
    tail_ratio_display = _percent_display("tail_ratio")

    @admin.display(description=POLICY_LABELS["monthly_overhead"])
    def monthly_overhead_display(self, obj):
        return money(obj.monthly_overhead)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if (
            request.method == "GET"
            and request.organization is not None
            and self.has_view_or_change_permission(request)
        ):
            policy = economics_policy_update(organization=request.organization, user=request.user)
            return HttpResponseRedirect(
                reverse("admin:economics_economicspolicy_change", args=[policy.pk])
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        economics_policy_update(
            organization=request.organization,
            user=request.user,
            **{name: form.cleaned_data[name] for name in POLICY_FIELDS},
        )


# --- snapshots ----------------------------------------------------------------------------


@admin.register(EconomicsSnapshot)
class EconomicsSnapshotAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Computed figures per period, written by the recompute only; open one in the dashboards."""

    list_display = ("__str__", "kind", "period_start", "period_end", "as_of", "freshness",
                    "customer_count", "dashboard")  # fmt: skip
    list_filter = ("kind",)
    ordering = ("-period_start", "kind")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "dashboard",
                    "kind",
                    "period_start",
                    "period_end",
                    "as_of",
                    "stale_since",
                    "duration_ms",
                )
            },
        ),  # fmt: skip
        ("Figures", {"fields": ("summary", "policy")}),
    )
    readonly_fields = ("dashboard",)

    def get_readonly_fields(self, request, obj=None):
        return ("dashboard", *(field.name for field in self.model._meta.fields))

    @display(description="Freshness", label={"Stale": "danger", "Current": "success"})
    def freshness(self, obj):
        return "Stale" if obj.is_stale else "Current"

    @admin.display(description="Customers")
    def customer_count(self, obj):
        return (obj.summary or {}).get("customers", "—")

    @admin.display(description="Dashboard")
    def dashboard(self, obj):
        return format_html(
            '<a class="text-primary-600" href="{}">Open the overview →</a>',
            dashboard_url("overview", obj),
        )


@admin.register(CustomerEconomics)
class CustomerEconomicsAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Every customer's figures per snapshot, as stored; the dashboards are the working view."""

    list_display = (
        "customer", "snapshot", "plan", "ai_cost_usd", "revenue_usd", "ratio", "band_label",
        "underwater", "profitability_label", "details",
    )  # fmt: skip
    list_filter = ("snapshot", "band", "underwater", "profitability", "plan")
    list_select_related = ("customer", "plan", "snapshot")
    search_fields = ("=customer__external_id", "customer__name")
    search_help_text = "A customer's name or exact customer id."
    ordering = ("-snapshot__period_start", "snapshot__kind", "-cost_ratio")
    fields = (
        "details", "snapshot", "customer", "plan", "ai_cost", "provisional_cost", "overhead",
        "cost_to_serve", "revenue", "cost_ratio", "contribution_margin",
        "contribution_margin_pct", "band", "underwater", "profitability", "requests", "tokens",
        "feature_costs", "cost_change", "margin_change", "ratio_change",
    )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description="AI cost", ordering="ai_cost")
    def ai_cost_usd(self, obj):
        return money(obj.ai_cost)

    @admin.display(description="Revenue", ordering="revenue")
    def revenue_usd(self, obj):
        return money(obj.revenue)

    @admin.display(description="AI cost ratio", ordering="cost_ratio")
    def ratio(self, obj):
        return percent(obj.cost_ratio)

    @display(
        description="Band", ordering="band",
        label={value: variant for value, (_, variant) in BAND_LABELS.items()},
    )  # fmt: skip
    def band_label(self, obj):
        return obj.band, BAND_LABELS.get(obj.band, (obj.band, None))[0]

    @display(
        description="Profitability", ordering="profitability",
        label={value: variant for value, (_, variant) in PROFITABILITY_LABELS.items()},
    )  # fmt: skip
    def profitability_label(self, obj):
        return obj.profitability, PROFITABILITY_LABELS.get(obj.profitability, ("", None))[0]

    @admin.display(description="Dashboard")
    def details(self, obj):
        url = dashboard_url("customer", obj.snapshot, obj.customer_id)
        return format_html('<a class="text-primary-600" href="{}">Open in the dashboard →</a>', url)
