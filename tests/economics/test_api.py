"""The economics API over HTTP: shapes and values, filters, ordering, periods, scopes, tenancy."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.models import Role
from accounts.roles import role_group_name
from economics.models import EconomicsSnapshot
from ingestion.models import UsageChange
from tests.accounts.factories import CustomerFactory, PlanFactory
from tests.economics.helpers import (
    COVERAGE,
    customer_economics_create,
    feature_costs,
    snapshot_create,
    summary_json,
)

pytestmark = pytest.mark.django_db

BASE = "/api/v1/economics/"
ENDPOINTS = [
    "customers", "features", "plans", "models", "segments", "cohorts", "trend", "summary",
]  # fmt: skip


@pytest.fixture
def economy(org):
    """May 2026 for five customers, one in each corner of the bands."""
    pro = PlanFactory(organization=org, code="pro", name="Pro")
    enterprise = PlanFactory(organization=org, code="enterprise", name="Enterprise")
    snapshot = snapshot_create(org)

    def add(external_id, name, plan, **figures):
        customer = CustomerFactory(organization=org, external_id=external_id, name=name)
        return customer_economics_create(snapshot, customer, plan, **figures)

    add(
        "cust_ok",
        "Fine Co",
        pro,
        ai_cost="10",
        revenue="100",
        band="healthy",
        underwater=False,
        profitability="profitable",
        requests=100,
        tokens=20_000,
    )
    add(
        "cust_neg",
        "Negative Co",
        None,
        ai_cost="50",
        revenue="0",
        band="margin_negative",
        underwater=True,
        profitability="unprofitable",
        requests=500,
        tokens=90_000,
    )
    add(
        "cust_idle",
        "Idle Co",
        None,
        ai_cost="0",
        revenue="0",
        overhead="0",
        band="healthy",
        underwater=False,
        profitability="break_even",
    )
    add(
        "cust_risk",
        "Risky Co",
        enterprise,
        ai_cost="300",
        revenue="500",
        band="at_risk",
        underwater=True,
        profitability="profitable",
        requests=1200,
        tokens=3_400_000,
        provisional_cost=Decimal("20"),
        feature_costs=feature_costs("summarize", "chat", "search", "translate"),
        cost_change=Decimal("40"),
        margin_change=Decimal("-40"),
        ratio_change=Decimal("0.08"),
    )
    add(
        "cust_watch",
        "Watch Co",
        pro,
        ai_cost="35",
        revenue="100",
        band="watch",
        underwater=False,
        profitability="profitable",
        requests=300,
        tokens=50_000,
    )
    return snapshot  # fmt: skip


@pytest.fixture
def api(org, api_client_factory):
    return api_client_factory(org, scopes=("read",))


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["customer_id"] for row in response.json()["results"]]


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert list(body) == ["error"]
    return body["error"]


PERIOD_CONTEXT = {
    "period": "2026-05",
    "period_start": "2026-05-01",
    "period_end": "2026-06-01",
    "as_of": "2026-06-01T02:30:00Z",
    "stale": False,
    "coverage": COVERAGE,
}


# --- customers -----------------------------------------------------------------------------


def test_customers_are_one_row_each_with_money_as_decimal_strings(api, economy):
    response = api.get(BASE + "customers/")

    body = response.json()
    assert response.status_code == 200
    assert {key: body[key] for key in PERIOD_CONTEXT} == PERIOD_CONTEXT
    assert (body["count"], body["next"], body["previous"]) == (5, None, None)
    risky = next(row for row in body["results"] if row["customer_id"] == "cust_risk")
    assert risky == {
        "customer_id": "cust_risk",
        "name": "Risky Co",
        "plan": "enterprise",
        "ai_cost": "300.000000000000",
        "provisional_cost": "20.000000000000",
        "overhead": "2.00",
        "cost_to_serve": "302.000000000000",
        "revenue": "500.00",
        "cost_ratio": "0.600000",
        "contribution_margin": "198.000000000000",
        "contribution_margin_pct": "0.396000",
        "band": "at_risk",
        "underwater": True,
        "profitability": "profitable",
        "top_features": [
            {"feature_id": 1, "feature": "summarize", "name": "Summarize", "cost": "30.00"},
            {"feature_id": 2, "feature": "chat", "name": "Chat", "cost": "20.00"},
            {"feature_id": 3, "feature": "search", "name": "Search", "cost": "10.00"},
        ],
        "requests": 1200,
        "tokens": 3400000,
        "cost_change": "40.000000000000",
        "margin_change": "-40.000000000000",
        "ratio_change": "0.080000",
    }
    negative = next(row for row in body["results"] if row["customer_id"] == "cust_neg")
    assert (negative["plan"], negative["cost_ratio"], negative["contribution_margin_pct"]) == (
        None,
        None,
        None,
    )
    assert negative["top_features"] == []
    assert negative["cost_change"] is None


def test_customers_default_to_worst_ratio_first_with_cost_without_revenue_worst(api, economy):
    assert ids(api.get(BASE + "customers/")) == [
        "cust_neg", "cust_risk", "cust_watch", "cust_ok", "cust_idle",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("-cost_ratio", ["cust_neg", "cust_risk", "cust_watch", "cust_ok", "cust_idle"]),
        ("cost_ratio", ["cust_idle", "cust_ok", "cust_watch", "cust_risk", "cust_neg"]),
        ("-ai_cost", ["cust_risk", "cust_neg", "cust_watch", "cust_ok", "cust_idle"]),
        ("ai_cost", ["cust_idle", "cust_ok", "cust_watch", "cust_neg", "cust_risk"]),
        ("contribution_margin", ["cust_neg", "cust_idle", "cust_watch", "cust_ok", "cust_risk"]),
        ("-contribution_margin", ["cust_risk", "cust_ok", "cust_watch", "cust_idle", "cust_neg"]),
    ],
)
def test_customers_ordering(api, economy, ordering, expected):
    assert ids(api.get(BASE + f"customers/?ordering={ordering}")) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("band=at_risk", ["cust_risk"]),
        ("band=healthy", ["cust_ok", "cust_idle"]),
        ("plan=pro", ["cust_watch", "cust_ok"]),
        ("plan=enterprise&band=healthy", []),
        ("underwater=true", ["cust_neg", "cust_risk"]),
        ("underwater=0", ["cust_watch", "cust_ok", "cust_idle"]),
        ("plan=nope", []),
    ],
)
def test_customers_filters(api, economy, query, expected):
    assert ids(api.get(BASE + f"customers/?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            "band=underwater",
            {"band": ["Select a valid choice. underwater is not one of the available choices."]},
        ),
        ("underwater=maybe", {"underwater": ["Use true or false."]}),
        (
            "ordering=name",
            {"ordering": ["Select a valid choice. name is not one of the available choices."]},
        ),
        ("page_size=0", {"page_size": ["Use a whole number from 1."]}),
    ],
)
def test_customers_invalid_parameters_are_400(api, economy, query, fields):
    err = error(api.get(BASE + f"customers/?{query}"), 400)

    assert err["code"] == "invalid"
    assert err["fields"] == fields


def test_customers_are_paginated_with_the_period_on_every_page(api, economy):
    response = api.get(BASE + "customers/?page_size=2&page=2")

    body = response.json()
    assert [row["customer_id"] for row in body["results"]] == ["cust_watch", "cust_ok"]
    assert body["count"] == 5
    assert body["period"] == "2026-05"
    assert body["next"].endswith("page=3&page_size=2")


def test_customers_list_query_count_does_not_grow_with_rows(
    org, api, economy, django_assert_num_queries
):
    # key, snapshot, count, page (customer and plan joined), staleness (changes, policy)
    with django_assert_num_queries(6):
        assert len(ids(api.get(BASE + "customers/"))) == 5

    plan = PlanFactory(organization=org, code="team")
    for i in range(40):
        customer = CustomerFactory(organization=org)
        customer_economics_create(
            economy, customer, plan, ai_cost=str(i), revenue="100", band="healthy",
            underwater=False, profitability="profitable",
            feature_costs=feature_costs("chat", "search"),
        )  # fmt: skip

    with django_assert_num_queries(6):
        assert len(ids(api.get(BASE + "customers/?page_size=100"))) == 45


# --- periods ----------------------------------------------------------------------------------


def test_latest_month_by_default_and_a_named_month(org, api):
    snapshot_create(org, period_start=date(2026, 4, 1), period_end=date(2026, 5, 1))
    snapshot_create(org, period_start=date(2026, 5, 1), period_end=date(2026, 6, 1))
    snapshot_create(
        org, kind=EconomicsSnapshot.Kind.ROLLING_30D, period_start=date(2026, 5, 10),
        period_end=date(2026, 6, 9),
    )  # fmt: skip

    latest = api.get(BASE + "summary/").json()
    april = api.get(BASE + "summary/?period=2026-04").json()
    rolling = api.get(BASE + "summary/?period=rolling_30d").json()

    assert (latest["period"], latest["period_start"]) == ("2026-05", "2026-05-01")
    assert (april["period"], april["period_end"]) == ("2026-04", "2026-05-01")
    assert (rolling["period"], rolling["period_start"], rolling["period_end"]) == (
        "rolling_30d",
        "2026-05-10",
        "2026-06-09",
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_month_not_computed_yet_is_404_saying_how(api, economy, endpoint):
    err = error(api.get(BASE + f"{endpoint}/?period=2026-07"), 404)

    assert err == {
        "status": 404,
        "code": "not_found",
        "message": "No economics for 2026-07 yet; "
        "run manage.py recompute_economics acme --period 2026-07",
    }


def test_no_snapshot_at_all_is_404(api, org):
    assert error(api.get(BASE + "customers/"), 404)["message"] == (
        "No economics yet; run manage.py recompute_economics acme"
    )
    assert error(api.get(BASE + "trend/?period=rolling_30d"), 404)["message"] == (
        "No rolling 30-day economics yet; run manage.py recompute_economics acme"
    )


@pytest.mark.parametrize("period", ["2026-13", "May", "2026-05-01", "rolling", "2026"])
@pytest.mark.parametrize("endpoint", ["customers", "features", "summary"])
def test_a_malformed_period_is_400(api, economy, endpoint, period):
    err = error(api.get(BASE + f"{endpoint}/?period={period}"), 400)

    assert err["fields"] == {"period": [f"period must be YYYY-MM or rolling_30d (got {period!r})."]}


def test_a_stale_snapshot_says_so_everywhere(api, economy):
    economy.stale_since = datetime(2026, 6, 2, tzinfo=UTC)
    economy.save(update_fields=["stale_since"])

    for endpoint in ENDPOINTS:
        body = api.get(BASE + f"{endpoint}/").json()

        assert body["stale"] is True, endpoint
        assert body["as_of"] == "2026-06-01T02:30:00Z", endpoint
        assert body["coverage"] == COVERAGE, endpoint


def test_usage_of_the_period_ingested_after_as_of_makes_it_stale(org, api, economy):
    assert api.get(BASE + "summary/").json()["stale"] is False
    # Ingestion marked a day of May changed; the refresh task has not run yet.
    UsageChange.objects.create(organization=org, day=date(2026, 5, 20))
    assert api.get(BASE + "summary/").json()["stale"] is True
    # A change to another period leaves this one current.
    UsageChange.objects.filter(organization=org).update(day=date(2026, 7, 1))
    assert api.get(BASE + "summary/").json()["stale"] is False


# --- lists from snapshot JSON --------------------------------------------------------------


def feature_keys(response) -> list[tuple]:
    assert response.status_code == 200, response.content
    return [(row["feature"], row["plan"]) for row in response.json()["results"]]


def test_features_costliest_first_with_every_field(api, economy):
    response = api.get(BASE + "features/")

    body = response.json()
    assert {key: body[key] for key in PERIOD_CONTEXT} == PERIOD_CONTEXT
    assert feature_keys(response) == [
        ("summarize", None), ("summarize", "enterprise"), ("chat", None), ("chat", "pro"),
        ("summarize", "pro"), (None, None),
    ]  # fmt: skip
    assert body["results"][1] == {
        "feature_id": 9,
        "feature": "summarize",
        "name": "summarize",
        "plan": "enterprise",
        "cost": "150.00",
        "invocations": 600,
        "active_users": 10,
        "cost_per_invocation": "0.25",
        "cost_per_active_user": "15.00",
        "plan_revenue_per_active_user": "10.00",
        "health_ratio": "1.5",
        "band": "margin_negative",
    }
    assert body["results"][-1]["cost_per_active_user"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("plan=all", [("summarize", None), ("chat", None), (None, None)]),
        ("plan=pro", [("chat", "pro"), ("summarize", "pro")]),
        ("band=margin_negative", [("summarize", "enterprise")]),
        ("feature=chat", [("chat", None), ("chat", "pro")]),
        ("feature=chat&plan=pro&band=healthy", [("chat", "pro")]),
        ("plan=free", []),
        (
            "ordering=cost&plan=all",
            [(None, None), ("chat", None), ("summarize", None)],
        ),
        (
            "ordering=-health_ratio&plan=pro",
            [("summarize", "pro"), ("chat", "pro")],
        ),
        (
            "ordering=-health_ratio&feature=summarize",
            # no ratio (no revenue) ranks above every number
            [("summarize", None), ("summarize", "enterprise"), ("summarize", "pro")],
        ),
        ("ordering=cost_per_active_user&feature=chat", [("chat", None), ("chat", "pro")]),
        ("ordering=-cost_per_active_user&feature=chat", [("chat", "pro"), ("chat", None)]),
        ("plan=&band=&ordering=", None),  # blank parameters are absent ones
    ],
)
def test_features_filters_and_ordering(api, economy, query, expected):
    if expected is None:
        expected = feature_keys(api.get(BASE + "features/"))

    assert feature_keys(api.get(BASE + f"features/?{query}")) == expected


@pytest.mark.parametrize(
    ("endpoint", "query", "field"),
    [
        ("features", "band=red", "band"),
        ("features", "ordering=name", "ordering"),
        ("plans", "band=bad", "band"),
        ("plans", "ordering=-cost", "ordering"),
        ("models", "ordering=tokens", "ordering"),
        ("segments", "dimension=region&band=poor", "band"),
    ],
)
def test_json_lists_refuse_invalid_choices(api, economy, endpoint, query, field):
    err = error(api.get(BASE + f"{endpoint}/?{query}"), 400)

    value = query.rsplit("=", 1)[1]
    assert err["fields"] == {
        field: [f"Select a valid choice. {value} is not one of the available choices."]
    }


def test_plans(api, economy):
    response = api.get(BASE + "plans/")

    body = response.json()
    assert [row["plan"] for row in body["results"]] == ["enterprise", "pro"]
    enterprise = body["results"][0]
    assert enterprise["average_ai_cost"] == "300.00"
    assert enterprise["cost_p95"] == "34.5"
    assert (enterprise["tail_accounts"], enterprise["tail_cost_share"]) == (1, "0.7")
    assert enterprise["overconsuming"] == ["cust_watch"]
    assert enterprise["distribution"][2] == {"lo": "8", "hi": "12", "accounts": 1}
    assert len(enterprise["distribution"]) == 10
    assert [r["plan"] for r in api.get(BASE + "plans/?ordering=cost_ratio").json()["results"]] == [
        "pro",
        "enterprise",
    ]
    assert [r["plan"] for r in api.get(BASE + "plans/?band=healthy").json()["results"]] == ["pro"]


def test_models_with_how_revenue_is_allocated(api, economy):
    body = api.get(BASE + "models/").json()

    assert body["revenue_allocation"].startswith("Each customer's revenue is split over the models")
    assert body["results"][0] == {
        "provider": "openai", "model": "gpt-4o", "customers": 4, "cost": "310.00",
        "revenue": "520.00", "margin": "210.00", "margin_pct": "0.4038",
        "cost_ratio": "0.5962", "band": "at_risk",
    }  # fmt: skip
    by_provider = api.get(BASE + "models/?provider=anthropic").json()["results"]
    assert [row["model"] for row in by_provider] == ["claude-haiku"]
    cheapest_first = api.get(BASE + "models/?ordering=cost").json()["results"]
    assert [row["model"] for row in cheapest_first] == ["claude-haiku", "gpt-4o"]


def test_segments_list_dimensions_without_one(api, economy):
    body = api.get(BASE + "segments/").json()

    assert body["dimension"] is None
    assert body["revenue_allocation"].startswith("A customer's revenue is split")
    assert body["results"] == [
        {"dimension": "region", "segments": 2},
        {"dimension": "plan_tier", "segments": 1},
        {"dimension": "metadata.industry", "segments": 2},
    ]


def test_segments_of_a_dimension(api, economy):
    body = api.get(BASE + "segments/?dimension=metadata.industry").json()

    assert body["dimension"] == "metadata.industry"
    assert body["results"] == [
        {
            "key": "retail", "customers": 2, "cost": "345.00", "revenue": "700.00",
            "margin": "355.00", "margin_pct": "0.5071428571428571428571428571",
            "cost_ratio": "0.4928571428571428571428571429", "band": "at_risk",
        },
        {
            "key": "legal", "customers": 2, "cost": "50.00", "revenue": "0.00",
            "margin": "-50.00", "margin_pct": None, "cost_ratio": None,
            "band": "margin_negative",
        },
    ]  # fmt: skip
    by_ratio = api.get(BASE + "segments/?dimension=metadata.industry&ordering=-cost_ratio")
    assert [row["key"] for row in by_ratio.json()["results"]] == ["legal", "retail"]


def test_unknown_segment_dimension_is_400_naming_the_available_ones(api, economy):
    err = error(api.get(BASE + "segments/?dimension=country"), 400)

    assert err["fields"] == {
        "dimension": [
            "Unknown dimension 'country'; available: region, plan_tier, metadata.industry."
        ]
    }


def test_cohorts_and_trend(api, economy):
    cohorts = api.get(BASE + "cohorts/").json()
    trend = api.get(BASE + "trend/").json()

    assert cohorts["results"][0]["start_month"] == "2026-03"
    assert cohorts["results"][0]["points"][1] == {
        "month": 2, "customers": 2, "revenue": "200.00", "cost": "45.00", "margin": "155.00",
        "margin_pct": "0.775",
    }  # fmt: skip
    assert trend["granularity"] == "week"
    assert trend["results"] == [
        {"start": "2026-05-01", "end": "2026-05-04", "revenue": "67.74", "cost": "38.00",
         "margin": "29.74", "margin_pct": "0.439", "cost_ratio": "0.561"},
        {"start": "2026-05-04", "end": "2026-05-11", "revenue": "158.06", "cost": "88.00",
         "margin": "70.06", "margin_pct": "0.4433", "cost_ratio": "0.5567"},
    ]  # fmt: skip


def test_summary_is_the_snapshot_summary_with_its_period(api, economy):
    body = api.get(BASE + "summary/").json()

    summary = summary_json()
    del summary["coverage"]  # in the period fields
    assert body == PERIOD_CONTEXT | summary


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_economics_is_read_only(org, api_client_factory, endpoint):
    api = api_client_factory(org, scopes=("read", "write"))

    assert error(api.post(BASE + f"{endpoint}/?period=bad", {}), 405)["code"] == (
        "method_not_allowed"
    )
    assert error(api.delete(BASE + f"{endpoint}/"), 405)["code"] == "method_not_allowed"


# --- who may read -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_read_key_reads_and_an_ingest_key_is_403(org, economy, api_client_factory, endpoint):
    read = api_client_factory(org, scopes=("read",))
    ingest = api_client_factory(org, scopes=("ingest",))

    assert read.get(BASE + f"{endpoint}/").status_code == 200
    assert error(ingest.get(BASE + f"{endpoint}/"), 403) == {
        "status": 403,
        "code": "permission_denied",
        "message": "This API key lacks the 'read' scope.",
    }


ECONOMICS_VIEW = ["view_economicssnapshot", "view_customereconomics"]


def role_permissions(role, *, grant: bool) -> None:
    group = Group.objects.get(name=role_group_name(role))
    permissions = Permission.objects.filter(
        content_type__app_label="economics", codename__in=ECONOMICS_VIEW
    )
    (group.permissions.add if grant else group.permissions.remove)(*permissions)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_read_with_their_roles_view_permission(org, economy, staff_client_factory, endpoint):
    client = staff_client_factory(org, Role.FINANCE)

    role_permissions(Role.FINANCE, grant=True)
    assert client.get(BASE + f"{endpoint}/").status_code == 200
    role_permissions(Role.FINANCE, grant=False)
    assert error(client.get(BASE + f"{endpoint}/"), 403)["code"] == "permission_denied"


# --- tenancy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_another_organizations_snapshots_are_never_visible(
    org, other_org, api_client_factory, endpoint
):
    rival = snapshot_create(
        other_org, period_start=date(2026, 6, 1), period_end=date(2026, 7, 1), label="-rival"
    )
    customer_economics_create(
        rival, CustomerFactory(organization=other_org, name="Rival customer"), None,
        ai_cost="9", revenue="10", band="at_risk", underwater=True, profitability="profitable",
    )  # fmt: skip
    api = api_client_factory(org, scopes=("read",))

    # The rival's June is the newest snapshot anywhere, yet this organization has none.
    assert error(api.get(BASE + f"{endpoint}/"), 404)["message"].startswith("No economics yet")
    assert error(api.get(BASE + f"{endpoint}/?period=2026-06"), 404)

    snapshot_create(org, period_start=date(2026, 6, 1), period_end=date(2026, 7, 1))
    response = api.get(BASE + f"{endpoint}/?period=2026-06")
    assert response.status_code == 200
    assert "rival" not in response.content.decode().lower()
