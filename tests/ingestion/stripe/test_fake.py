"""The fake Stripe: deterministic from its seed, Stripe's list and error wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import stripe

from ingestion.fakes.stripe import (
    API_VERSION,
    BillingCustomer,
    BillingPeriod,
    BillingShares,
    start_stripe_fake,
    start_stripe_fake_from_periods,
)
from tests.ingestion.stripe.conftest import START


def get(fake, path, key=None, **params):
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    return requests.get(f"{fake.url}{path}", params=params, headers=headers, timeout=10)


def snapshot(fake) -> str:
    return json.dumps([fake.objects, fake.invoice_lines], sort_keys=True, default=str)


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_history(plans, customers):
    def make(seed):
        fake = start_stripe_fake(customers=customers, plans=list(plans.values()), months=6,
                                 seed=seed, start=START)  # fmt: skip
        fake.stop()
        return fake

    first, again, other = make(7), make(7), make(8)

    assert snapshot(first) == snapshot(again)
    assert snapshot(first) != snapshot(other)
    # Six customers plus one Stripe-only; monthly invoices from each sign-up until July 1.
    assert first.count("customer") == 7 and first.count("subscription") == 7
    assert {p["id"] for p in first.objects["price"].values()} == {
        "price_starter",
        "price_pro",
        "price_scale",
    }
    metadata = [c["metadata"].get("metron_customer_id") for c in first.objects["customer"].values()]
    assert sorted(filter(None, metadata)) == [c.external_id for c in customers]


@pytest.mark.django_db
def test_lists_page_like_stripe(stripe_fake):
    first = get(stripe_fake, "/v1/invoices", limit=5).json()
    second = get(
        stripe_fake, "/v1/invoices", limit=5, starting_after=first["data"][-1]["id"]
    ).json()
    back = get(stripe_fake, "/v1/invoices", limit=5, ending_before=second["data"][0]["id"]).json()

    assert (first["object"], first["url"], first["has_more"]) == ("list", "/v1/invoices", True)
    assert [i["id"] for i in back["data"]] == [i["id"] for i in first["data"]]
    created = [i["created"] for i in first["data"] + second["data"]]
    assert created == sorted(created, reverse=True)  # newest first
    invoice = first["data"][0]
    line = invoice["lines"]["data"][0]
    assert line["pricing"]["type"] == "price_details" and "price" not in line
    assert invoice["parent"]["subscription_details"]["subscription"].startswith("sub_")
    subscription = get(
        stripe_fake,
        f"/v1/subscriptions/{invoice['parent']['subscription_details']['subscription']}",
    ).json()
    assert "current_period_start" not in subscription
    assert subscription["items"]["data"][0]["current_period_end"] > 0
    everything = get(stripe_fake, "/v1/subscriptions", limit=100, status="all").json()["data"]
    live = get(stripe_fake, "/v1/subscriptions", limit=100).json()["data"]
    assert len(everything) == 7 and all(s["status"] != "canceled" for s in live)


@pytest.mark.django_db
def test_errors_look_like_stripes(stripe_fake):
    assert get(stripe_fake, "/v1/customers", key="sk_test_wrong").status_code == 401
    missing = get(stripe_fake, "/v1/invoices/in_nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    stripe_fake.fail_next(503)
    assert get(stripe_fake, "/v1/customers").status_code == 503
    assert get(stripe_fake, "/v1/customers").status_code == 200


def test_events_are_signed_with_the_stripe_packages_helper(empty_fake):
    customer, event = empty_fake.add_customer(name="A", external_id="a", at=1767225600)
    body, header = empty_fake.sign(event, timestamp=1767225600)

    verified = stripe.WebhookSignature.verify_header(body, header, empty_fake.webhook_secret, None)

    assert verified is True
    assert (event["type"], event["api_version"], event["data"]["object"]["id"]) == (
        "customer.created",
        API_VERSION,
        customer["id"],
    )


def test_billing_from_periods_keeps_its_ids_as_time_passes_and_customers_are_added():
    plans = [{"code": "pro", "name": "Pro", "price": "99.00", "stripe_price_ids": ["price_pro"]}]
    periods = (BillingPeriod("pro", datetime(2026, 1, 15, tzinfo=UTC)),)
    alice = BillingCustomer("cus_Alice", "Alice", periods, external_id="alice")
    bob = BillingCustomer("cus_Bob", "Bob", periods, external_id="bob")
    carol = BillingCustomer("cus_Carol", "Carol", periods, external_id="carol")
    late = BillingShares(late=1.0)  # every invoice open for 30 days

    def make(customers, now, since=None):
        fake = start_stripe_fake_from_periods(
            plans=plans, customers=customers, now=now, seed=3, shares=late, invoices_since=since
        )
        fake.stop()
        return fake

    march = make([alice, bob], datetime(2026, 3, 20, tzinfo=UTC))
    may = make([carol, alice, bob], datetime(2026, 5, 20, tzinfo=UTC))
    april_on = make([alice], datetime(2026, 5, 20, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))

    for kind in ("customer", "subscription", "invoice", "charge"):
        assert set(march.objects[kind]) <= set(may.objects[kind]), kind
        assert set(april_on.objects[kind]) <= set(may.objects[kind]), kind
    assert sorted(april_on.objects["invoice"]) == ["in_Alicex0004", "in_Alicex0005"]
    assert sorted(i for i in march.objects["invoice"] if i.startswith("in_Alice")) == [
        "in_Alicex0001", "in_Alicex0002", "in_Alicex0003"
    ]  # fmt: skip
    # March's open invoice is paid by May, under the same id and number.
    opened = [i for i in march.objects["invoice"].values() if i["status"] == "open"]
    assert {i["id"] for i in opened} == {"in_Alicex0003", "in_Bobx0003"}
    settled = may.objects["invoice"]["in_Alicex0003"]
    assert (settled["status"], settled["number"]) == ("paid", opened[0]["number"])
