"""Forms of the findings admin: the inputs a triage or approval step needs (a reason, a
date, an owner) and the request of a remediation item. They validate shape only; the
services decide whether the step is allowed."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from accounts.models import Customer, Feature, Organization, Plan, User
from findings.models import Finding, RemediationKind

MONEY = {"max_digits": 18, "decimal_places": 2, "min_value": Decimal(0)}


def members(organization: Organization):
    """Staff of the organization: the people who may own its findings."""
    return (
        User.objects.filter(memberships__organization=organization, is_active=True)
        .distinct()
        .order_by("username")
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Kept in the activity log.",
    )


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        help_text="Optional; kept in the log.",
    )


class DateInput(forms.DateInput):
    """The browser's date picker (ISO dates, no locale guessing)."""

    input_type = "date"

    def __init__(self):
        super().__init__(attrs={"class": " ".join(INPUT_CLASSES)}, format="%Y-%m-%d")


class SnoozeForm(forms.Form):
    until = forms.DateField(
        widget=DateInput(),
        help_text="A UTC date after today: the finding reopens by itself that day.",
    )
    reason = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


class AssignForm(forms.Form):
    owner = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="(nobody)",
        widget=UnfoldAdminSelectWidget,
        help_text="A member of this organization, or nobody.",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = members(organization)


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}), max_length=5000
    )


# --- requesting a remediation item -------------------------------------------------------

PARAMETER_HINTS = {
    RemediationKind.MODEL_SWAP: {"from_model": "", "to_model": ""},
    RemediationKind.ENABLE_BATCH: {"workflow": ""},
    RemediationKind.ENABLE_CACHING: {"prompt_prefix": ""},
    RemediationKind.REVOKE_KEY: {"key_id": ""},
    RemediationKind.ROUTE_STAGING: {"environment": "staging", "to_model": ""},
    RemediationKind.QUOTA: {"plan": "", "monthly_request_limit": ""},
    RemediationKind.REPRICE_PLAN: {"plan": "", "current_price": "", "new_price": ""},
    RemediationKind.RESTRUCTURE_PLAN: {"plan": "", "change": ""},
    RemediationKind.CONTACT_CUSTOMER: {"customer": "", "topic": ""},
}


def parameters_suggested(finding: Finding | None, kind: str | None) -> dict:
    """A starting point for the item's parameters, filled from the finding where it can be."""
    hint = dict(PARAMETER_HINTS.get(kind, {}))
    if finding is None:
        return hint
    evidence = finding.evidence if isinstance(finding.evidence, dict) else {}
    if "from_model" in hint:
        hint["from_model"] = finding.model
    if "to_model" in hint:
        hint["to_model"] = str(evidence.get("alternative_model") or evidence.get("to_model") or "")
    if "key_id" in hint and finding.provider_key_id:
        hint["key_id"] = finding.provider_key.key_id
    if "environment" in hint and finding.environment:
        hint["environment"] = finding.environment
    if "plan" in hint and finding.plan_id:
        hint["plan"] = finding.plan.code
        if "current_price" in hint:
            hint["current_price"] = str(finding.plan.price)
    if "customer" in hint and finding.customer_id:
        hint["customer"] = finding.customer.external_id
    return hint


class RemediationRequestForm(forms.Form):
    """What a remediation item asks for; from a finding, its suggestions come pre-filled."""

    kind = forms.ChoiceField(choices=RemediationKind.choices, widget=UnfoldAdminSelectWidget)
    title = forms.CharField(
        max_length=300, required=False, widget=UnfoldAdminTextInputWidget,
        help_text="Empty: the kind and the finding's title.",
    )  # fmt: skip
    estimated_monthly_savings = forms.DecimalField(
        label="Estimated monthly savings (USD)", widget=UnfoldAdminDecimalFieldWidget, **MONEY
    )
    description = forms.CharField(
        required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}),
        help_text="What exactly to do; the approvers read this.",
    )  # fmt: skip
    parameters = forms.JSONField(
        required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}),
        help_text='What changes, as a JSON object, e.g. {"plan": "enterprise", '
        '"new_price": "5999.00"} or {"from_model": "gpt-4o", "to_model": "gpt-4o-mini"}.',
    )  # fmt: skip
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.none(), required=False, widget=UnfoldAdminSelectWidget
    )
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.none(), required=False, widget=UnfoldAdminSelectWidget
    )
    feature = forms.ModelChoiceField(
        queryset=Feature.objects.none(), required=False, widget=UnfoldAdminSelectWidget
    )

    SCOPE = ("plan", "customer", "feature")

    def __init__(self, *args, organization: Organization, finding: Finding | None, **kwargs):
        self.finding = finding
        if finding is not None and not kwargs.get("initial"):
            kind = finding.remediation_kind or None
            kwargs["initial"] = {
                "kind": kind,
                "estimated_monthly_savings": finding.monthly_savings,
                "description": finding.remediation,
                "parameters": parameters_suggested(finding, kind),
                "plan": finding.plan_id,
                "customer": finding.customer_id,
                "feature": finding.feature_id,
            }
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(organization=organization)
        # Customers can be many: only the finding's own is offered beside "none".
        customers = Customer.objects.filter(organization=organization)
        self.fields["customer"].queryset = (
            customers.filter(pk=finding.customer_id) if finding else customers.none()
        )
        if not (finding and finding.customer_id):
            del self.fields["customer"]
        self.fields["feature"].queryset = Feature.objects.filter(organization=organization)

    def clean_parameters(self):
        value = self.cleaned_data.get("parameters")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Parameters must be a JSON object ({…}).")
        return value

    def service_arguments(self) -> dict:
        """Keyword arguments for ``remediation_create``."""
        data = self.cleaned_data
        arguments = {
            "kind": data["kind"],
            "title": data.get("title") or None,
            "estimated_monthly_savings": data["estimated_monthly_savings"],
            "description": data.get("description") or "",
            "parameters": data.get("parameters") or {},
        }
        for name in self.SCOPE:
            if name in self.fields:
                arguments[name] = data.get(name)
        return arguments
