"""Provider connections, synced usage buckets and cost lines, reconciliation.

A ``ProviderConnection`` holds an organization's admin key for one provider
(encrypted at rest). The usage and cost syncs upsert ``ProviderUsageBucket``
and ``ProviderCostLine`` rows by their natural key, so re-reading a period
(providers revise recent days) updates rows instead of adding them.
``ReconciliationLine`` is a recomputable projection: the ledger's estimate
against the provider's usage and bill, per provider, day and model (and key).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from metron.money import cost_field
from metron.tenancy.models import OrganizationOwnedModel

__all__ = [
    "ConnectionProvider",
    "ProviderConnection",
    "ProviderCostLine",
    "ProviderUsageBucket",
    "ReconciliationLine",
]

DEFAULT_TOLERANCE_PERCENT = Decimal("2.00")
DEFAULT_RESYNC_DAYS = 3


class ConnectionProvider(models.TextChoices):
    """Providers with an organization usage and cost API Metron can read."""

    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"


class ProviderConnection(OrganizationOwnedModel):
    """An organization's admin-key connection to one provider's usage and cost APIs.

    The key is stored encrypted (``metron.crypto``) and never shown again: only
    its last four characters are kept in clear to recognise it.
    """

    class Status(models.TextChoices):
        UNTESTED = "untested", "Not tested"
        OK = "ok", "Working"
        FAILED = "failed", "Failing"

    provider = models.CharField(max_length=20, choices=ConnectionProvider.choices)
    admin_key_encrypted = models.TextField(editable=False)
    admin_key_last4 = models.CharField("admin key", max_length=4, editable=False)
    api_base = models.URLField(
        "API base URL", max_length=300, blank=True,
        help_text="Empty: the provider's public API (https://api.openai.com/v1, "
        "https://api.anthropic.com).",
    )  # fmt: skip
    enabled = models.BooleanField(default=True, help_text="Scheduled syncs skip disabled ones.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNTESTED)
    status_message = models.TextField(blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_usage_synced_at = models.DateTimeField(null=True, blank=True)
    last_costs_synced_at = models.DateTimeField(null=True, blank=True)
    resync_days = models.PositiveSmallIntegerField(
        default=DEFAULT_RESYNC_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="Every sync re-reads this many past days: providers revise recent data.",
    )
    tolerance_percent = models.DecimalField(
        "reconciliation tolerance (%)", max_digits=5, decimal_places=2,
        default=DEFAULT_TOLERANCE_PERCENT,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Reconciliation flags a day and model whose variance exceeds this.",
    )  # fmt: skip

    class Meta:
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider"], name="provider_connection_unique_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} connection"

    @property
    def masked_key(self) -> str:
        return f"…{self.admin_key_last4}" if self.admin_key_last4 else ""


class BucketWidth(models.TextChoices):
    DAY = "1d", "Day"
    HOUR = "1h", "Hour"


class ProviderUsageBucket(OrganizationOwnedModel):
    """Tokens the provider counted in one time bucket for one combination of dimensions.

    Token counts follow the ledger convention (OpenAI's): ``input_tokens``
    includes cached and cache-write tokens; Anthropic's uncached, cache-read
    and cache-creation counts are summed into it. Empty text dimensions mean
    "not reported" (e.g. Anthropic's default workspace, Workbench usage
    without an API key). ``estimated_cost`` is Metron's price-book cost of the
    bucket (USD), empty when the model or a token type has no price.
    """

    provider = models.CharField(max_length=20, choices=ConnectionProvider.choices)
    bucket_start = models.DateTimeField()
    bucket_width = models.CharField(max_length=2, choices=BucketWidth.choices)
    project_id = models.CharField(
        "project / workspace",
        max_length=255,
        blank=True,
        help_text="OpenAI project id or Anthropic workspace id.",
    )
    api_key_id = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True)
    batch = models.BooleanField(default=False)
    service_tier = models.CharField(max_length=50, blank=True)

    requests = models.BigIntegerField(
        null=True, blank=True, help_text="Model requests (OpenAI only; Anthropic does not report)."
    )
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(
        default=0, help_text="Of the cache writes, those with a one-hour TTL (Anthropic)."
    )
    output_tokens = models.BigIntegerField(default=0)
    web_search_requests = models.BigIntegerField(default=0)
    estimated_cost = cost_field(null=True, blank=True, help_text="USD at Metron's prices.")
    price_reference = models.CharField(max_length=255, blank=True)
    provider_key = models.ForeignKey(
        "accounts.ProviderKey",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The key mapping this usage flows through to a feature.",
    )

    class Meta:
        ordering = ["-bucket_start", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "provider",
                    "bucket_width",
                    "bucket_start",
                    "project_id",
                    "api_key_id",
                    "model",
                    "batch",
                    "service_tier",
                ],
                nulls_distinct=False,
                name="provider_usage_bucket_natural_key",
            ),
            models.CheckConstraint(
                condition=Q(
                    input_tokens__gte=0,
                    cached_input_tokens__gte=0,
                    cache_write_tokens__gte=0,
                    output_tokens__gte=0,
                ),
                name="provider_usage_bucket_tokens_not_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "provider", "bucket_width", "bucket_start"],
                name="provider_usage_bucket_time_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.bucket_start:%Y-%m-%d %H:%M} {self.model or '—'}"


class ProviderCostLine(OrganizationOwnedModel):
    """One line of the provider's cost report for a UTC day: what it bills.

    ``amount`` is exact (parsed as Decimal): OpenAI's dollar values as sent,
    Anthropic's cents strings divided by 100. ``line_item`` is OpenAI's line
    item or Anthropic's description; ``model`` is filled when it can be
    derived (Anthropic reports it, OpenAI's line item names it).
    """

    provider = models.CharField(max_length=20, choices=ConnectionProvider.choices)
    day = models.DateField()
    line_item = models.CharField(max_length=255, blank=True)
    project_id = models.CharField("project / workspace", max_length=255, blank=True)
    api_key_id = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True)
    cost_type = models.CharField(
        max_length=50, blank=True, help_text="tokens, web_search, code_execution (Anthropic)."
    )
    token_type = models.CharField(max_length=100, blank=True)
    service_tier = models.CharField(max_length=50, blank=True)
    context_window = models.CharField(max_length=50, blank=True)
    amount = cost_field(help_text="In the line's currency, major units (dollars).")
    currency = models.CharField(max_length=3, default="USD")
    quantity = models.DecimalField(max_digits=30, decimal_places=6, null=True, blank=True)
    quantity_unit = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["-day", "provider", "line_item"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "provider",
                    "day",
                    "line_item",
                    "project_id",
                    "api_key_id",
                    "model",
                    "cost_type",
                    "token_type",
                    "service_tier",
                    "context_window",
                ],
                nulls_distinct=False,
                name="provider_cost_line_natural_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "provider", "day"], name="provider_cost_line_day_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day} {self.line_item or self.model or '—'}"


class ReconciliationLine(OrganizationOwnedModel):
    """Ledger estimate vs provider usage vs invoiced cost for one provider, day and model.

    ``level="model"`` rows cover all keys of the model (``api_key_id`` empty);
    ``level="key"`` rows split them by provider key (``api_key_id`` empty there
    means ledger events sent without a key). Amounts are USD. ``variance`` is
    the provider's figure (invoiced when known, else its usage at Metron's
    prices) minus the ledger's; the row is flagged when it, or the token
    difference, exceeds ``tolerance_percent``. Recomputed, never edited.
    """

    class Level(models.TextChoices):
        MODEL = "model", "Day and model"
        KEY = "key", "Day, model and key"

    class InvoicedBasis(models.TextChoices):
        NONE = "", "No invoice data"
        MODEL = "model", "Cost lines of this model"
        DAY = "day", "Day's cost lines allocated by usage"
        KEY = "key", "Cost lines of this model and key"

    provider = models.CharField(max_length=20, choices=ConnectionProvider.choices)
    day = models.DateField()
    model = models.CharField(max_length=255, blank=True)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.MODEL)
    api_key_id = models.CharField(max_length=255, blank=True)
    provider_key = models.ForeignKey(
        "accounts.ProviderKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    ledger_requests = models.BigIntegerField(default=0)
    ledger_input_tokens = models.BigIntegerField(default=0)
    ledger_cached_input_tokens = models.BigIntegerField(default=0)
    ledger_cache_write_tokens = models.BigIntegerField(default=0)
    ledger_output_tokens = models.BigIntegerField(default=0)
    ledger_unpriced_requests = models.BigIntegerField(default=0)
    ledger_cost = cost_field(default=0, help_text="USD, the ledger's priced events.")

    provider_requests = models.BigIntegerField(null=True, blank=True)
    provider_input_tokens = models.BigIntegerField(default=0)
    provider_cached_input_tokens = models.BigIntegerField(default=0)
    provider_cache_write_tokens = models.BigIntegerField(default=0)
    provider_output_tokens = models.BigIntegerField(default=0)
    provider_usage_cost = cost_field(
        null=True, blank=True, help_text="USD, the provider's usage at Metron's prices."
    )
    uninstrumented_cost = cost_field(
        default=0, help_text="USD of provider usage on keys with no ledger events."
    )
    invoiced_cost = cost_field(null=True, blank=True, help_text="USD the provider billed.")
    invoiced_basis = models.CharField(
        max_length=10, choices=InvoicedBasis.choices, blank=True, default=InvoicedBasis.NONE
    )

    variance = cost_field(help_text="USD: provider (invoiced, else usage) − ledger.")
    variance_percent = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True,
        help_text="Variance as % of the provider's figure.",
    )  # fmt: skip
    token_variance_percent = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True,
        help_text="(Provider − ledger tokens) as % of the provider's tokens.",
    )  # fmt: skip
    tolerance_percent = models.DecimalField(max_digits=5, decimal_places=2)
    flagged = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, blank=True, help_text="Explanation codes.")
    explanation = models.TextField(blank=True)

    class Meta:
        ordering = ["-day", "provider", "model", "level", "api_key_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider", "day", "model", "level", "api_key_id"],
                name="reconciliation_line_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "provider", "day"], name="reconciliation_day_idx"),
            models.Index(
                fields=["organization", "day"],
                condition=Q(flagged=True),
                name="reconciliation_flagged_idx",
            ),
        ]

    def __str__(self) -> str:
        key = f" {self.api_key_id or '(no key)'}" if self.level == self.Level.KEY else ""
        return f"{self.provider} {self.day} {self.model or '(other charges)'}{key}"
