"""Reconciliation flags exactly what differs, and says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingestion.fakes.anthropic import (
    anthropic_calls,
    anthropic_calls_from_ledger,
    start_anthropic_fake,
)
from ingestion.fakes.openai import openai_calls, openai_calls_from_ledger, start_openai_fake
from ingestion.models import (
    ProviderCostLine,
    ProviderUsageBucket,
    ReconciliationLine,
    SyncRun,
)
from ingestion.pricing import PriceBook
from ingestion.reconciliation_math import (
    MISSING_EVENTS,
    NON_TOKEN,
    PRICE_DRIFT,
    UNATTRIBUTED,
    UNINSTRUMENTED,
    UNKEYED,
    allocate_reconciled_cost,
)
from ingestion.services.providers.clients import UsageRow
from ingestion.services.providers.connections import provider_connection_upsert
from ingestion.services.providers.sync import usage_row_cost
from ingestion.services.reconciliation import reconciliation_compute, reconciliation_run
from tests.ingestion.providers.conftest import (
    ANTHROPIC_KEYS,
    ANTHROPIC_MODELS,
    DAYS,
    OPENAI_KEYS,
    OPENAI_MODELS,
    SEED,
    first_day,
)
from tests.ingestion.providers.helpers import drop_share, ingest, sync_all, tokens_by_day_model

pytestmark = pytest.mark.django_db

TODAY = datetime.now(UTC).date()
BUSY = (20, 30)  # calls per day, key and model: 5% of a (day, model) is several events


def provider_setup(org, provider, **fake_options):
    if provider == "openai":
        calls = openai_calls(key_ids=OPENAI_KEYS, models=OPENAI_MODELS, days=DAYS, seed=SEED,
                             calls_per_day=BUSY)  # fmt: skip
        fake = start_openai_fake(key_ids=(), models=(), days=DAYS, seed=SEED, calls=calls,
                                 **fake_options)  # fmt: skip
        base = f"{fake.url}/v1"
    else:
        calls = anthropic_calls(key_ids=ANTHROPIC_KEYS, models=ANTHROPIC_MODELS, days=DAYS,
                                seed=SEED, calls_per_day=BUSY)  # fmt: skip
        fake = start_anthropic_fake(key_ids=(), models=(), days=DAYS, seed=SEED, calls=calls,
                                    **fake_options)  # fmt: skip
        base = fake.url
    connection, _ = provider_connection_upsert(
        organization=org, provider=provider, admin_key=fake.admin_key, api_base=base
    )
    return fake, connection


def model_lines(org, provider):
    return ReconciliationLine.objects.filter(organization=org, provider=provider, level="model")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_flags_exactly_the_day_and_model_missing_five_percent_of_its_events(org, provider):
    fake, connection = provider_setup(org, provider)
    try:
        day = first_day() + timedelta(days=2)
        model = fake.calls[0].model
        kept, dropped = drop_share(fake.calls, day=day, model=model)
        ingest(org, [call.ledger_event() for call in kept])
        sync_all(connection)

        result = reconciliation_compute(
            organization=org, provider=provider, since=first_day(), until=TODAY
        )
    finally:
        fake.stop()

    full = tokens_by_day_model(fake.calls)
    missing = sum(c.input_tokens + c.output_tokens for c in dropped)
    assert Decimal(missing) / full[day, model] > Decimal("0.02")  # the removal is material
    assert result.flagged_models == [(day, model)]
    lines = model_lines(org, provider)
    assert lines.count() == DAYS * 2  # every (day, model), nothing else
    (flagged,) = lines.filter(flagged=True)
    assert (flagged.day, flagged.model) == (day, model)
    assert flagged.reasons == [MISSING_EVENTS]
    assert flagged.provider_input_tokens + flagged.provider_output_tokens == full[day, model]
    tokens = flagged.ledger_input_tokens + flagged.ledger_output_tokens
    assert full[day, model] - tokens == missing
    assert flagged.invoiced_basis == "model"
    assert f"the provider counted {missing:,} more tokens" in flagged.explanation
    # Key lines flag only inside that (day, model), and every other line is exactly level.
    keyed = ReconciliationLine.objects.filter(organization=org, level="key", flagged=True)
    assert {(line.day, line.model) for line in keyed} <= {(day, model)}
    for line in lines.filter(flagged=False):
        assert line.token_variance_percent == 0
        assert line.ledger_input_tokens == line.provider_input_tokens
        assert abs(line.variance_percent) < Decimal("0.0001")
        assert line.explanation == "Within tolerance."


def test_a_key_without_instrumentation_is_uninstrumented_traffic(org):
    fake, connection = provider_setup(org, "openai")
    try:
        ingest(org, [c.ledger_event() for c in fake.calls if c.api_key_id != "key_batch"])
        sync_all(connection)
        reconciliation_compute(organization=org, provider="openai", since=first_day(), until=TODAY)
    finally:
        fake.stop()

    lines = model_lines(org, "openai")
    assert lines.count() == lines.filter(flagged=True).count() == DAYS * 2
    for line in lines:
        assert line.reasons == [UNINSTRUMENTED]
        assert "on key_batch with no ledger events" in line.explanation
        dark = ReconciliationLine.objects.get(
            organization=org, day=line.day, model=line.model, level="key", api_key_id="key_batch"
        )
        assert dark.flagged and dark.reasons == [UNINSTRUMENTED]
        assert line.uninstrumented_cost == dark.provider_usage_cost > 0
        # Economics: the bill goes to the ledger's groups pro rata, the dark part stays apart.
        shares = allocate_reconciled_cost(
            invoiced=line.invoiced_cost.quantize(Decimal("1e-12")),
            ledger_costs={"instrumented": line.ledger_cost},
            uninstrumented_cost=line.uninstrumented_cost,
        )
        assert sum(shares.values()) == line.invoiced_cost
        ratio = shares[UNATTRIBUTED] / line.invoiced_cost
        expected = line.uninstrumented_cost / (line.uninstrumented_cost + line.ledger_cost)
        assert abs(ratio - expected) < Decimal("1e-9")
    keyed = ReconciliationLine.objects.filter(organization=org, level="key", flagged=True)
    assert set(keyed.values_list("api_key_id", flat=True)) == {"key_batch"}


def test_same_tokens_billed_at_another_price_is_price_drift(org):
    fake, connection = provider_setup(org, "openai", price_factors={"gpt-4o-mini": Decimal("0.8")})
    try:
        ingest(org, fake.ledger_events())
        sync_all(connection)
        reconciliation_compute(organization=org, provider="openai", since=first_day(), until=TODAY)
    finally:
        fake.stop()

    lines = model_lines(org, "openai")
    assert set(lines.filter(flagged=True).values_list("model", flat=True)) == {"gpt-4o-mini"}
    for line in lines.filter(model="gpt-4o-mini"):
        assert line.reasons == [PRICE_DRIFT]
        assert line.token_variance_percent == 0
        assert line.variance_percent == Decimal("-25.0000")  # ledger at list = bill / 0.8
    assert not lines.filter(model="gpt-4o", flagged=True).exists()


def test_days_the_provider_has_not_reported_are_listed_not_judged(org, openai_fake):
    ingest(org, openai_fake.ledger_events())

    reconciliation_compute(organization=org, provider="openai", since=first_day(), until=TODAY)

    lines = model_lines(org, "openai")
    assert lines.count() == DAYS * 2
    assert not lines.filter(flagged=True).exists()
    assert all(line.reasons == ["not_synced"] for line in lines)
    assert all(line.provider_usage_cost is None and line.invoiced_cost is None for line in lines)


def test_reconciliation_is_a_recomputable_projection_recorded_as_a_run(org, openai_connection,
                                                                       openai_fake):  # fmt: skip
    ingest(org, openai_fake.ledger_events())
    sync_all(openai_connection)

    first = reconciliation_run(organization=org, provider="openai", days=DAYS)
    again = reconciliation_run(organization=org, provider="openai", days=DAYS)

    assert first.kind == again.kind == SyncRun.Kind.RECONCILIATION
    assert first.status == again.status == SyncRun.Status.SUCCEEDED
    assert first.items == again.items == ReconciliationLine.objects.count()
    assert again.cursor == {"flagged": 0}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_fake_serving_the_ledger_reconciles_to_zero_but_for_planted_traffic(org, provider):
    """The demo path: provider data derived from the organization's own ledger."""
    if provider == "openai":
        source = openai_calls(key_ids=OPENAI_KEYS, models=OPENAI_MODELS, days=DAYS, seed=SEED)
        dark = openai_calls(key_ids=["key_dark"], models=["gpt-4o"], days=DAYS, seed=SEED + 1)
        from_ledger, start = openai_calls_from_ledger, start_openai_fake
    else:
        source = anthropic_calls(key_ids=ANTHROPIC_KEYS, models=ANTHROPIC_MODELS, days=DAYS,
                                 seed=SEED)  # fmt: skip
        dark = anthropic_calls(key_ids=["apikey_dark"], models=["claude-haiku-4-5"], days=DAYS,
                               seed=SEED + 1)  # fmt: skip
        from_ledger, start = anthropic_calls_from_ledger, start_anthropic_fake
    ingest(org, [call.ledger_event() for call in source])
    calls = from_ledger(organization=org, since=first_day(), until=TODAY) + dark
    fake = start(key_ids=(), models=(), days=DAYS, seed=SEED, calls=calls)
    try:
        connection, _ = provider_connection_upsert(
            organization=org, provider=provider, admin_key=fake.admin_key,
            api_base=f"{fake.url}/v1" if provider == "openai" else fake.url,
        )  # fmt: skip
        sync_all(connection)
        reconciliation_compute(organization=org, provider=provider, since=first_day(), until=TODAY)
    finally:
        fake.stop()

    dark_model = dark[0].model
    flagged = model_lines(org, provider).filter(flagged=True)
    assert {line.model for line in flagged} == {dark_model}
    assert flagged.count() == DAYS
    assert all(line.reasons == [UNINSTRUMENTED] for line in flagged)
    # One call per ledger event: summed calls would cross long-context price tiers.
    assert len(calls) == len(source) + len(dark)


def bucket(org, day, model, key, *, input_tokens, output_tokens, cost=None):
    """A daily usage bucket as the sync stores it, priced by the same function when no cost."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    row = UsageRow(bucket_start=start, bucket_end=start + timedelta(days=1), api_key_id=key,
                   model=model, input_tokens=input_tokens, output_tokens=output_tokens)  # fmt: skip
    if cost is None:
        cost, _ = usage_row_cost(book=PriceBook(), provider="openai", row=row)
    return ProviderUsageBucket.objects.create(
        organization=org, provider="openai", bucket_start=start, bucket_width="1d",
        api_key_id=key, model=model, requests=1, input_tokens=input_tokens,
        output_tokens=output_tokens, estimated_cost=cost,
    )  # fmt: skip


def test_model_less_token_charges_are_allocated_by_usage_and_other_charges_kept_apart(org):
    day = first_day()
    bucket(org, day, "gpt-4o", "k1", input_tokens=1000, output_tokens=10, cost=Decimal("3"))
    bucket(org, day, "gpt-4o-mini", "k1", input_tokens=1000, output_tokens=10, cost=Decimal("1"))
    for item, cost_type, amount in (("Usage", "", "8"), ("Web search", "web_search", "0.5")):
        ProviderCostLine.objects.create(organization=org, provider="openai", day=day,
                                        line_item=item, cost_type=cost_type,
                                        amount=Decimal(amount))  # fmt: skip

    reconciliation_compute(organization=org, provider="openai", since=day, until=TODAY)

    lines = {line.model: line for line in model_lines(org, "openai")}
    assert set(lines) == {"gpt-4o", "gpt-4o-mini", ""}
    assert (lines["gpt-4o"].invoiced_cost, lines["gpt-4o"].invoiced_basis) == (Decimal(6), "day")
    assert lines["gpt-4o-mini"].invoiced_cost == Decimal(2)
    other = lines[""]
    assert (other.invoiced_cost, other.reasons, other.flagged) == (
        Decimal("0.5"),
        [NON_TOKEN],
        False,
    )
    assert "Non-token charges" in other.explanation


def test_ledger_events_without_a_key_are_matched_per_model_not_per_key(org):
    day = first_day()
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    ingest(org, [{"event_id": f"unkeyed-{i}", "timestamp": at.isoformat(), "provider": "openai",
                  "model": "gpt-4o", "input_tokens": 500, "output_tokens": 5}
                 for i in range(4)])  # fmt: skip
    bucket(org, day, "gpt-4o", "key_a", input_tokens=1000, output_tokens=10)
    bucket(org, day, "gpt-4o", "key_b", input_tokens=1000, output_tokens=10)

    reconciliation_compute(organization=org, provider="openai", since=day, until=TODAY)

    (line,) = model_lines(org, "openai")
    assert not line.flagged and line.variance == 0
    assert line.reasons == [UNKEYED] and line.uninstrumented_cost == 0
    keyed = ReconciliationLine.objects.filter(organization=org, level="key")
    assert sorted(keyed.values_list("api_key_id", "flagged")) == [
        ("", False),
        ("key_a", False),
        ("key_b", False),
    ]
