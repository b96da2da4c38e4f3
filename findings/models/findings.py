"""Findings: what a detector or alert rule found, with its dollars, confidence and evidence."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from metron.money import money_field
from metron.tenancy.models import OrganizationOwnedModel


class FindingKind(models.TextChoices):
    # The six waste detectors (DESIGN §8).
    MODEL_OVERKILL = "model_overkill", "Model overkill"
    BATCH_ELIGIBILITY = "batch_eligibility", "Batch eligibility"
    PROMPT_CACHING_GAP = "prompt_caching_gap", "Prompt caching gap"
    ORPHANED_SPEND = "orphaned_spend", "Orphaned key / spend"
    STAGING_ON_PRODUCTION_MODELS = "staging_on_production_models", "Staging on production models"
    FREE_TIER_SUBSIDY = "free_tier_subsidy", "Free-tier subsidy"
    # Alerts.
    COST_DRIFT = "cost_drift", "Cost-per-request drift"
    TENANT_CONCENTRATION = "tenant_concentration", "Tenant concentration"
    REQUEST_BURST = "request_burst", "Request burst with falling success"
    RETRY_OVERHEAD = "retry_overhead", "Retry overhead"
    BUDGET = "budget", "Budget"


WASTE_KINDS = frozenset(
    {
        FindingKind.MODEL_OVERKILL,
        FindingKind.BATCH_ELIGIBILITY,
        FindingKind.PROMPT_CACHING_GAP,
        FindingKind.ORPHANED_SPEND,
        FindingKind.STAGING_ON_PRODUCTION_MODELS,
        FindingKind.FREE_TIER_SUBSIDY,
    }
)
ALERT_KINDS = frozenset(set(FindingKind) - WASTE_KINDS)


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"
    SNOOZED = "snoozed", "Snoozed"


class FindingConfidence(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class FindingsPolicy(OrganizationOwnedModel):
    """An organization's thresholds for detectors, alerts, approvals and notifications.

    ``thresholds`` overrides per rule: ``{"model_overkill": {"max_output_tokens": 300}, …}``;
    each detector module declares its defaults and validates the overrides.
    """

    min_monthly_savings = money_field(
        default=Decimal("25.00"), validators=[MinValueValidator(0)],
        help_text="USD a month below which a waste finding is not raised.",
    )  # fmt: skip
    notify_min_savings = money_field(
        default=Decimal("500.00"), validators=[MinValueValidator(0)],
        help_text="USD a month from which a new finding is notified (email and webhooks).",
    )  # fmt: skip
    second_approval_threshold = money_field(
        default=Decimal("5000.00"), validators=[MinValueValidator(0)],
        help_text="A remediation item whose monthly amount is at or above this USD figure "
        "needs a second approver.",
    )  # fmt: skip
    verification_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1)],
        help_text="Days after implementation over which realized savings are measured.",
    )  # fmt: skip
    thresholds = models.JSONField(
        default=dict, blank=True,
        help_text="Per-rule overrides of the detector and alert thresholds.",
    )  # fmt: skip
    notify_emails = models.TextField(
        blank=True, help_text="Addresses notified of findings and approvals, one per line."
    )

    class Meta:
        verbose_name = "findings policy"
        verbose_name_plural = "findings policies"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="findings_policy_one_per_org")
        ]

    def __str__(self) -> str:
        return "Findings policy"


class DetectorRun(OrganizationOwnedModel):
    """One run of the detectors and alert rules over an organization."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=20, default="command", help_text="command, schedule, …")
    window_start = models.DateField(help_text="First day of the evidence window.")
    window_end = models.DateField(help_text="Day after the last day of the evidence window.")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["organization", "-started_at"])]

    def __str__(self) -> str:
        return f"Detector run {self.started_at:%Y-%m-%d %H:%M}"


class Finding(OrganizationOwnedModel):
    """A quantified waste finding or alert: dollars, confidence, evidence, remediation.

    ``fingerprint`` identifies the condition (kind and scope), so a rerun updates
    the finding rather than adding another; when the condition clears the run
    resolves it.
    """

    kind = models.CharField(max_length=40, choices=FindingKind.choices)
    fingerprint = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    monthly_savings = money_field(
        default=Decimal("0.00"),
        help_text="USD a month: savings for waste; the monthly cost at stake for alerts.",
    )
    confidence = models.CharField(max_length=10, choices=FindingConfidence.choices)
    confidence_reason = models.TextField()
    evidence = models.JSONField(
        default=dict,
        help_text="The formula, its inputs and the figures behind the finding "
        "(and a daily cost series for the chart).",
    )
    remediation = models.TextField(help_text="What to do about it, concretely.")
    remediation_kind = models.CharField(
        max_length=30, blank=True, help_text="The remediation item kind this finding suggests."
    )
    status = models.CharField(
        max_length=20, choices=FindingStatus.choices, default=FindingStatus.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="owned_findings",
    )  # fmt: skip
    dismiss_reason = models.TextField(blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    auto_resolved = models.BooleanField(
        default=False, help_text="Resolved by a detector run because the condition cleared."
    )

    # Scope: what the finding is about (any may be empty).
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
    prompt_version = models.CharField(max_length=255, blank=True)

    window_start = models.DateField(help_text="First day of the evidence window.")
    window_end = models.DateField(help_text="Day after the last day of the evidence window.")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_run = models.ForeignKey(
        DetectorRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-monthly_savings", "-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "fingerprint"], name="finding_unique_fingerprint"
            ),
            models.CheckConstraint(
                condition=~Q(status="dismissed") | ~Q(dismiss_reason=""),
                name="finding_dismissed_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status="snoozed") | Q(snoozed_until__isnull=False),
                name="finding_snoozed_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-monthly_savings"]),
            models.Index(fields=["organization", "kind"]),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_alert(self) -> bool:
        return self.kind in ALERT_KINDS


class FindingComment(OrganizationOwnedModel):
    """A note on a finding by a staff member."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Comment by {self.author} on {self.created_at:%Y-%m-%d}"


class FindingActivity(OrganizationOwnedModel):
    """Append-only record of a finding's changes: status, owner, dollars (actor empty: a run)."""

    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="activity")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    action = models.CharField(max_length=30, help_text="created, status, owner, updated, …")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "finding activity"

    def __str__(self) -> str:
        return f"{self.action} {self.from_status} → {self.to_status}"
