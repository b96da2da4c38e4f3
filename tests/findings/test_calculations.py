"""The detectors' pure maths, with hand-computed figures (USD, Decimal end to end)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from findings import calculations as calc
from findings.calculations import PREMIUM_MODELS, Rates, TokenSums

D = Decimal
MTOK = D("0.000001")  # USD per token for $1 per million tokens
SONNET = Rates(input=3 * MTOK, cached_input=D("0.3") * MTOK, cache_write=D("3.75") * MTOK,
               output=15 * MTOK, reasoning=15 * MTOK)  # fmt: skip
GPT_4O = Rates(input=D("2.5") * MTOK, cached_input=D("1.25") * MTOK, cache_write=D("2.5") * MTOK,
               output=10 * MTOK, reasoning=10 * MTOK)  # fmt: skip


def test_monthly_extrapolates_a_window_to_thirty_days():
    assert calc.monthly(D("70.00"), 7) == D("300")  # 70 × 30 ÷ 7
    assert calc.monthly(D("10"), 30) == D("10")
    with pytest.raises(ValueError):
        calc.monthly(D("1"), 0)


def test_share_is_zero_for_an_empty_whole():
    assert calc.share(1, 4) == D("0.25")
    assert calc.share(D("3"), 0) == 0


def test_tokens_cost_prices_each_token_type_once():
    tokens = TokenSums(input_tokens=10_000, output_tokens=2_000, cached_input_tokens=4_000,
                       cache_write_tokens=1_000, reasoning_tokens=500)  # fmt: skip
    assert tokens.uncached_input_tokens == 5_000
    assert tokens.plain_output_tokens == 1_500
    # 5,000 × 3 + 4,000 × 0.3 + 1,000 × 3.75 + 1,500 × 15 + 500 × 15
    # = 15,000 + 1,200 + 3,750 + 22,500 + 7,500 = 49,950 per 1e6
    assert calc.tokens_cost(tokens, SONNET) == D("0.04995")


def test_model_swap_savings_never_go_negative():
    tokens = TokenSums(input_tokens=1_000_000, output_tokens=100_000)
    # On gpt-4o: 1,000,000 × 2.5 + 100,000 × 10 = 3.50 USD; actual 10.00 → 6.50 saved
    assert calc.model_swap_savings(D("10.00"), tokens, GPT_4O) == D("6.50")
    assert calc.model_swap_savings(D("1.00"), tokens, GPT_4O) == 0


def test_batch_savings_take_the_discount():
    assert calc.batch_savings(D("5.40"), D("0.5")) == D("2.70")


def test_caching_savings_net_of_the_cache_write_premium():
    # prefix 1,000,000 × 0.5 = 500,000; 80 % read: 400,000 × (3 − 0.3) = 1.08;
    # 20 % written: 100,000 × (3.75 − 3) = 0.075 → 1.005
    savings = calc.caching_savings(uncached_input_tokens=1_000_000, rates=SONNET,
                                   prefix_share=D("0.5"), hit_rate=D("0.8"))  # fmt: skip
    assert savings == D("1.005")
    # Writes cost input at OpenAI: 400,000 × (2.5 − 1.25) = 0.50
    assert calc.caching_savings(uncached_input_tokens=1_000_000, rates=GPT_4O,
                                prefix_share=D("0.5"), hit_rate=D("0.8")) == D("0.5")  # fmt: skip
    # A hit rate so low that writes cost more than reads save: nothing to gain.
    assert calc.caching_savings(uncached_input_tokens=1_000_000, rates=SONNET,
                                prefix_share=D("1"), hit_rate=D("0.1")) == 0  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "model", "expected"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-2024-08-06", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4.1", "gpt-4.1-mini", False),
        ("claude-opus", "claude-opus-4-1", True),
        ("claude-opus", "claude-opus-4-5-20251101", True),
        ("o3", "o3-mini", False),
        ("o3", "o3-2025-04-16", True),
        ("GPT-4o", "gpt-4o", True),
    ],
)
def test_model_matches_versions_not_siblings(pattern, model, expected):
    assert calc.model_matches(pattern, model) is expected


def test_premium_alternatives_use_the_longest_matching_family():
    assert calc.premium_alternatives("gpt-4o-2024-11-20", PREMIUM_MODELS) == [
        "gpt-4o-mini", "gpt-4.1-mini",
    ]  # fmt: skip
    assert calc.premium_alternatives("gpt-4o-mini", PREMIUM_MODELS) is None
    table = {"claude": ["x"], "claude-3-opus": ["claude-haiku-4-5"]}
    assert calc.premium_alternatives("claude-3-opus-20240229", table) == ["claude-haiku-4-5"]


def test_quality_comparable_within_the_tolerance():
    assert calc.quality_comparable(premium_mean=D("0.92"), cheaper_mean=D("0.90"),
                                   tolerance=D("0.02")) is True  # fmt: skip
    assert calc.quality_comparable(premium_mean=D("0.92"), cheaper_mean=D("0.89"),
                                   tolerance=D("0.02")) is False  # fmt: skip


def test_statistics():
    values = [D(2), D(4), D(4), D(4), D(5), D(5), D(7), D(9)]
    assert calc.mean(values) == 5
    # Σ (v − 5)² = 32; sample variance 32 ÷ 7
    assert calc.stdev(values) == (D(32) / 7).sqrt()
    assert calc.median(values) == D("4.5")
    assert calc.median([]) == 0 and calc.stdev([D(1)]) == 0
    assert calc.padded_median([10, 20], 5) == 0  # 0, 0, 0, 10, 20
    assert calc.padded_median([10, 20, 30], 4) == 15  # 0, 10, 20, 30


def test_cost_per_request_drift_and_its_monthly_cost():
    drift = calc.cost_per_request_drift(
        baseline_cost=D("1.61"), baseline_requests=460, current_cost=D("0.84"),
        current_requests=140, baseline_daily=[D("0.0035"), D("0.0035")],
        current_daily=[D("0.006")],
    )  # fmt: skip
    assert drift.baseline == D("0.0035") and drift.current == D("0.006")
    assert drift.change == D("0.0025") / D("0.0035")
    assert drift.z_score is None  # the baseline days do not vary
    # 0.0025 more per request × 20 requests a day × 30 = 1.50
    assert calc.drift_monthly_cost(drift=drift, requests_per_day=D(20)) == D("1.50")

    varied = calc.cost_per_request_drift(
        baseline_cost=D("3"), baseline_requests=3, current_cost=D("4"), current_requests=1,
        baseline_daily=[D(1), D(2), D(3)], current_daily=[D(4)],
    )  # fmt: skip
    assert varied.z_score == D(2)  # (4 − 2) ÷ 1


def test_concentration_and_allowance():
    assert calc.concentration([D(1), D(1)]) == D("0.5")
    assert calc.concentration([D(5)]) == 1
    assert calc.concentration([]) == 0
    assert calc.allowance_excess(D("9.00"), D("5.00")) == D("4.00")
    assert calc.allowance_excess(D("4.00"), D("5.00")) == 0


def test_calculations_import_no_django():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(calc.__file__).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.split(".")[0] in {"django", "accounts", "ingestion"} for m in modules)
