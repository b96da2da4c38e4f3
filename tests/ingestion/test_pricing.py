"""Costing of ledger events: list prices, batch and tiers, overrides.

Expected costs are computed by hand from per-million-token prices (the arithmetic is in
the comments), checked against the genai-prices 0.2.3 data where noted; only the tiered
and property tests compare with the library's own ``calc_price``.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price, data_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.models import CostSource, PriceOverride
from ingestion.normalize import usage_from_provider
from ingestion.pricing import (
    PriceBook,
    TokenUsage,
    _list_price_for_day,
    _list_rates_for_day,
    clear_price_cache,
    quantize_cost,
)
from tests.accounts.factories import OrganizationFactory

BOOK = PriceBook()
JUNE_2025 = datetime(2025, 6, 1, 12, tzinfo=UTC)
NOV_2026 = datetime(2026, 11, 1, 12, tzinfo=UTC)  # after the 2026-10 batch/tier variants
# The LiteLLM #27191 event: 6074 prompt tokens of which 3456 cached, 285 completion.
LITELLM_USAGE = TokenUsage(input_tokens=6074, output_tokens=285, cached_input_tokens=3456)


def list_prices(provider: str, model: str, at: datetime) -> dict:
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    return {k: v for k, v in info.get_prices(at).__dict__.items() if v is not None}


def quote(model: str, usage: TokenUsage, *, provider: str = "openai", at=JUNE_2025, **kw):
    return BOOK.quote(provider=provider, model=model, at=at, usage=usage, **kw)


# --- list prices -------------------------------------------------------------------------


def test_library_holds_the_prices_the_hand_computations_use():
    assert list_prices("openai", "gpt-4o", JUNE_2025) == {
        "input_mtok": Decimal("2.5"),
        "cache_read_mtok": Decimal("1.25"),
        "output_mtok": Decimal("10"),
        "web_searches_kcount": Decimal("10"),
        "storage_searches_kcount": Decimal("2.5"),
    }
    sonnet = list_prices("anthropic", "claude-sonnet-4-5", JUNE_2025)
    assert {k: (v.base, v.tiers[0].start, v.tiers[0].price) for k, v in sonnet.items()
            if k.endswith("mtok")} == {
        "input_mtok": (Decimal("3"), 200_000, Decimal("6")),
        "cache_write_mtok": (Decimal("3.75"), 200_000, Decimal("7.5")),
        "cache_write_1h_mtok": (Decimal("6"), 200_000, Decimal("12")),
        "cache_read_mtok": (Decimal("0.3"), 200_000, Decimal("0.6")),
        "output_mtok": (Decimal("15"), 200_000, Decimal("22.5")),
    }  # fmt: skip


def test_cached_tokens_priced_at_the_cached_rate_and_not_again_as_input():
    result = quote("gpt-4o", LITELLM_USAGE)
    # uncached (6074 − 3456) = 2618 × $2.50 = 6545; cached 3456 × $1.25 = 4320;
    # output 285 × $10 = 2850; (6545 + 4320 + 2850) / 1e6 = $0.013715
    assert result.cost == Decimal("0.013715")
    assert result.cost.as_tuple().exponent == -12
    assert result.source == CostSource.PRICE_BOOK.value == "price_book"
    assert result.reference == "genai-prices 0.2.3 openai/gpt-4o 2025-06-01"
    assert result.price_date == date(2025, 6, 1)


def test_dated_model_name_resolves_to_the_listed_model():
    result = quote("gpt-4o-2024-08-06", LITELLM_USAGE)
    assert result.cost == Decimal("0.013715")
    assert "openai/gpt-4o " in result.reference


def test_cache_write_tokens_at_the_write_rate():
    usage = TokenUsage(
        input_tokens=6000, output_tokens=500, cached_input_tokens=3000, cache_write_tokens=2000
    )
    result = quote("claude-sonnet-4-5", usage, provider="anthropic")
    # uncached 1000 × $3 = 3000; write 2000 × $3.75 = 7500; read 3000 × $0.30 = 900;
    # output 500 × $15 = 7500; 18900 / 1e6 = $0.0189
    assert result.cost == Decimal("0.0189")


def test_anthropic_usage_normalized_then_costed():
    raw = {
        "input_tokens": 1000,  # excludes cache reads and writes
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 3000,
        "output_tokens": 500,
        "output_tokens_details": {"thinking_tokens": 200},
        "service_tier": "standard",
    }
    usage = usage_from_provider("anthropic", raw)
    assert usage == TokenUsage(6000, 500, cached_input_tokens=3000, cache_write_tokens=2000,
                               reasoning_tokens=200)  # fmt: skip
    result = quote("claude-sonnet-4-5", usage, provider="anthropic", service_tier="standard")
    # as above (thinking is part of output): 3000 + 7500 + 900 + 7500 = 18900 → $0.0189
    assert result.cost == Decimal("0.0189")
    assert result.reference.endswith("service tier standard at standard price")


def test_reasoning_tokens_are_output_and_not_counted_twice():
    usage = TokenUsage(input_tokens=1000, output_tokens=3000, reasoning_tokens=2000)
    result = quote("o3", usage, at=NOV_2026)
    # o3 since 2025-06-10: $2 in, $8 out. 1000 × 2 + 3000 × 8 = 26000 → $0.026
    # (counting reasoning again would add 2000 × 8 = 16000)
    assert result.cost == Decimal("0.026")


def test_o3_price_change_on_2025_06_10_utc():
    million = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    before = quote("o3", million, at=datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC))
    after = quote("o3", million, at=datetime(2025, 6, 10, 0, 0, 0, tzinfo=UTC))
    assert before.cost == Decimal("50")  # $10 + $40
    assert after.cost == Decimal("10")  # $2 + $8
    assert (before.price_date, after.price_date) == (date(2025, 6, 9), date(2025, 6, 10))


def test_price_date_is_the_utc_date():
    million = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    # 01:00 at UTC+2 on the 10th is 23:00 UTC on the 9th: still the old price.
    at = datetime(2025, 6, 10, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    result = quote("o3", million, at=at)
    assert result.cost == Decimal("50")
    assert result.price_date == date(2025, 6, 9)


def test_naive_timestamp_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        quote("gpt-4o", LITELLM_USAGE, at=datetime(2025, 6, 1))


def test_unknown_model_or_provider_is_unpriced_never_zero():
    assert quote("acme-support-v2", LITELLM_USAGE) is None
    assert quote("acme-support-v2", TokenUsage(0, 0)) is None
    assert quote("gpt-4o", LITELLM_USAGE, provider="no-such-provider") is None


def test_zero_tokens_cost_exactly_zero():
    result = quote("gpt-4o", TokenUsage(0, 0))
    assert result.cost == Decimal("0")
    assert result.source == "price_book"


def test_model_listed_without_prices_is_free():
    result = quote("moderation", TokenUsage(input_tokens=500, output_tokens=0))
    assert result.cost == Decimal("0")
    assert "listed free" in result.reference


def test_token_type_without_any_price_is_unpriced():
    # whisper-1 is priced per audio hour: tokens cannot be priced.
    assert quote("whisper-1", TokenUsage(input_tokens=100, output_tokens=10)) is None


def test_per_request_fee_is_included():
    usage = TokenUsage(input_tokens=1000, output_tokens=1000)
    result = quote("sonar", usage, provider="perplexity")
    # $1 in, $1 out, $12 per 1000 requests: 0.001 + 0.001 + 0.012 = $0.014
    assert result.cost == Decimal("0.014")


def test_prices_that_change_within_the_day_are_not_cached_per_day():
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    day = datetime(2025, 6, 1, tzinfo=UTC)
    off_peak = quote("deepseek-chat", usage, provider="deepseek", at=day.replace(hour=17))
    peak = quote("deepseek-chat", usage, provider="deepseek", at=day.replace(hour=12))
    assert off_peak.cost == Decimal("0.685")  # 0.135 + 0.55
    assert peak.cost == Decimal("1.37")  # 0.27 + 1.1 (00:30–16:30 UTC)


def test_leftovers_cannot_be_negative():
    with pytest.raises(ValueError, match="exceed input_tokens"):
        TokenUsage(input_tokens=100, output_tokens=0, cached_input_tokens=80, cache_write_tokens=30)
    with pytest.raises(ValueError, match="exceed output_tokens"):
        TokenUsage(input_tokens=0, output_tokens=10, reasoning_tokens=11)
    with pytest.raises(ValueError, match="non-negative int"):
        TokenUsage(input_tokens=-1, output_tokens=0)
    with pytest.raises(ValueError, match="non-negative int"):
        TokenUsage(input_tokens=True, output_tokens=0)


# --- batch and service tiers --------------------------------------------------------------


def test_batch_without_a_variant_is_half_price():
    # gpt-4o's batch variant starts 2026-10-14: before it Metron halves the standard price.
    result = quote("gpt-4o", LITELLM_USAGE, batch=True)
    assert result.cost == Decimal("0.0068575")  # 13715 × 0.5 = 6857.5 → $0.0068575
    assert result.reference.endswith(", batch ×0.5")
    # claude-3-5-haiku has no batch variant at all.
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    haiku = quote("claude-3-5-haiku-latest", usage, provider="anthropic", at=NOV_2026, batch=True)
    assert haiku.cost == Decimal("2.4")  # ($0.80 + $4) × 0.5


def test_batch_uses_the_library_variant_when_there_is_one():
    usage = TokenUsage(
        input_tokens=6000, output_tokens=500, cached_input_tokens=3000, cache_write_tokens=2000
    )
    result = quote("claude-haiku-4-5", usage, provider="anthropic", at=NOV_2026, batch=True)
    # variant: $0.50 in, $0.625 write, $0.05 read, $2.50 out:
    # 1000 × 0.5 + 2000 × 0.625 + 3000 × 0.05 + 500 × 2.5 = 500 + 1250 + 150 + 1250 = 3150
    assert result.cost == Decimal("0.00315")
    assert result.reference.endswith(", batch price variant")
    # gpt-4o's variant lists input $1.25 and output $5 only; cached keeps the standard $1.25:
    # 2618 × 1.25 + 3456 × 1.25 + 285 × 5 = 3272.5 + 4320 + 1425 = 9017.5 (not 13715 × 0.5)
    gpt = quote("gpt-4o", LITELLM_USAGE, at=NOV_2026, batch=True)
    assert gpt.cost == Decimal("0.0090175")


def test_anthropic_service_tier_batch_means_batch():
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    result = quote("claude-3-5-haiku-latest", usage, provider="anthropic", service_tier="batch")
    assert result.cost == Decimal("2.4")


def test_openai_flex_tier_is_half_price_without_variant_and_variant_after():
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    early = quote("gpt-5", usage, at=JUNE_2025.replace(year=2026), service_tier="flex")
    assert early.cost == Decimal("5.625")  # ($1.25 + $10) × 0.5
    assert early.reference.endswith("service tier flex ×0.5")
    late = quote("gpt-5", usage, at=NOV_2026, service_tier="flex")
    assert late.cost == Decimal("5.625")  # variant $0.625 + $5
    assert late.reference.endswith("service tier flex price variant")


def test_other_tiers_without_variant_are_standard_price_and_say_so():
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    for tier in ("priority", "auto", "scale"):
        result = quote("gpt-5", usage, at=datetime(2026, 1, 1, tzinfo=UTC), service_tier=tier)
        assert result.cost == Decimal("11.25")  # $1.25 + $10
        assert result.reference.endswith(f"service tier {tier} at standard price")
    priority = quote("gpt-5", usage, at=NOV_2026, service_tier="priority")
    assert priority.cost == Decimal("22.5")  # variant $2.50 + $20


# --- tiered (context-size) prices ---------------------------------------------------------


def test_tiered_model_matches_the_library_above_the_threshold():
    usage = TokenUsage(
        input_tokens=250_000, output_tokens=1000, cached_input_tokens=40_000,
        cache_write_tokens=10_000, reasoning_tokens=300,
    )  # fmt: skip
    result = quote("claude-sonnet-4-5", usage, provider="anthropic")
    # above 200k input every token takes the tier rate: 200000 × $6 + 10000 × $7.50
    # + 40000 × $0.60 + 1000 × $22.50 = 1200000 + 75000 + 24000 + 22500 = 1321500
    assert result.cost == Decimal("1.3215")
    library = calc_price(
        Usage(input_tokens=250_000, output_tokens=1000, cache_read_tokens=40_000,
              cache_write_tokens=10_000, output_reasoning_tokens=300),
        "claude-sonnet-4-5", provider_id="anthropic", genai_request_timestamp=JUNE_2025,
    )  # fmt: skip
    assert result.cost == quantize_cost(library.total_price)


def test_tiered_model_in_batch_halves_the_tier_rates():
    usage = TokenUsage(input_tokens=250_000, output_tokens=1000)
    result = quote("claude-sonnet-4-5", usage, provider="anthropic", batch=True)
    assert result.cost == Decimal("0.76125")  # (250000 × 6 + 1000 × 22.5) × 0.5 / 1e6


LINEAR_MODELS = [
    ("openai", "gpt-4o"), ("openai", "o3"), ("openai", "gpt-5-mini"), ("openai", "gpt-4.1"),
    ("anthropic", "claude-haiku-4-5"), ("anthropic", "claude-3-5-haiku-latest"),
    ("perplexity", "sonar"),
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(LINEAR_MODELS),
    day=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
    counts=st.tuples(*[st.integers(0, 2_000_000)] * 5),
)
def test_linear_pricing_agrees_with_the_library(model, day, counts):
    cached, written, uncached, plain_output, reasoning = counts
    usage = TokenUsage(
        input_tokens=uncached + cached + written, output_tokens=plain_output + reasoning,
        cached_input_tokens=cached, cache_write_tokens=written, reasoning_tokens=reasoning,
    )  # fmt: skip
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    result = BOOK.quote(provider=model[0], model=model[1], at=at, usage=usage)
    if usage.input_tokens == usage.output_tokens == 0:
        assert result.cost == 0
        return
    library = calc_price(
        Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
              cache_read_tokens=cached, cache_write_tokens=written),
        model[1], provider_id=model[0], genai_request_timestamp=at,
    )  # fmt: skip
    assert result.cost == quantize_cost(library.total_price)


def test_a_batch_of_events_makes_one_library_lookup_per_model_and_day():
    clear_price_cache()
    models = ["gpt-4o", "o3", "gpt-5-mini"]
    for i in range(1000):
        at = JUNE_2025 + timedelta(seconds=i)
        assert quote(models[i % 3], LITELLM_USAGE, at=at) is not None
    info = _list_price_for_day.cache_info()
    assert (info.misses, info.hits) == (3, 0)  # the rates cache above it took the other 997
    assert _list_rates_for_day.cache_info().misses == 3


def test_quote_is_fast_on_the_common_path():
    import time

    quote("gpt-4o", LITELLM_USAGE)  # warm the cache
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        BOOK.quote(provider="openai", model="gpt-4o", at=JUNE_2025, usage=LITELLM_USAGE)
    per_quote = (time.perf_counter() - start) / n
    assert per_quote < 50e-6  # ~2 µs measured; generous for loaded CI machines


# --- overrides ----------------------------------------------------------------------------


def at_(y, m, d, h=0, mi=0, s=0, us=0):
    return datetime(y, m, d, h, mi, s, us, tzinfo=UTC)


JAN_2025 = at_(2025, 1, 1)


@pytest.fixture
def org(db):
    return OrganizationFactory(slug="pricing-org")


@pytest.fixture
def override(org):
    def make(model_pattern, *, provider="openai", start=JAN_2025, end=None, **prices):
        return PriceOverride.objects.create(
            organization=org, provider=provider, model_pattern=model_pattern,
            effective_from=start, effective_to=end, **prices,
        )  # fmt: skip

    return make


MILLION = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)


@pytest.mark.django_db
def test_for_organization_is_one_query_and_only_its_overrides(
    org, override, django_assert_num_queries
):
    other = OrganizationFactory(slug="pricing-other")
    PriceOverride.objects.create(
        organization=other, provider="openai", model_pattern="gpt-4o",
        effective_from=at_(2025, 1, 1), discount_percent=Decimal("90"),
    )  # fmt: skip
    mine = override("gpt-4o", discount_percent=Decimal("20"))
    with django_assert_num_queries(1):
        book = PriceBook.for_organization(org)
    with django_assert_num_queries(0):
        result = book.quote(provider="openai", model="gpt-4o", at=JUNE_2025, usage=LITELLM_USAGE)
    # 13715 × 0.8 = 10972 → $0.010972
    assert result.cost == Decimal("0.010972")
    assert result.source == CostSource.OVERRIDE.value == "override"
    assert result.reference == (
        f"override #{mine.pk} openai/gpt-4o, −20% off genai-prices 0.2.3 openai/gpt-4o 2025-06-01"
    )
    assert result.price_date == date(2025, 6, 1)


@pytest.mark.django_db
def test_exact_name_beats_pattern_then_latest_start_wins(org, override):
    override("gpt-4o*", start=at_(2025, 3, 1), input_per_mtok=1, output_per_mtok=1)
    exact = override("gpt-4o", start=at_(2025, 1, 1), input_per_mtok=2, output_per_mtok=2)
    newer = override("gpt-4o", start=at_(2025, 5, 1), input_per_mtok=3, output_per_mtok=3)
    override("gpt-4o-mini*", start=at_(2025, 1, 1), input_per_mtok=7, output_per_mtok=7)
    book = PriceBook.for_organization(org)

    def cost(model, at):
        return book.quote(provider="openai", model=model, at=at, usage=MILLION)

    assert cost("gpt-4o", at_(2025, 4, 1)).cost == Decimal("4")  # exact $2 + $2
    assert str(exact.pk) in cost("gpt-4o", at_(2025, 4, 1)).reference
    assert cost("gpt-4o", at_(2025, 6, 1)).cost == Decimal("6")  # newer exact $3 + $3
    assert str(newer.pk) in cost("gpt-4o", at_(2025, 6, 1)).reference
    assert cost("gpt-4o-2024-08-06", at_(2025, 6, 1)).cost == Decimal("2")  # pattern $1 + $1
    # two patterns match: the latest effective_from wins
    assert cost("gpt-4o-mini", at_(2025, 6, 1)).cost == Decimal("2")
    assert cost("gpt-4o-mini", at_(2025, 2, 1)).cost == Decimal("14")
    # another provider or a non-matching model: the list price
    assert book.quote(provider="azure", model="gpt-4o", at=JUNE_2025, usage=MILLION).source == (
        "price_book"
    )
    assert cost("gpt-4", at_(2025, 6, 1)).cost == Decimal("90")  # list $30 + $60


@pytest.mark.django_db
def test_effective_range_is_half_open(org, override):
    override("gpt-4o", start=at_(2025, 6, 1), end=at_(2025, 7, 1), input_per_mtok=1,
             output_per_mtok=1)  # fmt: skip
    book = PriceBook.for_organization(org)

    def source(at):
        return book.quote(provider="openai", model="gpt-4o", at=at, usage=MILLION).source

    assert source(at_(2025, 5, 31, 23, 59, 59, 999999)) == "price_book"
    assert source(at_(2025, 6, 1)) == "override"
    assert source(at_(2025, 6, 30, 23, 59, 59, 999999)) == "override"
    assert source(at_(2025, 7, 1)) == "price_book"


@pytest.mark.django_db
def test_explicit_prices_replace_those_types_and_discount_the_rest(org, override):
    override("gpt-4o", output_per_mtok=Decimal("9"), discount_percent=Decimal("20"))
    result = PriceBook.for_organization(org).quote(
        provider="openai", model="gpt-4o", at=JUNE_2025, usage=LITELLM_USAGE
    )
    # uncached 2618 × 2.5 × 0.8 = 5236; cached 3456 × 1.25 × 0.8 = 3456;
    # output 285 × $9 (own, not discounted) = 2565; 11257 → $0.011257
    assert result.cost == Decimal("0.011257")
    assert "own output prices" in result.reference
    assert "−20% off genai-prices" in result.reference


@pytest.mark.django_db
def test_fine_tune_priced_by_explicit_override(org, override):
    override("ft:acme-*", input_per_mtok=Decimal("3.75"), cached_input_per_mtok=Decimal("1.875"),
             output_per_mtok=Decimal("15"))  # fmt: skip
    book = PriceBook.for_organization(org)
    usage = TokenUsage(
        input_tokens=10_000, output_tokens=2000, cached_input_tokens=4000, reasoning_tokens=500
    )
    result = book.quote(provider="openai", model="ft:acme-support:v2", at=JUNE_2025, usage=usage)
    # 6000 × 3.75 + 4000 × 1.875 + 2000 × 15 (reasoning is output) = 22500 + 7500 + 30000
    assert result.cost == Decimal("0.06")
    assert result.source == "override"
    batch = book.quote(
        provider="openai", model="ft:acme-support:v2", at=JUNE_2025, usage=usage, batch=True
    )
    assert batch.cost == Decimal("0.03")  # own prices × 0.5
    assert "(batch ×0.5)" in batch.reference


@pytest.mark.django_db
def test_partial_override_on_unknown_model_leaves_other_types_unpriced(org, override):
    override("ft:acme-*", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("6"))
    override("acme-embed", input_per_mtok=Decimal("0.1"))
    book = PriceBook.for_organization(org)

    def cost(model, usage):
        return book.quote(provider="openai", model=model, at=JUNE_2025, usage=usage)

    # no cached price given and none listed: unpriced, not charged as input
    assert cost("ft:acme-x", TokenUsage(1000, 10, cached_input_tokens=100)) is None
    assert cost("ft:acme-x", TokenUsage(1000, 10, cache_write_tokens=100)) is None
    assert cost("ft:acme-x", TokenUsage(1000, 10)).cost == Decimal("0.00306")  # 3000 + 60
    assert cost("acme-embed", TokenUsage(1000, 0)).cost == Decimal("0.0001")
    assert cost("acme-embed", TokenUsage(1000, 1)) is None  # output has no price
    assert cost("acme-embed", TokenUsage(0, 0)).cost == Decimal("0")


@pytest.mark.django_db
def test_override_discount_applies_to_the_batch_variant(org, override):
    override("claude-haiku-4-5", provider="anthropic", discount_percent=Decimal("10"))
    result = PriceBook.for_organization(org).quote(
        provider="anthropic", model="claude-haiku-4-5", at=NOV_2026, usage=MILLION, batch=True
    )
    assert result.cost == Decimal("2.7")  # variant ($0.50 + $2.50) × 0.9
    assert result.reference.endswith("batch price variant")


@pytest.mark.django_db
def test_override_on_tiered_model_keeps_the_library_tiers(org, override):
    override("claude-sonnet-4-5", provider="anthropic", output_per_mtok=Decimal("10"),
             discount_percent=Decimal("50"))  # fmt: skip
    usage = TokenUsage(input_tokens=250_000, output_tokens=1000)
    result = PriceBook.for_organization(org).quote(
        provider="anthropic", model="claude-sonnet-4-5", at=JUNE_2025, usage=usage
    )
    # input at the >200k tier $6 × 0.5 = $3: 250000 × 3 = 750000; own output 1000 × 10 = 10000
    assert result.cost == Decimal("0.76")


def test_unsaved_overrides_work_without_a_database():
    row = PriceOverride(
        provider="OpenAI", model_pattern="GPT-4O", effective_from=at_(2025, 1, 1),
        input_per_mtok=Decimal("1"), output_per_mtok=Decimal("1"),
    )  # fmt: skip
    book = PriceBook(overrides=[row])
    result = book.quote(provider="openai", model="gpt-4o", at=JUNE_2025, usage=MILLION)
    assert result.cost == Decimal("2")
    assert result.reference.startswith("override OpenAI/GPT-4O")


def test_library_warnings_do_not_leak():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quote("claude-sonnet-4-5", TokenUsage(300_000, 10), provider="anthropic")


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-4-0"])
@pytest.mark.parametrize("total_input", [0, 1, 199_999, 200_000, 200_001, 950_000])
def test_tier_selection_matches_the_library_at_the_boundaries(model, total_input):
    at = datetime(2026, 10, 1, tzinfo=UTC)
    cached, written, output = total_input // 3, total_input // 7, 1234
    usage = TokenUsage(total_input, output, cached, written, 0)

    quote = PriceBook().quote(provider="anthropic", model=model, at=at, usage=usage)
    expected = calc_price(
        Usage(input_tokens=total_input, cache_read_tokens=cached, cache_write_tokens=written,
              output_tokens=output),
        model, provider_id="anthropic", genai_request_timestamp=at,
    ).total_price  # fmt: skip

    assert quote.cost == quantize_cost(expected)
