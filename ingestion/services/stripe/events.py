"""Stripe webhooks: verified, stored once, processed in a task, independent of order.

Receiving (the view calls :func:`stripe_webhook_receive`): the signature is
checked on the raw body with the stripe package (300 s tolerance for old
timestamps); timestamps more than 5 minutes in the *future*, which stripe-python
accepts, are refused too. Anything forged, stale, future-dated, malformed or for
an unknown organization is answered 400 and nothing is written. A valid event is
inserted once, the unique ``(organization, event_id)`` constraint absorbing
redeliveries and concurrent deliveries, and its processing is enqueued on
commit; the answer goes out at once.

Processing (:func:`stripe_event_process`, run by a django-q2 task) makes the
result independent of delivery order by **re-fetching**: the event's snapshot
is never applied; the object it names is retrieved from the Stripe API as it is
now (an invoice with all its lines, a charge's refunds, …) and upserted, and the
revenue it carries is rebuilt from the mirror. Events are snapshots taken at
different times that Stripe delivers in any order, possibly long after; the
current object is the only state every ordering agrees on. (A guard on
``created`` was not chosen: events have one-second resolution and many share a
second, e.g. ``invoice.finalized`` and ``invoice.paid``.) Processing is claimed
by one conditional UPDATE, so a task delivered twice runs once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Organization
from ingestion.models import (
    RevenueLine,
    StripeConnection,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeRefund,
    StripeSubscription,
)
from ingestion.services import revenue
from ingestion.services.stripe import client as api
from ingestion.services.stripe import mirror
from ingestion.services.stripe.plans import customer_plan_history_sync

SIGNATURE_TOLERANCE = 300  # seconds a signature may be old (stripe-python's default)
FUTURE_TOLERANCE = 300  # seconds a timestamp may be ahead of our clock
PROCESS_TASK = "ingestion.tasks.stripe.stripe_event_process"
REQUEUE_AFTER = timedelta(minutes=10)
MAX_PROCESS_ATTEMPTS = 5
REQUEUE_BATCH = 1000
MAX_ERROR = 4000

# event type → what to re-fetch
HANDLED_TYPES = {
    **dict.fromkeys(["customer.created", "customer.updated", "customer.deleted"], "customer"),
    **dict.fromkeys(["product.created", "product.updated", "product.deleted"], "product"),
    **dict.fromkeys(["price.created", "price.updated", "price.deleted"], "price"),
    **dict.fromkeys(
        [
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.trial_will_end",
        ],
        "subscription",
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.voided",
            "invoice.marked_uncollectible",
            "invoice.updated",
            "invoice.deleted",
        ],
        "invoice",
    ),  # fmt: skip
    "charge.refunded": "charge",
    **dict.fromkeys(
        ["credit_note.created", "credit_note.updated", "credit_note.voided"], "credit_note"
    ),
}


class WebhookRejected(Exception):
    """A delivery that must be answered 400, with nothing written."""


@dataclass(frozen=True)
class WebhookResult:
    status: int
    body: dict[str, Any]


def _header_timestamp(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t":
            return int(value)
    raise WebhookRejected("No timestamp in the Stripe-Signature header.")


def stripe_webhook_verify(*, payload: bytes, header: str | None, secret: str) -> dict:
    """The event of a genuine, fresh delivery; raises :class:`WebhookRejected` otherwise."""
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, SIGNATURE_TOLERANCE)
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected(f"Signature check failed: {error.user_message or error}") from None
    except UnicodeDecodeError:
        raise WebhookRejected("The body is not UTF-8.") from None
    if _header_timestamp(header or "") > timezone.now().timestamp() + FUTURE_TOLERANCE:
        raise WebhookRejected("The signature timestamp is more than 5 minutes in the future.")
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookRejected("The body is not JSON.") from None
    obj = (event.get("data") or {}).get("object") if isinstance(event, dict) else None
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and event["id"].startswith("evt_")
        and isinstance(event.get("type"), str)
        and isinstance(obj, dict)
        and isinstance(obj.get("id"), str)
    ):
        raise WebhookRejected("Not a Stripe event (object, id, type and data.object.id).")
    return event


def _enqueue(stripe_event_id: int) -> None:
    from django_q.tasks import async_task

    async_task(PROCESS_TASK, stripe_event_id, task_name=f"stripe event {stripe_event_id}")


_INSERT_EVENT = """
    INSERT INTO {table} (
        created_at, updated_at, organization_id, event_id, type, api_version, livemode,
        stripe_created, object_type, object_id, payload, status, attempts, error
    ) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, 0, '')
    ON CONFLICT (organization_id, event_id) DO NOTHING
    RETURNING id
"""


def stripe_event_record(*, connection: StripeConnection, event: dict) -> int | None:
    """Store the event once; returns the new row's id, or None if the event id is known.

    One ``INSERT … ON CONFLICT DO NOTHING`` on the unique ``(organization, event_id)``:
    concurrent deliveries of one event wait for the first insert and find it there.
    On first insert, processing is enqueued after commit.
    """
    obj = event["data"]["object"]
    now = timezone.now()
    with transaction.atomic(), db_connection.cursor() as cursor:
        cursor.execute(
            _INSERT_EVENT.format(table=StripeEvent._meta.db_table),
            [
                now, now, connection.organization_id, event["id"], event["type"],
                str(event.get("api_version") or ""), bool(event.get("livemode", False)),
                mirror.ts(event.get("created")), str(obj.get("object") or ""), obj["id"],
                json.dumps(event), StripeEvent.Status.RECEIVED,
            ],
        )  # fmt: skip
        inserted = cursor.fetchone()
        if inserted is None:
            return None
        row_id = inserted[0]
        # robust: a failing enqueue (or, in sync mode, a failing task) must not turn
        # the already committed delivery into a 500; the event row stays RECEIVED.
        transaction.on_commit(lambda: _enqueue(row_id), robust=True)
    return row_id


def stripe_webhook_receive(*, org_slug: str, payload: bytes, header: str | None) -> WebhookResult:
    """Verify, deduplicate and store a delivery; the answer for Stripe."""
    connection = (
        StripeConnection.objects.select_related("organization")
        .filter(organization__slug=org_slug, status=StripeConnection.Status.ACTIVE)
        .first()
    )
    if connection is None:
        return WebhookResult(400, {"error": "Unknown organization or no active Stripe connection."})
    try:
        event = stripe_webhook_verify(
            payload=payload, header=header, secret=connection.webhook_secret
        )
    except WebhookRejected as error:
        return WebhookResult(400, {"error": str(error)})
    row_id = stripe_event_record(connection=connection, event=event)
    return WebhookResult(200, {"received": True, "duplicate": row_id is None, "id": event["id"]})


# --- processing ---------------------------------------------------------------------------


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"])


def stripe_event_claim(*, stripe_event_id: int) -> StripeEvent | None:
    """Take the event for processing (one conditional UPDATE), or None if done or taken."""
    claimable = Q(status__in=[StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED]) | Q(
        status=StripeEvent.Status.PROCESSING, claimed_at__lt=_stale_before()
    )
    claimed = StripeEvent.objects.filter(claimable, pk=stripe_event_id).update(
        status=StripeEvent.Status.PROCESSING, attempts=F("attempts") + 1,
        claimed_at=timezone.now(), error="",
    )  # fmt: skip
    if not claimed:
        return None
    return StripeEvent.objects.select_related("organization").get(pk=stripe_event_id)


def _finish(event: StripeEvent, status: str, error: str = "") -> None:
    StripeEvent.objects.filter(pk=event.pk).update(
        status=status, error=error[:MAX_ERROR], processed_at=timezone.now()
    )


def stripe_event_process(*, stripe_event_id: int) -> str:
    """Apply one stored event by re-fetching its object; returns the final status.

    Raises on failure (after recording it) so the task queue retries.
    """
    event = stripe_event_claim(stripe_event_id=stripe_event_id)
    if event is None:
        return "skipped"
    handler = HANDLED_TYPES.get(event.type)
    if handler is None:
        _finish(event, StripeEvent.Status.IGNORED)
        return StripeEvent.Status.IGNORED
    try:
        from ingestion.services.stripe.backfill import active_connection

        connection = active_connection(event.organization)
        object_sync(connection=connection, kind=handler, stripe_id=event.object_id)
    except Exception as error:
        _finish(event, StripeEvent.Status.FAILED, f"{type(error).__name__}: {error}")
        raise
    _finish(event, StripeEvent.Status.PROCESSED)
    return StripeEvent.Status.PROCESSED


def stripe_events_requeue(
    *, older_than: timedelta = REQUEUE_AFTER, max_attempts: int = MAX_PROCESS_ATTEMPTS
) -> int:
    """Enqueue again the events whose processing got lost: still RECEIVED (the enqueue
    after commit failed), FAILED with attempts left, or PROCESSING by a dead worker.

    Run every few minutes by a schedule; returns how many were enqueued.
    """
    cutoff = timezone.now() - older_than
    stuck = StripeEvent.objects.filter(
        Q(status=StripeEvent.Status.RECEIVED, created_at__lt=cutoff)
        | Q(status=StripeEvent.Status.FAILED, attempts__lt=max_attempts, processed_at__lt=cutoff)
        | Q(status=StripeEvent.Status.PROCESSING, claimed_at__lt=_stale_before())
    )
    ids = list(stuck.order_by("created_at").values_list("pk", flat=True)[:REQUEUE_BATCH])
    for pk in ids:
        _enqueue(pk)
    return len(ids)


def stripe_events_reprocess(*, organization: Organization, ids: list[int]) -> int:
    """Put failed events back in the queue (the admin action); returns how many."""
    count = 0
    for event in StripeEvent.objects.filter(
        organization=organization, pk__in=ids, status=StripeEvent.Status.FAILED
    ):
        transaction.on_commit(lambda pk=event.pk: _enqueue(pk), robust=True)
        count += 1
    return count


# --- re-fetch and upsert ------------------------------------------------------------------


def _ensure_customer(connection: StripeConnection, client, stripe_customer_id: str) -> None:
    """Mirror the customer an object refers to if it is not mirrored yet (any order works)."""
    if (
        not stripe_customer_id
        or StripeCustomer.objects.filter(
            organization=connection.organization, stripe_id=stripe_customer_id
        ).exists()
    ):
        return
    data = api.retrieve(client, "customers", stripe_customer_id)
    if data is not None:
        mirror.customer_upsert(connection=connection, data=data)


def _sync_plans(customer_id: int | None) -> None:
    if customer_id:
        from accounts.models import Customer

        customer_plan_history_sync(customer=Customer.objects.get(pk=customer_id))


def object_sync(*, connection: StripeConnection, kind: str, stripe_id: str) -> None:
    """Re-fetch one object (by event kind) from Stripe and upsert it with its effects."""
    client = api.stripe_client(connection)
    organization = connection.organization
    if kind in ("customer", "product", "price"):
        resource = {"customer": "customers", "product": "products", "price": "prices"}[kind]
        data = api.retrieve(client, resource, stripe_id) or {"id": stripe_id, "deleted": True}
        with transaction.atomic():
            if kind == "customer":
                row = mirror.customer_upsert(connection=connection, data=data)
                _sync_plans(row.customer_id)
            elif kind == "product":
                mirror.product_upsert(connection=connection, data=data)
            else:
                mirror.price_upsert(connection=connection, data=data)
        return
    # Unchanged since the last event about it (Stripe sends several per change): the
    # mirror and everything derived from it are already this state's.
    if kind == "subscription":
        data = api.retrieve(client, "subscriptions", stripe_id)
        if data is None or mirror.is_current(
            StripeSubscription, connection, stripe_id, mirror.content_hash(data)
        ):
            return
        _ensure_customer(connection, client, mirror.ref(data.get("customer")))
        with transaction.atomic():
            row = mirror.subscription_upsert(connection=connection, data=data)
            _sync_plans(row.customer_id)
        return
    if kind == "invoice":
        fetched = api.invoice_retrieve(client, stripe_id)
        if fetched is None:  # a deleted draft
            with transaction.atomic():
                RevenueLine.objects.filter(
                    organization=organization, invoice_stripe_id=stripe_id
                ).delete()
                StripeInvoice.objects.filter(
                    organization=organization, stripe_id=stripe_id
                ).delete()
            return
        data, lines = fetched
        if mirror.is_current(
            StripeInvoice, connection, stripe_id, mirror.content_hash(data, lines)
        ):
            return
        _ensure_customer(connection, client, mirror.ref(data.get("customer")))
        with transaction.atomic():
            row = mirror.invoice_upsert(connection=connection, data=data, lines=lines)
            revenue.revenue_rebuild_invoice(invoice=row)
            _sync_plans(row.customer_id)
        return
    if kind == "charge":
        refunds = [
            data
            for data in api.refunds_of_charge(client, stripe_id)
            if not mirror.is_current(
                StripeRefund, connection, data["id"], mirror.content_hash(data)
            )
        ]
        for data in refunds:
            _ensure_customer(connection, client, mirror.ref(data.get("customer")))
        with transaction.atomic():
            for data in refunds:
                row = mirror.refund_upsert(connection=connection, data=data)
                revenue.revenue_rebuild_refund(refund=row)
        return
    if kind == "credit_note":
        data = api.retrieve(client, "credit_notes", stripe_id)
        if data is None or mirror.is_current(
            StripeCreditNote, connection, stripe_id, mirror.content_hash(data)
        ):
            return
        _ensure_customer(connection, client, mirror.ref(data.get("customer")))
        with transaction.atomic():
            row = mirror.credit_note_upsert(connection=connection, data=data)
            revenue.revenue_rebuild_credit_note(credit_note=row)
        return
    raise ValueError(f"Unknown Stripe object kind {kind!r}.")
