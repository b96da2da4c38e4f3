"""Revenue lines (billed, recognized, collected), their daily recognition, FX rates and
manual entries for offline contracts.

Amounts are ``Decimal`` in the currency's major unit, quantized to its minor unit
(JPY 0, USD 2, KWD 3 decimal places: hence 3 places in the columns). A revenue
line is a projection: rebuilt from the Stripe mirror or the manual entry it comes
from, never edited by hand.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Customer, Organization, Plan, currency_validator
from metron.money import MONEY_MAX_DIGITS, quantize_money
from metron.tenancy.models import OrganizationOwnedModel, TimeStampedModel

__all__ = ["FxRate", "ManualRevenueEntry", "RevenueLine", "RevenueRecognition"]

# Three places hold every ISO 4217 minor unit (KWD, BHD, …); each amount is
# quantized to its own currency's exponent before it is stored.
REVENUE_DECIMAL_PLACES = 3
FX_RATE_MAX_DIGITS = 20
FX_RATE_DECIMAL_PLACES = 10  # JPY→USD needs more than 6 places to stay exact enough


def revenue_amount_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=REVENUE_DECIMAL_PLACES, **kwargs
    )


class FxRate(TimeStampedModel):
    """``1 currency = rate quote_currency`` from ``day`` on, until the next rate.

    An organization's own rate wins over the global one (``organization`` empty).
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        editable=False, help_text="Empty: a global rate used by every organization.",
    )  # fmt: skip
    currency = models.CharField(max_length=3, validators=[currency_validator])
    quote_currency = models.CharField(max_length=3, validators=[currency_validator])
    day = models.DateField(help_text="First day (UTC) the rate applies to.")
    rate = models.DecimalField(max_digits=FX_RATE_MAX_DIGITS, decimal_places=FX_RATE_DECIMAL_PLACES)
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["currency", "quote_currency", "-day"]
        verbose_name = "FX rate"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "currency", "quote_currency", "day"],
                condition=Q(organization__isnull=False),
                name="fx_rate_unique_org_day",
            ),
            models.UniqueConstraint(
                fields=["currency", "quote_currency", "day"],
                condition=Q(organization__isnull=True),
                name="fx_rate_unique_global_day",
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
            models.CheckConstraint(
                condition=~Q(currency=F("quote_currency")), name="fx_rate_distinct_currencies"
            ),
        ]
        indexes = [models.Index(fields=["currency", "quote_currency", "day"], name="fx_rate_idx")]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate.normalize()} {self.quote_currency} from {self.day}"


class ManualRevenueEntry(OrganizationOwnedModel):
    """Revenue of an offline contract, recognized ratably over ``[period_start, period_end)``."""

    class Source(models.TextChoices):
        API = "api", "API"
        ADMIN = "admin", "Admin"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField()
    period_end = models.DateField(help_text="Exclusive: the first day after the contract.")
    amount = revenue_amount_field(help_text="In the currency's major unit (e.g. dollars).")
    currency = models.CharField(max_length=3, validators=[currency_validator])
    description = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ADMIN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )  # fmt: skip

    class Meta:
        ordering = ["-period_start", "-pk"]
        verbose_name = "manual revenue entry"
        verbose_name_plural = "manual revenue entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="manual_revenue_period_valid"
            )
        ]

    def __str__(self) -> str:
        period = f"{self.period_start} → {self.period_end}"
        amount = quantize_money(self.amount, self.currency) if self.amount is not None else ""
        return f"{self.customer} {amount} {self.currency} ({period})"


class RevenueLine(OrganizationOwnedModel):
    """One source of revenue for one customer, in its own currency.

    ``billed`` is what was invoiced (credit notes negative); ``recognized`` is the
    part spread per day over ``[service_start, service_end)`` (its daily rows sum
    exactly to it); ``collected`` is what was paid (refunds negative).
    """

    class Kind(models.TextChoices):
        INVOICE_LINE = "invoice_line", "Invoice line"
        CREDIT_NOTE = "credit_note", "Credit note"
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"
        MANUAL = "manual", "Manual entry"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    source_id = models.CharField(
        max_length=255, help_text="The Stripe object id (il_…, cn_…, in_…, re_…) or manual-<id>."
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="revenue_lines"
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    plan = models.ForeignKey(
        Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    invoice_stripe_id = models.CharField(max_length=255, blank=True)
    manual_entry = models.ForeignKey(
        ManualRevenueEntry, on_delete=models.CASCADE, null=True, blank=True,
        related_name="revenue_lines",
    )  # fmt: skip
    description = models.TextField(blank=True)
    currency = models.CharField(max_length=3)
    billed = revenue_amount_field(default=0)
    recognized = revenue_amount_field(default=0)
    collected = revenue_amount_field(default=0)
    service_start = models.DateField()
    service_end = models.DateField(help_text="Exclusive.")
    billed_on = models.DateField(null=True, blank=True)
    collected_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-service_start", "-pk"]
        verbose_name = "revenue line"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "source_id"], name="revenue_line_unique_source"
            ),
            models.CheckConstraint(
                condition=Q(service_end__gt=F("service_start")), name="revenue_line_period_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "customer", "service_start"], name="rev_line_cust_idx"
            ),
            models.Index(
                fields=["organization", "stripe_customer_id"], name="rev_line_stripe_cust_idx"
            ),
            models.Index(fields=["organization", "invoice_stripe_id"], name="rev_line_invoice_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.source_id}"


class RevenueRecognition(models.Model):
    """The part of a revenue line recognized on one day (UTC), in the line's currency."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    line = models.ForeignKey(RevenueLine, on_delete=models.CASCADE, related_name="recognitions")
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    day = models.DateField()
    currency = models.CharField(max_length=3)
    amount = revenue_amount_field()

    class Meta:
        ordering = ["line", "day"]
        constraints = [
            models.UniqueConstraint(fields=["line", "day"], name="revenue_recognition_unique_day")
        ]
        indexes = [
            models.Index(fields=["organization", "day", "customer"], name="rev_recog_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.amount} {self.currency}"
