"""Retry overhead: money spent on second and later attempts of the same request.

Rule, per production (feature, provider, model) over the window: the cost of attempts
after the first (the rollups' ``retry_cost``) is at least ``max_retry_share`` of the
traffic's cost and comes to at least ``min_monthly_cost`` a month.

At stake (USD a month): retry cost × 30 ÷ window days.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from findings.calculations import ZERO, monthly, share
from findings.detectors.base import Detected, DetectionContext, Scope, pct, series_points, usd
from findings.models import FindingConfidence, FindingKind
from findings.selectors import daily_cost, features_by_id, usage_by_model

KIND = FindingKind.RETRY_OVERHEAD
DEFAULTS = {
    "max_retry_share": Decimal("0.05"),
    "min_monthly_cost": Decimal("10.00"),
}
FORMULA = "at_stake = cost of attempts after the first × 30 ÷ window days"


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in usage_by_model(organization=ctx.organization, start=start, end=end):
        groups[row["feature_id"], row["provider"], row["model"]].append(row)
    features = features_by_id(organization=ctx.organization)
    found = []
    for (feature_id, provider, model), rows in groups.items():
        cost = sum((r["cost"] for r in rows), ZERO)
        retry_cost = sum((r["retry_cost"] for r in rows), ZERO)
        retry_share = share(retry_cost, cost)
        at_stake = monthly(retry_cost, ctx.days)
        if retry_share < t["max_retry_share"] or at_stake < t["min_monthly_cost"]:
            continue
        requests = sum(r["requests"] for r in rows)
        retries = sum(r["retries"] for r in rows)
        errors = sum(r["errors"] for r in rows)
        label = str(features.get(feature_id, "unattributed traffic"))
        series = daily_cost(organization=ctx.organization, start=start, end=end,
                            feature_id=feature_id, provider=provider, model=model,
                            environment="production")  # fmt: skip
        found.append(
            Detected(
                kind=KIND,
                title=f"{label} on {model}: retries cost {pct(retry_share)} ({usd(at_stake)}/mo)",
                monthly_savings=at_stake,
                confidence=FindingConfidence.HIGH,
                confidence_reason=(
                    f"{retries} of {requests} requests were retries ({errors} ended in an "
                    f"error); they cost {usd(retry_cost)} of {usd(cost)} in the window."
                ),
                evidence={
                    "formula": FORMULA,
                    "window": {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "days": ctx.days,
                    },
                    "requests": requests,
                    "retries": retries,
                    "errors": errors,
                    "cost": str(cost),
                    "retry_cost": str(retry_cost),
                    "retry_share": str(retry_share),
                    "max_retry_share": str(t["max_retry_share"]),
                    "series": series_points(series, start, end),
                },  # fmt: skip
                remediation=(
                    "Look at why first attempts fail (timeouts on long prompts, rate limits): "
                    "raise the client timeout, back off with jitter, cap attempts, or fall "
                    "back to a cheaper model instead of retrying the same one."
                ),
                scope=Scope(
                    feature_id=feature_id, provider=provider, model=model, environment="production"
                ),
            )  # fmt: skip
        )
    return found
