"""Economics end to end on a hand-computed month: ledger → aggregates → snapshot.

October 2026, ``now`` 2026-10-25. Costs are provider-reported, so every figure below is
exact arithmetic on the numbers in the events:

- A (Pro since September): chat 10.00 on the 3rd (user u1), summarize 25.00 on the 5th
  (u2), and 7.00 of staging traffic (not billable) → AI cost 35.00, revenue 100.00.
- B (Pro, then Enterprise from the 16th): chat 20.00 on the 10th and 200.00 on the 20th
  (both u3) → AI cost 220.00, revenue 100.00 + 500.00 = 600.00, plan at month end Enterprise.
- C (Free): summarize 5.00 on the 7th (u4) → AI cost 5.00, no revenue.
- I (internal, Pro): chat 50.00 → in the ledger, out of customer economics.
- An event with no customer: 3.00 → not billable, unattributed.

Ledger total 320.00 = customers 260.00 + not billable 60.00 (50 + 7 + 3).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from accounts import services as accounts
from economics.models import (
    CustomerEconomics,
    CustomerFeatureMonth,
    EconomicsPolicy,
    EconomicsSnapshot,
)
from economics.selectors import snapshot_stale_since
from economics.services import (
    economics_policy_update,
    economics_recompute,
    economics_recompute_months,
    economics_refresh,
)
from economics.tasks import economics_refresh_all
from ingestion.models import ReconciliationLine, UsageChange, UsageEvent
from ingestion.schedules import all_schedules
from ingestion.services.ingest import usage_events_ingest
from ingestion.services.revenue import manual_revenue_entry_create

NOW = datetime(2026, 10, 25, 12, tzinfo=UTC)
OCTOBER = date(2026, 10, 1)
D = Decimal


def _event(event_id, day, customer, feature, cost, user="", environment="production"):
    return {
        "event_id": event_id,
        "timestamp": f"2026-10-{day:02d}T12:00:00Z",
        "customer_id": customer,
        "feature": feature,
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": str(cost),
        "user_id": user,
        "environment": environment,
    }


@pytest.fixture
def month(org):
    plans = {
        code: accounts.plan_create(organization=org, code=code, name=code.title(), price=price)
        for code, price in (("pro", D("100")), ("enterprise", D("1000")), ("free", D("0")))
    }
    for key in ("chat", "summarize"):
        accounts.feature_create(organization=org, key=key)
    september = datetime(2026, 9, 1, tzinfo=UTC)
    customers = {
        "A": accounts.customer_create(organization=org, external_id="A", plan=plans["pro"],
                                      plan_from=september, started_on=date(2026, 9, 1)),
        "B": accounts.customer_create(organization=org, external_id="B", plan=plans["pro"],
                                      plan_from=september, started_on=date(2026, 10, 1)),
        "C": accounts.customer_create(organization=org, external_id="C", plan=plans["free"],
                                      plan_from=september, started_on=date(2026, 10, 1)),
        "I": accounts.customer_create(organization=org, external_id="I", plan=plans["pro"],
                                      plan_from=september, is_internal=True),
    }  # fmt: skip
    accounts.customer_plan_assign(
        customer=customers["B"], plan=plans["enterprise"],
        valid_from=datetime(2026, 10, 16, tzinfo=UTC),
    )  # fmt: skip
    result = usage_events_ingest(
        organization=org,
        now=NOW,
        raw_events=[
            _event("a1", 3, "A", "chat", "10.00", "u1"),
            _event("a2", 5, "A", "summarize", "25.00", "u2"),
            _event("a3", 5, "A", "chat", "7.00", "u1", environment="staging"),
            _event("b1", 10, "B", "chat", "20.00", "u3"),
            _event("b2", 20, "B", "chat", "200.00", "u3"),
            _event("c1", 7, "C", "summarize", "5.00", "u4"),
            _event("i1", 8, "I", "chat", "50.00", "staff"),
            _event("n1", 9, "", "chat", "3.00"),
        ],
    )
    assert result.accepted == 8
    for customer, start, end, amount in (
        ("A", date(2026, 10, 1), date(2026, 11, 1), "100.00"),
        ("B", date(2026, 10, 1), date(2026, 10, 16), "100.00"),
        ("B", date(2026, 10, 16), date(2026, 11, 1), "500.00"),
    ):
        manual_revenue_entry_create(
            organization=org, customer=customers[customer], period_start=start,
            period_end=end, amount=D(amount), currency="USD",
        )  # fmt: skip
    return customers, plans


def _rows(snapshot):
    return {row.customer.external_id: row for row in snapshot.customers.select_related("customer")}


def test_month_snapshot_matches_the_hand_computed_figures(org, month):
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    rows = _rows(snapshot)

    assert set(rows) == {"A", "B", "C"}  # the internal account is left out
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a.ai_cost, a.revenue, a.contribution_margin) == (D("35"), D("100"), D("65"))
    assert a.cost_ratio == D("0.35") and a.band == "watch" and not a.underwater
    assert a.profitability == "profitable" and a.plan.code == "pro"
    # B changed plan mid-month: reported under the plan in force at the month's end.
    assert (b.ai_cost, b.revenue, b.plan.code) == (D("220"), D("600"), "enterprise")
    assert b.band == "watch" and not b.underwater  # 220 / 600 = 0.3667
    # Cost with no revenue: margin-negative and underwater, never a ratio.
    assert c.cost_ratio is None and c.band == "margin_negative" and c.underwater
    assert c.contribution_margin == D("-5") and c.profitability == "unprofitable"
    assert [f["feature"] for f in a.feature_costs] == ["summarize", "chat"]
    assert [D(f["cost"]) for f in a.feature_costs] == [D("25"), D("10")]

    summary = snapshot.summary
    assert summary["customers"] == 3
    assert summary["band_counts"] == {"healthy": 0, "watch": 2, "at_risk": 0,
                                      "margin_negative": 1}  # fmt: skip
    assert summary["underwater"] == 1
    assert D(summary["ai_cost"]) == D("260") and D(summary["revenue"]) == D("700")
    assert D(summary["contribution_margin"]) == D("440")
    assert D(summary["non_billable_cost"]) == D("60")
    assert D(summary["unattributed_cost"]) == D("3")
    assert summary["top_by_cost_ratio"][0]["customer_id"] == "C"


def test_snapshot_totals_equal_the_raw_ledger_exactly(org, month):
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    ledger = UsageEvent.objects.filter(
        organization=org, timestamp__gte=datetime(2026, 10, 1, tzinfo=UTC),
        timestamp__lt=datetime(2026, 11, 1, tzinfo=UTC),
    ).aggregate(total=Sum("cost"))["total"]  # fmt: skip
    customers = snapshot.customers.aggregate(total=Sum("ai_cost"))["total"]
    assert ledger == D("320")
    assert D(snapshot.summary["ledger_cost"]) == ledger
    assert customers + D(snapshot.summary["non_billable_cost"]) == ledger
    trend_cost = sum(D(point["cost"]) for point in snapshot.trend)
    assert trend_cost == customers  # the daily trend adds up to the customers' cost
    assert sum(D(point["revenue"]) for point in snapshot.trend) == D("700")


def test_plan_and_feature_figures(org, month):
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    plans = {row["plan"]: row for row in snapshot.plans}
    assert plans["pro"]["accounts"] == 1 and D(plans["pro"]["ai_cost"]) == D("35")
    # Free plan: any cost is at or above 0.40 × $0, so its one account is the tail.
    assert plans["free"]["tail_accounts"] == 1 and plans["free"]["overconsuming"] == ["C"]
    features = {(row["feature"], row["plan"]): row for row in snapshot.features}
    # Feature figures use the plan at each event's time: B's chat on the 10th was Pro.
    chat_pro = features[("chat", "pro")]
    assert D(chat_pro["cost"]) == D("30") and chat_pro["invocations"] == 2
    assert chat_pro["active_users"] == 2  # u1 (A) and u3 (B)
    assert D(features[("chat", None)]["cost"]) == D("230")
    assert snapshot.summary["coverage"]["feature"] is not None
    # A month is shown day by day; each feature's buckets add up to its billable cost.
    trend = snapshot.feature_trend
    assert trend["granularity"] == "day" and len(trend["buckets"]) == 31
    assert sum(D(cost) for cost in trend["series"]["chat"]) == D("230")
    assert sum(D(cost) for cost in trend["series"]["summarize"]) == D("30")


def test_overhead_is_allocated_by_requests_to_the_cent(org, month):
    EconomicsPolicy.objects.create(organization=org, monthly_overhead=D("31.00"))
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    rows = _rows(snapshot)
    # 5 billable requests: A 2, B 2, C 1 → 12.40, 12.40, 6.20.
    assert [rows[c].overhead for c in "ABC"] == [D("12.40"), D("12.40"), D("6.20")]
    assert rows["A"].cost_to_serve == D("47.40")
    assert D(snapshot.summary["overhead"]) == D("31.00")


def test_reconciled_cost_replaces_provisional_where_a_bill_exists(org, month):
    def bill(day, invoiced):
        ReconciliationLine.objects.create(
            organization=org, provider="openai", day=day, model="gpt-4o",
            invoiced_cost=D(invoiced), variance=D(0), tolerance_percent=D("2"),
        )  # fmt: skip

    bill(date(2026, 10, 3), "12.00")  # the ledger says 10.00 (A's chat)
    bill(date(2026, 10, 4), "4.00")  # no ledger event that day: uninstrumented
    UsageChange.objects.create(organization=org, day=date(2026, 10, 3))
    UsageChange.objects.create(organization=org, day=date(2026, 10, 4))
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    a = _rows(snapshot)["A"]
    assert a.ai_cost == D("37.00")  # 12.00 billed + 25.00 provisional
    assert a.provisional_cost == D("25.00")
    assert D(snapshot.summary["uninstrumented_cost"]) == D("4.00")
    assert D(snapshot.summary["ledger_cost"]) == D("320")  # the ledger is untouched


def test_incremental_refresh_rebuilds_only_the_changed_day(org, month):
    economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    late = usage_events_ingest(
        organization=org, now=NOW, raw_events=[_event("a4", 6, "A", "chat", "1.50", "u5")]
    )
    assert late.accepted == 1
    snapshot = _rows(economics_recompute(organization=org, period_start=OCTOBER, now=NOW,
                                         refresh=False))["A"].snapshot  # fmt: skip
    assert snapshot_stale_since(snapshot=snapshot) is not None  # the change is not in yet

    refreshed = economics_refresh(organization=org, now=NOW)
    assert refreshed.days == [date(2026, 10, 6)]
    snapshot = refreshed.snapshots[0]
    assert _rows(snapshot)["A"].ai_cost == D("36.50")
    assert snapshot_stale_since(snapshot=snapshot) is None

    # The incrementally kept month equals a rebuild from scratch.
    def month_rows():
        return set(
            CustomerFeatureMonth.objects.filter(organization=org).values_list(
                "customer_id", "plan_id", "feature_id", "billable", "requests", "tokens",
                "cost", "reconciled_cost",
            )
        )  # fmt: skip

    incremental = month_rows()
    CustomerFeatureMonth.objects.filter(organization=org).delete()
    from economics.models import UsageDay

    UsageDay.objects.filter(organization=org).delete()
    economics_recompute_months(organization=org, months=[OCTOBER], now=NOW)
    assert month_rows() == incremental


def test_change_against_the_previous_month(org, month):
    economics_recompute(organization=org, period_start=date(2026, 9, 1), now=NOW)
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    assert snapshot.summary["previous_period_start"] == "2026-09-01"
    # A had no September row: no change to report.
    assert (
        CustomerEconomics.objects.get(snapshot=snapshot, customer__external_id="A").cost_change
        is None
    )


def _command(*args) -> str:
    out = StringIO()
    call_command("recompute_economics", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_recompute_command_for_a_month_and_for_what_changed(org, month):
    output = _command(org.slug, "--period", "2026-10")
    assert "October 2026: 3 customers, revenue $700.00, AI cost $260" in output
    assert "1 underwater" in output
    # Nothing marked changed since: the refresh has nothing to do.
    assert "Nothing changed" in _command(org.slug)
    usage_events_ingest(
        organization=org, now=NOW, raw_events=[_event("a5", 6, "A", "chat", "2.00", "u1")]
    )
    output = _command(org.slug)
    assert "1 changed day(s) rebuilt." in output and "AI cost $262" in output


def test_recompute_command_refuses_bad_input(org):
    with pytest.raises(CommandError, match="No organization"):
        _command("nope")
    with pytest.raises(CommandError, match="YYYY-MM"):
        _command(org.slug, "--period", "October")


def test_refresh_task_follows_every_organization_with_changes(org, month):
    results = economics_refresh_all()
    assert list(results) == [org.pk]
    assert EconomicsSnapshot.objects.filter(organization=org, kind="month").exists()
    assert economics_refresh_all() == {}  # nothing left to do
    assert any(spec.func == "economics.tasks.economics_refresh_all"
               for spec in all_schedules())  # fmt: skip


def test_a_policy_edit_marks_snapshots_stale_and_the_refresh_recomputes_them(org, month):
    snapshot = economics_recompute(organization=org, period_start=OCTOBER, now=NOW)
    assert _rows(snapshot)["A"].overhead == D("0")
    economics_policy_update(organization=org, user=None, monthly_overhead=D("31.00"))
    snapshot.refresh_from_db()
    assert snapshot_stale_since(snapshot=snapshot) is not None

    refreshed = economics_refresh(organization=org, now=NOW)
    assert refreshed.days == []  # no usage changed: only the stale month is recomputed
    (recomputed,) = [s for s in refreshed.snapshots if s.kind == "month"]
    assert _rows(recomputed)["A"].overhead == D("12.40")
    assert recomputed.stale_since is None
