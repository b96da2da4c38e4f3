"""The demo organization ends its seed with every planted waste pattern found, in dollars a
reviewer would believe.

Seeded at full scale (accounts, ingestion's usage, provider bills and revenue, economics,
then findings), once for the module, the way ``seed_demo`` runs the apps' demo modules.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from accounts import demo as accounts_demo
from economics import demo as economics_demo
from findings import demo as findings_demo
from findings.models import WASTE_KINDS, DetectorRun, Finding, FindingKind
from ingestion import demo as ingestion_demo

pytestmark = pytest.mark.django_db

D = Decimal
K = FindingKind


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            organization = accounts_demo.demo_seed().organization
            ingestion_demo.demo_seed(organization=organization, scale=1)
            economics_demo.demo_seed(organization=organization)
            summary = findings_demo.demo_seed(organization=organization)
            findings = list(Finding.objects.filter(organization=organization))
            yield organization, summary, findings
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def by_kind(findings, kind):
    return [f for f in findings if f.kind == kind]


def test_the_run_succeeds_and_reports_what_it_found(seeded):
    organization, summary, findings = seeded
    run = DetectorRun.objects.filter(organization=organization).latest("started_at")
    assert run.status == "succeeded", run.error
    assert run.created == len(findings)
    assert "findings · $" in summary and "/mo identified" in summary


def test_all_six_waste_kinds_are_found(seeded):
    _, _, findings = seeded
    assert {f.kind for f in findings} >= set(WASTE_KINDS)


def test_every_figure_is_plausible(seeded):
    _, _, findings = seeded
    waste = [f for f in findings if f.kind in WASTE_KINDS]
    # Above the demo policy's floor, below what the company spends on AI in a month.
    floor = findings_demo.DEMO_MIN_MONTHLY_SAVINGS
    assert all(floor <= f.monthly_savings < D("8000") for f in waste), [
        (f.kind, f.title, f.monthly_savings) for f in waste
    ]
    total = sum(f.monthly_savings for f in waste)
    assert D("1000") < total < D("60000")
    for f in findings:
        assert f.confidence_reason and f.remediation and f.evidence["formula"]
        assert len(f.evidence["series"]) == 30


def test_model_overkill_finds_the_onboarding_classifier_with_high_confidence(seeded):
    _, _, findings = seeded
    classifier = [f for f in by_kind(findings, K.MODEL_OVERKILL)
                  if f.feature.key == "ai-onboarding" and f.model == "gpt-4.1"]  # fmt: skip
    [finding] = classifier
    assert finding.confidence == "high"  # gpt-4o-mini scores the same in the A/B slice
    assert finding.evidence["alternative_model"] == "gpt-4o-mini"
    assert D("5") <= finding.monthly_savings < D("500")


def test_batch_eligibility_finds_the_nightly_digests(seeded):
    _, _, findings = seeded
    [digest] = [f for f in by_kind(findings, K.BATCH_ELIGIBILITY)
                if f.evidence["workflow"] == "nightly-digest"]  # fmt: skip
    assert digest.confidence == "high"
    assert D("50") <= digest.monthly_savings < D("5000")


def test_caching_gap_finds_the_document_summaries(seeded):
    _, _, findings = seeded
    features = {f.feature.key for f in by_kind(findings, K.PROMPT_CACHING_GAP)}
    assert "document-summarization" in features
    assert "ai-onboarding" not in features or all(
        f.model != "claude-sonnet-4-5" for f in by_kind(findings, K.PROMPT_CACHING_GAP)
        if f.feature.key == "ai-onboarding"
    )  # fmt: skip


def test_orphaned_spend_finds_the_unmapped_and_the_retired_feature_keys(seeded):
    _, _, findings = seeded
    cases = {f.evidence["case"]: f for f in by_kind(findings, K.ORPHANED_SPEND)}
    assert {"unmapped", "retired_feature"} <= set(cases)
    assert cases["retired_feature"].evidence["key"]["feature"] == "legacy-classifier"
    assert cases["retired_feature"].confidence == "high"


def test_staging_finds_premium_models_in_staging(seeded):
    _, _, findings = seeded
    models = {f.model for f in by_kind(findings, K.STAGING_ON_PRODUCTION_MODELS)}
    assert "claude-opus-4-5" in models
    assert all(
        f.environment == "staging" for f in by_kind(findings, K.STAGING_ON_PRODUCTION_MODELS)
    )


def test_free_tier_subsidy_finds_the_heavy_free_accounts(seeded):
    _, _, findings = seeded
    [free] = by_kind(findings, K.FREE_TIER_SUBSIDY)
    assert free.plan.code == "free"
    assert free.confidence == "high"  # read from the rolling 30-day snapshot
    assert 4 <= len(free.evidence["accounts"]) <= 12


def test_a_rerun_updates_rather_than_duplicates(seeded):
    organization, _, findings = seeded
    run = findings_demo.findings_demo_seed(organization=organization)
    assert run.created == 0 and run.resolved == 0
    assert Finding.objects.filter(organization=organization).count() == len(findings)
