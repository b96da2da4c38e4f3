"""Remediation items: the actions a finding spawns, approved maker-checker and then verified.

Rules the database itself enforces (migration ``0002``): the transition log and
approvals are append-only; an approved item's content never changes; only the
legal state transitions happen; nobody approves an item they requested.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from metron.money import money_field
from metron.tenancy.models import OrganizationOwnedModel


class RemediationKind(models.TextChoices):
    MODEL_SWAP = "model_swap", "Model swap"
    ENABLE_BATCH = "enable_batch", "Enable batch"
    ENABLE_CACHING = "enable_caching", "Enable caching"
    REVOKE_KEY = "revoke_key", "Revoke key"
    ROUTE_STAGING = "route_staging", "Route staging to a cheaper model"
    QUOTA = "quota", "Quota"
    REPRICE_PLAN = "reprice_plan", "Reprice plan"
    RESTRUCTURE_PLAN = "restructure_plan", "Restructure plan"
    CONTACT_CUSTOMER = "contact_customer", "Contact customer"


# Actions that change what customers pay or get for their money: finance approves them.
PRICING_KINDS = frozenset(
    {RemediationKind.REPRICE_PLAN, RemediationKind.RESTRUCTURE_PLAN, RemediationKind.QUOTA}
)


class RemediationState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    IMPLEMENTED = "implemented", "Implemented"
    VERIFIED = "verified", "Verified"
    CANCELLED = "cancelled", "Cancelled"


class RemediationItem(OrganizationOwnedModel):
    """An action to remove waste or fix a pricing problem, with its estimated dollars."""

    finding = models.ForeignKey(
        "findings.Finding", on_delete=models.PROTECT, null=True, blank=True,
        related_name="remediations",
    )  # fmt: skip
    kind = models.CharField(max_length=30, choices=RemediationKind.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    parameters = models.JSONField(
        default=dict, blank=True,
        help_text="What exactly changes, e.g. {\"from_model\": …, \"to_model\": …} or "
        "{\"plan\": …, \"new_price\": \"…\"}.",
    )  # fmt: skip
    estimated_monthly_savings = money_field(
        default=Decimal("0.00"), validators=[MinValueValidator(0)],
        help_text="USD a month the action is expected to save or earn.",
    )  # fmt: skip
    state = models.CharField(
        max_length=20, choices=RemediationState.choices, default=RemediationState.DRAFT
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requested_remediations"
    )
    needs_finance = models.BooleanField(
        default=False, help_text="A pricing action: only finance (or an admin) approves it."
    )
    approvals_required = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(2)]
    )

    # Scope, copied from the finding (any may be empty).
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    feature = models.ForeignKey(
        "accounts.Feature", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    provider_key = models.ForeignKey(
        "accounts.ProviderKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    provider = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=255, blank=True)
    environment = models.CharField(max_length=20, blank=True)

    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    implemented_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    # Verified savings: daily cost of the scope before and after implementation.
    baseline_start = models.DateField(null=True, blank=True)
    baseline_end = models.DateField(null=True, blank=True)
    baseline_daily_cost = money_field(null=True, blank=True, help_text="USD a day, before.")
    verification_start = models.DateField(null=True, blank=True)
    verification_end = models.DateField(null=True, blank=True)
    verified_daily_cost = money_field(null=True, blank=True, help_text="USD a day, after.")
    realized_monthly_savings = money_field(
        null=True, blank=True, help_text="USD a month, measured after implementation."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "state"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1) & Q(approvals_required__lte=2),
                name="remediation_approvals_required_1_or_2",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class RemediationApproval(OrganizationOwnedModel):
    """One approver's decision on a remediation item (append-only)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    item = models.ForeignKey(RemediationItem, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "approver"], name="remediation_approval_one_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.approver}"


class RemediationTransition(OrganizationOwnedModel):
    """Append-only log of an item's states: who, when, from → to, why, the amounts."""

    item = models.ForeignKey(RemediationItem, on_delete=models.PROTECT, related_name="transitions")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    reason = models.TextField(blank=True)
    amounts = models.JSONField(
        default=dict, blank=True,
        help_text="USD figures at the time: estimated, realized (decimal strings).",
    )  # fmt: skip

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state}"
