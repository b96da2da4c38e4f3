"""The ingest service: idempotency, conflicts, the accept window, attribution, costing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Customer, Feature, ProviderKey
from ingestion.models import DailyUsage, EventConflict, UsageEvent
from ingestion.services.ingest import usage_events_ingest
from tests.accounts.factories import (
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    OrganizationFactory,
    PlanFactory,
    ProviderKeyFactory,
)
from tests.ingestion.helpers import day_ago, event, ledger_aggregate, rollup_rows

pytestmark = pytest.mark.django_db

MTOK = Decimal(1_000_000)
# gpt-4o list prices per million tokens (genai-prices): input, cached input, output.
GPT_4O = {"input": Decimal("2.5"), "cached": Decimal("1.25"), "output": Decimal("10")}


def ingest(org, *events, now=None):
    return usage_events_ingest(organization=org, raw_events=list(events), now=now)


def statuses(result):
    return [outcome.status for outcome in result.outcomes]


def test_new_event_is_stored_priced_and_attributed(org):
    customer = CustomerFactory(organization=org, external_id="cust-1")
    plan = PlanFactory(organization=org, code="pro")
    CustomerPlanFactory(customer=customer, plan=plan, valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    feature = FeatureFactory(organization=org, key="chat")

    result = ingest(org, event(event_id="e1", input_tokens=6074, cached_input_tokens=3456,
                               output_tokens=285))  # fmt: skip

    assert statuses(result) == ["accepted"]
    row = UsageEvent.objects.get(event_id="e1")
    # (6074 − 3456) × 2.5 + 3456 × 1.25 + 285 × 10, per million tokens
    expected = ((6074 - 3456) * GPT_4O["input"] + 3456 * GPT_4O["cached"] + 285 * GPT_4O[
        "output"]) / MTOK  # fmt: skip
    assert row.cost == expected == Decimal("0.013715")
    assert (row.cost_source, row.cost_status) == ("price_book", "priced")
    assert row.estimated_cost == row.cost
    assert "gpt-4o" in row.price_reference
    assert (row.customer, row.feature, row.plan) == (customer, feature, plan)
    assert (row.attribution_source, row.attribution_confidence) == ("api", "high")
    assert row.billable is True


def test_retry_is_a_duplicate_and_stores_nothing_new(org):
    raw = event(event_id="e1")
    ingest(org, raw)
    again = ingest(org, dict(raw))

    assert statuses(again) == ["duplicate"]
    assert UsageEvent.objects.filter(event_id="e1").count() == 1
    assert DailyUsage.objects.get().requests == 1


def test_same_id_with_different_payload_is_a_recorded_conflict(org):
    original = event(event_id="e1", output_tokens=200)
    ingest(org, original)
    before = UsageEvent.objects.values().get(event_id="e1")

    result = ingest(org, {**original, "output_tokens": 999})

    assert statuses(result) == ["conflict"]
    assert "output_tokens" in result.outcomes[0].reason
    assert UsageEvent.objects.values().get(event_id="e1") == before
    conflict = EventConflict.objects.get()
    assert conflict.original.event_id == "e1"
    assert conflict.differing_fields == ["output_tokens"]
    assert conflict.payload["output_tokens"] == 999
    assert DailyUsage.objects.get().output_tokens == 200


def test_the_same_id_in_two_organizations_is_two_events(org, other_org):
    ingest(org, event(event_id="evt-1"))
    ingest(other_org, event(event_id="evt-1"))

    assert UsageEvent.objects.filter(event_id="evt-1").count() == 2


def test_repeats_inside_one_batch_are_judged_like_retries(org):
    base = event(event_id="e1")
    result = ingest(org, base, dict(base), {**base, "output_tokens": 1}, event(event_id="e2"))

    assert statuses(result) == ["accepted", "duplicate", "conflict", "accepted"]
    assert UsageEvent.objects.count() == 2


@pytest.mark.parametrize(
    ("age", "outcome"),
    [
        (timedelta(minutes=1), "accepted"),
        (timedelta(hours=11), "accepted"),
        (timedelta(hours=13), "accepted"),
        (timedelta(days=34, hours=23), "accepted"),
        (timedelta(days=35, minutes=1), "rejected"),
        (timedelta(days=36), "rejected"),
        (timedelta(minutes=-4), "accepted"),
        (timedelta(minutes=-6), "rejected"),
    ],
)
def test_accept_window(org, age, outcome):
    now = timezone.now()
    result = ingest(org, event(timestamp=(now - age).isoformat()), now=now)

    assert statuses(result) == [outcome]
    if outcome == "rejected":
        assert "window" in result.outcomes[0].reason or "future" in result.outcomes[0].reason


def test_accept_window_is_per_organization(db):
    strict = OrganizationFactory(usage_accept_days=7)
    now = timezone.now()
    result = ingest(strict, event(timestamp=day_ago(8, now=now)), now=now)

    assert statuses(result) == ["rejected"]
    assert result.outcomes[0].reason == "timestamp is older than the 7-day accept window."


def test_late_event_lands_in_its_own_day(org):
    now = timezone.now()
    ingest(org, event(timestamp=day_ago(0.1, now=now)), now=now)
    late = now - timedelta(days=20)
    ingest(org, event(timestamp=late.isoformat(), output_tokens=7), now=now)

    days = dict(DailyUsage.objects.values_list("day", "output_tokens"))
    assert days[late.astimezone(UTC).date()] == 7
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)


def test_unknown_customer_and_feature_are_registered_for_review(org):
    result = ingest(org, event(customer_id="new-co", feature="brand-new"))

    assert statuses(result) == ["accepted"]
    customer = Customer.objects.get(organization=org, external_id="new-co")
    feature = Feature.objects.get(organization=org, key="brand-new")
    assert customer.needs_review and feature.needs_review
    assert UsageEvent.objects.get().customer == customer


def test_provider_key_mapping_attributes_untagged_traffic(org):
    feature = FeatureFactory(organization=org, key="search")
    ProviderKeyFactory(organization=org, provider="openai", key_id="key_abc", feature=feature)

    ingest(org, event(event_id="mapped", feature=None, api_key_id="key_abc"),
           event(event_id="stray", feature=None, api_key_id="key_new"),
           event(event_id="bare", feature=None))  # fmt: skip

    rows = {row.event_id: row for row in UsageEvent.objects.all()}
    assert rows["mapped"].feature == feature
    assert (rows["mapped"].attribution_source, rows["mapped"].attribution_confidence) == (
        "key_mapping", "medium")  # fmt: skip
    assert rows["stray"].feature is None
    assert rows["stray"].attribution_source == "unattributed"
    assert rows["bare"].attribution_confidence == "low"
    stray_key = ProviderKey.objects.get(organization=org, key_id="key_new")
    assert stray_key.feature is None and stray_key.last_seen_at is not None


def test_internal_customers_and_non_production_traffic_are_not_billable(org):
    CustomerFactory(organization=org, external_id="qa-bot", is_internal=True)
    ingest(org, event(event_id="internal", customer_id="qa-bot"),
           event(event_id="staging", environment="staging"),
           event(event_id="real"))  # fmt: skip

    billable = dict(UsageEvent.objects.values_list("event_id", "billable"))
    assert billable == {"internal": False, "staging": False, "real": True}


def test_plan_is_the_one_in_force_at_the_event_time(org):
    customer = CustomerFactory(organization=org, external_id="cust-1")
    starter = PlanFactory(organization=org, code="starter")
    pro = PlanFactory(organization=org, code="pro")
    switch = timezone.now() - timedelta(days=3)
    CustomerPlanFactory(customer=customer, plan=starter, valid_from=switch - timedelta(days=30),
                        valid_to=switch)  # fmt: skip
    CustomerPlanFactory(customer=customer, plan=pro, valid_from=switch)

    ingest(org, event(event_id="before", timestamp=(switch - timedelta(seconds=1)).isoformat()),
           event(event_id="at", timestamp=switch.isoformat()))  # fmt: skip

    plans = dict(UsageEvent.objects.values_list("event_id", "plan__code"))
    assert plans == {"before": "starter", "at": "pro"}


def test_unknown_model_is_unpriced_never_zero(org):
    result = ingest(org, event(model="mystery-model-9000"))

    assert statuses(result) == ["accepted"]
    row = UsageEvent.objects.get()
    assert (row.cost, row.cost_status, row.cost_source) == (None, "unpriced", "")
    rollup = DailyUsage.objects.get()
    assert (rollup.unpriced_requests, rollup.cost) == (1, Decimal("0"))


def test_reported_cost_wins_and_the_estimate_is_kept(org):
    ingest(org, event(cost_usd=Decimal("0.004200000001"), input_tokens=1000, output_tokens=0))

    row = UsageEvent.objects.get()
    assert row.cost == Decimal("0.004200000001")
    assert row.cost_source == "provider_reported"
    assert row.estimated_cost == Decimal("1000") * GPT_4O["input"] / MTOK


def test_anthropic_usage_is_normalized_to_the_ledger_convention(org):
    ingest(org, event(provider="anthropic", model="claude-sonnet-4-5", input_tokens=None,
                      output_tokens=None, provider_usage={
                          "input_tokens": 100, "cache_read_input_tokens": 2000,
                          "cache_creation_input_tokens": 500, "output_tokens": 300}))  # fmt: skip

    row = UsageEvent.objects.get()
    assert (row.input_tokens, row.cached_input_tokens, row.cache_write_tokens) == (2600, 2000, 500)
    assert row.output_tokens == 300


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_id": None}, "event_id is required."),
        ({"timestamp": "yesterday"}, "timestamp is not ISO 8601"),
        ({"input_tokens": -1}, "input_tokens must be between 0"),
        ({"input_tokens": "12"}, "input_tokens must be a whole number."),
        ({"cached_input_tokens": 5000}, "exceed input_tokens"),
        ({"environment": "prod"}, "environment must be"),
        ({"metadata": {"a": {"nested": 1}}}, "metadata.a must be a string."),
        ({"custmer_id": "typo"}, "unknown field(s): custmer_id."),
        ({"cost_usd": "-1"}, "cost_usd must be between 0"),
        ({"quality_score": Decimal("1.5")}, "quality_score must be between 0 and 1."),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(org, overrides, reason):
    result = ingest(org, event(**overrides))

    assert statuses(result) == ["rejected"]
    assert reason in result.outcomes[0].reason
    assert UsageEvent.objects.count() == 0


def test_a_bad_event_does_not_stop_the_good_ones(org):
    result = ingest(org, event(event_id="ok-1"), "not an object", event(event_id="ok-2"))

    assert statuses(result) == ["accepted", "rejected", "accepted"]


def test_ledger_facts_cannot_be_changed_or_deleted(org):
    ingest(org, event(event_id="e1"))

    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEvent.objects.filter(event_id="e1").update(output_tokens=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEvent.objects.filter(event_id="e1").delete()
    # Pricing is derived, not a fact: repricing may rewrite it.
    UsageEvent.objects.filter(event_id="e1").update(price_reference="manual")


def test_rollups_equal_the_ledger_aggregate(org):
    now = timezone.now()
    ingest(
        org,
        *[event(timestamp=day_ago(i % 5, now=now), customer_id=f"c{i % 3}",
                model=["gpt-4o", "gpt-4o-mini", "nope"][i % 3], status=["success", "error"][i % 2],
                attempt=1 + i % 3)
          for i in range(60)],
        now=now,
    )  # fmt: skip

    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)
    assert sum(r.requests for r in DailyUsage.objects.all()) == 60
