"""Tenant concentration: a few customers carry most of the AI cost.

Rule, over the window's billable cost by customer (at least ``min_customers`` of them):
the ``top_n`` costliest customers carry at least ``max_top_share`` of it, or the
costliest alone at least ``max_customer_share``. One alert per organization.

At stake (USD a month): the top customers' AI cost × 30 ÷ window days: what their
usage patterns, contracts and renewals move. Evidence also gives the Herfindahl index.
"""

from __future__ import annotations

from decimal import Decimal

from findings.calculations import ZERO, concentration, monthly, share
from findings.detectors.base import (
    Detected,
    DetectionContext,
    Scope,
    decimal_text,
    pct,
    series_points,
    usd,
)
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import customer_costs, customers_by_id, daily_cost

KIND = FindingKind.TENANT_CONCENTRATION
DEFAULTS = {
    "top_n": 3,
    "max_top_share": Decimal("0.50"),
    "max_customer_share": Decimal("0.25"),
    "min_customers": 5,
}
FORMULA = "at_stake = AI cost of the top customers × 30 ÷ window days"


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    rows = [r for r in customer_costs(organization=ctx.organization, start=start, end=end)
            if r["customer_id"] is not None and r["cost"] > 0]  # fmt: skip
    if len(rows) < t["min_customers"]:
        return []
    total = sum((r["cost"] for r in rows), ZERO)
    top = rows[: t["top_n"]]
    top_cost = sum((r["cost"] for r in top), ZERO)
    top_share, first_share = share(top_cost, total), share(top[0]["cost"], total)
    if top_share < t["max_top_share"] and first_share < t["max_customer_share"]:
        return []
    customers = customers_by_id(organization=ctx.organization, ids=(r["customer_id"] for r in top))
    names = [str(customers.get(r["customer_id"], r["customer_id"])) for r in top]
    at_stake = monthly(top_cost, ctx.days)
    series = daily_cost(organization=ctx.organization, start=start, end=end, billable=True,
                        customer_id__in=[r["customer_id"] for r in top])  # fmt: skip
    return [
        Detected(
            kind=KIND,
            title=f"{len(top)} customers carry {pct(top_share)} of AI cost ({', '.join(names)})",
            monthly_savings=at_stake,
            confidence=FindingConfidence.HIGH,
            confidence_reason=(
                f"Measured over {len(rows)} customers' billable usage: the top {len(top)} cost "
                f"{usd(top_cost)} of {usd(total)} in the window; {names[0]} alone "
                f"{pct(first_share)}."
            ),
            evidence={
                "formula": FORMULA,
                "window": {"start": start.isoformat(), "end": end.isoformat(), "days": ctx.days},
                "customers": len(rows),
                "total_cost": str(total),
                "top_cost": str(top_cost),
                "top_share": str(top_share),
                "herfindahl_index": decimal_text(concentration(r["cost"] for r in rows), 4),
                "top": [
                    {
                        "customer_id": r["customer_id"],
                        "name": name,
                        "cost": str(r["cost"]),
                        "share": str(share(r["cost"], total)),
                        "requests": r["requests"],
                    }
                    for r, name in zip(top, names, strict=True)
                ],
                "thresholds": {
                    "top_n": t["top_n"],
                    "max_top_share": str(t["max_top_share"]),
                    "max_customer_share": str(t["max_customer_share"]),
                },
                "series": series_points(series, start, end),
            },  # fmt: skip
            remediation=(
                "Review the top accounts' contracts against their AI cost (price, quotas, "
                "committed volume) before renewal, and watch their margin each month."
            ),
            remediation_kind=RemediationKind.CONTACT_CUSTOMER,
            scope=Scope(),
            fingerprint_parts=("organization",),
        )
    ]
