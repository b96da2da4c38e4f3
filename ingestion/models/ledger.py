"""The usage ledger and what is derived from it.

``UsageEvent`` is append-only: one row per model call, deduplicated by
(organization, event_id) in the database, priced when it arrives. Only an
explicit repricing run may rewrite its cost columns. ``DailyUsage`` is a
projection of the ledger kept exactly equal to aggregating it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from accounts.models import Customer, Environment, Feature
from metron.money import RATE_DECIMAL_PLACES, RATE_MAX_DIGITS, cost_field
from metron.tenancy.models import OrganizationOwnedModel


class CostSource(models.TextChoices):
    PROVIDER_REPORTED = "provider_reported", "Provider reported"
    PRICE_BOOK = "price_book", "Price book"
    OVERRIDE = "override", "Organization override"


class CostStatus(models.TextChoices):
    PRICED = "priced", "Priced"
    UNPRICED = "unpriced", "Unpriced"


class AttributionSource(models.TextChoices):
    SDK = "sdk", "SDK wrapper"
    PROXY = "proxy", "Proxy"
    API = "api", "Direct API"
    KEY_MAPPING = "key_mapping", "Provider key mapping"
    ALLOCATED = "allocated", "Allocated"
    UNATTRIBUTED = "unattributed", "Unattributed"


class Confidence(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class UsageEvent(models.Model):
    """One model call (or one batch item), as the calling service reported it.

    Token counts follow the OpenAI convention: ``input_tokens`` includes cached
    and cache-write tokens, ``output_tokens`` includes reasoning tokens.
    ``cost`` is the event's cost in USD: the provider-reported amount when one
    was sent, otherwise Metron's estimate; it is empty only when unpriced.
    """

    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        ERROR = "error", "Error"

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    event_id = models.CharField(max_length=255, help_text="The caller's idempotency key.")
    timestamp = models.DateTimeField(help_text="When the call happened (UTC).")
    received_at = models.DateTimeField()
    payload_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical payload: tells a retry from a conflict."
    )

    # The ledger's foreign keys carry no single-column indexes and no database
    # constraints: each index and each deferred FK check (five per row, at
    # commit) costs ingest throughput, which bench/ingest.py measures.
    # Integrity holds by construction: ingest resolves every reference inside
    # its transaction, catalog rows the ledger uses are never deleted (PROTECT;
    # merges re-point events first), and the ledger's facts are immutable.
    customer = models.ForeignKey(
        "accounts.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The customer's plan in force at the event's time.", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    user_id = models.CharField(max_length=255, blank=True)
    feature = models.ForeignKey(
        "accounts.Feature",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    workflow = models.CharField(max_length=255, blank=True)
    prompt_version = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=255)
    api_key_id = models.CharField(max_length=255, blank=True)
    provider_key = models.ForeignKey(
        "accounts.ProviderKey",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.PRODUCTION
    )

    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    batch = models.BooleanField(default=False)
    service_tier = models.CharField(max_length=50, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUCCESS)
    attempt = models.PositiveSmallIntegerField(default=1)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    quality_score = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )  # fmt: skip
    billable = models.BooleanField(
        help_text="Counts in customer economics; defaults to production traffic of real customers."
    )
    metadata = models.JSONField(default=dict, blank=True)

    cost = cost_field(null=True, blank=True, help_text="USD; empty only when unpriced.")
    reported_cost = cost_field(null=True, blank=True, help_text="USD the caller sent, if any.")
    estimated_cost = cost_field(
        null=True, blank=True, help_text="USD by Metron's price book or override (for drift)."
    )
    cost_source = models.CharField(max_length=20, choices=CostSource.choices, blank=True)
    cost_status = models.CharField(max_length=10, choices=CostStatus.choices)
    price_reference = models.CharField(
        max_length=255, blank=True, help_text="Which price was applied (book entry or override)."
    )
    price_date = models.DateField(
        null=True, blank=True, help_text="The date prices were taken for."
    )
    attribution_source = models.CharField(max_length=20, choices=AttributionSource.choices)
    attribution_confidence = models.CharField(max_length=10, choices=Confidence.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event_id"], name="usage_event_unique_event_id"
            ),
            models.CheckConstraint(
                condition=Q(cost_status="unpriced", cost__isnull=True)
                | Q(cost_status="priced", cost__isnull=False),
                name="usage_event_cost_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(
                    input_tokens__gte=0,
                    output_tokens__gte=0,
                    cached_input_tokens__gte=0,
                    cache_write_tokens__gte=0,
                    reasoning_tokens__gte=0,
                ),
                name="usage_event_tokens_not_negative",
            ),  # fmt: skip
        ]
        indexes = [
            models.Index(fields=["organization", "timestamp"], name="usage_event_org_time_idx"),
            # A customer's events, newest first: the drill-down from plans and customers.
            models.Index(fields=["customer", "timestamp"], name="usage_event_customer_time_idx"),
            models.Index(
                fields=["organization", "model"],
                condition=Q(cost_status="unpriced"),
                name="usage_event_unpriced_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.event_id


class EventConflict(OrganizationOwnedModel):
    """An event id sent again with a different payload: kept for review, never applied."""

    original = models.ForeignKey(UsageEvent, on_delete=models.PROTECT, related_name="conflicts")
    external_event_id = models.CharField("event id", max_length=255)
    payload = models.JSONField(help_text="The conflicting payload as received.")
    differing_fields = models.JSONField(default=list)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "resolved"], name="event_conflict_open_idx")
        ]

    def __str__(self) -> str:
        return f"conflict on {self.external_event_id}"


class PriceOverride(OrganizationOwnedModel):
    """An organization's own price for matching models over a date range.

    Per-token-type prices in USD per million tokens replace the list price for
    those types; ``discount_percent`` reduces the list price of every type not
    given explicitly. Takes precedence over the price book.
    """

    provider = models.CharField(max_length=50)
    model_pattern = models.CharField(
        max_length=255, help_text="Exact model name, or a pattern with * (e.g. ft:gpt-4o*)."
    )
    effective_from = models.DateTimeField()
    effective_to = models.DateTimeField(null=True, blank=True, help_text="Empty: open-ended.")
    input_per_mtok = models.DecimalField(
        max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES, null=True, blank=True
    )
    cached_input_per_mtok = models.DecimalField(
        max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES, null=True, blank=True
    )
    cache_write_per_mtok = models.DecimalField(
        max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES, null=True, blank=True
    )
    output_per_mtok = models.DecimalField(
        max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES, null=True, blank=True
    )
    discount_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )  # fmt: skip
    note = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )  # fmt: skip

    class Meta:
        ordering = ["provider", "model_pattern", "-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gt=models.F("effective_from")),
                name="price_override_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model_pattern} from {self.effective_from.date()}"


class RepricingRun(OrganizationOwnedModel):
    """One explicit recomputation of event costs over ``[range_start, range_end)``."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    events_touched = models.BigIntegerField(default=0)
    events_changed = models.BigIntegerField(default=0)
    cost_before = cost_field(default=0, help_text="USD, sum of event costs before.")
    cost_after = cost_field(default=0, help_text="USD, sum of event costs after.")
    unpriced_before = models.BigIntegerField(default=0)
    unpriced_after = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"repricing {self.range_start.date()} → {self.range_end.date()}"


class DailyUsage(models.Model):
    """Usage and cost per day and dimension tuple; exactly the sum of its ledger rows.

    Maintained incrementally as events arrive (only the touched tuples) and
    rebuilt for whole days by repricing. ``cost`` sums priced events only;
    ``unpriced_requests`` counts the others, so $0 never hides a missing price.
    """

    # Like the ledger's, these foreign keys carry no database constraints and no
    # single-column indexes: ingest upserts about one rollup row per event, and
    # four deferred FK checks plus four index entries per row doubled its cost
    # (bench/ingest.py). Ingest writes only ids it resolved in the same
    # transaction, and catalog rows are never deleted (PROTECT). Readers go
    # through (organization, day) or the unique dimensions index.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    day = models.DateField()
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, null=True, related_name="+",
        db_index=False, db_constraint=False,
    )  # fmt: skip
    feature = models.ForeignKey(
        "accounts.Feature", on_delete=models.PROTECT, null=True, related_name="+",
        db_index=False, db_constraint=False,
    )  # fmt: skip
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.PROTECT, null=True, related_name="+",
        db_index=False, db_constraint=False,
    )  # fmt: skip
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=255)
    environment = models.CharField(max_length=20, choices=Environment.choices)
    batch = models.BooleanField()
    billable = models.BooleanField()

    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    retries = models.BigIntegerField(default=0, help_text="Events with attempt > 1.")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost = cost_field(default=0, help_text="USD, priced events only.")
    estimated_cost = cost_field(default=0, help_text="USD, Metron's estimates where known.")
    retry_cost = cost_field(default=0, help_text="USD spent on attempts after the first.")
    unpriced_requests = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily usage"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "organization", "day", "customer", "feature", "plan", "provider", "model",
                    "environment", "batch", "billable",
                ],
                nulls_distinct=False,
                name="daily_usage_unique_dimensions",
            ),
        ]  # fmt: skip
        # No separate (organization, day) index: the unique index leads with those
        # two columns and serves the same range scans, one index less per new row.

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}"


class UsageChange(models.Model):
    """A day whose rollups changed: appended by every ingest, rebuild and reconciliation.

    The feed that projections above the rollups (economics) follow: they read the
    markers, refresh those days, and delete the markers they read. Append-only and
    written in the transaction that changed the day, so a marker is visible exactly
    when its change is, and concurrent ingests never wait on one another for it.
    """

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    day = models.DateField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="usage_change_org_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} changed"


# The dimensions of a rollup row, in the order of its unique constraint.
ROLLUP_DIMENSIONS = (
    "organization_id", "day", "customer_id", "feature_id", "plan_id", "provider", "model",
    "environment", "batch", "billable",
)  # fmt: skip


class UnreviewedCustomer(Customer):
    """The ops queue of customers registered automatically from usage."""

    class Meta:
        proxy = True
        verbose_name = "unreviewed customer"


class UnreviewedFeature(Feature):
    """The ops queue of features registered automatically from usage."""

    class Meta:
        proxy = True
        verbose_name = "unreviewed feature"
