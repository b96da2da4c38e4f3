"""One row of every Stripe/revenue model an admin shows, for the admin smoke and tenancy tests.

``tests/admin_objects.py`` merges these into ``build_catalog`` (see the hand-over note).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from ingestion.models import (
    FxRate,
    ManualRevenueEntry,
    RevenueLine,
    StripeConnection,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripePrice,
    StripeProduct,
    StripeRefund,
    StripeSubscription,
    UnmatchedStripeCustomer,
)
from ingestion.services import revenue
from ingestion.services.stripe import mirror
from ingestion.services.stripe.connection import stripe_connection_set


def _ts(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def build_stripe_objects(organization, marker: str, *, customer, plan) -> dict[type, object]:
    """A connection and one mirrored object of each kind (through the mirror's upserts),
    an unmatched Stripe customer, a webhook event, revenue lines, an FX rate and a manual
    entry; names and ids carry ``marker``. ``customer`` and ``plan`` are the org's own."""
    connection = stripe_connection_set(
        organization=organization, api_key=f"sk_test_{marker}_0000000000",
        webhook_secret=f"whsec_{marker}", api_base=f"http://127.0.0.1:9/{marker}",
    )  # fmt: skip
    price_id = f"price_{marker}"
    plan.stripe_price_ids = [*plan.stripe_price_ids, price_id]
    plan.save(update_fields=["stripe_price_ids"])
    matched = mirror.customer_upsert(connection=connection, data={
        "id": f"cus_{marker}", "object": "customer", "name": f"{marker} stripe customer",
        "email": f"{marker}@example.com", "created": _ts(2026, 1, 1),
        "metadata": {"metron_customer_id": customer.external_id},
    })  # fmt: skip
    unmatched = mirror.customer_upsert(connection=connection, data={
        "id": f"cus_{marker}_stranger", "object": "customer", "name": f"{marker} stranger",
        "created": _ts(2026, 1, 2), "metadata": {},
    })  # fmt: skip
    product = mirror.product_upsert(connection=connection, data={
        "id": f"prod_{marker}", "object": "product", "name": f"{marker} product",
        "created": _ts(2026, 1, 1), "active": True,
    })  # fmt: skip
    price = mirror.price_upsert(connection=connection, data={
        "id": price_id, "object": "price", "product": product.stripe_id, "currency": "usd",
        "unit_amount": 4900, "unit_amount_decimal": "4900", "type": "recurring",
        "recurring": {"interval": "month", "interval_count": 1}, "nickname": f"{marker} price",
        "created": _ts(2026, 1, 1), "active": True,
    })  # fmt: skip
    start, end = _ts(2026, 1, 1), _ts(2026, 2, 1)
    subscription = mirror.subscription_upsert(connection=connection, data={
        "id": f"sub_{marker}", "object": "subscription", "customer": matched.stripe_id,
        "status": "active", "currency": "usd", "created": start, "start_date": start,
        "items": {"object": "list", "has_more": False, "data": [{
            "id": f"si_{marker}", "object": "subscription_item", "price": {"id": price_id},
            "quantity": 1, "current_period_start": start, "current_period_end": end,
        }]},
    })  # fmt: skip
    invoice = mirror.invoice_upsert(
        connection=connection,
        data={
            "id": f"in_{marker}", "object": "invoice", "customer": matched.stripe_id,
            "status": "paid", "currency": "usd", "number": f"{marker.upper()}-0001",
            "created": start, "total": 4900, "amount_due": 4900, "amount_paid": 4900,
            "amount_remaining": 0,
            "status_transitions": {"finalized_at": start, "paid_at": start + 60},
            "parent": {"subscription_details": {"subscription": subscription.stripe_id}},
            "payments": {"data": [{"payment": {"type": "payment_intent",
                                               "payment_intent": f"pi_{marker}"}}]},
        },
        lines=[{
            "id": f"il_{marker}", "object": "line_item", "amount": 4900, "currency": "usd",
            "description": f"{marker} subscription", "period": {"start": start, "end": end},
            "pricing": {"type": "price_details",
                        "price_details": {"price": price_id, "product": product.stripe_id}},
        }],
    )  # fmt: skip
    revenue.revenue_rebuild_invoice(invoice=invoice)
    credit_note = mirror.credit_note_upsert(connection=connection, data={
        "id": f"cn_{marker}", "object": "credit_note", "invoice": invoice.stripe_id,
        "customer": matched.stripe_id, "status": "issued", "currency": "usd",
        "number": f"{marker.upper()}-CN", "total": 900, "created": start + 86400,
        "lines": {"has_more": False, "data": [{"id": f"cnli_{marker}", "amount": 900,
                                               "invoice_line_item": f"il_{marker}"}]},
    })  # fmt: skip
    revenue.revenue_rebuild_credit_note(credit_note=credit_note)
    refund = mirror.refund_upsert(connection=connection, data={
        "id": f"re_{marker}", "object": "refund", "charge": f"ch_{marker}",
        "payment_intent": f"pi_{marker}", "customer": matched.stripe_id, "status": "succeeded",
        "currency": "usd", "amount": 1000, "created": start + 2 * 86400,
    })  # fmt: skip
    revenue.revenue_rebuild_refund(refund=refund)
    event = StripeEvent.objects.create(
        organization=organization, event_id=f"evt_{marker}", type="invoice.paid",
        object_type="invoice", object_id=invoice.stripe_id, status=StripeEvent.Status.PROCESSED,
        attempts=1, payload={"id": f"evt_{marker}", "type": "invoice.paid"},
    )  # fmt: skip
    rate = FxRate.objects.create(
        organization=organization, currency="EUR", quote_currency="USD",
        day=date(2026, 1, 1), rate=Decimal("1.0825"), source=f"{marker} treasury",
    )  # fmt: skip
    entry = revenue.manual_revenue_entry_create(
        organization=organization, customer=customer, period_start=date(2026, 1, 1),
        period_end=date(2026, 4, 1), amount=Decimal("3000.00"), currency="USD",
        description=f"{marker} offline contract",
    )  # fmt: skip
    return {
        StripeConnection: connection, StripeCustomer: matched,
        UnmatchedStripeCustomer: UnmatchedStripeCustomer.objects.get(pk=unmatched.pk),
        StripeProduct: product, StripePrice: price, StripeSubscription: subscription,
        StripeInvoice: invoice, StripeCreditNote: credit_note, StripeRefund: refund,
        StripeEvent: event,
        RevenueLine: RevenueLine.objects.get(source_id=f"{invoice.stripe_id}/il_{marker}"),
        FxRate: rate, ManualRevenueEntry: entry,
    }  # fmt: skip
