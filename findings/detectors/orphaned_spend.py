"""Orphaned key / spend: money flowing through provider keys nobody owns (DESIGN §8.4).

Rule, per provider key, over the window:

- *retired feature*: the key is mapped to a retired feature and still spends (ledger).
  Savings: all its spend. Confidence high: the feature is gone, the caller is not.
- *unmapped*: the key has no feature mapping and carries spend that no feature tag
  attributes either. Savings: that untagged spend. Confidence medium: it may be real
  work nobody labelled (map it) or a forgotten job (revoke it).
- *never instrumented*: the provider reports usage on the key (daily usage buckets, at
  Metron's prices) but no ledger event carries it. Savings: that spend. Confidence
  medium when the key is unmapped or its feature retired, low when mapped to a live
  feature (likely uninstrumented traffic of that feature, not waste).

Every saving is × 30 ÷ window days; a key needs ``min_requests`` requests.
"""

from __future__ import annotations

from findings.calculations import ZERO, monthly
from findings.detectors.base import (
    Detected,
    DetectionContext,
    Scope,
    provider_label,
    series_points,
    usd,
)
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import (
    ledger_daily_cost,
    provider_bucket_daily_cost,
    provider_bucket_spend,
    provider_key_spend,
    provider_keys_by_id,
)

KIND = FindingKind.ORPHANED_SPEND
DEFAULTS = {
    "min_requests": 10,
    "include_uninstrumented": True,
}
FORMULA = "monthly_savings = orphaned spend in the window × 30 ÷ window days"


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    keys = provider_keys_by_id(organization=ctx.organization)
    found = []
    seen = set()
    for row in provider_key_spend(organization=ctx.organization, start=start, end=end):
        seen.add(row["provider_key_id"])
        key = keys.get(row["provider_key_id"])
        if key is None or row["requests"] < t["min_requests"]:
            continue
        feature = key.feature
        if feature is not None and feature.status == feature.Status.RETIRED:
            case, spend, requests = "retired_feature", row["cost"], row["requests"]
            confidence = FindingConfidence.HIGH
            reason = (
                f"Mapped to {feature}, which is retired, yet {requests} requests went "
                f"through it in the window (last on {row['last_seen']:%Y-%m-%d})."
            )
            title = f"Key {key} still spends for retired {feature}"
        elif feature is None and row["untagged_cost"] > 0:
            case, spend, requests = "unmapped", row["untagged_cost"], row["untagged_requests"]
            if requests < t["min_requests"]:
                continue
            confidence = FindingConfidence.MEDIUM
            reason = (
                f"No feature mapping and no feature tag on {requests} of its "
                f"{row['requests']} requests: nobody has claimed this spend."
            )
            title = f"Key {key} has spend but no owner (unmapped)"
        else:
            continue
        series = ledger_daily_cost(organization=ctx.organization, start=start, end=end,
                                   provider_key_id=key.pk)  # fmt: skip
        found.append(_detected(ctx, key, case, spend, requests, confidence, reason, title,
                               series, {"source": "ledger", "all_requests": row["requests"],
                                        "all_cost": str(row["cost"])}))  # fmt: skip
    if t["include_uninstrumented"]:
        found += _uninstrumented(ctx, keys, seen)
    return found


def _uninstrumented(ctx, keys, seen) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    found = []
    for row in provider_bucket_spend(organization=ctx.organization, start=start, end=end):
        if row["provider_key_id"] in seen or row["cost"] <= ZERO:
            continue
        if row["requests"] and row["requests"] < t["min_requests"]:
            continue
        key = keys.get(row["provider_key_id"])
        feature = key.feature if key else None
        if feature is not None and feature.status == feature.Status.ACTIVE:
            confidence = FindingConfidence.LOW
            reason = (
                f"Mapped to {feature}, a live feature: probably its uninstrumented traffic "
                f"rather than waste; instrument it to be sure."
            )
        else:
            confidence = FindingConfidence.MEDIUM
            reason = (
                f"The provider reports {row['requests'] or 'unknown'} requests on it "
                f"({', '.join(m for m in row['models'] if m) or 'unknown models'}) but no "
                f"instrumented event carries it, and it is "
                f"{'mapped to retired ' + str(feature) if feature else 'unmapped'}."
            )
        label = str(key) if key else row["api_key_id"]
        series = provider_bucket_daily_cost(
            organization=ctx.organization, start=start, end=end, provider=row["provider"],
            api_key_id=row["api_key_id"],
        )  # fmt: skip
        found.append(
            _detected(
                ctx, key, "uninstrumented", row["cost"], row["requests"], confidence, reason,
                f"Key {label} spends at {provider_label(row['provider'])} but never in the ledger",
                series,
                {"source": "provider usage buckets (estimated at Metron's prices)",
                 "provider": row["provider"], "api_key_id": row["api_key_id"],
                 "models": [m for m in row["models"] if m],
                 "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]},
            )
        )  # fmt: skip
    return found


def _detected(ctx, key, case, spend, requests, confidence, reason, title, series, extra):
    start, end = ctx.window
    savings = monthly(spend, ctx.days)
    if key is not None:
        scope = Scope(provider_key_id=key.pk, provider=key.provider,
                      feature_id=key.feature_id)  # fmt: skip
        parts = (f"provider_key={key.pk}",)
    else:
        scope = Scope(provider=extra["provider"])
        parts = (f"provider={extra['provider']}", f"api_key_id={extra['api_key_id']}")
    remediation = {
        "retired_feature": "Find the job still calling with this key (its requests carry no "
        "feature tag) and stop it, then revoke the key at the provider.",
        "unmapped": "Ask the teams who owns the key: map it to its feature if the work is "
        "real, otherwise revoke it at the provider.",
        "uninstrumented": "Find the service using this key: instrument it (SDK or proxy) if "
        "the work is real, otherwise revoke the key at the provider.",
    }[case]
    return Detected(
        kind=KIND,
        title=f"{title}: {usd(savings)}/mo",
        monthly_savings=savings,
        confidence=confidence,
        confidence_reason=reason,
        evidence={
            "formula": FORMULA,
            "case": case,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "days": ctx.days},
            "key": None
            if key is None
            else {
                "id": key.pk,
                "key_id": key.key_id,
                "label": key.label,
                "feature": None if key.feature is None else key.feature.key,
                "feature_status": None if key.feature is None else key.feature.status,
                "status": key.status,
            },
            "requests": requests,
            "spend": str(spend),
            **extra,
            "series": series_points(series, start, end),
        },  # fmt: skip
        remediation=remediation,
        remediation_kind=RemediationKind.REVOKE_KEY,
        scope=scope,
        fingerprint_parts=parts,
    )
