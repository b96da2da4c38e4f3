"""Request bursts with a falling success ratio: a runaway loop or an abusive client.

Rule, per feature over production traffic: an hour of the last ``recent_days`` is a
burst when its requests reach ``burst_factor`` × the feature's median hourly requests
over the window (hours without traffic count as 0) and at least ``min_burst_requests``.
Alert when the success ratio over the burst hours is at least ``success_drop`` below the
one of the other hours.

At stake (USD a month): the burst hours' cost × 30 ÷ window days (what the bursts
cost if they keep happening at this rate).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from findings.calculations import ONE, ZERO, monthly, padded_median, share
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
from findings.selectors import customers_by_id, features_by_id, hour_top_customers, hourly_usage

KIND = FindingKind.REQUEST_BURST
DEFAULTS = {
    "recent_days": 7,
    "burst_factor": Decimal("3"),
    "min_burst_requests": 50,
    "success_drop": Decimal("0.10"),
}
FORMULA = "at_stake = cost in the burst hours × 30 ÷ window days"


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    recent_from = datetime.combine(end - timedelta(days=t["recent_days"]), time.min, UTC)
    features = features_by_id(organization=ctx.organization)
    found = []
    for feature_id, hours in hourly_usage(organization=ctx.organization, start=start,
                                          end=end).items():  # fmt: skip
        typical = padded_median([h["requests"] for h in hours], ctx.days * 24)
        floor = max(typical * t["burst_factor"], Decimal(t["min_burst_requests"]))
        bursts = [h for h in hours if h["hour"] >= recent_from and h["requests"] >= floor]
        if not bursts:
            continue
        burst_hours = {h["hour"] for h in bursts}
        calm = [h for h in hours if h["hour"] not in burst_hours]
        burst_requests = sum(h["requests"] for h in bursts)
        calm_requests = sum(h["requests"] for h in calm)
        burst_success = ONE - share(sum(h["errors"] for h in bursts), burst_requests)
        calm_success = ONE - share(sum(h["errors"] for h in calm), calm_requests)
        if not calm_requests or burst_success > calm_success - t["success_drop"]:
            continue
        burst_cost = sum((h["cost"] for h in bursts), ZERO)
        at_stake = monthly(burst_cost, ctx.days)
        top = hour_top_customers(organization=ctx.organization, feature_id=feature_id,
                                 hours=[h["hour"] for h in bursts])  # fmt: skip
        customers = customers_by_id(organization=ctx.organization,
                                    ids=(r["customer_id"] for r in top))  # fmt: skip
        label = str(features.get(feature_id, "unattributed traffic"))
        peak = max(bursts, key=lambda h: h["requests"])
        found.append(
            Detected(
                kind=KIND,
                title=(
                    f"{label}: {len(bursts)} burst hour(s), success {pct(burst_success)} "
                    f"vs {pct(calm_success)} ({usd(at_stake)}/mo at stake)"
                ),
                monthly_savings=at_stake,
                confidence=FindingConfidence.HIGH if len(bursts) > 1 else FindingConfidence.MEDIUM,
                confidence_reason=(
                    f"Peak {peak['requests']} requests at {peak['hour']:%Y-%m-%d %H:00} UTC "
                    f"against a median of {decimal_text(typical, 1)} an hour; "
                    f"{burst_requests - round(burst_success * burst_requests)} of "
                    f"{burst_requests} burst requests failed."
                ),
                evidence={
                    "formula": FORMULA,
                    "window": {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "days": ctx.days,
                    },
                    "median_hourly_requests": str(typical),
                    "burst_threshold": str(floor),
                    "burst_hours": [
                        {
                            "hour": h["hour"].isoformat(),
                            "requests": h["requests"],
                            "errors": h["errors"],
                            "cost": str(h["cost"]),
                        }
                        for h in bursts
                    ],
                    "burst_success_ratio": str(burst_success),
                    "baseline_success_ratio": str(calm_success),
                    "burst_cost": str(burst_cost),
                    "top_customers": [
                        {
                            "customer_id": r["customer_id"],
                            "name": str(customers.get(r["customer_id"], "unknown")),
                            "requests": r["requests"],
                            "errors": r["errors"],
                        }
                        for r in top
                    ],
                    "series": series_points(
                        [(h["hour"].date(), h["cost"]) for h in hours], start, end
                    ),
                },  # fmt: skip
                remediation=(
                    "Find the client behind the burst (top customers in the evidence): fix a "
                    "retry loop, or put a rate limit or quota on the account."
                ),
                remediation_kind=RemediationKind.QUOTA,
                scope=Scope(feature_id=feature_id, environment="production"),
            )  # fmt: skip
        )
    return found
