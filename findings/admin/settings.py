"""What the findings workflow is configured with and what it sent: the findings policy,
budgets and their transitions, webhook endpoints and the notification delivery log."""

from __future__ import annotations

import json
import secrets

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponseRedirect
from django.utils.html import format_html, format_html_join
from unfold.decorators import display
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminURLInputWidget

from findings.admin.common import (
    AUDIT_FIELDS,
    MEDIA_CSS,
    ReadOnlyInline,
    admin_url,
    transition_text,
    usd,
)
from findings.detectors import rules
from findings.detectors.base import thresholds_effective, thresholds_validate
from findings.models import (
    Budget,
    BudgetTransition,
    FindingsPolicy,
    WebhookEndpoint,
)
from findings.selectors import findings_policy_get
from findings.services.budgets import (
    SCOPE_FIELDS,
    budget_percent,
    budget_scope_label,
    budgets_evaluate,
)
from findings.services.notifications import EVENT_TYPES
from metron.tenancy.admin import OrganizationScopedAdmin

BUDGET_STATE_LABELS = {"ok": "success", "warning": "warning", "exceeded": "danger"}

# --- findings policy -----------------------------------------------------------------------


class FindingsPolicyForm(forms.ModelForm):
    class Meta:
        model = FindingsPolicy
        fields = (
            "min_monthly_savings", "notify_min_savings", "second_approval_threshold",
            "verification_days", "thresholds", "notify_emails",
        )  # fmt: skip
        labels = {
            "min_monthly_savings": "Minimum monthly savings (USD)",
            "notify_min_savings": "Notify from (USD a month)",
            "second_approval_threshold": "Second approver from (USD a month)",
        }

    def clean_thresholds(self):
        value = self.cleaned_data.get("thresholds")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise ValidationError('Thresholds must be a JSON object: {"rule": {"name": value}}.')
        registry = rules()
        problems = []
        for kind, overrides in value.items():
            if kind not in registry:
                problems.append(f"{kind}: unknown rule (known: {', '.join(registry)})")
                continue
            problems += [f"{kind}.{p}" for p in thresholds_validate(registry[kind].DEFAULTS,
                                                                    overrides)]  # fmt: skip
        if problems:
            raise ValidationError(problems)
        return value

    def clean_notify_emails(self):
        text = self.cleaned_data.get("notify_emails") or ""
        addresses = [line.strip() for line in text.replace(",", "\n").splitlines()]
        bad = []
        for address in filter(None, addresses):
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if bad:
            raise ValidationError(f"Not an email address: {', '.join(bad)}.")
        return "\n".join(filter(None, addresses))


def _value(value) -> str:
    return json.dumps(value, default=str) if isinstance(value, list | tuple | dict) else str(value)


@admin.register(FindingsPolicy)
class FindingsPolicyAdmin(OrganizationScopedAdmin):
    """One policy per organization: its list opens it (created with the defaults on the
    first visit). Finance and admins change it; everyone else reads it."""

    form = FindingsPolicyForm
    list_display = ("__str__", "min_monthly_savings", "second_approval_threshold", "updated_at")
    readonly_fields = ("effective_thresholds", *AUDIT_FIELDS)
    fieldsets = (
        ("Findings", {"fields": ("min_monthly_savings", "notify_min_savings")}),
        ("Approvals and verification", {"fields": ("second_approval_threshold",
                                                   "verification_days")}),
        ("Notifications", {"fields": ("notify_emails",)}),
        ("Detector and alert thresholds", {
            "fields": ("thresholds", "effective_thresholds"),
            "description": 'Overrides per rule, e.g. {"model_overkill": '
            '{"max_avg_output_tokens": 300}}. The table shows each rule\'s defaults and '
            "what is in force.",
        }),
        ("Audit", {"fields": AUDIT_FIELDS}),
    )  # fmt: skip

    class Media:
        css = MEDIA_CSS

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
            policy = findings_policy_get(organization=request.organization)
            return HttpResponseRedirect(admin_url(FindingsPolicy, "change", policy.pk))
        return super().changelist_view(request, extra_context)

    @admin.display(description="Thresholds in force")
    def effective_thresholds(self, obj):
        overrides = obj.thresholds if isinstance(obj.thresholds, dict) else {}
        rows = []
        for kind, rule in rules().items():
            effective = thresholds_effective(rule.DEFAULTS, overrides.get(kind))
            for name, default in rule.DEFAULTS.items():
                changed = effective[name] != default
                rows.append((kind, name, _value(default),
                             "fx-overridden" if changed else "fx-muted",
                             _value(effective[name]) if changed else "default"))  # fmt: skip
        body = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class="{}">{}</td></tr>',
            rows,
        )
        return format_html(
            '<table class="fx-table" data-thresholds><thead><tr><th>Rule</th><th>Threshold</th>'
            "<th>Default</th><th>In force</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )


# --- budgets -------------------------------------------------------------------------------


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = (
            "name", "scope", "feature", "customer", "plan", "provider_key", "monthly_limit",
            "warning_percent", "active",
        )  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        scope = cleaned.get("scope")
        wanted = SCOPE_FIELDS.get(scope)
        if wanted is not None and cleaned.get(wanted) is None and wanted not in self.errors:
            label = Budget.Scope(scope).label.lower()
            self.add_error(wanted, f"A {label} budget names its {label}.")
        # The other references are hidden on the page for this scope: whatever they hold
        # is dropped rather than stored (the database allows only the scope's own).
        for field in SCOPE_FIELDS.values():
            if field != wanted:
                cleaned[field] = None
                setattr(self.instance, field, None)
        return cleaned


class BudgetTransitionInline(ReadOnlyInline):
    model = BudgetTransition
    fields = ("created_at", "month", "change", "spend", "limit")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    verbose_name = "state change"
    verbose_name_plural = "State changes"

    @admin.display(description="State")
    def change(self, obj):
        return transition_text(obj.from_state, obj.to_state)


@admin.register(Budget)
class BudgetAdmin(OrganizationScopedAdmin):
    """Monthly AI-cost limits; the evaluation job moves their state and records each move."""

    form = BudgetForm
    list_display = ("name", "scope_label", "limit", "warning_percent", "state_label", "spend",
                    "used", "active")  # fmt: skip
    list_filter = ("scope", "state", "active")
    list_select_related = ("feature", "customer", "plan", "provider_key")
    search_fields = ("name",)
    ordering = ("name",)
    autocomplete_fields = ("customer",)
    inlines = (BudgetTransitionInline,)
    # Only the reference the chosen scope calls for is shown.
    conditional_fields = {
        field: f"scope == '{scope}'" for scope, field in SCOPE_FIELDS.items()
    }  # fmt: skip
    readonly_fields = ("state", "month", "month_spend", "evaluated_at", *AUDIT_FIELDS)
    fieldsets = (
        (None, {"fields": ("name", "active")}),
        ("Scope", {"fields": ("scope", "feature", "customer", "plan", "provider_key"),
                   "description": "Name exactly the one reference the scope calls for; "
                   "an organization budget names none."}),
        ("Limit", {"fields": ("monthly_limit", "warning_percent")}),
        ("This month", {"fields": ("state", "month", "month_spend", "evaluated_at")}),
        ("Audit", {"fields": AUDIT_FIELDS}),
    )  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing evaluated yet
            return [(name, options) for name, options in self.fieldsets
                    if name not in ("This month", "Audit")]  # fmt: skip
        return self.fieldsets

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if change:
            # Only what the form edits: the evaluation job writes state and spend.
            obj.save(update_fields=[*BudgetForm.Meta.fields, "updated_at"])
        else:
            super().save_model(request, obj, form, change)
        # The new limit takes effect now rather than at the next hourly evaluation.
        budgets_evaluate(organization=request.organization)
        obj.refresh_from_db(fields=["state", "month_spend"])
        self.message_user(
            request, f"{obj}: {obj.get_state_display().lower()} at {usd(obj.month_spend)} spent "
            "this month.", messages.INFO,
        )  # fmt: skip

    @admin.display(description="Scope")
    def scope_label(self, obj):
        return budget_scope_label(obj)

    @admin.display(description="Limit", ordering="monthly_limit")
    def limit(self, obj):
        return usd(obj.monthly_limit)

    @admin.display(description="Spent this month", ordering="month_spend")
    def spend(self, obj):
        return usd(obj.month_spend)

    @admin.display(description="Used")
    def used(self, obj):
        percent = budget_percent(obj.month_spend, obj.monthly_limit)
        return "—" if percent is None else f"{percent} %"

    @display(description="State", ordering="state", label=BUDGET_STATE_LABELS)
    def state_label(self, obj):
        return obj.state, obj.get_state_display()


# --- webhooks and deliveries ---------------------------------------------------------------


def webhook_secret_new() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def secret_masked(secret: str) -> str:
    return f"whsec_…{secret[-4:]}" if secret else "—"


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL", max_length=500, assume_scheme="https", widget=UnfoldAdminURLInputWidget,
        help_text="Receives a signed POST per event (Metron-Signature header).",
    )  # fmt: skip
    event_types = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENT_TYPES], required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="None ticked: every event.",
    )  # fmt: skip

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "active")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrganizationScopedAdmin):
    """Signed outgoing webhooks. The secret is generated here and shown once (on creation
    and on rotation); afterwards only its last four characters."""

    form = WebhookEndpointForm
    list_display = ("url", "description", "events", "active", "secret_shown")
    list_filter = ("active",)
    search_fields = ("url", "description")
    ordering = ("url",)
    actions = ("rotate_secret",)
    readonly_fields = ("secret_shown", *AUDIT_FIELDS)

    def get_fields(self, request, obj=None):
        fields = ("url", "description", "event_types", "active")
        return fields if obj is None else (*fields, "secret_shown", *AUDIT_FIELDS)

    @admin.display(description="Secret")
    def secret_shown(self, obj):
        return secret_masked(obj.secret)

    @admin.display(description="Events")
    def events(self, obj):
        return ", ".join(obj.event_types) or "all"

    def save_model(self, request, obj, form, change):
        created = not change
        if created:
            obj.secret = webhook_secret_new()
        super().save_model(request, obj, form, change)
        if created:
            self._show_secret(request, obj)

    def _show_secret(self, request, endpoint):
        self.message_user(
            request,
            format_html(
                "The signing secret of <b>{}</b> is <code data-secret>{}</code> — copy it now: "
                "it will not be shown again.",
                endpoint, endpoint.secret,
            ),
            messages.WARNING,
        )  # fmt: skip

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint.secret = webhook_secret_new()
            endpoint.save(update_fields=["secret", "updated_at"])
            self._show_secret(request, endpoint)
