"""Snapshots built with the ORM in exactly the shapes of economics/SNAPSHOTS.md.

The recompute service writes these rows in production; tests of the dashboards build them
directly so that every figure on a page is known in advance. Summary totals are derived from
the customer rows given, so a snapshot is internally consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from economics.calculations import divide
from economics.models import CustomerEconomics, EconomicsSnapshot

D = Decimal
POLICY = {
    "watch_threshold": "0.30", "at_risk_threshold": "0.40", "margin_negative_threshold": "1.00",
    "underwater_threshold": "0.40", "break_even_band": "0.05", "tail_ratio": None,
    "overhead_rule": "requests", "monthly_overhead": "200.00", "use_reconciled_cost": True,
}  # fmt: skip


@dataclass
class Row:
    """One customer's figures (USD); the rest of its CustomerEconomics row is derived."""

    customer: object
    plan: object | None
    ai_cost: str
    revenue: str
    overhead: str = "0.00"
    provisional_cost: str = "0.00"
    band: str = "healthy"
    underwater: bool = False
    profitability: str = "profitable"
    feature_costs: list = field(default_factory=list)
    cost_change: str | None = None
    margin_change: str | None = None
    ratio_change: str | None = None
    requests: int = 10


def _s(value) -> str | None:
    return None if value is None else str(value)


def customer_economics_create(snapshot: EconomicsSnapshot, row: Row) -> CustomerEconomics:
    cost_to_serve = D(row.ai_cost) + D(row.overhead)
    margin = D(row.revenue) - cost_to_serve
    revenue = D(row.revenue)
    return CustomerEconomics.objects.create(
        snapshot=snapshot, organization=snapshot.organization, customer=row.customer,
        plan=row.plan, ai_cost=D(row.ai_cost), provisional_cost=D(row.provisional_cost),
        overhead=D(row.overhead), cost_to_serve=cost_to_serve, revenue=revenue,
        cost_ratio=divide(D(row.ai_cost), revenue).quantize(D("0.000001")) if revenue else None,
        contribution_margin=margin,
        contribution_margin_pct=divide(margin, revenue).quantize(D("0.000001"))
        if revenue else None,
        band=row.band, underwater=row.underwater, profitability=row.profitability,
        requests=row.requests, tokens=row.requests * 1000, feature_costs=row.feature_costs,
        cost_change=row.cost_change, margin_change=row.margin_change,
        ratio_change=row.ratio_change,
    )  # fmt: skip


def snapshot_create(
    organization,
    *,
    rows: list[Row] = (),
    kind: str = EconomicsSnapshot.Kind.MONTH,
    period_start: date = date(2026, 4, 1),
    period_end: date | None = None,
    as_of: datetime = datetime(2026, 5, 1, 3, 0, tzinfo=UTC),
    stale_since: datetime | None = None,
    previous_period_start: str | None = None,
    **json_fields,
) -> EconomicsSnapshot:
    """A snapshot whose summary adds up its ``rows``; lists (features, plans, trend, …) are
    passed as ``json_fields`` in the SNAPSHOTS.md shapes."""
    if period_end is None:
        month = period_start.month
        period_end = date(period_start.year + (month == 12), month % 12 + 1, 1)
    ai_cost = sum((D(r.ai_cost) for r in rows), D(0))
    overhead = sum((D(r.overhead) for r in rows), D(0))
    revenue = sum((D(r.revenue) for r in rows), D(0))
    provisional = sum((D(r.provisional_cost) for r in rows), D(0))
    margin = revenue - ai_cost - overhead
    bands = {b: sum(1 for r in rows if r.band == b) for b in
             ("healthy", "watch", "at_risk", "margin_negative")}  # fmt: skip
    summary = {
        "currency": "USD", "granularity": "week", "customers": len(rows),
        "band_counts": bands,
        "profitability_counts": {p: sum(1 for r in rows if r.profitability == p)
                                 for p in ("profitable", "break_even", "unprofitable")},
        "underwater": sum(1 for r in rows if r.underwater), "at_risk": bands["at_risk"],
        "ai_cost": _s(ai_cost), "provisional_cost": _s(provisional), "overhead": _s(overhead),
        "cost_to_serve": _s(ai_cost + overhead), "revenue": _s(revenue),
        "contribution_margin": _s(margin),
        "contribution_margin_pct": _s(divide(margin, revenue)) if revenue else None,
        "cost_ratio": _s(divide(ai_cost, revenue)) if revenue else None,
        "band": "watch", "ledger_cost": _s(ai_cost + D("5.00")), "non_billable_cost": "5.00",
        "unattributed_cost": "0.00", "uninstrumented_cost": "0.00",
        "coverage": {"feature": "0.975", "customer": "1", "plan": "0.99"},
        "top_by_cost_ratio": [], "previous_period_start": previous_period_start,
    }  # fmt: skip
    summary.update(json_fields.pop("summary", {}))
    snapshot = EconomicsSnapshot.objects.create(
        organization=organization, kind=kind, period_start=period_start,
        period_end=period_end, as_of=as_of, stale_since=stale_since, policy=POLICY,
        summary=summary, **json_fields,
    )  # fmt: skip
    for row in rows:
        customer_economics_create(snapshot, row)
    return snapshot


def feature_item(feature, plan_code, cost, *, invocations=100, users=10, band="healthy"):
    """A snapshot.features row (``feature`` None: unattributed; ``plan_code`` None: all)."""
    return {
        "feature_id": feature.pk if feature else None,
        "feature": feature.key if feature else None,
        "name": feature.name if feature else None,
        "plan": plan_code, "cost": cost, "invocations": invocations, "active_users": users,
        "cost_per_invocation": _s(D(cost) / invocations),
        "cost_per_active_user": _s(D(cost) / users),
        "plan_revenue_per_active_user": "50.00", "health_ratio": "0.5", "band": band,
    }  # fmt: skip


def plan_item(plan, *, accounts, ai_cost, revenue, median, p95, tail_threshold, bins):
    """A snapshot.plans row with its cost ``bins`` [(lo, hi, accounts)]."""
    margin = D(revenue) - D(ai_cost)
    return {
        "plan_id": plan.pk, "plan": plan.code, "name": plan.name, "price": str(plan.price),
        "accounts": accounts, "ai_cost": ai_cost, "revenue": revenue,
        "average_ai_cost": _s(D(ai_cost) / accounts), "average_revenue": _s(D(revenue) / accounts),
        "contribution_margin": _s(margin),
        "contribution_margin_pct": _s(divide(margin, D(revenue))) if D(revenue) else None,
        "cost_ratio": _s(divide(D(ai_cost), D(revenue))) if D(revenue) else None,
        "band": "watch", "cost_stddev": "10.5", "cost_median": median, "cost_p95": p95,
        "tail_threshold": tail_threshold, "tail_accounts": 1, "tail_account_share": "0.5",
        "tail_cost_share": "0.8", "overconsuming": ["cust-a"],
        "distribution": [{"lo": lo, "hi": hi, "accounts": n} for lo, hi, n in bins],
    }  # fmt: skip


@dataclass
class Known:
    """A month with known figures (April 2026) and the March before it, for one org."""

    snapshot: EconomicsSnapshot
    previous: EconomicsSnapshot
    plans: dict
    features: dict
    customers: dict


def known_month(organization) -> Known:
    """Four customers on three plans, hand-computed totals (USD):

    ============ =========== ============== ========== ======== =================
    customer     plan        AI cost        overhead   revenue  band
    ============ =========== ============== ========== ======== =================
    Northwind    Enterprise  2400.00        100.00     2000.00  margin-negative
    Globex       Pro         250.00         50.00      500.00   at risk
    Initech      Pro         100.00         50.00      500.00   healthy
    Hooli        Free        12.345678901234 0.00      0.00     margin-negative
    ============ =========== ============== ========== ======== =================

    AI cost 2762.345678901234, cost-to-serve 2962.345678901234, revenue 3000.00, margin
    37.654321098766; three underwater, one at risk.
    """
    from tests.accounts.factories import CustomerFactory, FeatureFactory, PlanFactory

    plans = {
        "enterprise": PlanFactory(organization=organization, code="enterprise",
                                  name="Enterprise", price=D("2000.00")),
        "pro": PlanFactory(organization=organization, code="pro", name="Pro", price=D("500.00")),
        "free": PlanFactory(organization=organization, code="free", name="Free", price=D("0")),
    }  # fmt: skip
    features = {
        "summarize": FeatureFactory(organization=organization, key="summarize", name="Summarize"),
        "chat": FeatureFactory(organization=organization, key="chat", name="Chat"),
    }
    customers = {
        name.lower(): CustomerFactory(
            organization=organization, external_id=f"cust_{name.lower()}", name=name
        )
        for name in ("Northwind", "Globex", "Initech", "Hooli")
    }
    summarize, chat = features["summarize"], features["chat"]

    def costs(*items):
        return [
            {"feature_id": f.pk if f else None, "feature": f.key if f else None,
             "name": f.name if f else None, "cost": cost}
            for f, cost in items
        ]  # fmt: skip

    rows = [
        Row(customers["northwind"], plans["enterprise"], "2400.00", "2000.00", "100.00",
            provisional_cost="400.00", band="margin_negative", underwater=True,
            profitability="unprofitable",
            feature_costs=costs((summarize, "1800.00"), (chat, "600.00")),
            cost_change="400.00", margin_change="-400.00", ratio_change="0.2"),
        Row(customers["globex"], plans["pro"], "250.00", "500.00", "50.00", band="at_risk",
            underwater=True, feature_costs=costs((chat, "250.00"))),
        Row(customers["initech"], plans["pro"], "100.00", "500.00", "50.00",
            feature_costs=costs((summarize, "100.00"))),
        Row(customers["hooli"], plans["free"], "12.345678901234", "0.00", band="margin_negative",
            underwater=True, profitability="unprofitable",
            feature_costs=costs((None, "12.345678901234"))),
    ]  # fmt: skip
    previous = snapshot_create(
        organization, period_start=date(2026, 3, 1),
        as_of=datetime(2026, 4, 1, 3, 0, tzinfo=UTC),
        rows=[Row(customers["northwind"], plans["enterprise"], "2000.00", "2000.00", "100.00",
                  band="margin_negative", underwater=True, profitability="unprofitable")],
    )  # fmt: skip
    pro_bins = [(f"{100 + 15 * i}.00", f"{115 + 15 * i}.00", 1 if i in (0, 9) else 0)
                for i in range(10)]  # fmt: skip
    snapshot = snapshot_create(
        organization, rows=rows, previous_period_start="2026-03-01",
        features=[
            feature_item(summarize, None, "1900.00", invocations=1900, users=19),
            feature_item(chat, None, "850.00", invocations=1700, users=17, band="watch"),
            feature_item(None, None, "12.345678901234", invocations=7, users=1, band=None),
            feature_item(summarize, "enterprise", "1800.00", invocations=1800, users=18),
            feature_item(chat, "enterprise", "600.00", invocations=1200, users=12),
            feature_item(chat, "pro", "250.00", invocations=500, users=5),
            feature_item(summarize, "pro", "100.00", invocations=100, users=1),
            feature_item(None, "free", "12.345678901234", invocations=7, users=1, band=None),
        ],
        plans=[
            plan_item(plans["enterprise"], accounts=1, ai_cost="2400.00", revenue="2000.00",
                      median="2400.00", p95="2400.00", tail_threshold="800.00",
                      bins=[("2400.00", "2400.00", 1)]),
            plan_item(plans["pro"], accounts=2, ai_cost="350.00", revenue="1000.00",
                      median="175.00", p95="250.00", tail_threshold="200.00", bins=pro_bins),
            plan_item(plans["free"], accounts=1, ai_cost="12.345678901234", revenue="0.00",
                      median="12.345678901234", p95="12.345678901234", tail_threshold="0.00",
                      bins=[("12.345678901234", "12.345678901234", 1)]),
        ],
        trend=[
            {"start": "2026-04-01", "end": "2026-04-06", "revenue": "500.00", "cost": "450.00",
             "margin": "50.00", "margin_pct": "0.1", "cost_ratio": "0.9"},
            {"start": "2026-04-06", "end": "2026-04-13", "revenue": "1000.00", "cost": "900.00",
             "margin": "100.00", "margin_pct": "0.1", "cost_ratio": "0.9"},
            {"start": "2026-04-13", "end": "2026-05-01", "revenue": "1500.00",
             "cost": "1412.345678901234", "margin": "87.654321098766",
             "margin_pct": "0.058436214065844", "cost_ratio": "0.941563785934156"},
        ],
        model_margins=[
            {"provider": "openai", "model": "gpt-4o", "customers": 3, "cost": "2500.00",
             "revenue": "2700.00", "margin": "200.00", "margin_pct": "0.0740740740740741",
             "cost_ratio": "0.925925925925926", "band": "at_risk"},
            {"provider": "anthropic", "model": "claude-haiku", "customers": 2,
             "cost": "262.345678901234", "revenue": "300.00", "margin": "37.654321098766",
             "margin_pct": "0.12551440366255", "cost_ratio": "0.87448559633745",
             "band": "at_risk"},
        ],
        segments={
            "revenue_allocation": "Revenue is each customer's own; a customer in several "
            "segments of a dimension is split by AI-cost share.",
            "dimensions": {
                "region": [
                    {"key": "eu", "customers": 3, "cost": "2750.00", "revenue": "3000.00",
                     "margin": "250.00", "margin_pct": "0.0833333333333333",
                     "cost_ratio": "0.916666666666667", "band": "at_risk"},
                    {"key": "", "customers": 1, "cost": "12.345678901234", "revenue": "0.00",
                     "margin": "-12.345678901234", "margin_pct": None, "cost_ratio": None,
                     "band": "margin_negative"},
                ],
                "plan_tier": [
                    {"key": "pro", "customers": 2, "cost": "350.00", "revenue": "1000.00",
                     "margin": "650.00", "margin_pct": "0.65", "cost_ratio": "0.35",
                     "band": "watch"},
                ],
            },
        },
        cohorts=[
            {"start_month": "2026-02", "customers": 2, "points": [
                {"month": 1, "customers": 2, "revenue": "1000.00", "cost": "300.00",
                 "margin": "700.00", "margin_pct": "0.7"},
                {"month": 2, "customers": 2, "revenue": "1000.00", "cost": "600.00",
                 "margin": "400.00", "margin_pct": "0.4"},
            ]},
            {"start_month": "2026-03", "customers": 1, "points": [
                {"month": 1, "customers": 1, "revenue": "500.00", "cost": "100.00",
                 "margin": "400.00", "margin_pct": "0.8"},
            ]},
        ],
        feature_trend={
            "granularity": "week",
            "buckets": [["2026-04-01", "2026-04-06"], ["2026-04-06", "2026-04-13"],
                        ["2026-04-13", "2026-05-01"]],
            "series": {
                "summarize": ["300.00", "600.00", "1000.00"],
                "chat": ["150.00", "300.00", "400.00"],
                "unattributed": ["0.00", "0.00", "12.345678901234"],
            },
        },
        prompt_versions=[
            {"feature_id": summarize.pk, "feature": "summarize", "prompt_version": "v2",
             "requests": 120, "cost": "1900.00", "cost_per_request": "15.83333333333333333"},
        ],
    )  # fmt: skip
    return Known(snapshot, previous, plans, features, customers)
