"""Idempotent upserts of Stripe objects into the mirror, keyed by ``(organization, id)``.

Each ``*_upsert`` takes the object as plain JSON data (what the API returned)
and writes the same row however often it runs. Shapes of older API versions are
read too: an invoice line's price at ``pricing.price_details.price`` (current),
at ``price`` or at ``plan`` (older); a subscription's period on its items
(current) or on the subscription (older).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Plan
from accounts.services import customer_update
from ingestion.models import (
    StripeConnection,
    StripeCreditNote,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLine,
    StripePrice,
    StripeProduct,
    StripeRefund,
    StripeSubscription,
    StripeSubscriptionItem,
)
from ingestion.services import revenue

Match = StripeCustomer.Match


def ts(value: Any) -> datetime | None:
    """A Stripe unix timestamp as an aware UTC datetime."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def ref(value: Any) -> str:
    """The id of a reference that may be an id string or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def content_hash(data: dict, lines: list[dict] | None = None) -> str:
    """A digest of an object as fetched (an invoice with all its lines)."""
    canonical = json.dumps([data, lines], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_current(model, connection: StripeConnection, stripe_id: str, digest: str) -> bool:
    """Whether the mirror already holds exactly this version of the object."""
    return model.objects.filter(
        organization=connection.organization, stripe_id=stripe_id, content_hash=digest
    ).exists()


def _common(connection: StripeConnection, data: dict, lines: list[dict] | None = None) -> dict:
    return {
        "livemode": bool(data.get("livemode", False)),
        "stripe_created": ts(data.get("created")),
        "raw": data,
        "content_hash": content_hash(data, lines),
    }


def _upsert(model, connection: StripeConnection, data: dict, fields: dict[str, Any], lines=None):
    obj, _ = model.objects.update_or_create(
        organization=connection.organization,
        stripe_id=data["id"],
        defaults={**_common(connection, data, lines), **fields},
    )
    return obj


def plan_for_price(organization, price_id: str) -> Plan | None:
    """The plan whose ``stripe_price_ids`` list the price."""
    if not price_id:
        return None
    return (
        Plan.objects.filter(organization=organization, stripe_price_ids__contains=[price_id])
        .order_by("pk")
        .first()
    )


# --- customers ------------------------------------------------------------------------------


def customer_match(*, connection: StripeConnection, data: dict) -> tuple[Customer | None, str]:
    """The Metron customer of a Stripe customer: by metadata key, else by Stripe id."""
    organization = connection.organization
    external_id = (data.get("metadata") or {}).get(connection.customer_metadata_key)
    if external_id:
        customer = Customer.objects.filter(
            organization=organization, external_id=external_id
        ).first()
        if customer is not None:
            return customer, Match.METADATA
    customer = (
        Customer.objects.filter(organization=organization, stripe_customer_id=data["id"])
        .order_by("pk")
        .first()
    )
    return (customer, Match.STRIPE_ID) if customer is not None else (None, Match.NONE)


@transaction.atomic
def customer_upsert(*, connection: StripeConnection, data: dict) -> StripeCustomer:
    """Mirror a Stripe customer and (re)match it; a staff link is never undone."""
    organization = connection.organization
    existing = (
        StripeCustomer.objects.select_for_update()
        .filter(organization=organization, stripe_id=data["id"])
        .first()
    )
    if data.get("deleted"):
        fields: dict[str, Any] = {"deleted": True}
        if existing is None:
            fields.update(_common(connection, data))
        else:
            fields["raw"] = {**existing.raw, "deleted": True}
        obj, _ = StripeCustomer.objects.update_or_create(
            organization=organization, stripe_id=data["id"], defaults=fields
        )
        return obj
    if existing is not None and existing.matched_by == Match.MANUAL and existing.customer_id:
        customer, matched_by = existing.customer, Match.MANUAL
    else:
        customer, matched_by = customer_match(connection=connection, data=data)
    obj = _upsert(
        StripeCustomer, connection, data,
        {
            "email": data.get("email") or "", "name": data.get("name") or "",
            "currency": (data.get("currency") or "").upper(), "deleted": False,
            "metadata": data.get("metadata") or {}, "customer": customer,
            "matched_by": matched_by,
        },
    )  # fmt: skip
    if customer is not None and not customer.stripe_customer_id:
        customer_update(customer=customer, stripe_customer_id=obj.stripe_id)
    previous = existing.customer_id if existing is not None else None
    if existing is None or previous != obj.customer_id:
        customer_link_propagate(stripe_customer=obj)
    return obj


def customer_link_propagate(*, stripe_customer: StripeCustomer) -> None:
    """Carry a Stripe customer's Metron customer onto its mirrored objects and revenue."""
    organization = stripe_customer.organization
    now = timezone.now()
    for model in (StripeSubscription, StripeInvoice, StripeCreditNote, StripeRefund):
        model.objects.filter(
            organization=organization, customer_stripe_id=stripe_customer.stripe_id
        ).exclude(customer_id=stripe_customer.customer_id).update(
            customer_id=stripe_customer.customer_id, updated_at=now
        )
    revenue.revenue_relink_customer(
        organization=organization, stripe_customer_id=stripe_customer.stripe_id,
        customer_id=stripe_customer.customer_id,
    )  # fmt: skip


def _linked_customer_id(connection: StripeConnection, stripe_customer_id: str) -> int | None:
    if not stripe_customer_id:
        return None
    return (
        StripeCustomer.objects.filter(
            organization=connection.organization, stripe_id=stripe_customer_id
        )
        .values_list("customer_id", flat=True)
        .first()
    )


# --- catalog ----------------------------------------------------------------------------------


def product_upsert(*, connection: StripeConnection, data: dict) -> StripeProduct:
    if data.get("deleted"):
        obj, _ = StripeProduct.objects.update_or_create(
            organization=connection.organization, stripe_id=data["id"],
            defaults={"deleted": True, "active": False},
        )  # fmt: skip
        return obj
    return _upsert(
        StripeProduct, connection, data,
        {"name": data.get("name") or "", "active": bool(data.get("active", True)),
         "deleted": False},
    )  # fmt: skip


def price_upsert(*, connection: StripeConnection, data: dict) -> StripePrice:
    if data.get("deleted"):
        obj, _ = StripePrice.objects.update_or_create(
            organization=connection.organization, stripe_id=data["id"],
            defaults={"deleted": True, "active": False},
        )  # fmt: skip
        return obj
    recurring = data.get("recurring") or {}
    unit = data.get("unit_amount_decimal")
    if unit in (None, "") and data.get("unit_amount") is not None:
        unit = data["unit_amount"]
    return _upsert(
        StripePrice, connection, data,
        {
            "product_stripe_id": ref(data.get("product")),
            "currency": (data.get("currency") or "").upper(),
            "unit_amount_minor": Decimal(str(unit)) if unit not in (None, "") else None,
            "type": data.get("type") or "", "recurring_interval": recurring.get("interval") or "",
            "recurring_interval_count": recurring.get("interval_count"),
            "nickname": data.get("nickname") or "", "lookup_key": data.get("lookup_key") or "",
            "active": bool(data.get("active", True)), "deleted": False,
            "plan": plan_for_price(connection.organization, data["id"]),
        },
    )  # fmt: skip


# --- subscriptions ------------------------------------------------------------------------------


def item_price_id(item: dict) -> str:
    return ref(item.get("price")) or ref(item.get("plan"))


@transaction.atomic
def subscription_upsert(*, connection: StripeConnection, data: dict) -> StripeSubscription:
    """Mirror a subscription and its items (periods from the items, or legacy top level)."""
    customer_stripe_id = ref(data.get("customer"))
    subscription = _upsert(
        StripeSubscription, connection, data,
        {
            "customer_stripe_id": customer_stripe_id,
            "customer_id": _linked_customer_id(connection, customer_stripe_id),
            "status": data.get("status") or "", "currency": (data.get("currency") or "").upper(),
            "start_date": ts(data.get("start_date")), "ended_at": ts(data.get("ended_at")),
            "canceled_at": ts(data.get("canceled_at")), "cancel_at": ts(data.get("cancel_at")),
            "trial_start": ts(data.get("trial_start")), "trial_end": ts(data.get("trial_end")),
        },
    )  # fmt: skip
    items = (data.get("items") or {}).get("data") or []
    seen = []
    for item in items:
        price_id = item_price_id(item)
        StripeSubscriptionItem.objects.update_or_create(
            organization=connection.organization, stripe_id=item["id"],
            defaults={
                "subscription": subscription, "livemode": bool(data.get("livemode", False)),
                "stripe_created": ts(item.get("created")), "raw": item,
                "price_stripe_id": price_id,
                "plan": plan_for_price(connection.organization, price_id),
                "quantity": item.get("quantity"),
                "current_period_start": ts(
                    item.get("current_period_start", data.get("current_period_start"))
                ),
                "current_period_end": ts(
                    item.get("current_period_end", data.get("current_period_end"))
                ),
            },
        )  # fmt: skip
        seen.append(item["id"])
    if not (data.get("items") or {}).get("has_more"):
        subscription.items.exclude(stripe_id__in=seen).delete()
    return subscription


# --- invoices -----------------------------------------------------------------------------------


def line_price(line: dict) -> tuple[str, str]:
    """(price id, product id) of an invoice line, current shape first, then older ones."""
    pricing = line.get("pricing") or {}
    details = pricing.get("price_details") or {}
    if details.get("price"):
        return ref(details["price"]), ref(details.get("product"))
    for key in ("price", "plan"):
        legacy = line.get(key)
        if legacy:
            product = legacy.get("product") if isinstance(legacy, dict) else ""
            return ref(legacy), ref(product)
    return "", ""


def _line_fields(line: dict) -> dict[str, Any]:
    price_id, product_id = line_price(line)
    parent = line.get("parent") or {}
    item_details = parent.get("subscription_item_details") or {}
    period = line.get("period") or {}
    quantity = line.get("quantity_decimal")
    if quantity in (None, ""):
        quantity = line.get("quantity")
    return {
        "amount_minor": int(line.get("amount") or 0),
        "currency": (line.get("currency") or "").upper(),
        "description": line.get("description") or "",
        "period_start": ts(period.get("start")), "period_end": ts(period.get("end")),
        "price_stripe_id": price_id, "product_stripe_id": product_id,
        "subscription_stripe_id": ref(item_details.get("subscription") or line.get("subscription")),
        "subscription_item_stripe_id": ref(
            item_details.get("subscription_item") or line.get("subscription_item")
        ),
        "proration": bool(item_details.get("proration", line.get("proration", False))),
        "quantity": Decimal(str(quantity)) if quantity not in (None, "") else None,
        "raw": line,
    }  # fmt: skip


def invoice_payment_intents(data: dict) -> list[str]:
    """Payment intents that paid the invoice (``payments`` from API 2025-03-31; older
    versions had ``payment_intent`` on the invoice)."""
    found = []
    for payment in (data.get("payments") or {}).get("data") or []:
        detail = payment.get("payment") or {}
        if detail.get("payment_intent"):
            found.append(ref(detail["payment_intent"]))
    if data.get("payment_intent"):
        found.append(ref(data["payment_intent"]))
    return sorted(set(found))


@transaction.atomic
def invoice_upsert(*, connection: StripeConnection, data: dict, lines: list[dict]) -> StripeInvoice:
    """Mirror an invoice with *all* its lines (the caller pages past the embedded ones)."""
    parent = data.get("parent") or {}
    transitions = data.get("status_transitions") or {}
    customer_stripe_id = ref(data.get("customer"))
    invoice = _upsert(
        StripeInvoice, connection, data,
        {
            "customer_stripe_id": customer_stripe_id,
            "customer_id": _linked_customer_id(connection, customer_stripe_id),
            "subscription_stripe_id": ref(
                (parent.get("subscription_details") or {}).get("subscription")
                or data.get("subscription")
            ),
            "status": data.get("status") or "", "number": data.get("number") or "",
            "billing_reason": data.get("billing_reason") or "",
            "currency": (data.get("currency") or "").upper(),
            "total_minor": int(data.get("total") or 0),
            "amount_due_minor": int(data.get("amount_due") or 0),
            "amount_paid_minor": int(data.get("amount_paid") or 0),
            "amount_remaining_minor": int(data.get("amount_remaining") or 0),
            "finalized_at": ts(transitions.get("finalized_at")),
            "paid_at": ts(transitions.get("paid_at")),
            "voided_at": ts(transitions.get("voided_at")),
            "marked_uncollectible_at": ts(transitions.get("marked_uncollectible_at")),
            "payment_intent_ids": invoice_payment_intents(data),
            "lines_count": len(lines), "lines_complete": True,
        },
        lines,
    )  # fmt: skip
    invoice.lines.all().delete()
    StripeInvoiceLine.objects.bulk_create(
        [
            StripeInvoiceLine(
                organization=connection.organization,
                invoice=invoice,
                stripe_id=line["id"],
                position=position,
                **_line_fields(line),
            )  # fmt: skip
            for position, line in enumerate(lines)
        ]
    )
    return invoice


def credit_note_upsert(*, connection: StripeConnection, data: dict) -> StripeCreditNote:
    customer_stripe_id = ref(data.get("customer"))
    return _upsert(
        StripeCreditNote, connection, data,
        {
            "invoice_stripe_id": ref(data.get("invoice")), "customer_stripe_id": customer_stripe_id,
            "customer_id": _linked_customer_id(connection, customer_stripe_id),
            "status": data.get("status") or "", "type": data.get("type") or "",
            "reason": data.get("reason") or "", "number": data.get("number") or "",
            "currency": (data.get("currency") or "").upper(),
            "total_minor": int(data.get("total") or 0),
            "effective_at": ts(data.get("effective_at")), "voided_at": ts(data.get("voided_at")),
        },
    )  # fmt: skip


def refund_upsert(*, connection: StripeConnection, data: dict) -> StripeRefund:
    customer_stripe_id = ref(data.get("customer"))
    return _upsert(
        StripeRefund, connection, data,
        {
            "charge_stripe_id": ref(data.get("charge")),
            "payment_intent_stripe_id": ref(data.get("payment_intent")),
            "customer_stripe_id": customer_stripe_id,
            "customer_id": _linked_customer_id(connection, customer_stripe_id),
            "status": data.get("status") or "", "reason": data.get("reason") or "",
            "currency": (data.get("currency") or "").upper(),
            "amount_minor": int(data.get("amount") or 0),
        },
    )  # fmt: skip


# --- staff actions ------------------------------------------------------------------------------


@transaction.atomic
def stripe_customer_link(*, stripe_customer: StripeCustomer, customer: Customer) -> StripeCustomer:
    """Link a Stripe customer to a Metron customer by hand (the unmatched queue's action).

    The link survives re-syncs; the customer's revenue and plan history follow.
    """
    from ingestion.services.stripe.plans import customer_plan_history_sync

    if customer.organization_id != stripe_customer.organization_id:
        raise ValueError("The customer belongs to another organization.")
    stripe_customer.customer = customer
    stripe_customer.matched_by = Match.MANUAL
    stripe_customer.save(update_fields=["customer", "matched_by", "updated_at"])
    if not customer.stripe_customer_id:
        customer_update(customer=customer, stripe_customer_id=stripe_customer.stripe_id)
    customer_link_propagate(stripe_customer=stripe_customer)
    customer_plan_history_sync(customer=customer)
    return stripe_customer
