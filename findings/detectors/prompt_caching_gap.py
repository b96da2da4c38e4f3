"""Prompt caching gap: large, repeated prompts sent without the provider's prompt cache
(DESIGN §8.3).

Rule, per production (feature, provider, model) with at least ``min_requests`` requests
in the window: its requests average at least ``min_avg_input_tokens`` input tokens and
at most ``max_cached_share`` of the input was read from or written to the cache.

Savings, with the model's own prices: a ``prefix_share`` of today's uncached input is a
stable prefix; ``hit_rate`` of it would be read from the cache (input − cached-input
price saved per token), the rest written again (cache-write − input price more per token,
nothing at OpenAI), × 30 ÷ window days. Confidence: high when one prompt version carries
at least ``stable_version_share`` of the requests (a stable prompt), else medium.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from findings.calculations import ZERO, caching_savings, monthly, share
from findings.detectors.base import (
    Detected,
    DetectionContext,
    Scope,
    decimal_text,
    pct,
    series_points,
    usd,
)
from findings.detectors.model_overkill import token_totals
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import (
    daily_cost,
    features_by_id,
    model_rates,
    price_book_get,
    prompt_version_mix,
    tokens_of,
    usage_by_model,
)

KIND = FindingKind.PROMPT_CACHING_GAP
DEFAULTS = {
    "min_avg_input_tokens": 4096,
    "max_cached_share": Decimal("0.10"),
    "min_requests": 200,
    "prefix_share": Decimal("0.5"),
    "hit_rate": Decimal("0.8"),
    "stable_version_share": Decimal("0.8"),
}
FORMULA = (
    "monthly_savings = uncached input × prefix_share × (hit_rate × (input − cached input "
    "price) − (1 − hit_rate) × max(cache write − input price, 0)) × 30 ÷ window days"
)


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in usage_by_model(organization=ctx.organization, start=start, end=end):
        if row["feature_id"] is not None:
            groups[row["feature_id"], row["provider"], row["model"]].append(row)
    features = features_by_id(organization=ctx.organization)
    versions = prompt_version_mix(organization=ctx.organization, start=start, end=end)
    prices = price_book_get(organization=ctx.organization)
    day = end - timedelta(days=1)
    found = []
    for (feature_id, provider, model), rows in groups.items():
        feature = features.get(feature_id)
        if feature is None or feature.status == feature.Status.RETIRED:
            continue
        tokens = token_totals(rows)
        requests = sum(row["requests"] for row in rows)
        avg_input = share(tokens.input_tokens, requests)
        cached_share = share(tokens.cached_input_tokens + tokens.cache_write_tokens,
                             tokens.input_tokens)  # fmt: skip
        if (
            requests < t["min_requests"]
            or avg_input < t["min_avg_input_tokens"]
            or cached_share > t["max_cached_share"]
        ):
            continue
        window_savings = ZERO
        rates = None
        for row in rows:
            row_rates = model_rates(
                prices=prices, provider=provider, model=model, day=day, batch=row["batch"]
            )
            if row_rates is None:
                break
            rates = rates or row_rates
            window_savings += caching_savings(
                uncached_input_tokens=tokens_of(row).uncached_input_tokens, rates=row_rates,
                prefix_share=t["prefix_share"], hit_rate=t["hit_rate"],
            )  # fmt: skip
        else:
            if window_savings <= 0:
                continue  # the model has no cheaper cached price
            found.append(
                _detected(
                    ctx,
                    feature,
                    provider,
                    model,
                    rows,
                    tokens,
                    requests,
                    avg_input,
                    cached_share,
                    rates,
                    window_savings,
                    versions,
                )  # fmt: skip
            )
    return found


def _detected(ctx, feature, provider, model, rows, tokens, requests, avg_input, cached_share,
              rates, window_savings, versions):  # fmt: skip
    t = ctx.thresholds
    start, end = ctx.window
    savings = monthly(window_savings, ctx.days)
    mix = versions.get((feature.pk, provider, model), [])
    top_version, top_requests = mix[0] if mix else ("", 0)
    version_share = share(top_requests, sum(n for _, n in mix))
    if top_version and version_share >= t["stable_version_share"]:
        confidence = FindingConfidence.HIGH
        reason = (
            f"Prompt version {top_version!r} carries {pct(version_share)} of the requests: "
            f"a stable prompt averaging {decimal_text(avg_input, 0)} input tokens, "
            f"{pct(cached_share)} of them cached."
        )
    else:
        confidence = FindingConfidence.MEDIUM
        reason = (
            f"Prompts average {decimal_text(avg_input, 0)} input tokens with "
            f"{pct(cached_share)} cached; no single prompt version dominates, so the "
            f"stable prefix share is an assumption ({pct(t['prefix_share'])})."
        )
    series = daily_cost(
        organization=ctx.organization, start=start, end=end, feature_id=feature.pk,
        provider=provider, model=model, environment="production",
    )  # fmt: skip
    how = (
        "add cache_control breakpoints after the instructions and shared context"
        if provider == "anthropic"
        else "put the instructions and shared context first, unchanged between calls, "
        "so the automatic prompt cache can match them (prompt_cache_key for routing)"
    )
    return Detected(
        kind=KIND,
        title=f"{feature} on {model} sends large prompts uncached: {usd(savings)}/mo",
        monthly_savings=savings,
        confidence=confidence,
        confidence_reason=reason,
        evidence={
            "formula": FORMULA,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "days": ctx.days},
            "requests": requests,
            "tokens": tokens.as_dict(),
            "avg_input_tokens": decimal_text(avg_input, 1),
            "cached_share": str(cached_share),
            "cost": str(sum(row["cost"] for row in rows)),
            "prices_per_mtok": rates.per_mtok(),
            "prefix_share": str(t["prefix_share"]),
            "hit_rate": str(t["hit_rate"]),
            "window_savings": str(window_savings),
            "prompt_versions": [{"prompt_version": v, "requests": n} for v, n in mix[:5]],
            "series": series_points(series, start, end),
        },
        remediation=f"Enable prompt caching for {feature} on {model}: {how}.",
        remediation_kind=RemediationKind.ENABLE_CACHING,
        scope=Scope(feature_id=feature.pk, provider=provider, model=model,
                    environment="production"),
    )  # fmt: skip
