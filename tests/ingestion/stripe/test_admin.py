"""Stripe and revenue admins: they open, keep secrets write-only, stay in the organization,
and their actions (link a Stripe customer, edit a manual entry) go through the services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Organization, Role
from ingestion.models import (
    FxRate,
    ManualRevenueEntry,
    RevenueLine,
    RevenueRecognition,
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
from tests.accounts.factories import CustomerFactory, PlanFactory
from tests.ingestion.stripe.objects import build_stripe_objects

pytestmark = pytest.mark.django_db

MARKER = "rivalsecret"
MODELS = [
    StripeConnection, StripeCustomer, UnmatchedStripeCustomer, StripeProduct, StripePrice,
    StripeSubscription, StripeInvoice, StripeCreditNote, StripeRefund, StripeEvent, RevenueLine,
    FxRate, ManualRevenueEntry,
]  # fmt: skip


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def build(organization, marker):
    customer = CustomerFactory(organization=organization, external_id=f"{marker}-cust",
                               name=f"{marker} customer")  # fmt: skip
    plan = PlanFactory(organization=organization, code=f"{marker}-plan", name=f"{marker} plan")
    return build_stripe_objects(organization, marker, customer=customer, plan=plan)


@pytest.fixture
def both(org):
    rival = Organization.objects.create(name=f"{MARKER} Corp", slug=MARKER)
    return build(org, "mine"), build(rival, MARKER)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("role", [Role.OPS, Role.FINANCE, Role.ENGINEERING, Role.ADMIN])
def test_every_admin_opens_for_every_role_and_shows_only_its_organization(
    staff_client_factory, org, both, model, role
):
    mine, theirs = both
    client = staff_client_factory(org, role)

    response = client.get(url(model, "changelist"))

    assert response.status_code == 200
    listed = {obj.pk for obj in response.context_data["cl"].result_list}
    assert mine[model].pk in listed and theirs[model].pk not in listed
    assert MARKER not in response.content.decode().lower()
    assert MARKER not in client.get(url(model, "changelist"), {"q": MARKER[5:]}).content.decode()
    for view in ("change", "delete", "history"):
        assert client.get(url(model, view, theirs[model].pk)).status_code in (302, 403, 404)
    assert client.get(url(model, "change", mine[model].pk)).status_code == 200
    add = client.get(url(model, "add"))
    assert add.status_code in (200, 403) and MARKER not in add.content.decode().lower()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_actions_never_touch_another_organizations_rows(staff_client_factory, org, both, model):
    _, theirs = both
    client = staff_client_factory(org, Role.ADMIN)
    obj = theirs[model]
    before = model._base_manager.filter(pk=obj.pk).values().first()
    request = client.get(url(model, "changelist")).wsgi_request
    target = CustomerFactory(organization=org, external_id="target")

    for action in (
        client.get(url(model, "changelist")).context_data["cl"].model_admin.get_actions(request)
    ):
        body = {"action": action, "_selected_action": [obj.pk], "post": "yes", "apply": "1",
                "customer": target.pk}  # fmt: skip
        client.post(url(model, "changelist"), body)

    assert model._base_manager.filter(pk=obj.pk).values().first() == before


def test_stripe_secrets_are_write_only(staff_client_factory, org):
    client = staff_client_factory(org, Role.ADMIN)
    key, secret = "sk_test_very_secret_key_1234", "whsec_very_secret_signing"

    created = client.post(url(StripeConnection, "add"), {
        "api_key": key, "webhook_secret": secret, "status": "active",
        "customer_metadata_key": "metron_customer_id", "api_base": "https://api.stripe.com",
    })  # fmt: skip

    assert created.status_code == 302, created.context["adminform"].form.errors
    connection = StripeConnection.objects.get(organization=org)
    assert (
        key not in connection.api_key_encrypted
        and secret not in connection.webhook_secret_encrypted
    )
    assert (connection.api_key, connection.webhook_secret) == (key, secret)
    for page in (
        url(StripeConnection, "changelist"),
        url(StripeConnection, "change", connection.pk),
    ):
        html = client.get(page).content.decode()
        assert "very_secret" not in html
        assert "sk_test_…1234" in html
    kept = client.post(url(StripeConnection, "change", connection.pk), {
        "api_key": "", "webhook_secret": "", "status": "active",
        "customer_metadata_key": "account_id", "api_base": "https://api.stripe.com",
    })  # fmt: skip
    assert kept.status_code == 302
    connection.refresh_from_db()
    assert (connection.api_key, connection.webhook_secret) == (key, secret)
    assert connection.customer_metadata_key == "account_id"
    # One connection per organization: no second one can be added.
    second = client.post(url(StripeConnection, "add"), {"api_key": key, "webhook_secret": secret,
                                                         "status": "active"})  # fmt: skip
    assert second.status_code == 403 and StripeConnection.objects.count() == 1


def test_ops_link_an_unmatched_stripe_customer(staff_client_factory, org):
    objects = build(org, "mine")
    stranger = objects[UnmatchedStripeCustomer]
    target = CustomerFactory(organization=org, external_id="acct-target")
    client = staff_client_factory(org, Role.OPS)
    changelist = url(UnmatchedStripeCustomer, "changelist")

    form = client.post(
        changelist, {"action": "link_to_customer", "_selected_action": [stranger.pk]}
    )
    assert form.status_code == 200 and "Metron customer" in form.content.decode()
    linked = client.post(changelist, {"action": "link_to_customer", "apply": "1",
                                      "_selected_action": [stranger.pk], "customer": target.pk},
                         follow=True)  # fmt: skip

    assert linked.status_code == 200
    row = StripeCustomer.objects.get(pk=stranger.pk)
    assert (row.customer, row.matched_by) == (target, "manual")
    assert not UnmatchedStripeCustomer.objects.filter(pk=stranger.pk).exists()


def test_finance_edits_a_manual_entry_and_its_line_follows(staff_client_factory, org):
    customer = CustomerFactory(organization=org, external_id="acct-1")
    client = staff_client_factory(org, Role.FINANCE)

    added = client.post(url(ManualRevenueEntry, "add"), {
        "customer": customer.pk, "period_start": "2026-01-01", "period_end": "2026-01-11",
        "amount": "100.00", "currency": "USD", "description": "pilot",
    })  # fmt: skip
    assert added.status_code == 302, added.context["adminform"].form.errors
    entry = ManualRevenueEntry.objects.get()
    assert (entry.created_by.username, entry.source) == ("finance-acme", "admin")
    client.post(url(ManualRevenueEntry, "change", entry.pk), {
        "customer": customer.pk, "period_start": "2026-01-01", "period_end": "2026-01-05",
        "amount": "10.00", "currency": "USD", "description": "pilot, shortened",
    })  # fmt: skip
    line = RevenueLine.objects.get(manual_entry=entry)
    assert (line.billed, line.service_end.isoformat()) == (Decimal("10.00"), "2026-01-05")
    assert [r.amount for r in RevenueRecognition.objects.filter(line=line).order_by("day")] == [
        Decimal("2.50")] * 4  # fmt: skip
    refused = client.post(url(ManualRevenueEntry, "add"), {
        "customer": customer.pk, "period_start": "2026-01-01", "period_end": "2026-01-05",
        "amount": "10.5", "currency": "JPY",
    })  # fmt: skip
    assert "JPY amounts have at most 0 decimal places." in refused.content.decode()
    assert (
        client.post(url(ManualRevenueEntry, "delete", entry.pk), {"post": "yes"}).status_code == 302
    )
    assert not RevenueLine.objects.filter(kind="manual").exists()
    assert (
        staff_client_factory(org, Role.OPS).get(url(ManualRevenueEntry, "add")).status_code == 403
    )


def test_global_fx_rates_are_shown_but_only_superusers_change_them(staff_client_factory, org):
    shared = FxRate.objects.create(currency="JPY", quote_currency="USD", day="2026-01-01",
                                   rate=Decimal("0.0067"))  # fmt: skip
    client = staff_client_factory(org, Role.FINANCE)

    listed = client.get(url(FxRate, "changelist")).context_data["cl"].result_list
    changed = client.post(url(FxRate, "change", shared.pk), {
        "currency": "JPY", "quote_currency": "USD", "day": "2026-01-01", "rate": "1",
    })  # fmt: skip

    assert shared in listed
    assert changed.status_code == 403
    shared.refresh_from_db()
    assert shared.rate == Decimal("0.0067")
    added = client.post(url(FxRate, "add"), {"currency": "EUR", "quote_currency": "USD",
                                             "day": "2026-01-01", "rate": "1.08"})  # fmt: skip
    assert added.status_code == 302
    assert FxRate.objects.get(currency="EUR").organization == org
