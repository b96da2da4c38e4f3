"""Property: whatever the mix, order and duplication of events, rollups equal the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.models import DailyUsage
from ingestion.services.ingest import usage_events_ingest
from ingestion.services.rollups import SUMS
from tests.accounts.factories import OrganizationFactory
from tests.ingestion.helpers import ledger_aggregate, rollup_rows

pytestmark = pytest.mark.django_db

NOW = timezone.now()

events = st.builds(
    lambda n, day, customer, model, feature, env, inp, out, status, attempt, batch: {
        "event_id": f"p-{n}",
        "timestamp": (NOW - timedelta(days=day, minutes=n % 1000)).isoformat(),
        "customer_id": customer,
        "feature": feature,
        "provider": "openai",
        "model": model,
        "environment": env,
        "input_tokens": inp,
        "output_tokens": out,
        "status": status,
        "attempt": attempt,
        "batch": batch,
    },
    n=st.integers(0, 10**9),
    day=st.integers(0, 30),
    customer=st.sampled_from(["a", "b", "c", ""]),
    model=st.sampled_from(["gpt-4o", "gpt-4o-mini", "o3", "not-a-model"]),
    feature=st.sampled_from(["chat", "search", ""]),
    env=st.sampled_from(["production", "staging"]),
    inp=st.integers(0, 200_000),
    out=st.integers(0, 20_000),
    status=st.sampled_from(["success", "error"]),
    attempt=st.integers(1, 3),
    batch=st.booleans(),
)


@settings(
    max_examples=120, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    unique=st.lists(events, min_size=1, max_size=25, unique_by=lambda e: e["event_id"]),
    data=st.data(),
)
def test_rollups_are_independent_of_order_duplication_and_batching(db, unique, data):
    # The same events, once each, in one batch: the reference.
    reference = OrganizationFactory()
    usage_events_ingest(organization=reference, raw_events=unique, now=NOW)

    # Again with any duplicates, in any order, cut into any batches.
    shuffled = OrganizationFactory()
    copies = data.draw(st.lists(st.sampled_from(unique), max_size=25))
    stream = data.draw(st.permutations(unique + copies))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if stream[start:end]:
            usage_events_ingest(organization=shuffled, raw_events=stream[start:end], now=NOW)

    for organization in (reference, shuffled):
        assert rollup_rows(organization.pk) == ledger_aggregate(organization.pk)
    # Customers and features are registered per organization, so compare
    # through their external keys rather than their row ids.
    assert _by_keys(reference) == _by_keys(shuffled)


def _by_keys(organization) -> dict:
    rows = DailyUsage.objects.filter(organization=organization).values_list(
        "day", "customer__external_id", "feature__key", "provider", "model", "environment",
        "batch", "billable", *SUMS,
    )  # fmt: skip
    return {row[:8]: row[8:] for row in rows}
