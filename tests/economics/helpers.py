"""Snapshots built directly, with the JSON shapes the recompute stores (economics/SNAPSHOTS.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from economics.models import CustomerEconomics, EconomicsSnapshot

AS_OF = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)
COVERAGE = {"feature": "0.92", "customer": "1", "plan": "0.875"}


def summary_json(label: str = "") -> dict:
    return {
        "currency": "USD", "granularity": "week", "customers": 5,
        "band_counts": {"healthy": 2, "watch": 1, "at_risk": 1, "margin_negative": 1},
        "profitability_counts": {"profitable": 3, "break_even": 1, "unprofitable": 1},
        "underwater": 2, "at_risk": 1,
        "ai_cost": "395.00", "provisional_cost": "25.50", "overhead": "8.00",
        "cost_to_serve": "403.00", "revenue": "700.00", "contribution_margin": "297.00",
        "contribution_margin_pct": "0.4242857142857142857142857143",
        "cost_ratio": "0.5642857142857142857142857143", "band": "at_risk",
        "ledger_cost": "420.00", "non_billable_cost": "20.00", "unattributed_cost": "5.00",
        "uninstrumented_cost": "1.25", "coverage": COVERAGE,
        "top_by_cost_ratio": [
            {
                "customer_id": f"cust_neg{label}", "name": f"Negative Co{label}", "plan": None,
                "ai_cost": "50.00", "revenue": "0.00", "cost_ratio": None,
                "band": "margin_negative", "underwater": True,
            }
        ],
        "previous_period_start": "2026-04-01",
    }  # fmt: skip


def feature_row(feature, plan, cost, *, invocations, users, health, band, label="") -> dict:
    return {
        "feature_id": None if feature is None else len(feature),
        "feature": feature, "name": f"{feature or 'Unattributed'}{label}", "plan": plan,
        "cost": cost, "invocations": invocations, "active_users": users,
        "cost_per_invocation": str(Decimal(cost) / invocations),
        "cost_per_active_user": str(Decimal(cost) / users) if users else None,
        "plan_revenue_per_active_user": None if plan is None else "10.00",
        "health_ratio": health, "band": band,
    }  # fmt: skip


def plan_row(code, *, accounts, ai_cost, revenue, ratio, band) -> dict:
    return {
        "plan_id": len(code), "plan": code, "name": code.title(), "price": "100.00",
        "accounts": accounts, "ai_cost": ai_cost, "revenue": revenue,
        "average_ai_cost": str(Decimal(ai_cost) / accounts),
        "average_revenue": str(Decimal(revenue) / accounts),
        "contribution_margin": str(Decimal(revenue) - Decimal(ai_cost)),
        "contribution_margin_pct": "0.5", "cost_ratio": ratio, "band": band,
        "cost_stddev": "12.5", "cost_median": "22.5", "cost_p95": "34.5",
        "tail_threshold": "40.00", "tail_accounts": 1, "tail_account_share": "0.5",
        "tail_cost_share": "0.7", "overconsuming": ["cust_watch"],
        "distribution": [
            {"lo": str(i * 4), "hi": str((i + 1) * 4), "accounts": 1 if i in (2, 8) else 0}
            for i in range(10)
        ],
    }  # fmt: skip


def dimension_row(key, cost, revenue, band) -> dict:
    margin = Decimal(revenue) - Decimal(cost)
    return {
        "key": key, "customers": 2, "cost": cost, "revenue": revenue, "margin": str(margin),
        "margin_pct": str(margin / Decimal(revenue)) if Decimal(revenue) else None,
        "cost_ratio": str(Decimal(cost) / Decimal(revenue)) if Decimal(revenue) else None,
        "band": band,
    }  # fmt: skip


def snapshot_create(
    organization,
    *,
    kind=EconomicsSnapshot.Kind.MONTH,
    period_start=date(2026, 5, 1),
    period_end=date(2026, 6, 1),
    stale_since=None,
    label="",
) -> EconomicsSnapshot:
    """A snapshot with every list filled; ``label`` goes into every name it shows."""
    return EconomicsSnapshot.objects.create(
        organization=organization, kind=kind, period_start=period_start,
        period_end=period_end, as_of=AS_OF, stale_since=stale_since, duration_ms=12,
        policy={"watch_threshold": "0.30", "overhead_rule": "requests"},
        summary=summary_json(label),
        features=[
            feature_row("summarize", None, "180.00", invocations=900, users=30,
                        health=None, band=None, label=label),
            feature_row("summarize", "enterprise", "150.00", invocations=600, users=10,
                        health="1.5", band="margin_negative", label=label),
            feature_row("chat", None, "120.00", invocations=4000, users=100,
                        health=None, band=None, label=label),
            feature_row("chat", "pro", "90.00", invocations=3000, users=60,
                        health="0.15", band="healthy", label=label),
            feature_row("summarize", "pro", "30.00", invocations=300, users=20,
                        health="0.35", band="watch", label=label),
            feature_row(None, None, "5.00", invocations=50, users=0,
                        health=None, band=None, label=label),
        ],
        plans=[
            plan_row("enterprise", accounts=1, ai_cost="300.00", revenue="500.00",
                     ratio="0.6", band="at_risk"),
            plan_row("pro", accounts=2, ai_cost="45.00", revenue="200.00",
                     ratio="0.225", band="healthy"),
        ],
        model_margins=[
            {"provider": "openai", "model": "gpt-4o", "customers": 4, "cost": "310.00",
             "revenue": "520.00", "margin": "210.00", "margin_pct": "0.4038",
             "cost_ratio": "0.5962", "band": "at_risk"},
            {"provider": "anthropic", "model": "claude-haiku", "customers": 2, "cost": "85.00",
             "revenue": "180.00", "margin": "95.00", "margin_pct": "0.5278",
             "cost_ratio": "0.4722", "band": "at_risk"},
        ],
        segments={
            "revenue_allocation": "A customer's revenue is split over the segments it used in "
            f"proportion to its AI cost on each{label}.",
            "dimensions": {
                "region": [
                    dimension_row(f"eu{label}", "300.00", "500.00", "at_risk"),
                    dimension_row(f"us{label}", "95.00", "200.00", "at_risk"),
                ],
                "plan_tier": [dimension_row("paid", "395.00", "700.00", "at_risk")],
                "metadata.industry": [
                    dimension_row("legal", "50.00", "0.00", "margin_negative"),
                    dimension_row("retail", "345.00", "700.00", "at_risk"),
                ],
            },
        },
        cohorts=[
            {"start_month": "2026-03", "customers": 2, "points": [
                {"month": 1, "customers": 2, "revenue": "200.00", "cost": "20.00",
                 "margin": "180.00", "margin_pct": "0.9"},
                {"month": 2, "customers": 2, "revenue": "200.00", "cost": "45.00",
                 "margin": "155.00", "margin_pct": "0.775"},
            ]},
        ],
        trend=[
            {"start": "2026-05-01", "end": "2026-05-04", "revenue": "67.74", "cost": "38.00",
             "margin": "29.74", "margin_pct": "0.439", "cost_ratio": "0.561"},
            {"start": "2026-05-04", "end": "2026-05-11", "revenue": "158.06", "cost": "88.00",
             "margin": "70.06", "margin_pct": "0.4433", "cost_ratio": "0.5567"},
        ],
    )  # fmt: skip


def feature_costs(*names) -> list[dict]:
    return [
        {"feature_id": i, "feature": name, "name": name.title(), "cost": f"{40 - i * 10}.00"}
        for i, name in enumerate(names, start=1)
    ]


def customer_economics_create(snapshot, customer, plan, **figures) -> CustomerEconomics:
    ai_cost = Decimal(figures.pop("ai_cost"))
    revenue = Decimal(figures.pop("revenue"))
    overhead = Decimal(figures.pop("overhead", "2.00"))
    cost_to_serve = ai_cost + overhead
    margin = revenue - cost_to_serve
    return CustomerEconomics.objects.create(
        snapshot=snapshot, organization=snapshot.organization, customer=customer, plan=plan,
        ai_cost=ai_cost, provisional_cost=figures.pop("provisional_cost", Decimal("0")),
        overhead=overhead, cost_to_serve=cost_to_serve, revenue=revenue,
        cost_ratio=ai_cost / revenue if revenue else None, contribution_margin=margin,
        contribution_margin_pct=(margin / revenue).quantize(Decimal("0.000001"))
        if revenue else None,
        **figures,
    )  # fmt: skip
