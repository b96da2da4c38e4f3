"""Revenue lines: rebuilt from the Stripe mirror and from manual entries.

Every revenue line is a projection of one source object, rebuilt whole (its
daily recognition rows included) whenever the source or something it refers to
changes. Rebuilding is a function of stored state only, so it does not matter
in which order Stripe's webhooks arrived or how often a rebuild runs.

What counts (tax-exclusive, before discounts, as Stripe's line ``amount``):

- *billed*: invoice lines of finalized invoices (open, paid, uncollectible; not
  draft or void), on the day the invoice was finalized; issued credit-note lines
  negative, on the credit note's day.
- *recognized*: the same amounts spread per day over each line's service period
  (credit-note lines over the period of the invoice line they credit).
- *collected*: an invoice's ``amount_paid`` on the day it was paid; refunds
  (pending or succeeded) negative on the day they were made.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Organization, Plan
from ingestion.models import (
    FxRate,
    ManualRevenueEntry,
    RevenueLine,
    RevenueRecognition,
    StripeCreditNote,
    StripeInvoice,
    StripeInvoiceLine,
    StripeRefund,
)
from ingestion.revenue_math import (
    major_to_minor,
    minor_to_major,
    ratable_daily,
    service_days,
)
from metron.money import currency_exponent

BILLED_INVOICE_STATUSES = ("open", "paid", "uncollectible")
COLLECTED_REFUND_STATUSES = ("pending", "succeeded")
MANUAL_PERIOD_INVALID = "period_end must be after period_start (it is exclusive)."
MANUAL_AMOUNT_PRECISION = "{currency} amounts have at most {places} decimal places."
MANUAL_AMOUNT_ZERO = "The amount must not be zero."
MANUAL_FIELDS = ("customer", "period_start", "period_end", "amount", "currency", "description")

Kind = RevenueLine.Kind


class _Lookups:
    """Per-rebuild cache: Stripe price → plan (``Plan.stripe_price_ids``)."""

    def __init__(self, organization: Organization):
        self.organization = organization
        self._plans: dict[str, int | None] = {}

    def plan_id(self, price_id: str) -> int | None:
        if not price_id:
            return None
        if price_id not in self._plans:
            self._plans[price_id] = (
                Plan.objects.filter(
                    organization=self.organization, stripe_price_ids__contains=[price_id]
                )
                .order_by("pk")
                .values_list("pk", flat=True)
                .first()
            )
        return self._plans[price_id]


def _day(value) -> date | None:
    return value.date() if value is not None else None


def _save_lines(lines: list[RevenueLine]) -> list[RevenueLine]:
    """Insert lines and their daily recognition rows (in the line's currency)."""
    RevenueLine.objects.bulk_create(lines)
    rows = []
    for line in lines:
        if not line.recognized:
            continue
        for day, amount in ratable_daily(
            line.recognized, line.currency, line.service_start, line.service_end
        ):
            rows.append(
                RevenueRecognition(
                    organization_id=line.organization_id,
                    line=line,
                    customer_id=line.customer_id,
                    day=day,
                    currency=line.currency,
                    amount=amount,
                )  # fmt: skip
            )
    RevenueRecognition.objects.bulk_create(rows, batch_size=2000)
    return lines


def _one_day(day: date) -> tuple[date, date]:
    return day, day + timedelta(days=1)


# --- Stripe sources -----------------------------------------------------------


@transaction.atomic
def revenue_rebuild_invoice(*, invoice: StripeInvoice) -> list[RevenueLine]:
    """Rebuild the invoice-line and payment revenue of one mirrored invoice.

    Also rebuilds the credit notes and refunds that refer to it, since their
    periods and invoice links come from it.
    """
    organization = invoice.organization
    invoice = StripeInvoice.objects.select_for_update().get(pk=invoice.pk)
    RevenueLine.objects.filter(
        organization=organization, invoice_stripe_id=invoice.stripe_id,
        kind__in=[Kind.INVOICE_LINE, Kind.PAYMENT],
    ).delete()  # fmt: skip
    lookups = _Lookups(organization)
    customer_id = invoice.customer_id  # kept current by the mirror's link propagation
    billed_on = _day(invoice.finalized_at or invoice.stripe_created)
    common: dict[str, Any] = {
        "organization": organization, "customer_id": customer_id,
        "stripe_customer_id": invoice.customer_stripe_id, "invoice_stripe_id": invoice.stripe_id,
        "currency": invoice.currency.upper(),
    }  # fmt: skip
    lines = []
    if invoice.status in BILLED_INVOICE_STATUSES:
        for line in invoice.lines.all():
            if not line.amount_minor:
                continue
            amount = minor_to_major(line.amount_minor, line.currency or invoice.currency)
            if line.period_start is not None:
                start, end = service_days(line.period_start, line.period_end)
            else:
                start, end = _one_day(billed_on)
            lines.append(
                RevenueLine(
                    **common,
                    kind=Kind.INVOICE_LINE,
                    source_id=f"{invoice.stripe_id}/{line.stripe_id}",
                    plan_id=lookups.plan_id(line.price_stripe_id),
                    description=line.description
                    or f"Invoice {invoice.number or invoice.stripe_id}",
                    billed=amount,
                    recognized=amount,
                    service_start=start,
                    service_end=end,
                    billed_on=billed_on,
                )  # fmt: skip
            )
    if invoice.amount_paid_minor and invoice.status != "draft":
        paid_on = _day(invoice.paid_at or invoice.finalized_at or invoice.stripe_created)
        start, end = _one_day(paid_on)
        lines.append(
            RevenueLine(
                **common,
                kind=Kind.PAYMENT,
                source_id=invoice.stripe_id,
                description=f"Payment of invoice {invoice.number or invoice.stripe_id}",
                collected=minor_to_major(invoice.amount_paid_minor, invoice.currency),
                service_start=start,
                service_end=end,
                collected_on=paid_on,
            )  # fmt: skip
        )
    _save_lines(lines)
    for credit_note in StripeCreditNote.objects.filter(
        organization=organization, invoice_stripe_id=invoice.stripe_id
    ):
        revenue_rebuild_credit_note(credit_note=credit_note)
    for refund in StripeRefund.objects.filter(
        organization=organization, payment_intent_stripe_id__in=invoice.payment_intent_ids or []
    ).exclude(payment_intent_stripe_id=""):
        revenue_rebuild_refund(refund=refund)
    return lines


@transaction.atomic
def revenue_rebuild_credit_note(*, credit_note: StripeCreditNote) -> list[RevenueLine]:
    """Rebuild the (negative) billed and recognized revenue of one credit note."""
    organization = credit_note.organization
    credit_note = StripeCreditNote.objects.select_for_update().get(pk=credit_note.pk)
    RevenueLine.objects.filter(
        organization=organization, kind=Kind.CREDIT_NOTE,
        source_id__startswith=f"{credit_note.stripe_id}/",
    ).delete()  # fmt: skip
    if credit_note.status != "issued":
        return []
    lookups = _Lookups(organization)
    currency = credit_note.currency.upper()
    day = _day(credit_note.effective_at or credit_note.stripe_created)
    raw_lines = credit_note.raw.get("lines") or {}
    if raw_lines.get("has_more") or not raw_lines.get("data"):
        # Lines not all present: one line for the whole pre-tax amount, on its day.
        items = [
            {"id": "total", "amount": credit_note.raw.get("subtotal", credit_note.total_minor)}
        ]
    else:
        items = raw_lines["data"]
    credited = {
        line.stripe_id: line
        for line in StripeInvoiceLine.objects.filter(
            organization=organization,
            invoice__stripe_id=credit_note.invoice_stripe_id,
            stripe_id__in=[
                item.get("invoice_line_item") for item in items if item.get("invoice_line_item")
            ],
        )  # fmt: skip
    }
    lines = []
    for item in items:
        minor = int(item.get("amount") or 0)
        if not minor:
            continue
        invoice_line = credited.get(item.get("invoice_line_item") or "")
        if invoice_line is not None and invoice_line.period_start is not None:
            start, end = service_days(invoice_line.period_start, invoice_line.period_end)
        else:
            start, end = _one_day(day)
        amount = -minor_to_major(minor, currency)
        lines.append(
            RevenueLine(
                organization=organization,
                kind=Kind.CREDIT_NOTE,
                source_id=f"{credit_note.stripe_id}/{item['id']}",
                customer_id=credit_note.customer_id,
                stripe_customer_id=credit_note.customer_stripe_id,
                plan_id=lookups.plan_id(invoice_line.price_stripe_id) if invoice_line else None,
                invoice_stripe_id=credit_note.invoice_stripe_id,
                description=item.get("description")
                or f"Credit note {credit_note.number or credit_note.stripe_id}",
                currency=currency,
                billed=amount,
                recognized=amount,
                service_start=start,
                service_end=end,
                billed_on=day,
            )  # fmt: skip
        )
    return _save_lines(lines)


@transaction.atomic
def revenue_rebuild_refund(*, refund: StripeRefund) -> list[RevenueLine]:
    """Rebuild the (negative) collected revenue of one refund; links it to its invoice."""
    organization = refund.organization
    refund = StripeRefund.objects.select_for_update().get(pk=refund.pk)
    RevenueLine.objects.filter(
        organization=organization, kind=Kind.REFUND, source_id=refund.stripe_id
    ).delete()
    invoice = None
    if refund.payment_intent_stripe_id:
        invoice = (
            StripeInvoice.objects.filter(
                organization=organization,
                payment_intent_ids__contains=[refund.payment_intent_stripe_id],
            )
            .order_by("pk")
            .first()
        )
    invoice_id = invoice.stripe_id if invoice else ""
    stripe_customer_id = refund.customer_stripe_id or (
        invoice.customer_stripe_id if invoice else ""
    )
    if refund.invoice_stripe_id != invoice_id:
        refund.invoice_stripe_id = invoice_id
        refund.save(update_fields=["invoice_stripe_id", "updated_at"])
    if refund.status not in COLLECTED_REFUND_STATUSES or not refund.amount_minor:
        return []
    day = _day(refund.stripe_created)
    start, end = _one_day(day)
    customer_id = refund.customer_id if refund.customer_stripe_id else None
    if not refund.customer_stripe_id and invoice is not None:
        customer_id = invoice.customer_id
    description = f"Refund {refund.stripe_id}" + (f" of invoice {invoice_id}" if invoice_id else "")
    line = RevenueLine(
        organization=organization, kind=Kind.REFUND, source_id=refund.stripe_id,
        customer_id=customer_id,
        stripe_customer_id=stripe_customer_id, invoice_stripe_id=invoice_id,
        description=description,
        currency=refund.currency.upper(),
        collected=-minor_to_major(refund.amount_minor, refund.currency),
        service_start=start, service_end=end, collected_on=day,
    )  # fmt: skip
    return _save_lines([line])


def revenue_relink_customer(
    *, organization: Organization, stripe_customer_id: str, customer_id: int | None
) -> int:
    """Point the revenue of a Stripe customer at its (newly) matched Metron customer."""
    lines = RevenueLine.objects.filter(
        organization=organization, stripe_customer_id=stripe_customer_id
    ).exclude(kind=Kind.MANUAL)
    changed = (
        lines.exclude(customer_id=customer_id) if customer_id else lines.exclude(customer=None)
    )
    count = changed.update(customer_id=customer_id, updated_at=timezone.now())
    if count:
        RevenueRecognition.objects.filter(line__in=lines).update(customer_id=customer_id)
    return count


# --- manual entries -------------------------------------------------------------------


def manual_revenue_entry_validate(
    *,
    organization: Organization,
    customer: Customer,
    period_start: date,
    period_end: date,
    amount: Decimal,
    currency: str,
) -> None:
    """Refuse an empty period, a zero amount, sub-minor-unit amounts (10.5 JPY) and a
    customer of another organization; raises ``ValidationError`` by field."""
    _manual_validate(
        {
            "organization": organization, "customer": customer, "period_start": period_start,
            "period_end": period_end, "amount": amount, "currency": currency,
        }
    )  # fmt: skip


def _manual_validate(data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if data["period_end"] <= data["period_start"]:
        errors["period_end"] = [MANUAL_PERIOD_INVALID]
    currency = data["currency"].upper()
    try:
        major_to_minor(Decimal(data["amount"]), currency)
    except ValueError:
        errors["amount"] = [
            MANUAL_AMOUNT_PRECISION.format(currency=currency, places=currency_exponent(currency))
        ]
    if Decimal(data["amount"]) == 0:
        errors.setdefault("amount", []).append(MANUAL_AMOUNT_ZERO)
    if data["customer"].organization_id != data["organization"].pk:
        errors["customer"] = ["The customer belongs to another organization."]
    if errors:
        raise ValidationError(errors)


def _manual_line(entry: ManualRevenueEntry) -> list[RevenueLine]:
    RevenueLine.objects.filter(manual_entry=entry).delete()
    line = RevenueLine(
        organization_id=entry.organization_id, kind=Kind.MANUAL, source_id=f"manual-{entry.pk}",
        customer_id=entry.customer_id, manual_entry=entry,
        description=entry.description or "Manual revenue entry", currency=entry.currency,
        billed=entry.amount, recognized=entry.amount, service_start=entry.period_start,
        service_end=entry.period_end, billed_on=entry.period_start,
    )  # fmt: skip
    return _save_lines([line])


@transaction.atomic
def manual_revenue_entry_create(
    *,
    organization: Organization,
    customer: Customer,
    period_start: date,
    period_end: date,
    amount: Decimal,
    currency: str,
    description: str = "",
    source: str = ManualRevenueEntry.Source.API,
    created_by=None,
) -> ManualRevenueEntry:
    """Record revenue of an offline contract; its revenue line is recognized ratably."""
    data = {
        "organization": organization, "customer": customer, "period_start": period_start,
        "period_end": period_end, "amount": amount, "currency": currency.upper(),
    }  # fmt: skip
    _manual_validate(data)
    entry = ManualRevenueEntry(
        **data, description=description, source=source, created_by=created_by
    )
    entry.full_clean()
    entry.save()
    _manual_line(entry)
    return entry


@transaction.atomic
def manual_revenue_entry_save(*, entry: ManualRevenueEntry) -> ManualRevenueEntry:
    """Validate and save an entry edited in place (the admin), then rebuild its line."""
    entry.currency = entry.currency.upper()
    _manual_validate(
        {
            "organization": entry.organization, "customer": entry.customer,
            **{field: getattr(entry, field) for field in MANUAL_FIELDS if field != "customer"},
        }
    )  # fmt: skip
    entry.full_clean()
    entry.save()
    _manual_line(entry)
    return entry


@transaction.atomic
def manual_revenue_entry_delete(*, entry: ManualRevenueEntry) -> None:
    """Remove an entry and its revenue line (with its daily recognition)."""
    RevenueLine.objects.filter(manual_entry=entry).delete()
    entry.delete()


# --- FX rates ---------------------------------------------------------------------------


@transaction.atomic
def fx_rate_set(
    *,
    organization: Organization | None,
    currency: str,
    quote_currency: str,
    day: date,
    rate: Decimal,
    source: str = "",
) -> FxRate:
    """Store the rate ``1 currency = rate quote_currency`` from ``day`` (global if no org)."""
    currency, quote_currency = currency.upper(), quote_currency.upper()
    existing = FxRate.objects.filter(
        organization=organization, currency=currency, quote_currency=quote_currency, day=day
    ).first()
    fx = existing or FxRate(
        organization=organization, currency=currency, quote_currency=quote_currency, day=day
    )
    fx.rate = Decimal(rate)
    fx.source = source
    fx.full_clean(validate_constraints=False)
    fx.save()
    return fx
