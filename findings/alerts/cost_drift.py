"""Cost-per-request drift, by feature or by prompt version, against a trailing baseline.

By feature: production cost per request over the last ``recent_days`` of the window
against the days before them (the baseline). Alert when it rose by at least
``min_change`` (0.25 = +25 %) and, when the baseline days vary, the recent days' mean
stands at least ``min_z`` standard deviations above the baseline days' mean; both
periods need ``min_requests`` requests.

By prompt version: a feature's version with ``min_requests`` requests in the recent days
costs at least ``min_change`` more per request, over the window, than the feature's other
versions together (which need ``min_requests`` too): a deploy that made the prompt dearer.

At stake (USD a month): (current − baseline cost per request) × recent requests per day
× 30; an alert needs at least ``min_monthly_cost``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from findings.calculations import (
    ZERO,
    Drift,
    cost_per_request_drift,
    drift_monthly_cost,
)
from findings.detectors.base import (
    Detected,
    DetectionContext,
    Scope,
    decimal_text,
    pct,
    series_points,
    usd,
)
from findings.models import FindingConfidence, FindingKind
from findings.selectors import daily_cost_by, features_by_id, prompt_version_costs

KIND = FindingKind.COST_DRIFT
DEFAULTS = {
    "recent_days": 7,
    "min_change": Decimal("0.25"),
    "min_z": Decimal("2"),
    "min_requests": 100,
    "min_monthly_cost": Decimal("25.00"),
}
FORMULA = "at_stake = (current − baseline cost per request) × recent requests per day × 30"


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    recent_days = min(t["recent_days"], ctx.days - 1)
    split = end - timedelta(days=recent_days)
    features = features_by_id(organization=ctx.organization)
    daily = daily_cost_by(organization=ctx.organization, start=start, end=end,
                          key="feature_id", environment="production")  # fmt: skip
    found = []
    for feature_id, days in daily.items():
        feature = features.get(feature_id)
        if feature is None:
            continue
        base = [(d, c, n) for d, c, n in days if d < split]
        recent = [(d, c, n) for d, c, n in days if d >= split]
        base_requests, recent_requests = sum(n for *_, n in base), sum(n for *_, n in recent)
        if base_requests < t["min_requests"] or recent_requests < t["min_requests"]:
            continue
        drift = cost_per_request_drift(
            baseline_cost=sum((c for _, c, _ in base), ZERO), baseline_requests=base_requests,
            current_cost=sum((c for _, c, _ in recent), ZERO), current_requests=recent_requests,
            baseline_daily=[c / n for _, c, n in base if n],
            current_daily=[c / n for _, c, n in recent if n],
        )  # fmt: skip
        if drift.change < t["min_change"] or (
            drift.z_score is not None and drift.z_score < t["min_z"]
        ):
            continue
        at_stake = drift_monthly_cost(
            drift=drift, requests_per_day=Decimal(recent_requests) / recent_days
        )
        if at_stake < t["min_monthly_cost"]:
            continue
        found.append(
            _detected(
                ctx,
                Scope(feature_id=feature_id, environment="production"),
                f"{feature}",
                drift,
                at_stake,
                base_requests,
                recent_requests,
                split,
                [(d, c) for d, c, _ in days],
                "feature",
            )  # fmt: skip
        )
    found += _by_prompt_version(ctx, features, daily, split, recent_days)
    return found


def _by_prompt_version(ctx, features, daily, split, recent_days) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    by_feature: dict[int, list[dict]] = defaultdict(list)
    for row in prompt_version_costs(organization=ctx.organization, start=start, split=split,
                                    end=end):  # fmt: skip
        by_feature[row["feature_id"]].append(row)
    found = []
    for feature_id, versions in by_feature.items():
        feature = features.get(feature_id)
        if feature is None or len(versions) < 2:
            continue
        for version in versions:
            if version["recent_requests"] < t["min_requests"]:
                continue
            others = [v for v in versions if v is not version]
            other_requests = sum(v["baseline_requests"] + v["recent_requests"] for v in others)
            if other_requests < t["min_requests"]:
                continue
            drift = cost_per_request_drift(
                baseline_cost=sum((v["baseline_cost"] + v["recent_cost"] for v in others), ZERO),
                baseline_requests=other_requests,
                current_cost=version["baseline_cost"] + version["recent_cost"],
                current_requests=version["baseline_requests"] + version["recent_requests"],
            )  # fmt: skip
            if drift.change < t["min_change"]:
                continue
            at_stake = drift_monthly_cost(
                drift=drift, requests_per_day=Decimal(version["recent_requests"]) / recent_days
            )
            if at_stake < t["min_monthly_cost"]:
                continue
            scope = Scope(feature_id=feature_id, environment="production",
                          prompt_version=version["prompt_version"])  # fmt: skip
            found.append(
                _detected(
                    ctx,
                    scope,
                    f"{feature} prompt {version['prompt_version']!r}",
                    drift,
                    at_stake,
                    other_requests,
                    version["recent_requests"],
                    split,
                    [(d, c) for d, c, _ in daily.get(feature_id, [])],
                    "prompt_version",
                    {
                        "versions": [
                            {
                                "prompt_version": v["prompt_version"],
                                "requests": v["baseline_requests"] + v["recent_requests"],
                                "cost": str(v["baseline_cost"] + v["recent_cost"]),
                                "first_seen": v["first_seen"].isoformat(),
                            }
                            for v in versions
                        ]
                    },
                )  # fmt: skip
            )
    return found


def _detected(ctx, scope, label, drift: Drift, at_stake, base_requests, recent_requests, split,
              series, by, extra=None) -> Detected:  # fmt: skip
    t = ctx.thresholds
    start, end = ctx.window
    if by == "feature":
        compared = f"the last {(end - split).days} days against the {(split - start).days} before"
    else:
        compared = "this version against the feature's other versions in the window"
    z = "" if drift.z_score is None else f", {decimal_text(drift.z_score, 1)} standard deviations"
    reason = (
        f"Cost per request {usd(drift.baseline)} → {usd(drift.current)} "
        f"({decimal_text(drift.baseline, 6)} → {decimal_text(drift.current, 6)} USD, "
        f"+{pct(drift.change)}{z}) comparing {compared}, over {base_requests} and "
        f"{recent_requests} requests."
    )
    confidence = FindingConfidence.HIGH if (
        drift.z_score is not None or by == "prompt_version"
    ) else FindingConfidence.MEDIUM  # fmt: skip
    return Detected(
        kind=KIND,
        title=f"{label}: cost per request up {pct(drift.change)} ({usd(at_stake)}/mo at stake)",
        monthly_savings=at_stake,
        confidence=confidence,
        confidence_reason=reason,
        evidence={
            "formula": FORMULA,
            "by": by,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "days": ctx.days},
            "recent_from": split.isoformat(),
            "baseline_cost_per_request": str(drift.baseline),
            "current_cost_per_request": str(drift.current),
            "change": str(drift.change),
            "z_score": None if drift.z_score is None else str(drift.z_score),
            "baseline_requests": base_requests,
            "recent_requests": recent_requests,
            "thresholds": {"min_change": str(t["min_change"]), "min_z": str(t["min_z"])},
            **(extra or {}),
            "series": series_points(series, start, end),
        },
        remediation=(
            "Compare the recent prompts and models with the baseline's (prompt length, "
            "context retrieved, model mix); roll back or trim what grew."
        ),
        scope=scope,
    )
