"""Concurrent clients over real HTTP: retries and races never double count."""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db.models import Sum

from ingestion.models import DailyUsage, UsageEvent
from tests.accounts.factories import OrganizationFactory, service_key
from tests.ingestion.helpers import event, ledger_aggregate, rollup_rows

pytestmark = pytest.mark.django_db(transaction=True)


def poster(url: str, key: str):
    def post(events: list[dict]) -> tuple[int, dict]:
        request = urllib.request.Request(
            url,
            data=json.dumps({"events": events}, default=str).encode(),
            headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    return post


def test_ten_thousand_events_each_resent_three_times_concurrently(live_server):
    org = OrganizationFactory()
    _, key = service_key(org, scopes=("ingest",))
    post = poster(f"{live_server.url}/api/v1/events/", key)
    rng = random.Random(7)
    events = [
        event(
            event_id=f"load-{i:05d}", customer_id=f"c{i % 40}", feature=f"f{i % 7}",
            model=rng.choice(["gpt-4o", "gpt-4o-mini", "unlisted-model"]),
            input_tokens=rng.randint(0, 5000), output_tokens=rng.randint(0, 900),
            cost_usd=str(Decimal(rng.randint(0, 10**6)) / 10**9) if i % 5 == 0 else None,
        )
        for i in range(10_000)
    ]  # fmt: skip
    batches = [events[i : i + 500] for i in range(0, len(events), 500)]
    # Every batch sent 4 times (3 retries), each time reshuffled, all in random order.
    sends = [rng.sample(batch, len(batch)) for batch in batches for _ in range(4)]
    rng.shuffle(sends)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, sends))

    assert {status for status, _ in answers} == {200}
    assert sum(body["accepted"] for _, body in answers) == 10_000
    assert sum(body["duplicates"] for _, body in answers) == 30_000
    assert UsageEvent.objects.filter(organization=org).count() == 10_000
    ledger = UsageEvent.objects.filter(organization=org).aggregate(
        inp=Sum("input_tokens"), out=Sum("output_tokens"), cost=Sum("cost")
    )
    assert ledger["inp"] == sum(e["input_tokens"] for e in events)
    assert ledger["out"] == sum(e["output_tokens"] for e in events)
    reported = sum(Decimal(e["cost_usd"]) for e in events if "cost_usd" in e)
    assert (
        UsageEvent.objects.filter(organization=org, cost_source="provider_reported").aggregate(
            total=Sum("cost")
        )["total"]
        == reported
    )
    rollups = DailyUsage.objects.filter(organization=org).aggregate(
        requests=Sum("requests"), inp=Sum("input_tokens"), cost=Sum("cost")
    )
    assert (rollups["requests"], rollups["inp"], rollups["cost"]) == (
        10_000, ledger["inp"], ledger["cost"])  # fmt: skip
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)


def test_fifty_simultaneous_posts_of_one_event_store_one_row(live_server):
    org = OrganizationFactory()
    _, key = service_key(org, scopes=("ingest",))
    post = poster(f"{live_server.url}/api/v1/events/", key)
    same = event(event_id="the-one", customer_id="racer", feature="race")
    barrier = threading.Barrier(50)

    def race(_):
        barrier.wait()
        return post([same])

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(race, range(50)))

    assert [status for status, _ in answers] == [200] * 50
    outcomes = sorted(body["results"][0]["status"] for _, body in answers)
    assert outcomes == ["accepted"] + ["duplicate"] * 49
    assert UsageEvent.objects.filter(organization=org).count() == 1
    assert DailyUsage.objects.get(organization=org).requests == 1
