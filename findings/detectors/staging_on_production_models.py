"""Staging on production models: non-production traffic on premium models (DESIGN §8.5).

Rule, per (environment ≠ production, feature, provider, model) on a premium model with
at least ``min_requests`` requests in the window. The premium list is this rule's
``premium_models`` override if set, else model overkill's (so one list serves both).

Savings: the traffic's cost minus the same token sums priced at the model's first
cheaper alternative, × 30 ÷ window days. Confidence: high for development and test
(nobody needs premium answers there), medium for staging (a release check may need the
production model; most runs don't).
"""

from __future__ import annotations

from collections import defaultdict

from accounts.models import Feature
from findings.calculations import monthly, premium_alternatives
from findings.detectors import model_overkill
from findings.detectors.base import Detected, DetectionContext, Scope, series_points, usd
from findings.detectors.model_overkill import swap_estimate, token_totals
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import daily_cost, names_by_id, price_book_get, usage_by_model

KIND = FindingKind.STAGING_ON_PRODUCTION_MODELS
DEFAULTS = {
    "premium_models": {},  # empty: model overkill's list
    "min_requests": 50,
}
FORMULA = (
    "monthly_savings = (non-production cost on the premium model − the same tokens at the "
    "alternative's prices) × 30 ÷ window days"
)


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    premium = t["premium_models"] or ctx.for_rule(model_overkill).thresholds["premium_models"]
    start, end = ctx.window
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in usage_by_model(organization=ctx.organization, start=start, end=end,
                              production=False):  # fmt: skip
        groups[row["environment"], row["feature_id"], row["provider"], row["model"]].append(row)
    names = names_by_id(Feature, (key[1] for key in groups))
    prices = price_book_get(organization=ctx.organization)
    found = []
    for (environment, feature_id, provider, model), rows in groups.items():
        alternatives = premium_alternatives(model, premium)
        requests = sum(row["requests"] for row in rows)
        if not alternatives or requests < t["min_requests"]:
            continue
        target = alternatives[0]
        estimate = swap_estimate(
            ctx=ctx, prices=prices, rows=rows, provider=provider, target=target
        )
        if estimate is None or estimate.savings <= 0:
            continue
        savings = monthly(estimate.savings, ctx.days)
        where = names.get(feature_id, "unattributed traffic")
        if environment == "staging":
            confidence = FindingConfidence.MEDIUM
            reason = (
                f"{requests} staging requests on {model}: a release check may need the "
                f"production model, day-to-day testing does not."
            )
        else:
            confidence = FindingConfidence.HIGH
            reason = f"{requests} {environment} requests on {model}, a premium model."
        series = daily_cost(
            organization=ctx.organization, start=start, end=end, environment=environment,
            feature_id=feature_id, provider=provider, model=model,
        )  # fmt: skip
        found.append(
            Detected(
                kind=KIND,
                title=f"{environment.title()} {where} on {model}: {usd(savings)}/mo",
                monthly_savings=savings,
                confidence=confidence,
                confidence_reason=reason,
                evidence={
                    "formula": FORMULA,
                    "window": {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "days": ctx.days,
                    },
                    "environment": environment,
                    "requests": requests,
                    "tokens": token_totals(rows).as_dict(),
                    "cost": str(estimate.cost),
                    "alternative_model": target,
                    "alternative_prices_per_mtok": estimate.rates.per_mtok(),
                    "alternative_cost": str(estimate.alternative_cost),
                    "window_savings": str(estimate.savings),
                    "series": series_points(series, start, end),
                },  # fmt: skip
                remediation=(
                    f"Route {environment} {where} to {target} by default (an environment "
                    f"setting); keep {model} for an explicit pre-release run."
                ),
                remediation_kind=RemediationKind.ROUTE_STAGING,
                scope=Scope(
                    feature_id=feature_id, provider=provider, model=model, environment=environment
                ),
            )  # fmt: skip
        )
    return found
