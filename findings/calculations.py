"""The maths of the detectors and alerts: pure functions on Decimals, no Django.

Money is USD as ``Decimal`` (never float), unrounded: findings round once, when stored.
Rates are USD per token. "Monthly" means 30 days: a window's figure × 30 ÷ its days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)
ONE = Decimal(1)
DAYS_PER_MONTH = 30

# Premium models and their cheaper alternatives (first = the closest in capability).
# Keys are model names or families: a key matches the model itself and its dated or
# numbered versions (``claude-opus`` → ``claude-opus-4-1``, ``gpt-4o`` →
# ``gpt-4o-2024-08-06``) but not a sibling (``gpt-4o`` does not match ``gpt-4o-mini``).
PREMIUM_MODELS: dict[str, list[str]] = {
    "claude-opus": ["claude-sonnet-4-5", "claude-haiku-4-5"],
    "claude-3-opus": ["claude-sonnet-4-5", "claude-haiku-4-5"],
    "gpt-4.1": ["gpt-4.1-mini", "gpt-4o-mini"],
    "gpt-4o": ["gpt-4o-mini", "gpt-4.1-mini"],
    "o3": ["gpt-4.1-mini", "gpt-4o-mini"],
    "o1": ["o4-mini", "gpt-4.1-mini"],
    "gpt-4-turbo": ["gpt-4o-mini", "gpt-4.1-mini"],
    "gpt-5": ["gpt-5-mini", "gpt-4.1-mini"],
}

_VERSION_SUFFIX = re.compile(r"[0-9][0-9.\-]*")


def monthly(amount: Decimal, days: int) -> Decimal:
    """USD a month from USD over ``days`` days: amount × 30 ÷ days."""
    if days <= 0:
        raise ValueError("days must be positive")
    return amount * DAYS_PER_MONTH / days


def share(part: Decimal | int, whole: Decimal | int) -> Decimal:
    """part ÷ whole as a Decimal fraction of 1; 0 when the whole is 0."""
    whole = Decimal(whole)
    return Decimal(part) / whole if whole else ZERO


# --- model prices ---------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSums:
    """Token totals of some traffic, in the ledger convention (input includes cached and
    cache-write tokens; output includes reasoning tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens - self.cache_write_tokens

    @property
    def plain_output_tokens(self) -> int:
        return self.output_tokens - self.reasoning_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }  # fmt: skip


@dataclass(frozen=True)
class Rates:
    """A model's unit prices, USD per token, for each ledger token type."""

    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal

    def per_mtok(self) -> dict[str, str]:
        """The prices in USD per million tokens (as strings, for evidence)."""
        return {
            name: str((getattr(self, name) * 1_000_000).normalize())
            for name in ("input", "cached_input", "cache_write", "output", "reasoning")
        }


def tokens_cost(tokens: TokenSums, rates: Rates) -> Decimal:
    """USD of ``tokens`` at ``rates``: each token type at its own price, each token once."""
    return (
        tokens.uncached_input_tokens * rates.input
        + tokens.cached_input_tokens * rates.cached_input
        + tokens.cache_write_tokens * rates.cache_write
        + tokens.plain_output_tokens * rates.output
        + tokens.reasoning_tokens * rates.reasoning
    )


def model_swap_savings(actual_cost: Decimal, tokens: TokenSums, cheaper: Rates) -> Decimal:
    """USD saved by serving ``tokens`` on the cheaper model: actual cost − their cost there
    (never negative)."""
    return max(actual_cost - tokens_cost(tokens, cheaper), ZERO)


def model_matches(pattern: str, model: str) -> bool:
    """Whether ``model`` is ``pattern`` or one of its versions (``pattern-<digits…>``)."""
    pattern, model = pattern.strip().lower(), model.strip().lower()
    if model == pattern:
        return True
    if not model.startswith(pattern + "-"):
        return False
    return _VERSION_SUFFIX.fullmatch(model[len(pattern) + 1 :]) is not None


def premium_alternatives(model: str, table: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The cheaper alternatives of ``model`` if it is premium in ``table``, else None.

    The longest matching key wins (``claude-3-opus`` before ``claude``)."""
    matches = [key for key in table if model_matches(key, model)]
    if not matches:
        return None
    return list(table[max(matches, key=len)])


def quality_comparable(*, premium_mean: Decimal, cheaper_mean: Decimal, tolerance: Decimal) -> bool:
    """Whether the cheaper model's mean quality score (0–1) is within ``tolerance`` of the
    premium model's (or above it)."""
    return cheaper_mean >= premium_mean - tolerance


# --- batch and caching ---------------------------------------------------------------


def batch_savings(cost: Decimal, discount: Decimal) -> Decimal:
    """USD saved by sending traffic that cost ``cost`` through a batch API that takes
    ``discount`` (0.5 = 50 %) off every token."""
    return cost * discount


def caching_savings(
    *, uncached_input_tokens: int, rates: Rates, prefix_share: Decimal, hit_rate: Decimal
) -> Decimal:
    """USD saved by caching a stable prompt prefix.

    The prefix is ``prefix_share`` of today's uncached input tokens. A share ``hit_rate``
    of it is then read from the cache (saving input − cached-input price per token); the
    rest is written to it again (costing cache-write − input price more per token, zero
    where writes cost the same as input, as at OpenAI). Never negative.
    """
    prefix = uncached_input_tokens * prefix_share
    saved = prefix * hit_rate * (rates.input - rates.cached_input)
    extra = prefix * (ONE - hit_rate) * max(rates.cache_write - rates.input, ZERO)
    return max(saved - extra, ZERO)


# --- spend by customer ----------------------------------------------------------------


def allowance_excess(cost: Decimal, allowance: Decimal) -> Decimal:
    """USD above an allowance (0 when within it)."""
    return max(cost - allowance, ZERO)


def concentration(costs: Iterable[Decimal]) -> Decimal:
    """Herfindahl–Hirschman index of cost shares (0–1): Σ share²; 1 = one customer."""
    values = [c for c in costs if c > 0]
    total = sum(values, ZERO)
    if not total:
        return ZERO
    return sum(((c / total) ** 2 for c in values), ZERO)


# --- drift and bursts -----------------------------------------------------------------


def mean(values: Sequence[Decimal]) -> Decimal:
    """Arithmetic mean (0 for no values)."""
    return sum(values, ZERO) / len(values) if values else ZERO


def stdev(values: Sequence[Decimal]) -> Decimal:
    """Sample standard deviation (n − 1); 0 for fewer than two values."""
    if len(values) < 2:
        return ZERO
    centre = mean(values)
    return (sum(((v - centre) ** 2 for v in values), ZERO) / (len(values) - 1)).sqrt()


def median(values: Sequence[Decimal]) -> Decimal:
    """Median (0 for no values)."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return ZERO
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class Drift:
    """Cost per request (USD) now against a baseline."""

    baseline: Decimal  # USD per request over the baseline period
    current: Decimal  # USD per request over the recent period
    change: Decimal  # (current − baseline) ÷ baseline; 0 without a baseline
    z_score: Decimal | None  # of the recent mean of daily values against the baseline days


def cost_per_request_drift(
    *,
    baseline_cost: Decimal,
    baseline_requests: int,
    current_cost: Decimal,
    current_requests: int,
    baseline_daily: Sequence[Decimal] = (),
    current_daily: Sequence[Decimal] = (),
) -> Drift:
    """Cost per request over a recent period against a trailing baseline.

    The z-score compares the mean of the recent daily costs per request with the
    baseline's daily ones (None when the baseline has fewer than two days or no spread).
    """
    baseline = share(baseline_cost, baseline_requests)
    current = share(current_cost, current_requests)
    change = (current - baseline) / baseline if baseline else ZERO
    spread = stdev(baseline_daily)
    z = None
    if spread and current_daily:
        z = (mean(current_daily) - mean(baseline_daily)) / spread
    return Drift(baseline=baseline, current=current, change=change, z_score=z)


def drift_monthly_cost(*, drift: Drift, requests_per_day: Decimal) -> Decimal:
    """USD a month the drift adds at the recent volume: Δ cost/request × requests/day × 30."""
    return max(drift.current - drift.baseline, ZERO) * requests_per_day * DAYS_PER_MONTH


def padded_median(values: Sequence[int], slots: int) -> Decimal:
    """Median of ``values`` padded with zeros to ``slots`` entries (hours without traffic)."""
    counts = [Decimal(v) for v in values]
    counts += [ZERO] * max(slots - len(counts), 0)
    return median(counts)
