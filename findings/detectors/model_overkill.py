"""Model overkill: a premium model doing simple work, or work a cheaper model already does
as well (DESIGN §8.1).

Rule, per production (feature, provider, model) on a premium model (``premium_models``)
with at least ``min_requests`` requests in the window:

- *simple work*: its successful requests average at most ``max_avg_output_tokens``
  output tokens (labels, yes/no, routing: classification-like); or
- *proven alternative*: a cheaper alternative already serves the same feature and its
  mean ``quality_score`` is within ``quality_tolerance`` of the premium model's (each
  over at least ``min_quality_samples`` scored calls).

Savings: the premium model's cost in the window minus the same token sums (uncached
input, cached input, cache writes, output, reasoning; batch kept as batch) priced at the
alternative, × 30 ÷ window days. Confidence: high with the quality evidence, medium on
output length alone, low when a cheaper model in the feature scores worse.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from findings.calculations import (
    PREMIUM_MODELS,
    ZERO,
    Rates,
    TokenSums,
    model_swap_savings,
    monthly,
    premium_alternatives,
    quality_comparable,
    share,
    tokens_cost,
)
from findings.detectors.base import (
    Detected,
    DetectionContext,
    Scope,
    decimal_text,
    series_points,
    usd,
)
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import (
    daily_cost,
    features_by_id,
    model_rates,
    price_book_get,
    quality_by_model,
    tokens_of,
    usage_by_model,
)
from ingestion.pricing import PriceBook

KIND = FindingKind.MODEL_OVERKILL
DEFAULTS = {
    "premium_models": PREMIUM_MODELS,
    "max_avg_output_tokens": 50,
    "min_requests": 100,
    "min_quality_samples": 20,
    "quality_tolerance": Decimal("0.02"),
}
FORMULA = "monthly_savings = (premium cost − Σ token type × alternative price) × 30 ÷ window days"


@dataclass(frozen=True)
class SwapEstimate:
    """What serving some traffic on another model would cost (USD, over the window)."""

    target: str
    rates: Rates
    cost: Decimal  # the traffic's actual cost
    alternative_cost: Decimal
    savings: Decimal


def swap_estimate(
    *, ctx: DetectionContext, prices: PriceBook, rows: list[dict], provider: str, target: str
) -> SwapEstimate | None:
    """Price rollup ``rows`` (one model's traffic) on ``target``; None if it has no price.

    Batch rows are priced at the target's batch price, the others at its standard price.
    """
    day = ctx.window_end - timedelta(days=1)
    cost = alternative = savings = ZERO
    rates = None
    for row in rows:
        row_rates = model_rates(
            prices=prices, provider=provider, model=target, day=day, batch=row["batch"]
        )
        if row_rates is None:
            return None
        if not row["batch"] or rates is None:
            rates = row_rates
        tokens = tokens_of(row)
        cost += row["cost"]
        alternative += tokens_cost(tokens, row_rates)
        savings += model_swap_savings(row["cost"], tokens, row_rates)
    return SwapEstimate(target, rates, cost, alternative, savings)


def token_totals(rows: list[dict]) -> TokenSums:
    """The token sums of several rollup rows."""
    totals = [tokens_of(row) for row in rows]
    return TokenSums(
        *(sum(getattr(t, name) for t in totals) for name in (
            "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
            "reasoning_tokens",
        ))
    )  # fmt: skip


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    groups: dict[tuple, list[dict]] = defaultdict(list)
    served: dict[int, set[tuple[str, str]]] = defaultdict(set)  # feature → (provider, model)
    for row in usage_by_model(organization=ctx.organization, start=start, end=end):
        if row["feature_id"] is None:
            continue
        groups[row["feature_id"], row["provider"], row["model"]].append(row)
        served[row["feature_id"]].add((row["provider"], row["model"]))
    features = features_by_id(organization=ctx.organization)
    quality = quality_by_model(organization=ctx.organization, start=start, end=end)
    prices = price_book_get(organization=ctx.organization)
    found = []
    for (feature_id, provider, model), rows in groups.items():
        feature = features.get(feature_id)
        if feature is None or feature.status == feature.Status.RETIRED:
            continue  # a retired feature's spend is orphaned spend, not a model choice
        alternatives = premium_alternatives(model, t["premium_models"])
        requests = sum(row["requests"] for row in rows)
        if alternatives is None or requests < t["min_requests"]:
            continue
        detected = _evaluate(
            ctx, prices, feature, provider, model, rows, alternatives, served, quality
        )
        if detected is not None:
            found.append(detected)
    return found


def _evaluate(ctx, prices, feature, provider, model, rows, alternatives, served, quality):
    t = ctx.thresholds
    tokens = token_totals(rows)
    requests = sum(row["requests"] for row in rows)
    successes = requests - sum(row["errors"] for row in rows)
    avg_output = share(tokens.output_tokens, successes)
    short = successes > 0 and avg_output <= t["max_avg_output_tokens"]

    # Quality evidence: cheaper alternatives already serving the feature, with scores.
    min_samples = t["min_quality_samples"]
    premium_scored, premium_quality = quality.get((feature.pk, provider, model), (0, None))
    comparisons = []
    for alternative in alternatives:
        if (provider, alternative) not in served[feature.pk]:
            continue
        scored, mean_quality = quality.get((feature.pk, provider, alternative), (0, None))
        comparable = None
        if premium_scored >= min_samples and scored >= min_samples:
            comparable = quality_comparable(
                premium_mean=premium_quality, cheaper_mean=mean_quality,
                tolerance=t["quality_tolerance"],
            )  # fmt: skip
        comparisons.append((alternative, scored, mean_quality, comparable))
    proven = next((c for c in comparisons if c[3]), None)
    worse = [c for c in comparisons if c[3] is False]
    if proven is None and not short:
        return None

    if proven is not None:
        target = proven[0]
        confidence = FindingConfidence.HIGH
        reason = (
            f"{target} already serves {feature} with a mean quality score of "
            f"{decimal_text(proven[2], 3)} over {proven[1]} scored calls, against "
            f"{decimal_text(premium_quality, 3)} over {premium_scored} on {model} "
            f"(within {t['quality_tolerance']})."
        )
        if short:
            reason += f" Outputs average {decimal_text(avg_output, 1)} tokens."
    else:
        serving = [c[0] for c in comparisons]
        target = serving[0] if serving else alternatives[0]
        reason = (
            f"Outputs average {decimal_text(avg_output, 1)} tokens per request "
            f"(at most {t['max_avg_output_tokens']}): classification-like work."
        )
        if worse:
            confidence = FindingConfidence.LOW
            alternative, scored, mean_quality, _ = worse[0]
            reason += (
                f" But {alternative} scores lower in this feature ({decimal_text(mean_quality, 3)}"
                f" over {scored} calls vs {decimal_text(premium_quality, 3)}): test first."
            )
        else:
            confidence = FindingConfidence.MEDIUM
            reason += " No quality scores compare the two models in this feature yet."

    estimate = swap_estimate(ctx=ctx, prices=prices, rows=rows, provider=provider, target=target)
    if estimate is None or estimate.savings <= 0:
        return None
    savings = monthly(estimate.savings, ctx.days)
    start, end = ctx.window
    series = daily_cost(
        organization=ctx.organization, start=start, end=end, feature_id=feature.pk,
        provider=provider, model=model, environment="production",
    )  # fmt: skip
    evidence = {
        "formula": FORMULA,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "days": ctx.days},
        "requests": requests,
        "successful_requests": successes,
        "tokens": tokens.as_dict(),
        "avg_output_tokens": decimal_text(avg_output, 2),
        "max_avg_output_tokens": t["max_avg_output_tokens"],
        "cost": str(estimate.cost),
        "alternative_model": target,
        "alternative_prices_per_mtok": estimate.rates.per_mtok(),
        "alternative_cost": str(estimate.alternative_cost),
        "window_savings": str(estimate.savings),
        "quality": {
            "premium": {"model": model, "scored": premium_scored, "mean": _mean(premium_quality)},
            "alternatives": [
                {"model": alt, "scored": scored, "mean": _mean(q), "comparable": comparable}
                for alt, scored, q, comparable in comparisons
            ],
            "min_samples": min_samples,
            "tolerance": str(t["quality_tolerance"]),
        },
        "series": series_points(series, start, end),
    }  # fmt: skip
    return Detected(
        kind=KIND,
        title=f"{feature}: {model} → {target} would save {usd(savings)}/mo",
        monthly_savings=savings,
        confidence=confidence,
        confidence_reason=reason,
        evidence=evidence,
        remediation=(
            f"Route {feature}'s {model} traffic to {target}: A/B it on a slice with "
            f"quality_score tracked, then switch the model in the feature's configuration."
        ),
        remediation_kind=RemediationKind.MODEL_SWAP,
        scope=Scope(feature_id=feature.pk, provider=provider, model=model,
                    environment="production"),
    )  # fmt: skip


def _mean(quality: Decimal | None) -> str | None:
    return None if quality is None else decimal_text(quality)
