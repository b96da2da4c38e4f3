"""The backfill against the fake Stripe, through the real stripe client over HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import Customer, CustomerPlan
from accounts.services import customer_plan_history_replace
from ingestion.fakes.stripe import BillingCustomer, BillingPeriod, start_stripe_fake_from_periods
from ingestion.models import (
    RevenueLine,
    StripeCreditNote,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLine,
    StripePrice,
    StripeProduct,
    StripeRefund,
    StripeSubscription,
    StripeSubscriptionItem,
    SyncRun,
    UnmatchedStripeCustomer,
)
from ingestion.services.stripe.backfill import stripe_backfill_execute, stripe_backfill_start
from ingestion.services.stripe.mirror import stripe_customer_link
from ingestion.services.stripe.plans import customer_plan_history_sync
from tests.accounts.factories import CustomerFactory, PlanFactory
from tests.ingestion.stripe.conftest import connect
from tests.ingestion.stripe.helpers import (
    expected_totals,
    monthly_subscription,
    stored_totals,
    unix,
)

pytestmark = pytest.mark.django_db

KINDS = {
    "customer": StripeCustomer, "product": StripeProduct, "price": StripePrice,
    "subscription": StripeSubscription, "invoice": StripeInvoice,
    "credit_note": StripeCreditNote, "refund": StripeRefund,
}  # fmt: skip


def backfill(org, *, since=None, page_size=100) -> SyncRun:
    run = stripe_backfill_start(organization=org, since=since)
    return stripe_backfill_execute(run_id=run.pk, page_size=page_size)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_backfill_mirrors_every_object_and_every_invoice_line(
    org, connection, stripe_fake, customers
):
    fake = stripe_fake
    big, _ = fake.add_invoice(
        customer=next(iter(fake.objects["customer"])), at=unix(2026, 6, 20),
        lines=[{"amount": 100 + i, "price": "price_starter",
                "period": (unix(2026, 6, 20), unix(2026, 7, 20))} for i in range(120)],
    )  # fmt: skip
    fake.finalize_invoice(big["id"], at=unix(2026, 6, 20, 1))
    fake.pay_invoice(big["id"], at=unix(2026, 6, 20, 2))

    run = backfill(org, page_size=3)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    for kind, model in KINDS.items():
        assert set(model.objects.values_list("stripe_id", flat=True)) == set(fake.objects[kind])
    # 120 lines: 10 embedded in the invoice, then 100 + 10 from /v1/invoices/{id}/lines.
    lines = list(
        StripeInvoiceLine.objects.filter(invoice__stripe_id=big["id"]).order_by("position")
    )
    assert [line.stripe_id for line in lines] == [
        line["id"] for line in fake.invoice_lines[big["id"]]
    ]
    assert fake.requests_to(f"/v1/invoices/{big['id']}/lines") == 2
    assert StripeInvoiceLine.objects.count() == sum(len(v) for v in fake.invoice_lines.values())
    # Every object counted once; pages of 3 per list (an empty list is one page).
    total = sum(len(fake.objects[kind]) for kind in KINDS)
    assert run.items == total
    assert run.pages == sum(max(1, -(-len(fake.objects[kind]) // 3)) for kind in KINDS)
    # Subscriptions were listed with status=all (canceled ones included).
    assert all(
        r.query.get("status") == ["all"] for r in fake.requests if r.path == "/v1/subscriptions"
    )
    assert StripeSubscription.objects.filter(status="canceled").exists()
    # Revenue equals what Stripe's objects say, to the cent; recognized rows sum to billed.
    expected = expected_totals(fake)
    stored = stored_totals(org)
    assert stored["billed"] == expected["billed"]
    assert stored["collected"] == expected["collected"]
    assert stored["recognized"] == stored["recognized_days"] == expected["billed"]
    # The big invoice: 120 lines of 1.00..2.19 USD = 191.40 billed, 191.40 collected.
    big_lines = RevenueLine.objects.filter(invoice_stripe_id=big["id"])
    assert sum(line.billed for line in big_lines) == Decimal("191.40")
    assert big_lines.get(kind="payment").collected == Decimal("191.40")


def test_a_second_backfill_changes_nothing(org, connection, stripe_fake):
    backfill(org)
    before = {
        model: sorted(model.objects.values_list("stripe_id", "updated_at"))
        for model in (StripeInvoice, StripeSubscription)
    }
    plans_before = list(
        CustomerPlan.objects.order_by("pk").values_list("pk", "plan_id", "valid_from", "valid_to")
    )
    revenue_before = stored_totals(org)

    run = backfill(org)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert (
        list(
            CustomerPlan.objects.order_by("pk").values_list(
                "pk", "plan_id", "valid_from", "valid_to"
            )
        )
        == plans_before
    )
    assert stored_totals(org) == revenue_before
    for model, rows in before.items():
        assert [
            stripe_id
            for stripe_id, _ in sorted(model.objects.values_list("stripe_id", "updated_at"))
        ] == [stripe_id for stripe_id, _ in rows]


def test_item_periods_and_status_make_the_plan_history(org, plans, empty_fake):
    fake = empty_fake
    connect(org, fake)
    product = fake.add_product("Metron")
    fake.add_price(product=product["id"], unit_amount=2900, price_id="price_starter")
    fake.add_price(product=product["id"], unit_amount=9900, price_id="price_pro")
    fake.add_price(product=product["id"], unit_amount=500, price_id="price_addon")  # no plan
    customer = CustomerFactory(organization=org, external_id="acct-1")
    stripe_customer, _ = fake.add_customer(name="Acct 1", external_id="acct-1", at=unix(2026, 1, 1))
    # Starter from Jan 10 (two periods), upgraded to Pro on Mar 10, canceled May 10.
    subscription, _ = monthly_subscription(
        fake, customer=stripe_customer["id"], price="price_starter", start=unix(2026, 1, 10, 12),
        months=2,
    )  # fmt: skip
    fake.change_subscription_price(subscription["id"], price="price_pro", at=unix(2026, 3, 10, 12))
    for month in (3, 4):
        start, end = unix(2026, month, 10, 12), unix(2026, month + 1, 10, 12)
        fake.renew_subscription(subscription["id"], period_start=start)
        invoice, _ = fake.add_invoice(
            customer=stripe_customer["id"], subscription=subscription["id"], at=start,
            lines=[{"amount": 9900, "price": "price_pro", "period": (start, end)}],
        )  # fmt: skip
        fake.finalize_invoice(invoice["id"], at=start + 60)
        fake.pay_invoice(invoice["id"], at=start + 120)
    fake.cancel_subscription(subscription["id"], at=unix(2026, 5, 10, 12))
    # A subscription that never started (incomplete) says nothing about plans.
    fake.add_subscription(customer=stripe_customer["id"], price="price_starter",
                          start=unix(2026, 6, 1), status="incomplete_expired")  # fmt: skip

    run = backfill(org)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    item = StripeSubscriptionItem.objects.get(subscription__stripe_id=subscription["id"])
    assert (item.current_period_start, item.current_period_end) == (
        at(2026, 4, 10, 12),
        at(2026, 5, 10, 12),
    )
    assert item.plan == plans["pro"]
    history = list(
        CustomerPlan.objects.filter(customer=customer).order_by("valid_from")
        .values_list("plan__code", "valid_from", "valid_to")
    )  # fmt: skip
    assert history == [
        ("starter", at(2026, 1, 10, 12), at(2026, 3, 10, 12)),
        ("pro", at(2026, 3, 10, 12), at(2026, 5, 10, 12)),
    ]
    # Idempotent: nothing to change the second time.
    assert customer_plan_history_sync(customer=customer) is False
    # Revenue lines carry the plan of their price; January's starter line spreads over 31 days.
    january = RevenueLine.objects.get(kind="invoice_line", service_start=date(2026, 1, 10))
    assert (january.plan, january.billed, january.service_end) == (
        plans["starter"],
        Decimal("29.00"),
        date(2026, 2, 10),
    )
    assert january.recognitions.count() == 31


def test_invoice_lines_in_the_older_price_shape_are_read(org, plans, empty_fake):
    fake = empty_fake
    connect(org, fake)
    product = fake.add_product("Metron")
    fake.add_price(product=product["id"], unit_amount=9900, price_id="price_pro")
    CustomerFactory(organization=org, external_id="acct-9")
    stripe_customer, _ = fake.add_customer(name="Old", external_id="acct-9")
    invoice, _ = fake.add_invoice(
        customer=stripe_customer["id"], at=unix(2026, 2, 1), legacy_price_shape=True,
        lines=[{"amount": 9900, "price": "price_pro",
                "period": (unix(2026, 2, 1), unix(2026, 3, 1))}],
    )  # fmt: skip
    fake.finalize_invoice(invoice["id"], at=unix(2026, 2, 1, 1))

    backfill(org)

    line = StripeInvoiceLine.objects.get()
    assert "pricing" not in line.raw and line.raw["price"]["id"] == "price_pro"
    assert line.price_stripe_id == "price_pro"
    assert RevenueLine.objects.get(kind="invoice_line").plan == plans["pro"]


def test_customers_match_by_metadata_then_stripe_id_else_queue(org, plans, empty_fake):
    fake = empty_fake
    connect(org, fake)
    by_metadata = CustomerFactory(organization=org, external_id="acct-1")
    by_id = CustomerFactory(organization=org, external_id="acct-2")
    meta, _ = fake.add_customer(name="One", external_id="acct-1")
    plain, _ = fake.add_customer(name="Two")
    stranger, _ = fake.add_customer(name="Three", metadata={"metron_customer_id": "nobody"})
    by_id.stripe_customer_id = plain["id"]
    by_id.save()
    product = fake.add_product("Metron")
    fake.add_price(product=product["id"], unit_amount=2900, price_id="price_starter")
    monthly_subscription(fake, customer=stranger["id"], price="price_starter",
                         start=unix(2026, 1, 5), months=2)  # fmt: skip

    backfill(org)

    rows = {row.stripe_id: row for row in StripeCustomer.objects.all()}
    assert (rows[meta["id"]].customer, rows[meta["id"]].matched_by) == (by_metadata, "metadata")
    assert (rows[plain["id"]].customer, rows[plain["id"]].matched_by) == (by_id, "stripe_id")
    assert rows[stranger["id"]].customer is None
    by_metadata.refresh_from_db()
    assert by_metadata.stripe_customer_id == meta["id"]  # remembered for later matches
    assert list(UnmatchedStripeCustomer.objects.values_list("stripe_id", flat=True)) == [
        stranger["id"]
    ]
    unattributed = RevenueLine.objects.filter(stripe_customer_id=stranger["id"])
    assert unattributed.count() == 4 and not unattributed.exclude(customer=None).exists()

    # Ops link it by hand: revenue and plan history follow, and a re-sync keeps the link.
    target = CustomerFactory(organization=org, external_id="acct-3")
    stripe_customer_link(stripe_customer=rows[stranger["id"]], customer=target)
    assert set(unattributed.values_list("customer", flat=True)) == {target.pk}
    assert CustomerPlan.objects.filter(customer=target, plan=plans["starter"]).count() == 1
    backfill(org)
    assert StripeCustomer.objects.get(stripe_id=stranger["id"]).customer == target
    assert not UnmatchedStripeCustomer.objects.filter(customer__isnull=True, deleted=False).exists()
    assert Customer.objects.get(pk=target.pk).stripe_customer_id == stranger["id"]


def test_since_limits_the_lists_that_take_a_created_filter(org, connection, stripe_fake):
    since = date(2026, 4, 1)

    backfill(org, since=since)

    cutoff = datetime(2026, 4, 1, tzinfo=UTC)
    expected = [
        i for i in stripe_fake.objects["invoice"].values() if i["created"] >= cutoff.timestamp()
    ]
    assert StripeInvoice.objects.count() == len(expected) > 0
    assert not StripeInvoice.objects.filter(stripe_created__lt=cutoff).exists()
    assert StripePrice.objects.count() == len(stripe_fake.objects["price"])  # catalog: all
    # Every customer signed up in January, before --since: the ones the invoices name were
    # fetched on the way, so their revenue is attributed (all but the Stripe-only one).
    assert StripeCustomer.objects.count() == len({i["customer"] for i in expected})
    unattributed = RevenueLine.objects.filter(customer=None).values_list(
        "stripe_customer_id", flat=True
    )
    assert set(unattributed) <= set(
        UnmatchedStripeCustomer.objects.values_list("stripe_id", flat=True)
    )


def test_invoices_are_listed_with_payments_expanded_or_without_if_refused(
    org, connection, stripe_fake
):
    backfill(org)
    lists = [r for r in stripe_fake.requests if r.path == "/v1/invoices"]
    assert all(r.query.get("expand[0]") == ["data.payments"] for r in lists)
    linked = StripeRefund.objects.exclude(invoice_stripe_id="").count()
    assert linked == StripeRefund.objects.count() > 0

    StripeInvoice.objects.all().delete()
    StripeRefund.objects.all().delete()
    RevenueLine.objects.all().delete()
    stripe_fake.refuse_expand = True
    run = backfill(org)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert StripeInvoice.objects.count() == len(stripe_fake.objects["invoice"])
    # Without payments the refund loses its invoice link, never its customer or amount.
    assert set(StripeRefund.objects.values_list("invoice_stripe_id", flat=True)) == {""}
    assert not RevenueLine.objects.filter(kind="refund", customer=None).exists()
    assert stored_totals(org)["collected"] == expected_totals(stripe_fake)["collected"]


@pytest.mark.parametrize("invoices_since", [None, at(2026, 5, 1)], ids=["whole", "since-may"])
def test_a_fake_billing_plan_periods_gives_back_exactly_those_periods(org, plans, invoices_since):
    """Upgrades mid-month and on a 1st, a free start, a churn: the backfill rebuilds the
    very periods the fake billed, even with only the invoices that date plan changes."""
    free = PlanFactory(organization=org, code="free", name="Free", price=Decimal("0.00"),
                       is_free=True, stripe_price_ids=["price_free"])  # fmt: skip
    histories = {
        "acct-1": [("free", at(2026, 1, 10)), ("starter", at(2026, 2, 14)),
                   ("pro", at(2026, 4, 1)), ("scale", at(2026, 6, 20))],
        "acct-2": [("pro", at(2026, 1, 1))],
        "acct-3": [("starter", at(2026, 1, 20)), ("pro", at(2026, 3, 5))],
    }  # fmt: skip
    churned = {"acct-3": at(2026, 4, 17)}
    customers = []
    for external_id, history in histories.items():
        customer = CustomerFactory(organization=org, external_id=external_id)
        customer_plan_history_replace(
            customer=customer, periods=[({**plans, "free": free}[code], start)
                                        for code, start in history],
            ended_at=churned.get(external_id),
        )  # fmt: skip
        customers.append(billing_customer(customer))
    before = plan_periods(org)
    fake = start_stripe_fake_from_periods(
        plans=[free, *plans.values()], customers=customers, now=at(2026, 7, 2, 3), seed=5,
        invoices_since=invoices_since,
    )  # fmt: skip
    try:
        connect(org, fake)
        run = backfill(org)
    finally:
        fake.stop()

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert plan_periods(org) == before
    lines = RevenueLine.objects.filter(organization=org, kind="invoice_line")
    june = lines.filter(customer__external_id="acct-2", service_start=date(2026, 6, 1)).get()
    assert (june.billed, june.service_end) == (Decimal("99.00"), date(2026, 7, 1))
    # Mid-month upgrade to Scale: unused Pro credited, remaining Scale charged, June 20 → July.
    upgrade = lines.filter(customer__external_id="acct-1", service_start=date(2026, 6, 20))
    assert sorted(upgrade.values_list("billed", flat=True)) == [Decimal("-36.30"),
                                                                Decimal("182.97")]  # fmt: skip
    free_months = lines.filter(customer__external_id="acct-1", plan=free)
    assert not free_months.exists()  # $0 invoices carry no revenue


def billing_customer(customer) -> BillingCustomer:
    periods = CustomerPlan.objects.filter(customer=customer).order_by("valid_from")
    return BillingCustomer(
        stripe_id=f"cus_{customer.external_id.replace('-', '')}", name=customer.name,
        external_id=customer.external_id,
        periods=tuple(BillingPeriod(p.plan.code, p.valid_from, p.valid_to) for p in periods),
    )  # fmt: skip


def plan_periods(org) -> list[tuple]:
    return list(
        CustomerPlan.objects.filter(organization=org)
        .order_by("customer__external_id", "valid_from")
        .values_list("pk", "customer__external_id", "plan__code", "valid_from", "valid_to",
                     "updated_at")
    )  # fmt: skip
