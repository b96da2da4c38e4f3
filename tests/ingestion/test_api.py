"""The usage API over HTTP: batch outcomes and status codes, limits, reads and scopes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from ingestion.models import UsageEvent
from tests.accounts.factories import CustomerFactory, FeatureFactory
from tests.ingestion.helpers import day_ago, event

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"
DAILY = "/api/v1/usage/daily/"


@pytest.fixture
def ingest_client(org, api_client_factory):
    return api_client_factory(org, scopes=("ingest",))


@pytest.fixture
def read_client(org, api_client_factory):
    return api_client_factory(org, scopes=("read",))


def post(client, body):
    return client.post(EVENTS, data=json.dumps(body, default=str), content_type="application/json")


def test_a_fully_accepted_batch_is_200_with_every_outcome(ingest_client):
    response = post(ingest_client, {"events": [event(event_id="a"), event(event_id="b")]})

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"event_id": "a", "status": "accepted", "reason": ""},
            {"event_id": "b", "status": "accepted", "reason": ""},
        ],
        "accepted": 2,
        "duplicates": 0,
        "conflicts": 0,
        "rejected": 0,
    }


def test_a_resent_batch_is_still_200_all_duplicates(ingest_client):
    batch = {"events": [event(event_id="a"), event(event_id="b")]}
    post(ingest_client, batch)

    response = post(ingest_client, batch)

    assert response.status_code == 200
    assert response.json()["duplicates"] == 2
    assert UsageEvent.objects.count() == 2


def test_a_partial_batch_is_207(ingest_client):
    response = post(
        ingest_client, {"events": [event(event_id="good"), event(event_id="bad", model=None)]}
    )

    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][1] == {
        "event_id": "bad",
        "status": "rejected",
        "reason": "model is required.",
    }


def test_a_batch_with_nothing_stored_is_422(ingest_client):
    response = post(ingest_client, {"events": [event(timestamp=day_ago(90))]})

    assert response.status_code == 422
    assert response.json()["rejected"] == 1


def test_a_single_event_object_is_accepted(ingest_client):
    response = post(ingest_client, event(event_id="solo"))

    assert response.status_code == 200
    assert response.json()["results"] == [{"event_id": "solo", "status": "accepted", "reason": ""}]


def test_costs_are_parsed_exactly_not_through_float(ingest_client):
    # Through a float, 12345.123456789012 becomes 12345.123456789011...; Decimal keeps it.
    body = json.dumps({"events": [event(event_id="exact", cost_usd="COST")]})
    body = body.replace('"COST"', "12345.123456789012")

    response = ingest_client.post(EVENTS, data=body, content_type="application/json")

    assert response.status_code == 200, response.content
    row = UsageEvent.objects.get(event_id="exact")
    assert row.reported_cost == row.cost == Decimal("12345.123456789012")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"events": []}, "events", "1 to 1000 events"),
        ({"events": "nope"}, "events", "1 to 1000 events"),
        ({"events": [event() for _ in range(1001)]}, "events", "at most 1000 events"),
    ],
)
def test_batch_shape_errors_are_400(ingest_client, body, field, message):
    response = post(ingest_client, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert message in error["fields"][field][0]


def test_malformed_json_is_400(ingest_client):
    response = ingest_client.post(EVENTS, data='{"events": [', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("The body is not valid JSON")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_an_oversize_body_is_413(ingest_client):
    response = post(ingest_client, {"events": [event(metadata={"pad": "x" * 400})] * 30})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert UsageEvent.objects.count() == 0


def test_scopes_ingest_writes_read_reads(ingest_client, read_client):
    assert post(read_client, event()).status_code == 403
    assert ingest_client.get(EVENTS).status_code == 403
    assert ingest_client.get(DAILY).status_code == 403


def test_events_are_listed_with_cost_and_attribution(ingest_client, read_client, org):
    CustomerFactory(organization=org, external_id="acme-1")
    FeatureFactory(organization=org, key="search")
    post(ingest_client, {"events": [
        event(event_id="e1", customer_id="acme-1", feature="search"),
        event(event_id="e2", customer_id="acme-1", model="unknown-model"),
        event(event_id="e3", customer_id="other", environment="staging"),
    ]})  # fmt: skip

    response = read_client.get(EVENTS, {"customer_id": "acme-1", "cost_status": "priced"})

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row["event_id"] == "e1"
    assert row["feature"] == "search"
    assert row["cost"] == str(UsageEvent.objects.get(event_id="e1").cost)
    assert (row["cost_source"], row["cost_status"]) == ("price_book", "priced")
    assert (row["attribution_source"], row["attribution_confidence"]) == ("api", "high")
    unpriced = read_client.get(EVENTS, {"cost_status": "unpriced"}).json()["results"]
    assert [r["event_id"] for r in unpriced] == ["e2"]
    assert unpriced[0]["cost"] is None
    staging = read_client.get(EVENTS, {"environment": "staging"}).json()["results"]
    assert [r["event_id"] for r in staging] == ["e3"]
    detail = read_client.get(f"{EVENTS}e1/")
    assert detail.json()["event_id"] == "e1"


def test_since_until_filter_by_timestamp(ingest_client, read_client):
    now = timezone.now()
    post(ingest_client, {"events": [
        event(event_id="old", timestamp=day_ago(10, now=now)),
        event(event_id="new", timestamp=day_ago(1, now=now)),
    ]})  # fmt: skip

    response = read_client.get(EVENTS, {"since": day_ago(5, now=now), "until": now.isoformat()})

    assert [r["event_id"] for r in response.json()["results"]] == ["new"]


def test_daily_usage_serves_the_rollups(ingest_client, read_client):
    post(ingest_client, {"events": [event(output_tokens=100), event(output_tokens=50),
                                    event(model="mystery")]})  # fmt: skip

    rows = read_client.get(DAILY, {"model": "gpt-4o"}).json()["results"]

    assert len(rows) == 1
    assert rows[0]["requests"] == 2
    assert rows[0]["output_tokens"] == 150
    mystery = read_client.get(DAILY, {"model": "mystery"}).json()["results"][0]
    assert (mystery["unpriced_requests"], mystery["cost"]) == (1, "0.000000000000")


def test_list_query_count_does_not_grow_with_rows(
    ingest_client, read_client, django_assert_max_num_queries
):
    post(ingest_client, {"events": [event(customer_id=f"c{i}") for i in range(30)]})

    with django_assert_max_num_queries(4):
        assert read_client.get(EVENTS).status_code == 200
    with django_assert_max_num_queries(4):
        assert read_client.get(DAILY).status_code == 200
