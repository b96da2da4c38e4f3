"""Repricing runs: explicit, recorded, and the rollups follow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingestion.models import DailyUsage, PriceOverride, RepricingRun, UsageEvent
from ingestion.services.ingest import usage_events_ingest
from ingestion.services.repricing import usage_reprice
from tests.ingestion.helpers import event, ledger_aggregate, rollup_rows

pytestmark = pytest.mark.django_db

MTOK = Decimal(1_000_000)


def test_an_override_changes_nothing_until_a_run_reprices(org, staff_factory):
    now = timezone.now()
    usage_events_ingest(
        organization=org,
        raw_events=[
            event(event_id="a", input_tokens=1_000_000, output_tokens=0),
            event(event_id="b", model="mystery-model", input_tokens=1_000_000, output_tokens=0),
            event(event_id="c", input_tokens=1_000_000, output_tokens=0, cost_usd="1.5"),
        ],
        now=now,
    )
    PriceOverride.objects.create(
        organization=org, provider="openai", model_pattern="gpt-4o",
        effective_from=now - timedelta(days=10), discount_percent=Decimal("20"),
    )  # fmt: skip
    PriceOverride.objects.create(
        organization=org, provider="openai", model_pattern="mystery-*",
        effective_from=now - timedelta(days=10), input_per_mtok=Decimal("0.40"),
        output_per_mtok=Decimal("1.60"),
    )  # fmt: skip
    # Nothing reprices silently.
    assert UsageEvent.objects.get(event_id="a").cost == Decimal("2.5")

    finance = staff_factory(org, "finance")
    run = usage_reprice(
        organization=org, start=now - timedelta(days=2), end=now, started_by=finance,
        reason="negotiated rate",
    )  # fmt: skip

    costs = dict(UsageEvent.objects.values_list("event_id", "cost"))
    assert costs == {"a": Decimal("2.0"), "b": Decimal("0.4"), "c": Decimal("1.5")}
    assert UsageEvent.objects.get(event_id="a").cost_source == "override"
    assert UsageEvent.objects.get(event_id="c").estimated_cost == Decimal("2.0")
    assert (run.status, run.events_touched, run.events_changed) == ("done", 3, 3)
    assert (run.cost_before, run.cost_after) == (Decimal("4.0"), Decimal("3.9"))
    assert (run.unpriced_before, run.unpriced_after) == (1, 0)
    assert run.started_by == finance
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)
    assert sum(r.cost for r in DailyUsage.objects.filter(organization=org)) == Decimal("3.9")


def test_a_rerun_changes_nothing_more(org):
    now = timezone.now()
    usage_events_ingest(organization=org, raw_events=[event()], now=now)
    first = usage_reprice(organization=org, start=now - timedelta(days=1), end=now)
    second = usage_reprice(organization=org, start=now - timedelta(days=1), end=now)

    assert first.events_changed == 0
    assert (second.events_touched, second.events_changed) == (1, 0)
    assert second.cost_before == second.cost_after


def test_events_outside_the_range_keep_their_cost(org):
    now = timezone.now()
    usage_events_ingest(
        organization=org,
        raw_events=[
            event(event_id="inside", timestamp=(now - timedelta(days=1)).isoformat()),
            event(event_id="outside", timestamp=(now - timedelta(days=5)).isoformat()),
        ],
        now=now,
    )
    before = UsageEvent.objects.get(event_id="outside").cost
    PriceOverride.objects.create(
        organization=org, provider="openai", model_pattern="gpt-4o",
        effective_from=now - timedelta(days=30), discount_percent=Decimal("50"),
    )  # fmt: skip

    usage_reprice(organization=org, start=now - timedelta(days=2), end=now)

    assert UsageEvent.objects.get(event_id="outside").cost == before
    assert UsageEvent.objects.get(event_id="inside").cost == before / 2
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)


def test_an_empty_range_is_refused(org):
    now = timezone.now()
    with pytest.raises(ValueError, match="must end after it starts"):
        usage_reprice(organization=org, start=now, end=now)
    assert RepricingRun.objects.count() == 0


def test_the_command_reprices_and_reports(org):
    usage_events_ingest(organization=org, raw_events=[event()])
    out = StringIO()

    since = (timezone.now() - timedelta(days=3)).date().isoformat()
    call_command("reprice_usage", org.slug, "--since", since, stdout=out)

    assert out.getvalue().startswith(f"Repriced 1 event(s) of {org.slug}")
    assert RepricingRun.objects.get().status == "done"


def test_the_admin_action_reprices_an_override_range(org, staff_client_factory):
    now = timezone.now()
    usage_events_ingest(organization=org, raw_events=[event(input_tokens=10**6, output_tokens=0)])
    override = PriceOverride.objects.create(
        organization=org, provider="openai", model_pattern="gpt-4o",
        effective_from=now - timedelta(days=3), input_per_mtok=Decimal("1"),
    )  # fmt: skip
    client = staff_client_factory(org, "finance")

    response = client.post(
        "/admin/ingestion/priceoverride/",
        {"action": "reprice_range", "_selected_action": [override.pk]},
    )

    assert response.status_code == 302
    assert UsageEvent.objects.get().cost == Decimal("1")
    run = RepricingRun.objects.get()
    assert run.started_by.username == f"finance-{org.slug}"
    assert f"price override {override.pk}" in run.reason
