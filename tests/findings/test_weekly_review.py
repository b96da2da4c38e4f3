"""The weekly review on a small, hand-computed organization, and its CSV and Markdown."""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from economics.models import EconomicsSnapshot, PromptVersionDay
from findings.models import Budget, BudgetTransition
from findings.review_export import weekly_review_csv, weekly_review_markdown
from findings.selectors_review import weekly_review
from findings.services.remediation import (
    remediation_cancel,
    remediation_create,
    remediation_submit,
)
from tests.accounts.factories import CustomerFactory, FeatureFactory, PlanFactory
from tests.economics.builders import Row, plan_item, snapshot_create

pytestmark = pytest.mark.django_db

D = Decimal
WEEK = date(2026, 4, 13)  # a Monday; the week is April 13 to 19
NOW = datetime(2026, 4, 21, 9, 0, tzinfo=UTC)
ROLLING = EconomicsSnapshot.Kind.ROLLING_30D


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 4, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """Rows created inside ``clock(moment)`` get ``moment`` as their created_at."""

    @contextmanager
    def frozen(moment: datetime):
        with monkeypatch.context() as patch:
            patch.setattr("django.utils.timezone.now", lambda: moment)
            yield

    return frozen


def feature_row(feature, plan_code, cost, users, revenue_per_user):
    """A snapshot.features row (SNAPSHOTS.md) with what the review reads."""
    return {
        "feature_id": feature.pk if feature else None, "feature": feature.key if feature else None,
        "name": feature.name if feature else "Unattributed", "plan": plan_code, "cost": cost,
        "invocations": users * 100, "active_users": users,
        "cost_per_invocation": str(D(cost) / (users * 100)),
        "cost_per_active_user": str(D(cost) / users),
        "plan_revenue_per_active_user": revenue_per_user, "health_ratio": None,
        "band": "margin_negative",
    }  # fmt: skip


@pytest.fixture
def acme(org, staff_factory, clock):
    """Acme's week of April 13, 2026 (USD):

    Feature paths (revenue = active users × plan revenue per active user):
      summarize × enterprise  1800.00 vs 18 × 50 = 900   → −900.00
      research  × pro          500.00 vs  2 × 40 =  80   → −420.00
      summarize × pro          100.00 vs  1 × 40 =  40   →  −60.00
      chat      × pro          250.00 vs  5 × 40 = 200   →  −50.00 (4th: left out)
      chat      × enterprise   600.00 vs 12 × 50 = 600   →    0.00 (not negative)
    Prompt versions of summarize: v1 before the week 200 requests for 24.00 (0.12 each);
    v2, new on April 14, 150 requests for 27.00 (0.18 each); v1 in the week 50 requests.
    Impact: −0.06 × 200 requests × 30 / 7 = −360 / 7 a month.
    """
    plans = {
        code: PlanFactory(organization=org, code=code, name=code.title(), price=D(price))
        for code, price in (("enterprise", "2000.00"), ("pro", "500.00"), ("free", "0"))
    }
    summarize = FeatureFactory(organization=org, key="summarize", name="Summarize")
    chat = FeatureFactory(organization=org, key="chat", name="Chat")
    research = FeatureFactory(organization=org, key="research", name="Research agent")
    customers = {
        name.lower(): CustomerFactory(
            organization=org, external_id=f"cust_{name.lower()}", name=name
        )  # fmt: skip
        for name in ("Northwind", "Globex", "Initech", "Hooli", "Umbrella")
    }
    rows = [
        Row(customers["northwind"], plans["enterprise"], "2400.00", "2000.00",
            band="margin_negative", underwater=True, profitability="unprofitable"),
        Row(customers["umbrella"], plans["enterprise"], "900.00", "3000.00"),  # tail: ≥ 800
        Row(customers["globex"], plans["pro"], "250.00", "500.00", band="at_risk",
            underwater=True),
        Row(customers["initech"], plans["pro"], "100.00", "500.00"),
        Row(customers["hooli"], plans["free"], "12.345678901234", "0.00",
            band="margin_negative", underwater=True, profitability="unprofitable"),
    ]  # fmt: skip
    bins = [("0", "1", 1)]
    snapshot = snapshot_create(
        org, rows=rows, kind=ROLLING, period_start=date(2026, 3, 20),
        period_end=date(2026, 4, 19), as_of=datetime(2026, 4, 19, 3, 0, tzinfo=UTC),
        features=[
            feature_row(summarize, None, "1900.00", 19, None),  # all plans: not a path
            feature_row(summarize, "enterprise", "1800.00", 18, "50.00"),
            feature_row(chat, "enterprise", "600.00", 12, "50.00"),
            feature_row(research, "pro", "500.00", 2, "40.00"),
            feature_row(chat, "pro", "250.00", 5, "40.00"),
            feature_row(summarize, "pro", "100.00", 1, "40.00"),
            feature_row(None, "free", "12.345678901234", 1, None),  # unknown revenue
        ],
        plans=[
            plan_item(plans["enterprise"], accounts=2, ai_cost="3300.00", revenue="5000.00",
                      median="1650.00", p95="2400.00", tail_threshold="800.00", bins=bins),
            plan_item(plans["pro"], accounts=2, ai_cost="350.00", revenue="1000.00",
                      median="175.00", p95="250.00", tail_threshold="200.00", bins=bins),
        ],
        prompt_versions=[
            {"feature_id": summarize.pk, "feature": "summarize", "prompt_version": "v1",
             "requests": 1000, "cost": "1200.00", "cost_per_request": "1.2"},
            {"feature_id": summarize.pk, "feature": "summarize", "prompt_version": "v2",
             "requests": 300, "cost": "700.00", "cost_per_request": "2.333333333333"},
        ],
    )  # fmt: skip
    # Neither is the week's: the month (a rolling one exists) and a later rolling window.
    snapshot_create(org, period_start=date(2026, 4, 1))
    snapshot_create(org, kind=ROLLING, period_start=date(2026, 4, 10),
                    period_end=date(2026, 5, 10))  # fmt: skip

    def prompt_day(feature, day, version, requests, cost):
        PromptVersionDay.objects.create(
            organization_id=org.pk, day=day, feature=feature, prompt_version=version,
            requests=requests, cost=D(cost),
        )  # fmt: skip

    prompt_day(summarize, date(2026, 2, 1), "v1", 100, "9.00")  # before the baseline
    prompt_day(summarize, date(2026, 3, 20), "v1", 100, "10.00")
    prompt_day(summarize, date(2026, 4, 1), "v1", 100, "14.00")
    prompt_day(summarize, date(2026, 4, 13), "v1", 50, "6.00")
    prompt_day(summarize, date(2026, 4, 14), "v2", 100, "17.00")
    prompt_day(summarize, date(2026, 4, 15), "v2", 50, "10.00")
    prompt_day(summarize, date(2026, 4, 20), "v3", 10, "1.00")  # the next week
    prompt_day(research, date(2026, 4, 16), "r1", 20, "2.00")  # a new feature's first

    budget = Budget.objects.create(organization=org, name="All AI", scope="organization",
                                   monthly_limit=D("5000.00"))  # fmt: skip
    for moment, old, new, spend in (
        (at(10), "ok", "warning", "4000.00"),
        (at(14), "warning", "exceeded", "5000.00"),
        (at(19, 23), "exceeded", "ok", "5000.00"),
        (at(20, 0), "ok", "warning", "4100.00"),
    ):
        with clock(moment):
            BudgetTransition.objects.create(
                organization=org, budget=budget, month=date(2026, 4, 1), from_state=old,
                to_state=new, spend=D(spend), limit=D("5000.00"),
            )  # fmt: skip

    requester = staff_factory(org)

    def item(moment, kind, title, savings, **scope):
        # Through the workflow's services: the database only accepts items that start
        # as drafts and move along logged, legal transitions.
        with clock(moment):
            return remediation_create(
                actor=requester, organization=org, kind=kind, title=title,
                estimated_monthly_savings=D(savings), **scope,
            )  # fmt: skip

    reprice = item(at(14), "reprice_plan", "Reprice Pro to $59", "2500.00", plan=plans["pro"])
    contact = item(at(1), "contact_customer", "Talk to Northwind about usage", "400.00",
                   customer=customers["northwind"])  # fmt: skip
    item(at(14), "model_swap", "Summaries on gpt-4o-mini", "900.00")  # not a pricing action
    hooli = item(at(16), "quota", "Cap Hooli's free usage", "12.00", customer=customers["hooli"])
    item(at(1), "quota", "Cap Initech", "10.00", customer=customers["initech"])  # untouched
    with clock(at(14)):
        remediation_submit(item=reprice, actor=requester)
    with clock(at(15)):
        remediation_submit(item=contact, actor=requester)
    with clock(at(16)):
        remediation_cancel(item=hooli, actor=requester)
    return {"snapshot": snapshot, "plans": plans, "customers": customers, "budget": budget,
            "summarize": summarize}  # fmt: skip


def test_weekly_review_of_a_known_week(org, acme, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        review = weekly_review(organization=org, now=NOW)

    assert (review.week_start, review.week_end) == (WEEK, date(2026, 4, 20))
    assert (review.snapshot_id, review.snapshot_kind) == (acme["snapshot"].pk, ROLLING)
    assert review.snapshot_stale is False

    # (a) the three most negative feature × plan paths.
    assert [(p.feature_key, p.plan_code, p.cost, p.revenue, p.margin)
            for p in review.negative_margin_paths] == [
        ("summarize", "enterprise", D("1800.00"), D("900.00"), D("-900.00")),
        ("research", "pro", D("500.00"), D("80.00"), D("-420.00")),
        ("summarize", "pro", D("100.00"), D("40.00"), D("-60.00")),
    ]  # fmt: skip
    top = review.negative_margin_paths[0]
    assert top.margin_pct == D("-1")
    assert [(v.prompt_version, v.cost) for v in top.prompt_versions] == [
        ("v1", D("1200.00")),
        ("v2", D("700.00")),
    ]

    # (b) v2 of summarize, new in the week.
    (change,) = review.prompt_version_changes
    assert (change.feature_key, change.prompt_version, change.first_seen) == (
        "summarize",
        "v2",
        date(2026, 4, 14),
    )
    assert change.previous_versions == ("v1",)
    assert (change.requests_before, change.cost_before) == (200, D("24.00"))
    assert change.cost_per_request_before == D("0.12")
    assert (change.requests_after, change.cost_after) == (150, D("27.00"))
    assert change.cost_per_request_after == D("0.18")
    assert change.cost_per_request_change == D("0.06")
    assert change.cost_per_request_change_pct == D("0.5")
    assert change.feature_requests_in_week == 200
    assert change.monthly_margin_impact == D("-360") / 7

    # (c) the budget's changes in the week, in order.
    assert [(b.from_state, b.to_state, b.spend) for b in review.budget_changes] == [
        ("warning", "exceeded", D("5000.00")),
        ("exceeded", "ok", D("5000.00")),
    ]
    assert review.budget_changes[0].scope_label == "Organization"

    # (d) pricing, quota and contact actions of the week, latest activity first …
    assert [(a.kind, a.title, a.state, a.customer_external_id, a.plan_code)
            for a in review.tenant_actions] == [
        ("quota", "Cap Hooli's free usage", "cancelled", "cust_hooli", None),
        ("contact_customer", "Talk to Northwind about usage", "pending_approval",
         "cust_northwind", None),
        ("reprice_plan", "Reprice Pro to $59", "pending_approval", None, "pro"),
    ]  # fmt: skip
    assert review.tenant_actions[1].last_change_at == at(15)
    # … and the outliers nobody acts on yet: Northwind has a contact, Globex's plan a
    # repricing; Hooli's quota was cancelled.
    assert [(o.customer_external_id, o.ai_cost, o.underwater, o.in_tail)
            for o in review.outliers_without_action] == [
        ("cust_umbrella", D("900.00"), False, True),
        ("cust_hooli", D("12.345678901234"), True, False),
    ]  # fmt: skip
    assert review.outlier_count == 2


def test_exports_contain_the_figures(org, acme):
    review = weekly_review(organization=org, week_start=WEEK, now=NOW)

    rows = list(csv.DictReader(io.StringIO(weekly_review_csv(review))))
    by_section = {}
    for row in rows:
        by_section.setdefault(row["section"], []).append(row)
    top = by_section["negative_margin_path"][0]
    assert (top["subject"], top["plan"], top["cost"], top["revenue"], top["margin"]) == (
        "summarize",
        "enterprise",
        "1800.00",
        "900.00",
        "-900.00",
    )
    assert top["prompt_version"] == "v1"
    assert [r["margin"] for r in by_section["negative_margin_path"]] == [
        "-900.00",
        "-420.00",
        "-60.00",
    ]
    (change,) = by_section["prompt_version_change"]
    assert (change["prompt_version"], change["from"], change["to"]) == (
        "v2",
        "0.120000",
        "0.180000",
    )
    assert change["monthly_impact"] == "-51.43"  # −360 / 7
    assert [(r["from"], r["to"], r["cost"]) for r in by_section["budget_change"]] == [
        ("warning", "exceeded", "5000.00"),
        ("exceeded", "ok", "5000.00"),
    ]
    assert [r["monthly_impact"] for r in by_section["tenant_action"]] == [
        "12.00",
        "400.00",
        "2500.00",
    ]
    assert [(r["subject"], r["cost"]) for r in by_section["outlier_without_action"]] == [
        ("Umbrella (cust_umbrella)", "900.00"),
        ("Hooli (cust_hooli)", "12.35"),
    ]

    markdown = weekly_review_markdown(review)
    assert markdown.startswith("# Weekly review — Acme AI\n")
    assert "Week 2026-04-13 to 2026-04-19 (UTC)." in markdown
    assert ("| 1 | Summarize (`summarize`) | enterprise | $1,800.00 | $900.00 | -$900.00 | "
            "-100.0 % |") in markdown  # fmt: skip
    assert (
        "| Summarize | v2 (was v1) | 2026-04-14 | $0.120000 | $0.180000 | +50.0 % | -$51.43 |"
        in markdown
    )
    assert "| All AI | Organization | warning | exceeded | $5,000.00 | $5,000.00 |" in markdown
    assert "| Reprice Pro to $59 | pending_approval | $2,500.00 |" in markdown
    umbrella = (
        "| Umbrella (cust_umbrella) | enterprise | $900.00 | $3,000.00 | $2,100.00 | 30.0 % |"
    )
    assert f"{umbrella} plan tail |" in markdown


def test_csv_text_cannot_run_as_a_spreadsheet_formula(org, acme):
    review = weekly_review(organization=org, week_start=WEEK, now=NOW)
    outlier = replace(review.outliers_without_action[0], customer_name='=HYPERLINK("x")')
    review = replace(review, outliers_without_action=(outlier,))

    rows = list(csv.DictReader(io.StringIO(weekly_review_csv(review))))

    (row,) = [r for r in rows if r["section"] == "outlier_without_action"]
    assert row["subject"].startswith("'=HYPERLINK")
    assert row["margin"] == "2100.00"


def test_a_week_without_a_rolling_snapshot_reads_its_month(org, acme):
    # April 20 to 26: no rolling window ends in it.
    review = weekly_review(organization=org, week_start=date(2026, 4, 20), now=NOW)

    assert (review.snapshot_kind, review.snapshot_period_start) == ("month", date(2026, 4, 1))


def test_an_empty_week_says_so(org):
    review = weekly_review(organization=org, week_start=WEEK, now=NOW)

    assert review.snapshot_id is None
    sections = (
        review.negative_margin_paths,
        review.prompt_version_changes,
        review.budget_changes,
        review.tenant_actions,
        review.outliers_without_action,
    )
    assert sections == ((), (), (), (), ())
    markdown = weekly_review_markdown(review)
    assert "No economics snapshot covers this week" in markdown
    assert "No budget changed state." in markdown
    assert weekly_review_csv(review) == (
        "section,rank,subject,plan,prompt_version,from,to,cost,revenue,margin,"
        "monthly_impact,date,details\n"
    )


def test_another_organizations_rows_stay_out(org, other_org, acme):
    review = weekly_review(organization=other_org, week_start=WEEK, now=NOW)

    assert review.snapshot_id is None
    assert review.budget_changes == review.tenant_actions == review.prompt_version_changes == ()
