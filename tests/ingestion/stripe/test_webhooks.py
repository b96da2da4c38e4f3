"""Signed webhooks: forged ones write nothing; any delivery order gives the same revenue."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from django.db import transaction
from django.urls import reverse

from accounts.models import CustomerPlan
from ingestion.models import (
    RevenueLine,
    RevenueRecognition,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePrice,
    StripeProduct,
    StripeRefund,
    StripeSubscription,
    StripeSubscriptionItem,
)
from ingestion.revenue_selectors import (
    billed_collected_by_customer_month,
    revenue_by_customer_period,
)
from ingestion.services.stripe.events import stripe_webhook_receive
from ingestion.tasks import stripe as tasks
from tests.accounts.factories import CustomerFactory
from tests.ingestion.stripe.conftest import connect
from tests.ingestion.stripe.helpers import unix

WRITTEN = (
    StripeEvent, StripeCustomer, StripeProduct, StripePrice, StripeSubscription,
    StripeSubscriptionItem, StripeInvoice, StripeInvoiceLine, StripeCreditNote, StripeRefund,
    RevenueLine, RevenueRecognition, CustomerPlan,
)  # fmt: skip
JAN, FEB, MAR, APR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)


def url(org) -> str:
    return reverse("stripe-webhook", kwargs={"org_slug": org.slug})


def post(client, org, body: bytes, header: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post(url(org), data=body, content_type="application/json", **extra)


def rows_written() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


@pytest.fixture
def story(org, plans, empty_fake):
    """A customer's first three months on Stripe, as the events Stripe sent.

    Starter (29.00) from Jan 5; upgraded to Pro (99.00) on Feb 5; 33.00 of February
    refunded, 19.00 credited; March's invoice voided.
    """
    fake = empty_fake
    connect(org, fake)
    customer = CustomerFactory(organization=org, external_id="acct-1", name="Account 1")
    product = fake.add_product("Metron", at=unix(2025, 12, 1))
    fake.add_price(product=product["id"], unit_amount=2900, price_id="price_starter")
    fake.add_price(product=product["id"], unit_amount=9900, price_id="price_pro")
    events = []

    stripe_customer, event = fake.add_customer(name="Account 1", external_id="acct-1",
                                               at=unix(2026, 1, 5))  # fmt: skip
    events.append(event)
    subscription, event = fake.add_subscription(
        customer=stripe_customer["id"], price="price_starter", start=unix(2026, 1, 5, 10)
    )
    events.append(event)

    def invoice(price, amount, start, end, outcome):
        created, event = fake.add_invoice(
            customer=stripe_customer["id"], subscription=subscription["id"], at=start,
            lines=[{"amount": amount, "price": price, "period": (start, end)}],
        )  # fmt: skip
        events.append(event)
        events.append(fake.finalize_invoice(created["id"], at=start + 60))
        if outcome == "pay":
            events.extend(fake.pay_invoice(created["id"], at=start + 120))
        else:
            events.append(fake.void_invoice(created["id"], at=start + 120))
        return created

    invoice("price_starter", 2900, unix(2026, 1, 5, 10), unix(2026, 2, 5, 10), "pay")
    events.append(fake.change_subscription_price(subscription["id"], price="price_pro",
                                                 at=unix(2026, 2, 5, 10)))  # fmt: skip
    february = invoice("price_pro", 9900, unix(2026, 2, 5, 10), unix(2026, 3, 5, 10), "pay")
    events.append(fake.refund_invoice(february["id"], amount=3300, at=unix(2026, 2, 10)))
    events.append(fake.add_credit_note(february["id"], amount=1900, at=unix(2026, 2, 11)))
    events.append(fake.renew_subscription(subscription["id"], period_start=unix(2026, 3, 5, 10)))
    invoice("price_pro", 9900, unix(2026, 3, 5, 10), unix(2026, 4, 5, 10), "void")
    return fake, events, customer


def revenue(org) -> dict:
    """Everything the revenue selectors report, per customer and month, plus plan history."""
    recognized = revenue_by_customer_period(
        organization=org, measure="recognized", start=JAN, end=APR
    )
    return {
        "recognized": recognized,
        "billed_collected": billed_collected_by_customer_month(
            organization=org, start=JAN, end=APR
        ),
        "plans": list(
            CustomerPlan.objects.order_by("valid_from").values_list(
                "plan__code", "valid_from", "valid_to"
            )
        ),
    }


def deliver_all(client, org, fake, deliveries, capture) -> None:
    for event in deliveries:
        body, header = fake.sign(event)
        with capture(execute=True):
            response = post(client, org, body, header)
        assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_the_story_in_stripes_order_gives_the_expected_figures(
    client, org, story, django_capture_on_commit_callbacks
):
    fake, events, customer = story

    deliver_all(client, org, fake, events, django_capture_on_commit_callbacks)

    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    figures = revenue(org)
    c = customer.pk
    # Recognized per day: Jan 5–Feb 4 carry 29.00 (17 days of 0.94, 14 of 0.93); Feb 5–Mar 4
    # carry 99.00 (16 × 3.54, 12 × 3.53) less the credit note's 19.00 (24 × 0.68, 4 × 0.67).
    assert figures["recognized"] == {
        (c, JAN): Decimal("25.28"),  # 17 × 0.94 + 10 × 0.93
        (c, FEB): Decimal("72.28"),  # 4 × 0.93 + (16 × 3.54 + 8 × 3.53) − 24 × 0.68
        (c, MAR): Decimal("11.44"),  # 4 × 3.53 − 4 × 0.67; March's voided invoice: nothing
    }
    assert figures["billed_collected"] == {
        (c, JAN): {"billed": Decimal("29.00"), "collected": Decimal("29.00")},
        (c, FEB): {"billed": Decimal("80.00"), "collected": Decimal("66.00")},  # 99 − 19, 99 − 33
    }
    codes = [
        (code, start.date(), end.date() if end else None) for code, start, end in figures["plans"]
    ]
    assert codes == [
        ("starter", date(2026, 1, 5), date(2026, 2, 5)),
        ("pro", date(2026, 2, 5), None),
    ]


def receive_and_process(org, fake, deliveries) -> None:
    """Each delivery through the webhook service (signature, dedup), then the task body.

    What the view and the django-q2 task do, minus HTTP and queue plumbing (the tests
    above and below go through both), so a hundred orders stay fast.
    """
    for event in deliveries:
        body, header = fake.sign(event)
        result = stripe_webhook_receive(org_slug=org.slug, payload=body, header=header)
        assert result.status == 200, result.body
        if not result.body["duplicate"]:
            row = StripeEvent.objects.get(organization=org, event_id=event["id"])
            assert tasks.stripe_event_process(row.pk) == "processed"


@pytest.mark.django_db
def test_three_replays_in_a_hundred_random_orders_give_identical_revenue(org, story):
    fake, events, _ = story
    with transaction.atomic():
        receive_and_process(org, fake, events)
        canonical = revenue(org)
        transaction.set_rollback(True)
    assert canonical["recognized"] and canonical["billed_collected"] and canonical["plans"]
    rng = random.Random(20261123)
    deliveries = events * 3

    for permutation in range(100):
        order = deliveries[:]
        rng.shuffle(order)
        with transaction.atomic():
            receive_and_process(org, fake, order)

            assert revenue(org) == canonical, f"permutation {permutation}"
            assert StripeEvent.objects.count() == len({e["id"] for e in events}) == len(events)
            assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
            assert set(StripeEvent.objects.values_list("attempts", flat=True)) == {1}
            transaction.set_rollback(True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forgery",
    ["no header", "wrong secret", "body altered", "another payload's signature", "stale",
     "future", "unknown organization", "not json", "not an event", "garbage header"],
)  # fmt: skip
def test_forged_stale_and_future_deliveries_are_400_and_write_nothing(
    client, org, story, forgery, django_capture_on_commit_callbacks
):
    fake, events, _ = story
    event, other = events[1], events[2]
    now = int(time.time())
    body, header = fake.sign(event)
    target = org
    if forgery == "no header":
        header = None
    elif forgery == "wrong secret":
        body, header = fake.sign(event, secret="whsec_not_the_endpoint_secret")
    elif forgery == "body altered":
        body = body.replace(b'"status":"active"', b'"status":"canceled"')
        assert b'"status":"canceled"' in body
    elif forgery == "another payload's signature":
        _, header = fake.sign(other)
    elif forgery == "stale":
        body, header = fake.sign(event, timestamp=now - 301)
    elif forgery == "future":
        body, header = fake.sign(event, timestamp=now + 600)
    elif forgery == "unknown organization":
        target = type(org)(slug="nobody")
    elif forgery == "not json":
        body, header = fake.sign(b"{not json")
    elif forgery == "not an event":
        body, header = fake.sign(json.dumps({"id": "evt_1", "object": "charge"}))
    elif forgery == "garbage header":
        header = "t=abc,v1=zz"
    fake.requests.clear()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, target, body, header)

    assert response.status_code == 400, response.content
    assert "error" in response.json()
    assert set(rows_written().values()) == {0}
    assert callbacks == [] and fake.requests == []


@pytest.mark.django_db
def test_the_tolerance_edges_and_secret_rotation_are_accepted(
    client, org, story, django_capture_on_commit_callbacks
):
    fake, events, _ = story
    now = int(time.time())
    for event, timestamp in ((events[0], now - 290), (events[1], now + 240)):
        body, header = fake.sign(event, timestamp=timestamp)
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, org, body, header).status_code == 200
    # During a secret rotation Stripe signs with both secrets: one valid v1 suffices.
    body, header = fake.sign(events[2])
    _, old = fake.sign(events[2], secret="whsec_old", timestamp=int(header.split(",")[0][2:]))
    rotated = f"{header},v1={old.split('v1=')[1]}"
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, org, body, rotated).status_code == 200
    assert StripeEvent.objects.count() == 3
    assert client.get(url(org)).status_code == 405


@pytest.mark.django_db
def test_a_redelivery_is_answered_200_and_not_processed_again(
    client, org, story, django_capture_on_commit_callbacks
):
    fake, events, _ = story
    body, header = fake.sign(events[0])
    with django_capture_on_commit_callbacks(execute=True) as first:
        assert post(client, org, body, header).json()["duplicate"] is False
    with django_capture_on_commit_callbacks(execute=True) as second:
        response = post(client, org, body, header)

    assert response.status_code == 200 and response.json()["duplicate"] is True
    assert (len(first), len(second)) == (1, 0)
    assert StripeEvent.objects.get().attempts == 1


@pytest.mark.django_db
def test_unhandled_event_types_are_stored_and_ignored(
    client, org, story, django_capture_on_commit_callbacks
):
    fake, events, _ = story
    event = {**events[0], "id": "evt_other_type", "type": "payout.paid",
             "data": {"object": {"id": "po_1", "object": "payout"}}}  # fmt: skip
    body, header = fake.sign(event)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, org, body, header).status_code == 200

    assert StripeEvent.objects.get().status == "ignored"


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_deliveries_of_one_event_are_processed_once(live_server, org, story):
    fake, events, _ = story
    paid = next(e for e in events if e["type"] == "invoice.paid")
    invoice_id = paid["data"]["object"]["id"]
    body, header = fake.sign(paid)
    fake.requests.clear()
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def deliver():
        barrier.wait()
        response = requests.post(
            f"{live_server.url}{url(org)}", data=body, timeout=30,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )  # fmt: skip
        statuses.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 10
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.status, stored.attempts) == (paid["id"], "processed", 1)
    # One side effect: the invoice was fetched from Stripe once.
    assert fake.requests_to(f"/v1/invoices/{invoice_id}") == 1
    assert StripeInvoice.objects.get().status == "paid"


@pytest.mark.django_db
def test_events_whose_processing_got_lost_are_requeued(org, story):
    fake, events, _ = story
    body, header = fake.sign(events[0])
    # Delivered, but the enqueue after commit never ran (no on_commit in this test).
    assert stripe_webhook_receive(org_slug=org.slug, payload=body, header=header).status == 200
    stored = StripeEvent.objects.get()
    assert stored.status == "received"
    StripeEvent.objects.filter(pk=stored.pk).update(
        created_at=stored.created_at - timedelta(minutes=11)
    )

    assert tasks.stripe_events_retry() == 1  # tasks run inline in tests

    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == ("processed", 1)
    assert tasks.stripe_events_retry() == 0
