"""``/api/v1/revenue/``: manual entries for offline contracts and the revenue lines list."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from ingestion.models import ManualRevenueEntry, RevenueLine, RevenueRecognition
from ingestion.services.revenue import fx_rate_set, manual_revenue_entry_create
from tests.accounts.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/revenue/"


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def contract(**overrides):
    body = {
        "customer_id": "acct-1", "period_start": "2026-01-01", "period_end": "2027-01-01",
        "amount": "12000.00", "currency": "USD", "description": "Enterprise pilot, annual",
    }  # fmt: skip
    body.update(overrides)
    return body


@pytest.fixture
def customer(org):
    return CustomerFactory(organization=org, external_id="acct-1", name="Account 1")


def test_a_manual_entry_is_recognized_ratably_over_its_period(org, customer, api_client_factory):
    writer = api_client_factory(org, scopes=("write",))

    response = post(writer, contract())

    assert response.status_code == 201, response.content
    body = response.json()
    line = RevenueLine.objects.get(pk=body["id"])
    assert body | {"id": None, "created_at": None, "source_id": None} == {
        "id": None, "kind": "manual", "source_id": None, "customer_id": "acct-1",
        "stripe_customer_id": "", "plan": None, "invoice_stripe_id": "",
        "description": "Enterprise pilot, annual", "currency": "USD", "billed": "12000.00",
        "recognized": "12000.00", "collected": "0.00", "service_start": "2026-01-01",
        "service_end": "2027-01-01", "billed_on": "2026-01-01", "collected_on": None,
        "reporting_currency": "USD", "reporting_billed": "12000.00", "reporting_collected": "0.00",
        "created_at": None,
    }  # fmt: skip
    assert line.organization == org and line.manual_entry.source == ManualRevenueEntry.Source.API
    # 1,200,000 cents over 365 days = 3,287 r 245: 245 days of 32.88, 120 of 32.87.
    days = list(RevenueRecognition.objects.filter(line=line).order_by("day"))
    assert len(days) == 365
    assert sum(day.amount for day in days) == Decimal("12000.00")
    assert {day.amount for day in days[:245]} == {Decimal("32.88")}
    assert {day.amount for day in days[245:]} == {Decimal("32.87")}


@pytest.mark.parametrize(
    ("amount", "currency", "ok"),
    [
        ("1000", "JPY", True),
        ("10.5", "JPY", False),
        ("1.005", "USD", False),
        ("1.005", "KWD", True),
    ],
)
def test_amounts_must_fit_the_currencys_minor_unit(
    org, customer, api_client_factory, amount, currency, ok
):
    writer = api_client_factory(org, scopes=("write",))

    response = post(writer, contract(amount=amount, currency=currency))

    if ok:
        assert response.status_code == 201, response.content
        assert response.json()["billed"] == amount  # exactly the currency's places
    else:
        assert response.status_code == 400
        places = 0 if currency == "JPY" else 2
        assert response.json()["error"]["fields"] == {
            "amount": [f"{currency} amounts have at most {places} decimal places."]
        }
        assert not RevenueLine.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"period_end": "2026-01-01"}, "period_end"), ({"amount": "0"}, "amount"),
     ({"currency": "usd"}, "currency"), ({"customer_id": "nobody"}, "customer_id")],
)  # fmt: skip
def test_invalid_entries_are_400_by_field(org, customer, api_client_factory, change, field):
    response = post(api_client_factory(org, scopes=("write",)), contract(**change))

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not ManualRevenueEntry.objects.exists()


def test_scopes_read_and_write(org, customer, api_client_factory):
    for scopes in (("read",), ("ingest",)):
        response = post(api_client_factory(org, scopes=scopes), contract())
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "This API key lacks the 'write' scope."
    assert post(api_client_factory(org, scopes=("write",)), contract()).status_code == 201
    assert api_client_factory(org, scopes=("write",)).get(URL).status_code == 403
    assert api_client_factory(org, scopes=("read",)).get(URL).json()["count"] == 1


def test_the_organization_comes_from_the_key(org, other_org, customer, api_client_factory):
    CustomerFactory(organization=other_org, external_id="rival-1")
    writer = api_client_factory(org, scopes=("write",))

    foreign = post(writer, contract(customer_id="rival-1"))
    claimed = post(writer, contract(organization=other_org.pk, organization_id=other_org.pk))

    assert foreign.status_code == 400
    assert foreign.json()["error"]["fields"] == {
        "customer_id": ["No customer with external_id “rival-1” in this organization."]
    }
    assert claimed.status_code == 201
    assert RevenueLine.objects.get().organization == org
    # The other organization's key sees none of it.
    assert api_client_factory(other_org, scopes=("read",)).get(URL).json()["count"] == 0


def test_staff_finance_writes_ops_reads(org, customer, staff_client_factory):
    finance = staff_client_factory(org, Role.FINANCE)
    assert post(finance, contract()).status_code == 201
    ops = staff_client_factory(org, Role.OPS)
    assert post(ops, contract()).status_code == 403
    assert ops.get(URL).json()["count"] == 1


def test_list_filters_and_reporting_currency(org, customer, api_client_factory):
    other = CustomerFactory(organization=org, external_id="acct-2")
    manual_revenue_entry_create(organization=org, customer=customer, period_start=date(2026, 1, 1),
                                period_end=date(2026, 2, 1), amount=Decimal("310.00"),
                                currency="USD")  # fmt: skip
    manual_revenue_entry_create(organization=org, customer=other, period_start=date(2026, 3, 1),
                                period_end=date(2026, 4, 1), amount=Decimal("100.00"),
                                currency="EUR")  # fmt: skip
    reader = api_client_factory(org, scopes=("read",))

    def ids(query):
        return [row["customer_id"] for row in reader.get(URL + query).json()["results"]]

    assert ids("") == ["acct-2", "acct-1"]
    assert ids("?customer_id=acct-1") == ["acct-1"]
    assert ids("?currency=eur") == ["acct-2"]
    assert ids("?kind=manual&since=2026-02-01") == ["acct-2"]
    assert ids("?until=2026-02-01") == ["acct-1"]
    assert ids("?kind=invoice_line") == []
    euro = reader.get(URL + "?currency=EUR").json()["results"][0]
    assert (euro["reporting_currency"], euro["reporting_billed"]) == ("USD", None)  # no rate
    fx_rate_set(organization=None, currency="EUR", quote_currency="USD", day=date(2026, 2, 15),
                rate=Decimal("1.0825"))  # fmt: skip
    euro = reader.get(URL + "?currency=EUR").json()["results"][0]
    assert euro["reporting_billed"] == "108.25"


def test_the_list_runs_a_fixed_number_of_queries(org, customer, api_client_factory):
    reader = api_client_factory(org, scopes=("read",))

    def queries(count: int) -> int:
        for i in range(count):
            manual_revenue_entry_create(
                organization=org, customer=customer, period_start=date(2026, 1, 1 + i),
                period_end=date(2026, 2, 1), amount=Decimal("10.00"), currency="EUR",
            )  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            assert reader.get(URL).status_code == 200
        return len(captured)

    assert queries(1) == queries(10)
