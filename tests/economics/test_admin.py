"""Economics in the admin: the policy with its history, the dashboards, drill-down and CSV.

Snapshots are built with the ORM in the SNAPSHOTS.md shapes (tests/economics/builders.py),
so every figure on a page is known: see ``known_month`` for the hand-computed totals.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from accounts.models import Organization, Role
from accounts.roles import role_group_name
from economics.models import EconomicsPolicy, EconomicsPolicyChange, EconomicsSnapshot
from ingestion.services.ingest import usage_events_ingest
from tests.accounts.factories import CustomerFactory
from tests.economics.builders import (
    Row,
    customer_economics_create,
    known_month,
    snapshot_create,
)

pytestmark = pytest.mark.django_db

OVERVIEW = "/admin/economics/overview/"
CUSTOMERS = "/admin/economics/customers/"
POLICY_LIST = "/admin/economics/economicspolicy/"
EVENTS = "/admin/ingestion/usageevent/?"
APRIL = {"period": "2026-04"}


@pytest.fixture
def known(org):
    return known_month(org)


@pytest.fixture
def finance(org, staff_client_factory):
    return staff_client_factory(org, Role.FINANCE)


@pytest.fixture
def ops(org, staff_client_factory):
    return staff_client_factory(org, Role.OPS)


def html(response) -> str:
    return response.content.decode()


def json_scripts(response) -> dict[str, object]:
    """Every ``json_script`` payload of the page, by element id."""
    found = re.findall(
        r'<script id="([^"]+)" type="application/json">(.*?)</script>', html(response), re.S
    )
    return {key: json.loads(value) for key, value in found}


def figure(response, key: str) -> str:
    match = re.search(
        rf'data-figure="{key}".*?<div class="econ-figure-value" data-value>(.*?)</div>',
        html(response),
        re.S,
    )
    assert match, key
    return match.group(1).strip()


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def links(response) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', html(response))]


# --- dashboards ---------------------------------------------------------------------------


def test_overview_shows_the_periods_figures(known, finance):
    response = finance.get(OVERVIEW, APRIL)

    assert response.status_code == 200
    assert figure(response, "revenue") == "$3,000.00"
    assert figure(response, "ai-cost") == "$2,762.35"
    # 400.00 of 2762.345678901234 is provisional: 14.48 %.
    assert figure(response, "provisional-share") == "14.5 %"
    assert figure(response, "cost-to-serve") == "$2,962.35"
    assert figure(response, "contribution-margin") == "$37.65"
    # 37.654321098766 / 3000 = 1.26 %.
    assert figure(response, "contribution-margin-pct") == "1.3 %"
    assert figure(response, "underwater") == "3"
    assert figure(response, "at-risk") == "1"
    page = html(response)
    # Attribution coverage sits next to the cost figures it qualifies.
    assert "Attributed: 97.5 % to a feature · 100.0 % to a customer · 99.0 % to a plan" in page
    assert "As of 2026-05-01 03:00 UTC" in page
    assert "data-stale" not in page


def test_overview_charts_carry_exact_decimal_strings(known, finance):
    charts = json_scripts(finance.get(OVERVIEW, APRIL))

    trend = charts["chart-trend-data"]["data"]
    assert trend["labels"] == ["2026-04-01", "2026-04-06", "2026-04-13"]
    assert [d["data"] for d in trend["datasets"]] == [
        ["500.00", "1000.00", "1500.00"],
        ["450.00", "900.00", "1412.345678901234"],
        ["50.00", "100.00", "87.654321098766"],
    ]
    features = charts["chart-features-data"]["data"]
    assert features["labels"] == ["Summarize", "Chat", "Unattributed"]
    assert features["datasets"][0]["data"] == ["1900.00", "850.00", "12.345678901234"]
    underwater = charts["chart-underwater-data"]["data"]
    # The most AI cost at stake first, whatever the ratio.
    assert underwater["labels"] == ["Northwind", "Globex", "Hooli"]
    assert underwater["datasets"][0]["data"] == ["2400.00", "250.00", "12.345678901234"]
    assert underwater["datasets"][1]["data"] == ["2000.00", "500.00", "0.00"]
    pro = charts["chart-plan-1-data"]["data"]
    assert pro["labels"][0] == "$100.00–$115.00"
    assert pro["datasets"][0]["data"] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    # Median 175 starts bin 5; P95 250 ends bin 9; 200 is 10/15 into bin 6 (190–205).
    assert [(m["label"], m["value"], m["at"]) for m in pro["markers"]] == [
        ("Median", "175.00", "4.5"),
        ("P95", "250.00", "9.5"),
        ("Tail from", "200.00", "6.166666666666666666666666667"),
    ]


def test_features_page_charts_each_features_cost_over_time(known, ops):
    chart = json_scripts(ops.get("/admin/economics/features/", APRIL))["chart-feature-trend-data"]

    assert chart["data"]["labels"] == ["2026-04-01", "2026-04-06", "2026-04-13"]
    assert [(d["label"], d["data"]) for d in chart["data"]["datasets"]] == [
        ("Summarize (USD)", ["300.00", "600.00", "1000.00"]),
        ("Chat (USD)", ["150.00", "300.00", "400.00"]),
        ("Unattributed (USD)", ["0.00", "0.00", "12.345678901234"]),
    ]


def test_the_stale_badge_shows_when_inputs_changed(org, known, finance):
    EconomicsSnapshot.objects.filter(pk=known.snapshot.pk).update(
        stale_since=datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
    )
    page = html(finance.get(OVERVIEW, APRIL))
    assert "data-stale" in page
    assert "Stale since 2026-05-02 10:00 UTC" in page


def test_the_period_picker_lists_months_and_the_latest_rolling_30_days(org, known, finance):
    snapshot_create(
        org, kind=EconomicsSnapshot.Kind.ROLLING_30D, period_start=date(2026, 4, 12),
        period_end=date(2026, 5, 12),
    )  # fmt: skip
    default = finance.get(OVERVIEW)
    rolling = finance.get(OVERVIEW, {"period": "rolling_30d"})

    assert default.context["snapshot"] == known.snapshot  # the latest month
    assert [value for value, _ in default.context["period_options"]] == [
        "rolling_30d", "2026-04", "2026-03",
    ]  # fmt: skip
    assert rolling.context["period_label"] == "Rolling 30 days, 12 Apr – 11 May 2026"


@pytest.mark.parametrize(("period", "status"), [("2025-01", 404), ("April", 400), ("2026-13", 400)])
def test_a_period_without_figures_says_so(known, finance, period, status):
    response = finance.get(OVERVIEW, {"period": period})
    assert response.status_code == status
    assert "2026-04" in html(response)  # the periods that do exist are offered


def test_without_snapshots_the_page_says_how_to_compute_one(org, finance):
    response = finance.get(OVERVIEW)
    assert response.status_code == 200
    assert "manage.py recompute_economics acme" in html(response)


@pytest.mark.parametrize("role", [Role.OPS, Role.FINANCE, Role.ENGINEERING, Role.ADMIN])
def test_every_dashboard_opens_for_every_role(known, org, staff_client_factory, role):
    client = staff_client_factory(org, role)
    northwind = known.customers["northwind"]
    pages = [
        "overview", "customers", "features", "plans", "models", "segments", "cohorts",
    ]  # fmt: skip
    for page in pages:
        response = client.get(f"/admin/economics/{page}/", APRIL)
        assert response.status_code == 200, page
    detail = client.get(f"{CUSTOMERS}{northwind.pk}/", APRIL)
    assert detail.status_code == 200
    assert "Northwind" in html(detail)


def test_staff_without_economics_permissions_are_refused(org, known, ops):
    group = Group.objects.get(name=role_group_name(Role.OPS))
    group.permissions.remove(
        *Permission.objects.filter(
            codename__in=["view_economicssnapshot", "view_customereconomics"]
        )
    )
    northwind = known.customers["northwind"]
    for url in (OVERVIEW, CUSTOMERS, f"{CUSTOMERS}{northwind.pk}/", "/admin/economics/plans/"):
        assert ops.get(url, APRIL).status_code == 403, url
    assert "/admin/economics/overview/" not in links(ops.get(reverse("admin:index")))


def test_customers_filter_by_band_plan_and_underwater_and_sort(known, finance):
    def names(params):
        response = finance.get(CUSTOMERS, {**APRIL, **params})
        return [row[0].text for row in response.context["sections"][0]["rows"]]

    assert names({}) == ["Hooli", "Northwind", "Globex", "Initech"]  # worst ratio first
    assert names({"o": "ai_cost"}) == ["Hooli", "Initech", "Globex", "Northwind"]
    assert names({"o": "-revenue"})[0] == "Northwind"
    assert names({"band": "margin_negative"}) == ["Hooli", "Northwind"]
    assert names({"plan": "pro"}) == ["Globex", "Initech"]
    assert names({"underwater": "no"}) == ["Initech"]
    assert names({"q": "glob"}) == ["Globex"]
    assert names({"q": "cust_initech"}) == ["Initech"]


def test_customer_column_headers_sort_figures_largest_first_and_reverse_on_a_second_click(
    known, finance
):
    def sort_links(params):
        response = finance.get(CUSTOMERS, {**APRIL, **params})
        headers = response.context["sections"][0]["headers"]
        return {h["label"]: parse_qs(h["href"][1:])["o"][0] for h in headers if "href" in h}

    default = sort_links({"band": "watch"})
    assert default["AI cost"] == "-ai_cost"
    assert default["Customer"] == "name"
    assert default["AI cost ratio"] == "cost_ratio"  # sorted worst first now: reverse it
    assert sort_links({"o": "cost_ratio"})["AI cost ratio"] == "-cost_ratio"
    response = finance.get(CUSTOMERS, {**APRIL, "band": "watch"})
    ai_cost = next(h for h in response.context["sections"][0]["headers"] if h["label"] == "AI cost")
    assert parse_qs(ai_cost["href"][1:])["band"] == ["watch"]  # the filters survive a sort


def test_a_customer_without_figures_in_the_period_is_explained(known, finance):
    initech = known.customers["initech"]  # not in March
    response = finance.get(f"{CUSTOMERS}{initech.pk}/", {"period": "2026-03"})
    assert response.status_code == 404
    assert "This customer has no figures in March 2026." in html(response)


def test_customers_table_money_is_rounded_and_percentages_shown_as_percent(known, finance):
    response = finance.get(CUSTOMERS, {**APRIL, "plan": "free"})
    cells = {cell.key: cell.text for cell in response.context["sections"][0]["rows"][0]}
    assert cells["ai_cost"] == "$12.35"
    assert cells["cost_ratio"] == "—"  # no revenue, no ratio
    assert cells["band"] == "Margin-negative"
    response = finance.get(CUSTOMERS, {**APRIL, "plan": "enterprise"})
    cells = {cell.key: cell.text for cell in response.context["sections"][0]["rows"][0]}
    assert cells["cost_ratio"] == "120.0 %"
    assert cells["contribution_margin_pct"] == "−25.0 %"
    assert cells["cost_change"] == "+$400.00"
    assert cells["top_features"] == "Summarize, Chat"


def test_customers_table_query_count_does_not_grow_with_rows(
    org, known, finance, django_assert_max_num_queries
):
    with django_assert_max_num_queries(40) as few:
        assert finance.get(CUSTOMERS, APRIL).status_code == 200
    for index in range(60):
        customer = CustomerFactory(organization=org, name=f"Extra {index:02d}")
        customer_economics_create(
            known.snapshot, Row(customer, known.plans["pro"], "10.00", "500.00")
        )

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = finance.get(CUSTOMERS, APRIL)

    assert response.status_code == 200
    assert len(response.context["sections"][0]["rows"]) == 50  # one page


# --- CSV ----------------------------------------------------------------------------------


def test_customers_csv_is_exact_with_a_header_and_the_period_in_its_name(known, finance):
    response = finance.get(CUSTOMERS, {**APRIL, "format": "csv", "o": "ai_cost"})

    assert response["Content-Disposition"] == (
        'attachment; filename="economics-customers-2026-04.csv"'
    )
    rows = read_csv(response)
    assert rows[0] == [
        "customer_id", "name", "plan", "ai_cost", "provisional_cost", "overhead",
        "cost_to_serve", "revenue", "cost_ratio", "contribution_margin",
        "contribution_margin_pct", "band", "underwater", "profitability", "requests", "tokens",
        "cost_change", "margin_change", "ratio_change", "top_features",
    ]  # fmt: skip
    assert rows[1] == [
        "cust_hooli", "Hooli", "free", "12.345678901234", "0.00", "0.00", "12.345678901234",
        "0.00", "", "-12.345678901234", "", "margin_negative", "true", "unprofitable", "10",
        "10000", "", "", "", "Unattributed",
    ]  # fmt: skip
    assert rows[4][:12] == [
        "cust_northwind", "Northwind", "enterprise", "2400.00", "400.00", "100.00", "2500.00",
        "2000.00", "1.2", "-500.00", "-0.25", "margin_negative",
    ]  # fmt: skip
    assert rows[4][16:] == ["400.00", "-400.00", "0.2", "Summarize; Chat"]
    assert len(rows) == 5  # every customer, not one page


@pytest.mark.parametrize(
    ("page", "params", "filename", "header", "first"),
    [
        ("features", {}, "economics-features-2026-04-all.csv",
         ["feature", "name", "plan", "cost", "invocations", "cost_per_invocation",
          "active_users", "cost_per_active_user", "plan_revenue_per_active_user",
          "health_ratio", "band"],
         ["summarize", "Summarize", "", "1900.00", "1900", "1.00", "19", "100.00", "50.00",
          "0.5", "healthy"]),
        ("features", {"table": "prompt_versions"}, "economics-prompt-versions-2026-04.csv",
         ["feature", "prompt_version", "requests", "cost", "cost_per_request"],
         ["summarize", "v2", "120", "1900.00", "15.83333333333333333"]),
        ("plans", {}, "economics-plans-2026-04.csv",
         ["plan", "name", "price", "accounts", "ai_cost", "revenue", "average_ai_cost",
          "average_revenue", "contribution_margin", "contribution_margin_pct", "cost_ratio",
          "band", "cost_stddev", "cost_median", "cost_p95", "tail_threshold", "tail_accounts",
          "tail_account_share", "tail_cost_share", "overconsuming"],
         ["enterprise", "Enterprise", "2000.00", "1", "2400.00", "2000.00", "2400.00",
          "2000.00", "-400.00", "-0.2", "1.2", "watch", "10.50", "2400.00", "2400.00",
          "800.00", "1", "0.5", "0.8", "cust-a"]),
        ("models", {}, "economics-models-2026-04.csv",
         ["provider", "model", "customers", "cost", "revenue", "margin", "margin_pct",
          "cost_ratio", "band"],
         ["openai", "gpt-4o", "3", "2500.00", "2700.00", "200.00", "0.0740740740740741",
          "0.925925925925926", "at_risk"]),
        ("segments", {"dimension": "region"}, "economics-segments-2026-04-region.csv",
         ["dimension", "key", "customers", "cost", "revenue", "margin", "margin_pct",
          "cost_ratio", "band"],
         ["region", "eu", "3", "2750.00", "3000.00", "250.00", "0.0833333333333333",
          "0.916666666666667", "at_risk"]),
        ("cohorts", {}, "economics-cohorts-2026-04.csv",
         ["start_month", "cohort_customers", "month", "customers", "revenue", "cost", "margin",
          "margin_pct"],
         ["2026-02", "2", "1", "2", "1000.00", "300.00", "700.00", "0.7"]),
    ],
)  # fmt: skip
def test_every_table_exports_exact_csv(known, ops, page, params, filename, header, first):
    response = ops.get(f"/admin/economics/{page}/", {**APRIL, **params, "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    rows = read_csv(response)
    assert rows[0] == header
    assert rows[1] == first


def test_customer_feature_costs_export_exactly(known, finance):
    hooli = known.customers["hooli"]
    response = finance.get(f"{CUSTOMERS}{hooli.pk}/", {**APRIL, "format": "csv"})
    assert response["Content-Disposition"] == (
        'attachment; filename="economics-customer-2026-04-cust_hooli.csv"'
    )
    assert read_csv(response) == [
        ["feature", "name", "cost", "share"],
        ["", "Unattributed", "12.345678901234", "1"],
    ]


def test_csv_text_cannot_start_a_spreadsheet_formula(org, finance):
    customer = CustomerFactory(organization=org, external_id="=1+1", name="=HYPERLINK(1)")
    snapshot_create(org, rows=[Row(customer, None, "1.00", "10.00")])
    rows = read_csv(finance.get(CUSTOMERS, {**APRIL, "format": "csv"}))
    assert rows[1][:2] == ["'=1+1", "'=HYPERLINK(1)"]


# --- drill-down ---------------------------------------------------------------------------


def test_plan_to_customers_to_customer_drill_down(known, finance):
    plans = finance.get("/admin/economics/plans/", APRIL)
    pro_customers = f"{CUSTOMERS}?period=2026-04&plan=pro"
    assert pro_customers in links(plans)

    customers = finance.get(pro_customers)
    globex = known.customers["globex"]
    assert f"{CUSTOMERS}{globex.pk}/?period=2026-04" in links(customers)


def test_customer_features_link_to_their_events_of_the_period(org, known, finance):
    northwind = known.customers["northwind"]
    summarize = known.features["summarize"]
    detail = finance.get(f"{CUSTOMERS}{northwind.pk}/", APRIL)

    events = [url for url in links(detail) if url.startswith(EVENTS) and "feature__" in url]
    query = parse_qs(urlsplit(events[0]).query)
    assert query == {
        "customer__id__exact": [str(northwind.pk)],
        "feature__id__exact": [str(summarize.pk)],
        "billable__exact": ["1"],
        "timestamp__gte": ["2026-04-01T00:00:00Z"],
        "timestamp__lt": ["2026-05-01T00:00:00Z"],
    }
    # The link opens the ledger filtered to exactly those events.
    now = datetime(2026, 4, 30, 12, tzinfo=UTC)
    base = {"customer_id": northwind.external_id, "provider": "openai", "model": "gpt-4o",
            "input_tokens": 1000, "output_tokens": 10}  # fmt: skip
    usage_events_ingest(
        organization=org,
        raw_events=[
            {**base, "event_id": "in", "feature": "summarize",
             "timestamp": "2026-04-30T10:00:00+00:00"},
            {**base, "event_id": "other-feature", "feature": "chat",
             "timestamp": "2026-04-30T10:00:00+00:00"},
            {**base, "event_id": "before", "feature": "summarize",
             "timestamp": "2026-03-31T23:59:59+00:00"},
            {**base, "event_id": "other-customer", "feature": "summarize",
             "customer_id": "cust_globex", "timestamp": "2026-04-30T10:00:00+00:00"},
        ],
        now=now,
    )  # fmt: skip
    ledger = finance.get(events[0])
    assert ledger.status_code == 200
    assert [e.event_id for e in ledger.context["cl"].result_list] == ["in"]
    assert f"{CUSTOMERS}?period=2026-04&plan=enterprise" in links(detail)


def test_unattributed_feature_cost_links_to_events_without_a_feature(known, finance):
    hooli = known.customers["hooli"]
    detail = finance.get(f"{CUSTOMERS}{hooli.pk}/", APRIL)
    events = [url for url in links(detail) if url.startswith(EVENTS) and "feature__" in url]
    assert parse_qs(urlsplit(events[0]).query)["feature__isnull"] == ["True"]
    assert finance.get(events[0]).status_code == 200


def test_feature_and_model_rows_link_to_their_events(known, finance):
    features = links(finance.get("/admin/economics/features/", {**APRIL, "plan": "pro"}))
    chat = known.features["chat"]
    pro = known.plans["pro"]
    feature_link = next(url for url in features if f"feature__id__exact={chat.pk}" in url)
    assert f"plan__id__exact={pro.pk}" in feature_link
    models = links(finance.get("/admin/economics/models/", APRIL))
    assert any("provider=openai&model=gpt-4o" in url for url in models)


def test_customer_detail_compares_with_the_previous_period(known, finance):
    northwind = known.customers["northwind"]
    response = finance.get(f"{CUSTOMERS}{northwind.pk}/", APRIL)
    assert ("AI cost", "$2,000.00", "$2,400.00", "+$400.00") in response.context["changes"]
    assert f"{CUSTOMERS}{northwind.pk}/?period=2026-03" in links(response)
    assert figure(response, "cost-ratio") == "120.0 %"


# --- tenancy ------------------------------------------------------------------------------


def test_other_organizations_snapshots_are_invisible(org, known, finance):
    rival = Organization.objects.create(name="Rival Corp", slug="rivalco")
    secret = CustomerFactory(organization=rival, name="Secretive Ltd")
    theirs = snapshot_create(rival, rows=[Row(secret, None, "99.00", "1.00")])
    snapshot_create(rival, period_start=date(2025, 1, 1), rows=[Row(secret, None, "1", "1")])

    for page in ("overview", "customers", "features", "plans", "models", "segments", "cohorts"):
        response = finance.get(f"/admin/economics/{page}/", APRIL)
        assert response.context["snapshot"] == known.snapshot
        assert "Secretive" not in html(response)
    assert finance.get(f"{CUSTOMERS}{secret.pk}/", APRIL).status_code == 404
    assert finance.get(OVERVIEW, {"period": "2025-01"}).status_code == 404  # only theirs
    assert "Secretive" not in html(finance.get(CUSTOMERS, {**APRIL, "format": "csv"}))
    snapshots = finance.get("/admin/economics/economicssnapshot/")
    assert theirs.pk not in {s.pk for s in snapshots.context["cl"].result_list}


# --- navigation ---------------------------------------------------------------------------


def test_sidebar_and_start_page_link_the_dashboards(known, ops):
    start = ops.get(reverse("admin:index"))
    assert "/admin/economics/overview/" in links(start)
    assert "/admin/economics/customers/" in links(start)
    assert "/admin/economics/overview/?period=2026-04" in links(start)
    assert 'data-kpi="economics-underwater">3<' in html(start)


# --- the policy ---------------------------------------------------------------------------


def policy_form(**overrides) -> dict:
    """The policy form as finance submits it: percentages and USD."""
    return {
        "watch_threshold": "30", "at_risk_threshold": "40", "margin_negative_threshold": "100",
        "underwater_threshold": "40", "break_even_band": "5", "tail_ratio": "",
        "overhead_rule": "requests", "monthly_overhead": "0.00", "use_reconciled_cost": "on",
        "changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0",
        **overrides,
    }  # fmt: skip


def test_the_policy_list_opens_the_single_policy_creating_it_with_defaults(org, finance):
    response = finance.get(POLICY_LIST)

    policy = EconomicsPolicy.objects.get(organization=org)
    assert response.status_code == 302
    assert response.url == reverse("admin:economics_economicspolicy_change", args=[policy.pk])
    assert policy.watch_threshold == Decimal("0.30")
    assert not EconomicsPolicyChange.objects.exists()  # creating it changed nothing
    form = finance.get(response.url)
    assert form.status_code == 200
    assert 'name="watch_threshold" value="30"' in html(form)  # shown as a percentage
    assert finance.get(POLICY_LIST).url == response.url  # still the one policy


def test_editing_the_policy_records_one_change_with_old_and_new_values(org, known, finance):
    url = finance.get(POLICY_LIST).url

    response = finance.post(url, policy_form(watch_threshold="35", monthly_overhead="1500"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    policy = EconomicsPolicy.objects.get(organization=org)
    assert policy.watch_threshold == Decimal("0.35")
    assert policy.monthly_overhead == Decimal("1500.00")
    change = EconomicsPolicyChange.objects.get()
    assert change.changes == {
        "watch_threshold": ["0.30", "0.35"],
        "monthly_overhead": ["0.00", "1500.00"],
    }
    assert change.changed_by.username == "finance-acme"
    assert change.organization == org
    # The snapshots were computed with the old policy.
    assert EconomicsSnapshot.objects.filter(organization=org, stale_since__isnull=True).count() == 0
    # The history reads as percentages and dollars on the policy page.
    page = html(finance.get(url))
    assert "Watch from (%): 30 % → 35 %" in page
    assert "Monthly overhead (USD): $0.00 → $1,500.00" in page

    finance.post(url, policy_form(watch_threshold="35.0000", monthly_overhead="1500.00"))
    assert EconomicsPolicyChange.objects.count() == 1  # nothing changed, nothing recorded


def test_the_policy_refuses_thresholds_that_do_not_ascend(org, finance):
    url = finance.get(POLICY_LIST).url

    response = finance.post(url, policy_form(watch_threshold="45", at_risk_threshold="40"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["at_risk_threshold"] == [
        "Must be above “watch from” (45 %): the bands ascend from healthy to margin-negative."
    ]
    assert EconomicsPolicy.objects.get(organization=org).watch_threshold == Decimal("0.30")
    assert not EconomicsPolicyChange.objects.exists()


def test_the_policy_refuses_more_places_than_it_stores(org, finance):
    url = finance.get(POLICY_LIST).url
    response = finance.post(url, policy_form(watch_threshold="30.12345"))
    assert (
        "at most four decimal places"
        in response.context["adminform"].form.errors["watch_threshold"][0]
    )


def test_ops_can_read_the_policy_but_not_change_it(org, ops):
    url = ops.get(POLICY_LIST).url
    page = ops.get(url)

    assert page.status_code == 200
    assert 'name="watch_threshold"' not in html(page)  # read-only
    assert "30 %" in html(page)
    response = ops.post(url, policy_form(watch_threshold="10"))
    assert response.status_code == 403
    assert EconomicsPolicy.objects.get(organization=org).watch_threshold == Decimal("0.30")


def test_policy_history_and_snapshots_cannot_be_edited_in_the_admin(org, known, finance):
    policy = EconomicsPolicy.objects.get_or_create(organization=org)[0]
    assert finance.get(f"/admin/economics/economicspolicy/{policy.pk}/delete/").status_code == 403
    assert finance.get("/admin/economics/economicspolicy/add/").status_code == 403
    assert finance.get("/admin/economics/economicssnapshot/add/").status_code == 403
    snapshot = known.snapshot
    assert (
        finance.post(f"/admin/economics/economicssnapshot/{snapshot.pk}/delete/", {"post": "yes"})
    ).status_code == 403
    assert EconomicsSnapshot.objects.filter(pk=snapshot.pk).exists()


def test_snapshot_and_customer_rows_link_to_the_dashboards(known, ops):
    snapshots = ops.get("/admin/economics/economicssnapshot/")
    assert "/admin/economics/overview/?period=2026-04" in links(snapshots)
    rows = ops.get(
        "/admin/economics/customereconomics/", {"snapshot__id__exact": known.snapshot.pk}
    )
    northwind = known.customers["northwind"]
    assert f"{CUSTOMERS}{northwind.pk}/?period=2026-04" in links(rows)


def test_the_history_lists_the_newest_change_first(org, finance):
    url = finance.get(POLICY_LIST).url
    finance.post(url, policy_form(watch_threshold="31"))
    finance.post(url, policy_form(watch_threshold="32"))

    history = finance.get(url)

    page = html(history)
    assert page.index("31 % → 32 %") < page.index("30 % → 31 %")
