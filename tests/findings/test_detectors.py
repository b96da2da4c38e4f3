"""Each detector and alert rule fires on planted usage with a hand-computed figure, and
stays quiet on clean usage. Prices: see ``tests/findings/builders.py``; window: 30 days,
so monthly figures equal the window's (× 30 ÷ 30)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import Feature, ProviderKey
from findings.models import FindingKind
from ingestion.models import ProviderUsageBucket
from tests.accounts.factories import CustomerFactory, CustomerPlanFactory, PlanFactory
from tests.economics.builders import Row, snapshot_create
from tests.findings.builders import (
    NOW,
    WINDOW_DAYS,
    WINDOW_END,
    WINDOW_START,
    detect,
    event,
    feature,
    ingest,
    policy_thresholds,
    spread,
)

pytestmark = pytest.mark.django_db

D = Decimal
K = FindingKind


# --- model overkill -------------------------------------------------------------------------


def test_model_overkill_fires_on_a_premium_model_with_short_outputs(org):
    feature(org, "classify")
    # 300 labels on gpt-4.1, 100,000 tokens in and 5 out each.
    ingest(org, spread(300, feature="classify", model="gpt-4.1", input_tokens=100_000,
                       output_tokens=5))  # fmt: skip

    [found] = detect(org, K.MODEL_OVERKILL)

    # gpt-4.1:      300 × (100,000 × 2 + 5 × 8) / 1e6     = 300 × 0.20004  = 60.012
    # gpt-4.1-mini: 300 × (100,000 × 0.4 + 5 × 1.6) / 1e6 = 300 × 0.040008 = 12.0024
    # savings 48.0096 over 30 days → 48.0096 a month
    assert found.monthly_savings == D("48.0096")
    assert found.confidence == "medium"
    assert "Outputs average 5.0 tokens" in found.confidence_reason
    assert found.remediation_kind == "model_swap"
    assert found.scope.model == "gpt-4.1" and found.scope.environment == "production"
    assert found.evidence["alternative_model"] == "gpt-4.1-mini"
    assert found.evidence["cost"] == "60.012000000000"
    assert D(found.evidence["alternative_cost"]) == D("12.0024")
    assert found.evidence["alternative_prices_per_mtok"]["input"] == "0.4"
    assert "formula" in found.evidence
    series = found.evidence["series"]
    assert len(series) == 30 and series[0]["day"] == WINDOW_START.isoformat()
    assert sum(D(p["cost"]) for p in series) == D("60.012")


def test_quality_evidence_of_a_cheaper_model_in_the_feature_makes_it_high_confidence(org):
    feature(org, "answers")
    # Long answers: not "simple work"; but gpt-4o-mini already serves the feature as well.
    ingest(org, spread(200, feature="answers", model="gpt-4.1", input_tokens=10_000,
                       output_tokens=500, quality_score="0.90"))  # fmt: skip
    ingest(org, spread(50, feature="answers", model="gpt-4o-mini", input_tokens=10_000,
                       output_tokens=500, quality_score="0.89"))  # fmt: skip

    [found] = detect(org, K.MODEL_OVERKILL)

    # gpt-4.1:     200 × (10,000 × 2 + 500 × 8) / 1e6     = 200 × 0.024  = 4.80
    # gpt-4o-mini: 200 × (10,000 × 0.15 + 500 × 0.6) / 1e6 = 200 × 0.0018 = 0.36
    # savings 4.44 a month
    assert found.monthly_savings == D("4.44")
    assert found.confidence == "high"
    assert found.evidence["alternative_model"] == "gpt-4o-mini"
    assert "gpt-4o-mini already serves answers" in found.confidence_reason
    alternatives = found.evidence["quality"]["alternatives"]
    assert alternatives == [
        {"model": "gpt-4o-mini", "scored": 50, "mean": "0.8900", "comparable": True}
    ]


def test_a_cheaper_model_that_scores_worse_lowers_confidence_or_silences_the_rule(org):
    feature(org, "triage")
    ingest(org, spread(200, feature="triage", model="gpt-4.1", input_tokens=10_000,
                       output_tokens=4, quality_score="0.95"))  # fmt: skip
    ingest(org, spread(40, feature="triage", model="gpt-4o-mini", input_tokens=10_000,
                       output_tokens=4, quality_score="0.80"))  # fmt: skip

    [found] = detect(org, K.MODEL_OVERKILL)
    assert found.confidence == "low"
    assert "scores lower" in found.confidence_reason

    # Without the short-output signal, worse quality means no finding at all.
    policy_thresholds(org, model_overkill={"max_avg_output_tokens": 3})
    assert detect(org, K.MODEL_OVERKILL) == []


def test_model_overkill_is_quiet_on_clean_usage(org):
    feature(org, "chat")
    # Cheap model; premium model doing long work without any quality comparison; staging.
    ingest(org, spread(300, feature="chat", model="gpt-4o-mini", output_tokens=5))
    ingest(org, spread(300, feature="chat", model="gpt-4.1", output_tokens=800))
    ingest(org, spread(300, feature="chat", model="gpt-4.1", output_tokens=5,
                       environment="staging"))  # fmt: skip
    assert detect(org, K.MODEL_OVERKILL) == []


def test_model_overkill_thresholds_are_overridable_per_organization(org):
    feature(org, "classify")
    ingest(org, spread(300, feature="classify", model="gpt-4.1", output_tokens=5))
    assert len(detect(org, K.MODEL_OVERKILL)) == 1

    policy_thresholds(org, model_overkill={"min_requests": 301})
    assert detect(org, K.MODEL_OVERKILL) == []

    # gpt-4.1 no longer premium for this organization.
    policy_thresholds(org, model_overkill={"premium_models": {"claude-opus": ["claude-haiku-4-5"]}})
    assert detect(org, K.MODEL_OVERKILL) == []


# --- batch eligibility ----------------------------------------------------------------------


def test_batch_eligibility_fires_on_scheduled_night_jobs(org):
    feature(org, "digest")
    # 120 digests at 02:00 UTC, started by a scheduler, no end user.
    ingest(org, [
        event(WINDOW_DAYS[n % 30], hour=2, minute=n // 30, feature="digest",
              workflow="nightly-digest", provider="anthropic", model="claude-sonnet-4-5",
              input_tokens=10_000, output_tokens=1_000, metadata={"trigger": "schedule"})
        for n in range(120)
    ])  # fmt: skip

    [found] = detect(org, K.BATCH_ELIGIBILITY)

    # cost: 120 × (10,000 × 3 + 1,000 × 15) / 1e6 = 120 × 0.045 = 5.40
    # savings at the 50 % batch discount: 2.70 a month
    assert found.monthly_savings == D("2.70")
    assert found.confidence == "high"
    assert found.remediation_kind == "enable_batch"
    assert found.evidence["workflow"] == "nightly-digest"
    assert found.evidence["scheduled_share"] == "1"
    assert D(found.evidence["off_hours_share"]) == 1


def test_batch_eligibility_is_quiet_on_interactive_and_batched_traffic(org):
    feature(org, "digest")
    feature(org, "chat")
    night = {"hour": 2, "feature": "digest", "workflow": "nightly-digest",
                 "metadata": {"trigger": "schedule"}}  # fmt: skip
    ingest(org, [event(WINDOW_DAYS[n % 30], batch=True, **night) for n in range(120)])
    ingest(org, [event(WINDOW_DAYS[n % 30], hour=14, feature="chat", user_id=f"u{n % 7}")
                 for n in range(300)])  # fmt: skip
    assert detect(org, K.BATCH_ELIGIBILITY) == []

    # Night traffic with end users is someone awake somewhere: still quiet.
    ingest(org, [event(WINDOW_DAYS[n % 30], hour=3, feature="chat", user_id=f"u{n % 7}")
                 for n in range(300)])  # fmt: skip
    assert detect(org, K.BATCH_ELIGIBILITY) == []


# --- prompt caching gap ---------------------------------------------------------------------


def test_prompt_caching_gap_fires_on_large_uncached_prompts(org):
    feature(org, "summarize")
    ingest(org, spread(250, feature="summarize", provider="anthropic",
                       model="claude-sonnet-4-5", input_tokens=20_000, output_tokens=500,
                       prompt_version="sum-v1"))  # fmt: skip

    [found] = detect(org, K.PROMPT_CACHING_GAP)

    # uncached input 250 × 20,000 = 5,000,000 tokens; prefix 50 % = 2,500,000
    # read from cache 80 %: 2,500,000 × 0.8 × (3 − 0.3) / 1e6  = 5.40 saved
    # written again 20 %:   2,500,000 × 0.2 × (3.75 − 3) / 1e6 = 0.375 more
    # savings 5.025 a month
    assert found.monthly_savings == D("5.025")
    assert found.confidence == "high"
    assert "'sum-v1' carries 100.0%" in found.confidence_reason
    assert found.remediation_kind == "enable_caching"
    assert "cache_control" in found.remediation


def test_prompt_caching_gap_is_quiet_when_prompts_are_cached_or_small(org):
    feature(org, "summarize")
    feature(org, "chat")
    ingest(org, spread(250, feature="summarize", provider="anthropic",
                       model="claude-sonnet-4-5", input_tokens=20_000,
                       cached_input_tokens=15_000, output_tokens=500))  # fmt: skip
    ingest(org, spread(250, feature="chat", input_tokens=1_500, output_tokens=500))
    assert detect(org, K.PROMPT_CACHING_GAP) == []


def test_prompt_caching_gap_at_openai_has_no_write_premium(org):
    feature(org, "rag")
    ingest(org, spread(200, feature="rag", model="gpt-4o", input_tokens=10_000, output_tokens=10))

    [found] = detect(org, K.PROMPT_CACHING_GAP)

    # 2,000,000 uncached × 0.5 prefix × 0.8 hit × (2.5 − 1.25) / 1e6 = 1.00; writes cost input
    assert found.monthly_savings == D("1.00")
    assert found.confidence == "medium"  # no prompt version: a stable prefix is assumed


# --- orphaned spend -------------------------------------------------------------------------


def test_orphaned_spend_on_a_retired_feature_key_and_an_unmapped_key(org):
    retired = feature(org, "old-router", status=Feature.Status.RETIRED)
    old_key = ProviderKey.objects.create(organization=org, provider="openai",
                                         key_id="key_retired", feature=retired)  # fmt: skip
    # 50 untagged calls through the retired feature's key, 40 through a key nobody mapped.
    ingest(org, spread(50, api_key_id="key_retired", input_tokens=1000, output_tokens=10))
    ingest(org, spread(40, api_key_id="key_unmapped", input_tokens=2000, output_tokens=100))

    found = {d.evidence["case"]: d for d in detect(org, K.ORPHANED_SPEND)}

    assert set(found) == {"retired_feature", "unmapped"}
    # retired: 50 × (1,000 × 2.5 + 10 × 10) / 1e6 = 50 × 0.0026 = 0.13 a month
    assert found["retired_feature"].monthly_savings == D("0.13")
    assert found["retired_feature"].confidence == "high"
    assert found["retired_feature"].scope.provider_key_id == old_key.pk
    # unmapped: 40 × (2,000 × 2.5 + 100 × 10) / 1e6 = 40 × 0.006 = 0.24 a month
    assert found["unmapped"].monthly_savings == D("0.24")
    assert found["unmapped"].confidence == "medium"
    assert found["unmapped"].remediation_kind == "revoke_key"


def test_orphaned_spend_on_a_key_only_the_provider_reports(org):
    for n in range(3):  # three daily buckets of 20 requests at $1.50 each
        ProviderUsageBucket.objects.create(
            organization=org, provider="openai", bucket_width="1d",
            bucket_start=datetime.combine(WINDOW_DAYS[n], datetime.min.time(), UTC),
            api_key_id="key_dark", model="gpt-4.1-mini", requests=20, input_tokens=1000,
            output_tokens=100, estimated_cost=D("1.50"),
        )  # fmt: skip

    [found] = detect(org, K.ORPHANED_SPEND)

    # 3 × 1.50 = 4.50 in the window → 4.50 a month
    assert found.monthly_savings == D("4.50")
    assert found.evidence["case"] == "uninstrumented"
    assert found.confidence == "medium"
    assert found.fingerprint_parts == ("provider=openai", "api_key_id=key_dark")


def test_orphaned_spend_is_quiet_on_mapped_and_tagged_keys(org):
    chat = feature(org, "chat")
    ProviderKey.objects.create(organization=org, provider="openai", key_id="key_chat",
                               feature=chat)  # fmt: skip
    ingest(org, spread(50, api_key_id="key_chat"))
    # An unmapped key whose calls all carry their own feature tag is attributed.
    ingest(org, spread(50, api_key_id="key_new", feature="chat"))
    assert detect(org, K.ORPHANED_SPEND) == []


# --- staging on production models -----------------------------------------------------------


def test_staging_on_a_premium_model(org):
    feature(org, "chat")
    ingest(org, spread(60, feature="chat", model="gpt-4.1", environment="staging",
                       input_tokens=10_000, output_tokens=500))  # fmt: skip
    ingest(org, spread(60, feature="chat", model="gpt-4.1-mini", environment="development"))
    ingest(org, spread(60, feature="chat", model="gpt-4.1"))  # production: not this rule

    [found] = detect(org, K.STAGING_ON_PRODUCTION_MODELS)

    # gpt-4.1:      60 × (10,000 × 2 + 500 × 8) / 1e6     = 60 × 0.024  = 1.44
    # gpt-4.1-mini: 60 × (10,000 × 0.4 + 500 × 1.6) / 1e6 = 60 × 0.0048 = 0.288
    # savings 1.152 a month
    assert found.monthly_savings == D("1.152")
    assert found.confidence == "medium"
    assert found.scope.environment == "staging"
    assert found.remediation_kind == "route_staging"


def test_development_on_opus_is_high_confidence_and_uses_the_shared_premium_list(org):
    ingest(org, spread(50, provider="anthropic", model="claude-opus-4-1",
                       environment="development", input_tokens=1000,
                       output_tokens=100))  # fmt: skip

    [found] = detect(org, K.STAGING_ON_PRODUCTION_MODELS)

    # opus:   50 × (1,000 × 15 + 100 × 75) / 1e6 = 50 × 0.0225 = 1.125
    # sonnet: 50 × (1,000 × 3 + 100 × 15) / 1e6  = 50 × 0.0045 = 0.225
    assert found.monthly_savings == D("0.900")
    assert found.confidence == "high"

    # Opus removed from model overkill's list: staging follows it.
    policy_thresholds(org, model_overkill={"premium_models": {"gpt-4.1": ["gpt-4.1-mini"]}})
    assert detect(org, K.STAGING_ON_PRODUCTION_MODELS) == []


# --- free-tier subsidy ----------------------------------------------------------------------


def _free_tier(org):
    free = PlanFactory(organization=org, code="free", name="Free", price=D("0"), is_free=True)
    pro = PlanFactory(organization=org, code="pro", name="Pro", price=D("499"))
    customers = {}
    for name, plan in (("heavy", free), ("light", free), ("paying", pro)):
        customers[name] = CustomerFactory(organization=org, external_id=name, name=name.title())
        CustomerPlanFactory(customer=customers[name], plan=plan,
                            valid_from=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    return free, pro, customers


def test_free_tier_subsidy_from_the_rollups(org):
    free, _, _ = _free_tier(org)
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input_tokens": 10_000,
                  "output_tokens": 1_000}  # 0.045 a call  # fmt: skip
    ingest(org, spread(200, customer_id="heavy", **sonnet))  # 9.00
    ingest(org, spread(100, customer_id="light", **sonnet))  # 4.50
    ingest(org, spread(300, customer_id="paying", **sonnet))  # 13.50, but paying

    [found] = detect(org, K.FREE_TIER_SUBSIDY)

    # heavy: 9.00 − 5.00 allowance = 4.00; light stays within its 5.00
    assert found.monthly_savings == D("4.00")
    assert found.confidence == "medium"  # no economics snapshot: rollups
    assert found.scope.plan_id == free.pk
    assert [a["external_id"] for a in found.evidence["accounts"]] == ["heavy"]
    assert found.remediation_kind == "quota"

    policy_thresholds(org, free_tier_subsidy={"allowance_per_account": "3.00"})
    [found] = detect(org, K.FREE_TIER_SUBSIDY)
    # (9.00 − 3.00) + (4.50 − 3.00) = 7.50
    assert found.monthly_savings == D("7.50")


def test_free_tier_subsidy_reads_the_rolling_economics_snapshot(org):
    free, pro, c = _free_tier(org)
    snapshot_create(
        org, kind="rolling_30d", period_start=WINDOW_START, period_end=WINDOW_END, as_of=NOW,
        rows=[Row(c["heavy"], free, "12.00", "0.00"), Row(c["light"], free, "2.00", "0.00"),
              Row(c["paying"], pro, "500.00", "499.00")],
    )  # fmt: skip

    [found] = detect(org, K.FREE_TIER_SUBSIDY)

    assert found.monthly_savings == D("7.00")  # 12.00 − 5.00
    assert found.confidence == "high"
    assert found.evidence["source"] == f"economics snapshot: 30 days to {WINDOW_END}"


def test_free_tier_subsidy_is_quiet_within_the_allowance(org):
    _free_tier(org)
    ingest(org, spread(100, customer_id="heavy"))  # 100 × 0.0035 = 0.35
    ingest(org, spread(3000, customer_id="paying"))
    assert detect(org, K.FREE_TIER_SUBSIDY) == []


# --- alerts ---------------------------------------------------------------------------------


def test_cost_drift_by_feature_and_by_prompt_version(org):
    feature(org, "chat")
    policy_thresholds(org, cost_drift={"min_monthly_cost": 0})
    baseline, recent = WINDOW_DAYS[:23], WINDOW_DAYS[23:]
    # 20 calls a day: 1,000 tokens in (0.0035 a call), then a prompt twice as long (0.006).
    ingest(org, spread(460, days=baseline, feature="chat", prompt_version="v1"))
    ingest(org, spread(140, days=recent, feature="chat", prompt_version="v2", input_tokens=2000))

    found = {d.evidence["by"]: d for d in detect(org, K.COST_DRIFT)}

    # (0.006 − 0.0035) per request × 20 requests a day × 30 = 1.50 a month, both ways
    assert found["feature"].monthly_savings == D("1.50")
    assert found["feature"].evidence["change"].startswith("0.714285")
    assert found["prompt_version"].monthly_savings == D("1.50")
    assert found["prompt_version"].scope.prompt_version == "v2"
    assert found["prompt_version"].confidence == "high"


def test_cost_drift_is_quiet_when_cost_per_request_holds(org):
    feature(org, "chat")
    policy_thresholds(org, cost_drift={"min_monthly_cost": 0})
    ingest(org, spread(600, feature="chat"))
    assert detect(org, K.COST_DRIFT) == []


def test_tenant_concentration(org):
    ingest(org, spread(100, customer_id="whale"))
    for n in range(5):
        ingest(org, spread(10, customer_id=f"minnow-{n}"))

    [found] = detect(org, K.TENANT_CONCENTRATION)

    # 150 calls at 0.0035: total 0.525; top 3 = 120 calls = 0.42 (80 %) → 0.42 a month
    assert found.monthly_savings == D("0.42")
    assert found.evidence["top_share"] == "0.8"
    assert found.evidence["top"][0]["name"] == "whale"


def test_tenant_concentration_is_quiet_on_an_even_spread(org):
    for n in range(8):
        ingest(org, spread(10, customer_id=f"peer-{n}"))
    assert detect(org, K.TENANT_CONCENTRATION) == []


def test_request_burst_with_falling_success(org):
    feature(org, "api")
    ingest(org, spread(60, feature="api", customer_id="steady"))  # 2 a day, all succeed
    burst_day = WINDOW_DAYS[-2]
    ingest(org, [event(burst_day, hour=9, minute=n, feature="api", customer_id="loop",
                       status="error" if n % 2 else None, output_tokens=0 if n % 2 else 100)
                 for n in range(60)])  # fmt: skip

    [found] = detect(org, K.REQUEST_BURST)

    # burst hour: 30 successes × 0.0035 + 30 errors × 0.0025 (input billed) = 0.18
    assert found.monthly_savings == D("0.18")
    assert found.evidence["burst_success_ratio"] == "0.5"
    assert found.evidence["top_customers"][0]["name"] == "loop"
    assert found.confidence == "medium"


def test_request_burst_is_quiet_when_the_burst_succeeds(org):
    feature(org, "api")
    ingest(org, spread(60, feature="api"))
    ingest(org, [event(WINDOW_DAYS[-2], hour=9, minute=n, feature="api") for n in range(60)])
    assert detect(org, K.REQUEST_BURST) == []


def test_retry_overhead(org):
    feature(org, "ocr")
    policy_thresholds(org, retry_overhead={"min_monthly_cost": 0})
    ingest(org, spread(100, feature="ocr"))
    ingest(org, spread(20, feature="ocr", attempt=2))

    [found] = detect(org, K.RETRY_OVERHEAD)

    # retries: 20 × 0.0035 = 0.07 of 0.42 (16.7 %) → 0.07 a month
    assert found.monthly_savings == D("0.07")
    assert found.evidence["retries"] == 20


def test_retry_overhead_is_quiet_below_the_share(org):
    feature(org, "ocr")
    policy_thresholds(org, retry_overhead={"min_monthly_cost": 0})
    ingest(org, spread(100, feature="ocr"))
    ingest(org, spread(1, feature="ocr", attempt=2))
    assert detect(org, K.RETRY_OVERHEAD) == []


def test_every_rule_is_quiet_on_an_empty_organization(org):
    from findings.detectors import rules

    for kind in rules():
        assert detect(org, kind, now=NOW + timedelta(days=1)) == [], kind
