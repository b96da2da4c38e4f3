"""The Stripe mirror: connection, customers, products, prices, subscriptions, invoices,
credit notes, refunds and webhook events.

Mirror rows are upserted by ``(organization, stripe_id)`` from what the Stripe API
returns (backfill) or re-fetches (webhooks); ``raw`` keeps the object as Stripe sent
it. Amounts stay as Stripe gives them, integers in the currency's minor unit
(``*_minor``); revenue lines convert them once, by the currency's exponent.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Customer, Plan
from metron import crypto
from metron.tenancy.models import OrganizationOwnedModel

__all__ = [
    "StripeConnection", "StripeCreditNote", "StripeCustomer", "StripeEvent", "StripeInvoice",
    "StripeInvoiceLine", "StripePrice", "StripeProduct", "StripeRefund", "StripeSubscription",
    "StripeSubscriptionItem", "UnmatchedStripeCustomer",
]  # fmt: skip

DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_CUSTOMER_METADATA_KEY = "metron_customer_id"


class StripeConnection(OrganizationOwnedModel):
    """An organization's Stripe account: API key and webhook secret, encrypted at rest.

    The secrets are never shown again once entered; ``api_key_hint`` keeps the
    first and last characters so staff can tell keys apart.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"
        ERROR = "error", "Error"

    api_key_encrypted = models.TextField(editable=False)
    api_key_hint = models.CharField(max_length=40, blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(editable=False)
    api_base = models.URLField(
        "API base URL", default=DEFAULT_API_BASE, help_text="Only changed for tests and demos."
    )
    customer_metadata_key = models.CharField(
        max_length=100,
        default=DEFAULT_CUSTOMER_METADATA_KEY,
        help_text="Stripe customer metadata key that holds the Metron customer id.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        verbose_name = "Stripe connection"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="stripe_connection_one_per_org")
        ]

    def __str__(self) -> str:
        return f"Stripe {self.api_key_hint or ''}".strip()

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    @property
    def webhook_secret(self) -> str:
        return crypto.decrypt(self.webhook_secret_encrypted)

    def set_api_key(self, value: str) -> None:
        self.api_key_encrypted = crypto.encrypt(value)
        self.api_key_hint = f"{value[:8]}…{value[-4:]}" if len(value) > 16 else "…"

    def set_webhook_secret(self, value: str) -> None:
        self.webhook_secret_encrypted = crypto.encrypt(value)


class StripeMirror(OrganizationOwnedModel):
    """Shared columns of a mirrored Stripe object."""

    stripe_id = models.CharField("Stripe id", max_length=255)
    livemode = models.BooleanField(default=False)
    stripe_created = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, help_text="The object as the Stripe API returned it.")
    content_hash = models.CharField(
        max_length=64, blank=True, editable=False,
        help_text="SHA-256 of the object as fetched (with an invoice's lines): unchanged "
        "objects are not rewritten.",
    )  # fmt: skip

    class Meta:
        abstract = True
        ordering = ["-stripe_created", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "stripe_id"], name="%(class)s_unique_stripe_id"
            )
        ]

    def __str__(self) -> str:
        return self.stripe_id


class StripeCustomer(StripeMirror):
    """A Stripe customer and the Metron customer it is matched (or linked) to."""

    class Match(models.TextChoices):
        NONE = "", "Unmatched"
        METADATA = "metadata", "Metadata key"
        STRIPE_ID = "stripe_id", "Customer's Stripe id"
        MANUAL = "manual", "Linked by staff"

    email = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    deleted = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="stripe_customers"
    )
    matched_by = models.CharField(max_length=20, choices=Match.choices, blank=True, default="")

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe customer"
        indexes = [
            models.Index(
                fields=["organization"],
                condition=Q(customer__isnull=True),
                name="stripe_customer_unmatched_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or self.email or self.stripe_id} ({self.stripe_id})"


class UnmatchedStripeCustomerManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(customer__isnull=True, deleted=False)


class UnmatchedStripeCustomer(StripeCustomer):
    """The review queue: Stripe customers no Metron customer could be matched to."""

    objects = UnmatchedStripeCustomerManager()

    class Meta:
        proxy = True
        verbose_name = "unmatched Stripe customer"


class StripeProduct(StripeMirror):
    name = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe product"

    def __str__(self) -> str:
        return f"{self.name or self.stripe_id}"


class StripePrice(StripeMirror):
    """A Stripe price; ``plan`` is the Metron plan whose ``stripe_price_ids`` list it."""

    product_stripe_id = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    unit_amount_minor = models.DecimalField(
        max_digits=30, decimal_places=12, null=True, blank=True,
        help_text="unit_amount_decimal: minor units, up to 12 decimal places.",
    )  # fmt: skip
    type = models.CharField(max_length=20, blank=True)
    recurring_interval = models.CharField(max_length=10, blank=True)
    recurring_interval_count = models.PositiveIntegerField(null=True, blank=True)
    nickname = models.CharField(max_length=255, blank=True)
    lookup_key = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)
    plan = models.ForeignKey(
        Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="stripe_prices"
    )

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe price"

    def __str__(self) -> str:
        return self.nickname or self.lookup_key or self.stripe_id


class StripeSubscription(StripeMirror):
    """A subscription; its periods live on its items (API 2025-03-31 and later)."""

    customer_stripe_id = models.CharField(max_length=255, db_index=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="stripe_subscriptions",
    )  # fmt: skip
    status = models.CharField(max_length=30)
    currency = models.CharField(max_length=3, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancel_at = models.DateTimeField(null=True, blank=True)
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe subscription"


class StripeSubscriptionItem(StripeMirror):
    """A subscription item with its current period (``current_period_start/end``)."""

    subscription = models.ForeignKey(
        StripeSubscription, on_delete=models.CASCADE, related_name="items"
    )
    price_stripe_id = models.CharField(max_length=255, blank=True)
    plan = models.ForeignKey(
        Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    quantity = models.PositiveBigIntegerField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe subscription item"


class StripeInvoice(StripeMirror):
    """An invoice; ``lines_complete`` says every line was fetched (past the first page)."""

    customer_stripe_id = models.CharField(max_length=255, db_index=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="stripe_invoices"
    )
    subscription_stripe_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=30, blank=True)
    number = models.CharField(max_length=255, blank=True)
    billing_reason = models.CharField(max_length=50, blank=True)
    currency = models.CharField(max_length=3)
    total_minor = models.BigIntegerField(default=0)
    amount_due_minor = models.BigIntegerField(default=0)
    amount_paid_minor = models.BigIntegerField(default=0)
    amount_remaining_minor = models.BigIntegerField(default=0)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True)
    payment_intent_ids = models.JSONField(default=list, blank=True)
    lines_count = models.PositiveIntegerField(default=0)
    lines_complete = models.BooleanField(default=True)

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe invoice"


class StripeInvoiceLine(OrganizationOwnedModel):
    """One invoice line; its price is ``pricing.price_details.price`` (or the older ``price``)."""

    invoice = models.ForeignKey(StripeInvoice, on_delete=models.CASCADE, related_name="lines")
    stripe_id = models.CharField("Stripe id", max_length=255)
    position = models.PositiveIntegerField(default=0)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    description = models.TextField(blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    price_stripe_id = models.CharField(max_length=255, blank=True)
    product_stripe_id = models.CharField(max_length=255, blank=True)
    subscription_stripe_id = models.CharField(max_length=255, blank=True)
    subscription_item_stripe_id = models.CharField(max_length=255, blank=True)
    proration = models.BooleanField(default=False)
    quantity = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    raw = models.JSONField(default=dict)

    class Meta:
        ordering = ["invoice", "position"]
        verbose_name = "Stripe invoice line"
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "stripe_id"], name="stripe_invoice_line_unique_id"
            )
        ]

    def __str__(self) -> str:
        return self.stripe_id


class StripeCreditNote(StripeMirror):
    invoice_stripe_id = models.CharField(max_length=255, blank=True, db_index=True)
    customer_stripe_id = models.CharField(max_length=255, blank=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=20, blank=True)
    type = models.CharField(max_length=30, blank=True)
    reason = models.CharField(max_length=50, blank=True)
    number = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3)
    total_minor = models.BigIntegerField(default=0)
    effective_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe credit note"


class StripeRefund(StripeMirror):
    charge_stripe_id = models.CharField(max_length=255, blank=True)
    payment_intent_stripe_id = models.CharField(max_length=255, blank=True, db_index=True)
    customer_stripe_id = models.CharField(max_length=255, blank=True)
    invoice_stripe_id = models.CharField(max_length=255, blank=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=30, blank=True)
    reason = models.CharField(max_length=50, blank=True)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField(default=0)

    class Meta(StripeMirror.Meta):
        verbose_name = "Stripe refund"


class StripeEvent(OrganizationOwnedModel):
    """A webhook delivery, stored once per event id; processed by a task.

    The unique constraint on ``(organization, event_id)`` is the deduplication:
    a redelivered or concurrently delivered event finds its row and is not
    processed again.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (type not handled)"
        FAILED = "failed", "Failed"

    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=50, blank=True)
    livemode = models.BooleanField(default=False)
    stripe_created = models.DateTimeField(null=True, blank=True)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "Stripe webhook event"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event_id"], name="stripe_event_unique_event_id"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="stripe_event_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
