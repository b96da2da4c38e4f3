"""The ledger's admin screens at scale: bounded queries, drill-down from the rollups."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from ingestion.services.ingest import usage_events_ingest
from tests.ingestion.helpers import event

pytestmark = pytest.mark.django_db

EVENTS = "/admin/ingestion/usageevent/"


@pytest.fixture
def ops(org, staff_client_factory):
    return staff_client_factory(org, "ops")


def test_event_list_query_count_does_not_grow_with_rows(org, ops, django_assert_max_num_queries):
    usage_events_ingest(organization=org, raw_events=[event(customer_id="c1")])
    with django_assert_max_num_queries(20) as few:
        assert ops.get(EVENTS).status_code == 200
    usage_events_ingest(
        organization=org,
        raw_events=[event(customer_id=f"c{i}", feature=f"f{i}") for i in range(60)],
    )

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = ops.get(EVENTS)

    assert response.status_code == 200


def test_a_large_ledger_is_paged_on_the_planner_estimate_not_a_count(
    org, ops, monkeypatch, django_assert_max_num_queries
):
    usage_events_ingest(organization=org, raw_events=[event() for _ in range(5)])
    # Pretend every result is "large": the pager must not run COUNT(*).
    monkeypatch.setattr("metron.paginators.EXACT_BELOW", 0)

    with django_assert_max_num_queries(30) as queries:
        response = ops.get(EVENTS)

    assert response.status_code == 200
    sql = [query["sql"].upper() for query in queries.captured_queries]
    assert not [q for q in sql if "COUNT(" in q and "INGESTION_USAGEEVENT" in q]
    assert any(q.startswith("EXPLAIN") for q in sql)


def test_date_drill_down_lists_days_from_the_rollups(org, ops):
    now = timezone.now()
    days = [now - timedelta(days=d) for d in (0, 2, 40)]
    org.usage_accept_days = 60
    org.save()
    usage_events_ingest(
        organization=org, raw_events=[event(timestamp=d.isoformat()) for d in days], now=now
    )

    response = ops.get(EVENTS, {"timestamp__year": now.year, "timestamp__month": now.month})

    assert response.status_code == 200
    links = response.content.decode()
    for day in days[:2]:
        if day.month == now.month:
            assert f"timestamp__day={day.astimezone(UTC).day}" in links
    assert response.context["cl"].result_count >= 1


def test_unpriced_filter_and_exact_search(org, ops):
    usage_events_ingest(
        organization=org,
        raw_events=[event(event_id="known"), event(event_id="odd", model="house-model")],
    )

    unpriced = ops.get(EVENTS, {"cost_status__exact": "unpriced"})
    found = ops.get(EVENTS, {"q": "known"})

    assert [e.event_id for e in unpriced.context["cl"].result_list] == ["odd"]
    assert [e.event_id for e in found.context["cl"].result_list] == ["known"]
