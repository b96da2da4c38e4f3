"""The economics calculator on hand-computed fixtures, plus a few properties.

Pure functions: no database. Every expected figure is worked out in the comments beside it.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from economics.calculations import (
    BANDS,
    CENT,
    UNALLOCATED,
    UNATTRIBUTED,
    Band,
    CohortUsage,
    CostAttribution,
    CustomerUsage,
    DimensionUsage,
    FeatureUsage,
    Granularity,
    OverheadRule,
    PlanAccount,
    Policy,
    Profitability,
    PromptVersionUsage,
    allocate,
    allocate_evenly,
    allocate_revenue,
    attribution_coverage,
    band,
    bucket_sums,
    buckets,
    cohort_margins,
    cost_by_prompt_version,
    cost_ratio,
    customer_economics,
    feature_economics,
    granularity,
    is_underwater,
    margin_by_dimension,
    margin_trend,
    median,
    monthly_price,
    months_since_start,
    percentile,
    plan_economics,
    plans_from_customers,
    population_stddev,
    profitability,
    reconciled_costs,
    revenue_per_active_user,
)

D = Decimal
POLICY = Policy()


# --- policy ---------------------------------------------------------------------------------


def test_policy_defaults_are_design_section_7():
    assert (POLICY.watch_threshold, POLICY.at_risk_threshold) == (D("0.30"), D("0.40"))
    assert POLICY.margin_negative_threshold == D("1.00")
    assert POLICY.underwater_threshold == D("0.40")
    assert POLICY.break_even_band == D("0.05")
    # The tail rule follows the underwater threshold unless set on its own.
    assert POLICY.tail_threshold_ratio == D("0.40")
    assert Policy(tail_ratio=D("0.5")).tail_threshold_ratio == D("0.5")
    assert POLICY.overhead == 0 and POLICY.overhead_rule is OverheadRule.REQUESTS


def test_policy_coerces_strings_and_ints_to_decimal():
    policy = Policy(watch_threshold="0.2", overhead=150, overhead_rule="even")
    assert policy.watch_threshold == D("0.2") and isinstance(policy.overhead, Decimal)
    assert policy.overhead_rule is OverheadRule.EVEN


@pytest.mark.parametrize(
    "kwargs",
    [
        {"watch_threshold": D("0.40")},  # not below at_risk
        {"at_risk_threshold": D("0.25")},  # below watch
        {"margin_negative_threshold": D("0.40")},  # equal to at_risk
        {"watch_threshold": D("-0.1")},
        {"underwater_threshold": D("-0.01")},
        {"break_even_band": D("-0.05")},
        {"tail_ratio": D("-1")},
        {"overhead": D("-1.00")},
        {"overhead": D("10.005")},  # not whole cents
        {"overhead_rule": "headcount"},
    ],
)
def test_policy_refuses_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        Policy(**kwargs)


def test_policy_refuses_floats():
    with pytest.raises(TypeError):
        Policy(watch_threshold=0.3)


# --- bands, underwater, profitability --------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        ("0", Band.HEALTHY),
        ("29.99", Band.HEALTHY),  # 29.99 / 100 = 0.2999 < 0.30
        ("30.00", Band.WATCH),  # exactly 0.30: the band above
        ("39.99", Band.WATCH),
        ("40.00", Band.AT_RISK),  # exactly 0.40
        ("99.99", Band.AT_RISK),
        ("100.00", Band.MARGIN_NEGATIVE),  # exactly 1.00
        ("250", Band.MARGIN_NEGATIVE),
    ],
)
def test_band_boundaries_on_100_dollars_of_revenue(cost, expected):
    assert band(D(cost), D("100.00"), POLICY) is expected


def test_band_boundaries_are_exact_with_non_terminating_divisions():
    # 3 / 10 = 0.3 exactly; 1 / 3 = 0.333… (watch); 0.3 is reached from 9 / 30 too.
    assert band(D(3), D(10)) is Band.WATCH
    assert band(D(9), D(30)) is Band.WATCH
    assert band(D(1), D(3)) is Band.WATCH
    assert band(D("2.9999999999"), D(10)) is Band.HEALTHY


def test_zero_revenue():
    # Any cost with zero revenue: no ratio, margin-negative, underwater, unprofitable.
    assert cost_ratio(D("0.01"), D(0)) is None
    assert band(D("0.01"), D(0)) is Band.MARGIN_NEGATIVE
    assert is_underwater(D("0.01"), D(0))
    assert profitability(D(0), D("0.01")) is Profitability.UNPROFITABLE
    # Zero cost and zero revenue: costs nothing, so healthy, not underwater, break-even.
    assert band(D(0), D(0)) is Band.HEALTHY
    assert not is_underwater(D(0), D(0))
    assert profitability(D(0), D(0)) is Profitability.BREAK_EVEN
    # Negative revenue (credits exceed charges) counts as no revenue.
    assert cost_ratio(D(5), D(-10)) is None and band(D(5), D(-10)) is Band.MARGIN_NEGATIVE


def test_underwater_threshold_is_inclusive_and_independent_of_the_bands():
    assert is_underwater(D("40.00"), D("100.00"))  # 0.40 ≥ 0.40
    assert not is_underwater(D("39.99"), D("100.00"))
    strict = Policy(underwater_threshold=D("0.35"))
    # 35 / 100 = 0.35: underwater under this policy while its band is still "watch".
    assert is_underwater(D("35"), D("100"), strict)
    assert band(D("35"), D("100"), strict) is Band.WATCH


@pytest.mark.parametrize(
    ("cost_to_serve", "expected"),
    [
        ("94.99", Profitability.PROFITABLE),  # margin 5.01 / 100 = 0.0501 > 0.05
        ("95.00", Profitability.BREAK_EVEN),  # exactly +5 %: inside the band
        ("100.00", Profitability.BREAK_EVEN),
        ("105.00", Profitability.BREAK_EVEN),  # exactly −5 %
        ("105.01", Profitability.UNPROFITABLE),  # −0.0501
    ],
)
def test_profitability_break_even_band_is_inclusive(cost_to_serve, expected):
    assert profitability(D("100.00"), D(cost_to_serve)) is expected


# --- allocation --------------------------------------------------------------------------------


def test_awkward_total_over_three_equal_weights_sums_exactly():
    # 100.00 / 3 = 33.333…: floors 33.33 × 3 = 99.99, the leftover cent goes to the first key.
    parts = allocate(D("100.00"), {"a": 1, "b": 1, "c": 1})
    assert parts == {"a": D("33.34"), "b": D("33.33"), "c": D("33.33")}
    assert sum(parts.values()) == D("100.00")
    assert allocate_evenly(D("100.00"), ["x", "y", "z"]) == {
        "x": D("33.34"), "y": D("33.33"), "z": D("33.33"),
    }  # fmt: skip


def test_allocation_by_weight_uses_largest_remainders():
    # 10.00 over 1:2:3 → exact 1.666…, 3.333…, 5.000; floors 1.66 + 3.33 + 5.00 = 9.99;
    # the largest remainder (0.666… cent, "a") takes the last cent.
    assert allocate(D("10.00"), {"a": 1, "b": 2, "c": 3}) == {
        "a": D("1.67"), "b": D("3.33"), "c": D("5.00"),
    }  # fmt: skip


def test_allocation_edge_cases():
    # All weights zero: split evenly instead of losing the money.
    assert allocate(D("1.00"), {"a": 0, "b": 0}) == {"a": D("0.50"), "b": D("0.50")}
    # A credit mirrors a charge.
    assert allocate(D("-100.00"), {"a": 1, "b": 1, "c": 1}) == {
        "a": D("-33.34"), "b": D("-33.33"), "c": D("-33.33"),
    }  # fmt: skip
    # Another quantum: whole dollars.
    assert allocate(D(10), {"a": 1, "b": 1, "c": 1}, quantum=D(1)) == {
        "a": D(4), "b": D(3), "c": D(3),
    }  # fmt: skip
    assert allocate(D("0.00"), {}) == {}
    with pytest.raises(ValueError):
        allocate(D("1.00"), {})
    with pytest.raises(ValueError):
        allocate(D("1.005"), {"a": 1})  # not whole cents
    with pytest.raises(ValueError):
        allocate(D("1.00"), {"a": -1, "b": 2})


# --- customers ---------------------------------------------------------------------------------


def usage_rows():
    return [
        # A: 30 / 100 = 0.30 → watch (exactly on the boundary)
        CustomerUsage(
            "A", "pro", D("30.00"), D("100.00"), requests=100, tokens=10_000,
            feature_costs={"chat": D(20), "search": D(6), "summarize": D(3), "tag": D(1)},
        ),
        # B: 45 / 100 = 0.45 → at risk, underwater
        CustomerUsage("B", "pro", D("45.00"), D("100.00"), requests=200, tokens=30_000),
        # C: 5 with no revenue → margin-negative, underwater, no ratio
        CustomerUsage("C", "free", D("5.00"), D("0"), requests=300, tokens=60_000),
        # D: 120 / 100 = 1.2 → margin-negative
        CustomerUsage("D", "ent", D("120.00"), D("100.00")),
        # E: nothing spent, nothing earned → healthy
        CustomerUsage("E", "free", D("0"), D("0")),
        # F: 10 / 200 = 0.05 → healthy
        CustomerUsage("F", "ent", D("10.00"), D("200.00")),
        # An internal test account: huge, and excluded from everything.
        CustomerUsage(
            "T", "ent", D("1000.00"), D("0"), requests=10_000, tokens=9_000_000, internal=True
        ),
    ]  # fmt: skip


def test_customer_economics_hand_computed():
    # Overhead 60.00 by requests over A, B, C, … (100 + 200 + 300 = 600; T's 10,000 left out):
    # A 60 × 100/600 = 10.00, B 20.00, C 30.00, D/E/F 0.
    report = customer_economics(usage_rows(), Policy(overhead=D("60.00")))
    rows = report.by_customer()
    assert set(rows) == {"A", "B", "C", "D", "E", "F"}

    a = rows["A"]
    assert (a.overhead, a.cost_to_serve) == (D("10.00"), D("40.00"))  # 30 + 10
    assert a.cost_ratio == D("0.3") and a.band is Band.WATCH and not a.underwater
    assert a.contribution_margin == D("60.00")  # 100 − 40
    assert a.contribution_margin_pct == D("0.6")  # 60 / 100
    assert a.profitability is Profitability.PROFITABLE
    assert [(f.feature, f.cost) for f in a.top_features] == [
        ("chat", D(20)), ("search", D(6)), ("summarize", D(3)),
    ]  # fmt: skip

    b = rows["B"]
    assert (b.cost_to_serve, b.contribution_margin) == (D("65.00"), D("35.00"))  # 45 + 20
    assert b.band is Band.AT_RISK and b.underwater

    c = rows["C"]
    assert c.cost_ratio is None and c.band is Band.MARGIN_NEGATIVE and c.underwater
    assert c.contribution_margin == D("-35.00")  # 0 − (5 + 30)
    assert c.contribution_margin_pct is None and c.profitability is Profitability.UNPROFITABLE

    d = rows["D"]
    assert d.cost_ratio == D("1.2") and d.band is Band.MARGIN_NEGATIVE
    assert d.contribution_margin_pct == D("-0.2")  # (100 − 120) / 100

    e = rows["E"]
    assert e.band is Band.HEALTHY and e.profitability is Profitability.BREAK_EVEN

    summary = report.summary
    assert summary.customers == 6
    assert summary.band_counts == {
        Band.HEALTHY: 2, Band.WATCH: 1, Band.AT_RISK: 1, Band.MARGIN_NEGATIVE: 2,
    }  # fmt: skip
    assert summary.profitability_counts == {
        Profitability.PROFITABLE: 3, Profitability.BREAK_EVEN: 1, Profitability.UNPROFITABLE: 2,
    }  # fmt: skip
    assert (summary.underwater, summary.at_risk) == (3, 1)  # B, C, D; B
    # Worst first: cost without revenue (C), then 1.2 (D), 0.45 (B), 0.30 (A), 0.05 (F),
    # and the account that costs nothing last (E).
    assert [row.customer for row in summary.top_by_cost_ratio] == ["C", "D", "B", "A", "F", "E"]

    totals = summary.totals
    assert totals.ai_cost == D("210.00")  # 30 + 45 + 5 + 120 + 0 + 10
    assert totals.overhead == D("60.00")
    assert totals.cost_to_serve == D("270.00")
    assert totals.revenue == D("500.00")  # 100 + 100 + 0 + 100 + 0 + 200
    assert totals.cost_ratio == D("0.42") and totals.band is Band.AT_RISK  # 210 / 500
    assert totals.contribution_margin == D("230.00")
    assert totals.contribution_margin_pct == D("0.46")  # 230 / 500


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # tokens 10k, 30k, 60k of 100k → 6.00, 18.00, 36.00
        (OverheadRule.TOKENS, {"A": "6.00", "B": "18.00", "C": "36.00"}),
        # revenue 100, 100, 0, 100, 0, 200 of 500 → 12.00 each per 100, 24.00 for F
        (OverheadRule.REVENUE, {"A": "12.00", "B": "12.00", "D": "12.00", "F": "24.00"}),
        # 60.00 / 6 = 10.00 each
        (OverheadRule.EVEN, dict.fromkeys("ABCDEF", "10.00")),
    ],
)
def test_overhead_rules_sum_exactly_to_the_overhead(rule, expected):
    report = customer_economics(usage_rows(), Policy(overhead=D("60.00"), overhead_rule=rule))
    overheads = {row.customer: row.overhead for row in report.customers}
    assert {k: v for k, v in overheads.items() if v} == {k: D(v) for k, v in expected.items()}
    assert sum(overheads.values()) == D("60.00") == report.summary.totals.overhead


def test_overhead_of_100_dollars_evenly_over_three_customers():
    rows = [CustomerUsage(key, "pro", D(1), D(10)) for key in "XYZ"]
    report = customer_economics(rows, Policy(overhead=D("100.00"), overhead_rule="even"))
    assert [row.overhead for row in report.customers] == [D("33.34"), D("33.33"), D("33.33")]
    # Nobody to carry it: reported as unallocated rather than lost.
    empty = customer_economics([], Policy(overhead=D("100.00")))
    assert empty.summary.unallocated_overhead == D("100.00") and empty.customers == ()


def test_internal_accounts_are_excluded_from_everything():
    only_internal = customer_economics(
        [CustomerUsage("T", "ent", D(1000), D(0), requests=5, internal=True)],
        Policy(overhead=D("10.00")),
    )
    assert only_internal.customers == () and only_internal.summary.customers == 0
    assert only_internal.summary.totals.ai_cost == 0
    assert only_internal.summary.band_counts[Band.MARGIN_NEGATIVE] == 0


def test_change_against_the_previous_period():
    # Previous period: A cost 20, revenue 100, no overhead → ratio 0.2, margin 80 (0.8).
    before = customer_economics([CustomerUsage("A", "pro", D("20.00"), D("100.00"))])
    now = customer_economics(usage_rows(), Policy(overhead=D("60.00")), previous=before.customers)
    change = now.by_customer()["A"].change
    assert change.ai_cost == D("10.00")  # 30 − 20
    assert change.cost_to_serve == D("20.00")  # 40 − 20
    assert change.contribution_margin == D("-20.00")  # 60 − 80
    assert change.contribution_margin_pct == D("-0.2")  # 0.6 − 0.8
    assert change.cost_ratio == D("0.1")  # 0.3 − 0.2
    assert now.by_customer()["B"].change is None  # not there before


def test_a_customer_listed_twice_is_an_error():
    with pytest.raises(ValueError):
        customer_economics([CustomerUsage("A", "pro", D(1), D(1))] * 2)


# --- features ----------------------------------------------------------------------------------


def test_feature_economics_hand_computed():
    # Pro: revenue 1,000 over 50 active users = 20.00 per user; Free: 0 per user.
    per_user = {
        "pro": revenue_per_active_user(D(1000), 50),
        "free": revenue_per_active_user(D(0), 10),
    }
    assert per_user == {"pro": D(20), "free": D(0)}
    rows = [
        FeatureUsage("chat", "pro", D(300), invocations=1200, active_users=40),
        FeatureUsage("search", "pro", D(400), invocations=1000, active_users=20),
        FeatureUsage("chat", "free", D(5), invocations=100, active_users=10),
        FeatureUsage("chat", "legacy", D(1), invocations=1, active_users=1),  # plan unknown
        FeatureUsage("batch", "pro", D(2), invocations=4, active_users=0),  # no end users
    ]  # fmt: skip
    result = {(r.feature, r.plan): r for r in feature_economics(rows, per_user)}
    # Costliest first.
    assert list(result)[:3] == [("search", "pro"), ("chat", "pro"), ("chat", "free")]

    chat = result["chat", "pro"]
    assert chat.cost_per_invocation == D("0.25")  # 300 / 1200
    assert chat.cost_per_active_user == D("7.5")  # 300 / 40
    assert chat.health_ratio == D("0.375") and chat.band is Band.WATCH  # 7.5 / 20

    search = result["search", "pro"]
    assert search.cost_per_active_user == D(20)  # 400 / 20
    assert search.health_ratio == D(1) and search.band is Band.MARGIN_NEGATIVE  # 20 / 20

    free = result["chat", "free"]
    assert free.health_ratio is None and free.band is Band.MARGIN_NEGATIVE  # cost, no revenue
    assert result["chat", "legacy"].band is None  # plan's revenue per user not given
    batch = result["batch", "pro"]
    assert batch.cost_per_active_user is None and batch.band is None
    assert batch.cost_per_invocation == D("0.5")


def test_cost_by_prompt_version_sums_per_version():
    rows = [
        PromptVersionUsage("chat", "v2", D(6), 100),
        PromptVersionUsage("chat", "v1", D(10), 100),
        PromptVersionUsage("chat", "v1", D(5), 50),  # another day of v1
    ]
    result = cost_by_prompt_version(rows)
    assert [(r.prompt_version, r.cost, r.invocations) for r in result] == [
        ("v1", D(15), 150), ("v2", D(6), 100),
    ]  # fmt: skip
    assert [r.cost_per_invocation for r in result] == [D("0.1"), D("0.06")]  # 15/150, 6/100


# --- plans and statistics ----------------------------------------------------------------------


def test_plan_statistics_hand_computed():
    costs = [D(10), D(20), D(30), D(40), D(100)]
    accounts = [PlanAccount(f"c{i}", cost, D(100)) for i, cost in enumerate(costs)]
    plan = plan_economics("pro", D(100), accounts)
    assert plan.accounts == 5
    assert plan.ai_cost == D(200) and plan.average_ai_cost == D(40)  # 200 / 5
    assert plan.revenue == D(500) and plan.average_revenue == D(100)
    assert plan.contribution_margin == D(300)  # 500 − 200
    assert plan.contribution_margin_per_account == D(60)
    assert plan.contribution_margin_pct == D("0.6")
    # Population: deviations −30, −20, −10, 0, 60 → squares 900 + 400 + 100 + 0 + 3600 = 5000;
    # 5000 / 5 = 1000; √1000 = 31.6227766… (a sample deviation would be √1250 = 35.36).
    assert plan.cost_stddev.quantize(D("0.0001")) == D("31.6228")
    assert plan.cost_median == D(30)
    # Nearest rank: ⌈0.95 × 5⌉ = ⌈4.75⌉ = 5 → the 5th smallest, 100.
    assert plan.cost_p95 == D(100)
    # Tail: cost ≥ 0.40 × 100 = 40 → 40 and 100: 2 of 5 accounts, 140 of 200 cost.
    assert plan.tail_threshold == D(40)
    assert plan.tail_accounts == 2
    assert plan.tail_account_share == D("0.4")
    assert plan.tail_cost_share == D("0.7")
    assert [a.customer for a in plan.overconsuming] == ["c4", "c3"]  # costliest first


def test_median_and_percentile_methods():
    assert median([D(40), D(10), D(30), D(20)]) == D(25)  # (20 + 30) / 2
    # Nearest rank over 1…20: ⌈0.95 × 20⌉ = 19 → 19 (linear interpolation would give 19.05).
    assert percentile([D(n) for n in range(1, 21)], "0.95") == D(19)
    assert percentile([D(1), D(2), D(3), D(4)], "0.5") == D(2)  # ⌈2⌉ = 2nd
    assert percentile([D(7)], "0.95") == D(7)
    assert median([]) is None and percentile([], "0.95") is None
    assert population_stddev([D(5), D(5)]) == 0 and population_stddev([]) is None
    with pytest.raises(ValueError):
        percentile([D(1)], "0")


def test_free_plan_tail_is_every_account_that_costs_anything():
    accounts = [PlanAccount("idle", D(0), D(0)), PlanAccount("busy", D("0.50"), D(0))]
    plan = plan_economics("free", D(0), accounts)
    assert plan.tail_accounts == 1 and plan.tail_cost_share == 1
    assert plan.band is Band.MARGIN_NEGATIVE
    # Unknown price: no tail figures, the rest still computed.
    unknown = plan_economics(None, None, accounts)
    assert unknown.tail_accounts is None and unknown.overconsuming is None
    assert unknown.cost_median == D("0.25")


def test_plans_from_customer_rows_and_monthly_price():
    report = customer_economics(usage_rows(), Policy(overhead=D("60.00")))
    # Yearly 1,200 → 100 a month.
    prices = {"pro": monthly_price(D(1200), "year"), "free": D(0), "ent": D(500)}
    plans = {p.plan: p for p in plans_from_customers(report.customers, prices)}
    assert set(plans) == {"ent", "free", "pro"}  # T (internal) adds no account to ent
    pro = plans["pro"]
    assert pro.accounts == 2 and pro.ai_cost == D(75)  # A 30 + B 45
    assert pro.overhead == D(30) and pro.contribution_margin == D(95)  # 200 − 75 − 30
    assert [a.customer for a in pro.overconsuming] == ["B"]  # 45 ≥ 40; A's 30 is not
    assert plans["ent"].accounts == 2  # D, F


# --- models and segments -----------------------------------------------------------------------


def test_revenue_is_split_by_cost_share_and_sums_exactly():
    usage = [
        DimensionUsage("X", "m1", D(1)),
        DimensionUsage("X", "m2", D(2)),
        DimensionUsage("Y", "m2", D(3)),
        DimensionUsage("W", "m1", D(50)),  # internal
    ]
    revenue = {"X": D("100.00"), "Y": D("10.00"), "Z": D("5.00"), "W": D("1.00")}
    # X: 100.00 × 1/3 = 33.333…, × 2/3 = 66.666… → 33.33 + 66.66 = 99.99; the cent goes to
    # the larger remainder (m2). Y: all 10.00 to m2. Z has no usage → unallocated.
    shares = allocate_revenue(usage[:3], {k: v for k, v in revenue.items() if k != "W"})
    assert shares == {
        ("X", "m1"): D("33.33"), ("X", "m2"): D("66.67"), ("Y", "m2"): D("10.00"),
        ("Z", UNALLOCATED): D("5.00"),
    }  # fmt: skip
    result = {row.key: row for row in margin_by_dimension(usage, revenue, internal={"W"})}
    assert result["m2"].revenue == D("76.67") and result["m2"].cost == D(5)  # 66.67 + 10
    assert result["m2"].margin == D("71.67") and result["m2"].customers == 2
    assert result["m1"].revenue == D("33.33") and result["m1"].cost == D(1)
    assert result[UNALLOCATED].revenue == D("5.00") and result[UNALLOCATED].cost == 0
    assert sum(row.revenue for row in result.values()) == D("115.00")  # 100 + 10 + 5
    assert list(result) == ["m2", "m1", UNALLOCATED]  # costliest first


def test_customer_with_zero_cost_rows_splits_revenue_evenly():
    usage = [DimensionUsage("X", "eu", D(0)), DimensionUsage("X", "us", D(0))]
    assert allocate_revenue(usage, {"X": D("0.03")}) == {
        ("X", "eu"): D("0.02"), ("X", "us"): D("0.01"),
    }  # fmt: skip


# --- cohorts -----------------------------------------------------------------------------------


def test_cohort_margins_by_month_since_start():
    rows = [
        CohortUsage("a", date(2024, 1, 15), date(2024, 1, 1), D(10), D(4)),
        CohortUsage("a", date(2024, 1, 15), date(2024, 2, 1), D(10), D(6)),
        CohortUsage("b", date(2024, 1, 3), date(2024, 1, 1), D(20), D(5)),
        CohortUsage("c", date(2024, 2, 1), date(2024, 2, 1), D(30), D(30)),
        CohortUsage("c", date(2024, 2, 1), date(2024, 3, 1), D(30), D(10)),
        CohortUsage("a", date(2024, 1, 15), date(2023, 12, 1), D(99), D(0)),  # before start
        CohortUsage("i", date(2024, 1, 1), date(2024, 1, 1), D(1), D(500), internal=True),
    ]
    january, february = cohort_margins(rows)
    assert (january.start_month, january.customers) == (date(2024, 1, 1), 2)  # a, b
    first, second = january.points
    # Month 1 (January): revenue 10 + 20 = 30, cost 4 + 5 = 9, margin 21 (0.7).
    assert (first.month, first.customers, first.revenue, first.cost) == (1, 2, D(30), D(9))
    assert first.margin == D(21) and first.margin_pct == D("0.7")
    # Month 2 (February): a only, 10 − 6 = 4 (0.4).
    assert (second.month, second.customers, second.margin, second.margin_pct) == (
        2, 1, D(4), D("0.4"),
    )  # fmt: skip
    assert february.start_month == date(2024, 2, 1)
    assert [(p.month, p.margin) for p in february.points] == [(1, D(0)), (2, D(20))]
    capped = cohort_margins(rows, months=1)
    assert [len(cohort.points) for cohort in capped] == [1, 1]
    # Month index across a year end: Nov → 1, Dec → 2, Jan → 3, Feb → 4.
    assert months_since_start(date(2023, 11, 30), date(2024, 2, 1)) == 4


# --- time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (1, Granularity.DAY),
        (31, Granularity.DAY),
        (32, Granularity.WEEK),
        (180, Granularity.WEEK),
        (181, Granularity.MONTH),
        (730, Granularity.MONTH),
    ],
)
def test_granularity_boundaries(days, expected):
    start = date(2024, 1, 1)
    assert granularity(start, date.fromordinal(start.toordinal() + days)) is expected


def test_granularity_refuses_an_empty_range():
    with pytest.raises(ValueError):
        granularity(date(2024, 1, 2), date(2024, 1, 2))


def test_buckets_are_clipped_to_the_range():
    # Wednesday 3 January to Saturday 20 January, weekly: Mondays are the 8th and 15th.
    assert buckets(date(2024, 1, 3), date(2024, 1, 20), Granularity.WEEK) == (
        (date(2024, 1, 3), date(2024, 1, 8)),
        (date(2024, 1, 8), date(2024, 1, 15)),
        (date(2024, 1, 15), date(2024, 1, 20)),
    )
    assert buckets(date(2023, 12, 15), date(2024, 2, 10), Granularity.MONTH) == (
        (date(2023, 12, 15), date(2024, 1, 1)),
        (date(2024, 1, 1), date(2024, 2, 1)),
        (date(2024, 2, 1), date(2024, 2, 10)),
    )


def test_bucket_sums_and_margin_trend():
    values = [
        (date(2024, 1, 3), D("1.50")),
        (date(2024, 1, 7), D("2.50")),  # same week as the 3rd (Sunday)
        (date(2024, 1, 16), D(1)),
        (date(2024, 1, 20), D(100)),  # the range's end: excluded
    ]
    sums = bucket_sums(values, date(2024, 1, 3), date(2024, 1, 20), Granularity.WEEK)
    assert [bucket.total for bucket in sums] == [D(4), D(0), D(1)]
    trend = margin_trend(
        [(date(2024, 1, 1), D(10), D(4)), (date(2024, 1, 2), D(0), D(1))],
        date(2024, 1, 1),
        date(2024, 1, 3),
    )
    assert [(p.start, p.margin, p.margin_pct) for p in trend] == [
        (date(2024, 1, 1), D(6), D("0.6")), (date(2024, 1, 2), D(-1), None),
    ]  # fmt: skip


# --- coverage ----------------------------------------------------------------------------------


def test_attribution_coverage():
    rows = [
        CostAttribution(D(60), feature="chat", customer="a", plan="pro"),
        CostAttribution(D(30), feature=None, customer="a", plan="pro"),
        CostAttribution(D(10), feature="", customer=None, plan=None),
    ]
    coverage = attribution_coverage(rows)
    # Total 100: feature known on 60 → 0.6; customer and plan on 90 → 0.9.
    assert coverage.total_cost == D(100)
    assert (coverage.feature, coverage.customer, coverage.plan) == (D("0.6"), D("0.9"), D("0.9"))
    empty = attribution_coverage([])
    assert empty.feature is None and empty.customer is None and empty.plan is None


# --- reconciled vs provisional cost ------------------------------------------------------------


def test_reconciled_cost_uses_the_bill_where_known_and_the_ledger_elsewhere():
    billed, unbilled, orphan = ("openai", "d1", "gpt-4o"), ("openai", "d2", "gpt-4o"), "o"
    lines = [
        (billed, "a", D(6)),
        (billed, "b", D(4)),
        (unbilled, "a", D("1.5")),
    ]
    # Bill 12 over ledger 6 : 4 plus 2 of uninstrumented usage (weights 6, 4, 2 of 12):
    # a 6, b 4, unattributed 2. The orphan bill has no ledger usage: all unattributed.
    result = reconciled_costs(
        lines,
        {billed: D(12), orphan: D(3)},
        uninstrumented={billed: D(2)},
    )
    assert result.reconciled == {"a": D(6), "b": D(4)}
    assert result.provisional == {"a": D("1.5")}
    assert result.costs == {"a": D("7.5"), "b": D(4)}
    assert result.unattributed == D(5)  # 2 + 3
    assert result.is_provisional("a") and not result.is_provisional("b")
    # Without uninstrumented usage the whole bill lands on the groups: 12 × 6/10, 12 × 4/10.
    plain = reconciled_costs(lines[:2], {billed: D(12)})
    assert plain.costs == {"a": D("7.2"), "b": D("4.8")} and plain.unattributed == 0


# --- purity ------------------------------------------------------------------------------------


def test_the_calculator_imports_no_django():
    code = (
        "import sys, economics.calculations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'rest_framework'}))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    ).stdout
    assert out.strip() == "[]"


def test_constants_match_the_modules_they_mirror():
    from ingestion.reconciliation_math import UNATTRIBUTED as BILL_UNATTRIBUTED
    from metron.money import MONEY_DECIMAL_PLACES

    assert D(1).scaleb(-MONEY_DECIMAL_PLACES) == CENT
    assert UNATTRIBUTED == BILL_UNATTRIBUTED


# --- properties --------------------------------------------------------------------------------

money = st.decimals(min_value=-(10**7), max_value=10**7, places=2)
weight = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.decimals(min_value=0, max_value=10**6, places=12),
)


@given(total=money, weights=st.dictionaries(st.integers(), weight, min_size=1, max_size=12))
def test_allocation_sums_exactly_and_no_part_has_the_wrong_sign(total, weights):
    parts = allocate(total, weights)
    assert set(parts) == set(weights)
    assert sum(parts.values()) == total
    assert all((part >= 0) if total >= 0 else (part <= 0) for part in parts.values())
    assert all(part % CENT == 0 for part in parts.values())


@given(
    revenue=st.decimals(min_value=-100, max_value=10**6, places=2),
    costs=st.lists(st.decimals(min_value=-10, max_value=10**7, places=6), min_size=2),
)
def test_band_is_monotone_in_cost(revenue, costs):
    severities = [band(cost, revenue).severity for cost in sorted(costs)]
    assert severities == sorted(severities)
    assert [BANDS[s] for s in severities] == [band(cost, revenue) for cost in sorted(costs)]


@given(
    usage=st.lists(
        st.builds(
            DimensionUsage,
            customer=st.sampled_from("abcd"),
            key=st.sampled_from(["m1", "m2", "m3"]),
            cost=st.decimals(min_value=0, max_value=1000, places=12),
        ),
        max_size=20,
    ),
    revenue=st.dictionaries(st.sampled_from("abcde"), money, max_size=5),
)
def test_revenue_allocation_by_usage_sums_exactly(usage, revenue):
    result = margin_by_dimension(usage, revenue)
    assert sum(row.revenue for row in result) == sum(revenue.values())
    assert sum(row.cost for row in result) == sum(row.cost for row in usage)
