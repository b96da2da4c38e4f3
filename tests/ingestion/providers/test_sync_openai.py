"""OpenAI usage and cost sync through the openai SDK against the fake on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from accounts.models import ProviderKey
from ingestion.models import ProviderConnection, ProviderCostLine, ProviderUsageBucket, SyncRun
from ingestion.selectors_reconciliation import provider_usage_by_feature
from ingestion.services.providers.sync import COSTS, USAGE, provider_sync
from tests.accounts.factories import FeatureFactory, ProviderKeyFactory
from tests.ingestion.providers.conftest import DAYS, OPENAI_KEYS, first_day

pytestmark = pytest.mark.django_db


def stored_buckets(org, width="1d"):
    rows = ProviderUsageBucket.objects.filter(organization=org, bucket_width=width)
    return {
        (b.bucket_start, b.project_id, b.api_key_id, b.model, b.batch, b.service_tier): {
            "requests": b.requests,
            "input_tokens": b.input_tokens,
            "cached_input_tokens": b.cached_input_tokens,
            "cache_write_tokens": b.cache_write_tokens,
            "output_tokens": b.output_tokens,
        }
        for b in rows
    }


def test_usage_sync_pages_through_the_whole_window_and_stores_the_fixture_exactly(
    org, openai_fake, openai_connection
):
    (run,) = provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    # Window: 5 fixture days + today = 6 daily buckets, 2 per page → 3 pages, 3 requests.
    assert (run.pages, len(openai_fake.usage_requests())) == (3, 3)
    pages = [r.param("page") for r in openai_fake.usage_requests()]
    assert pages[0] is None and all(pages[1:])
    expected = openai_fake.expected_buckets()
    assert stored_buckets(org) == expected
    assert run.items == len(expected)
    # The SDK sends group_by as group_by[] (brackets) with the admin key as a Bearer token.
    first = openai_fake.usage_requests()[0]
    assert first.query["group_by[]"] == [
        "project_id",
        "api_key_id",
        "model",
        "batch",
        "service_tier",
    ]
    assert first.headers["Authorization"] == f"Bearer {openai_fake.admin_key}"


def test_buckets_are_priced_like_the_ledger_and_flow_to_features_through_the_key_map(
    org, openai_fake, openai_connection
):
    provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    priced = ProviderUsageBucket.objects.filter(organization=org, estimated_cost__isnull=True)
    assert not priced.exists()
    bucket = ProviderUsageBucket.objects.filter(organization=org, model="gpt-4o", batch=False,
                                                service_tier="default").first()  # fmt: skip
    # gpt-4o list prices: $2.50 input, $1.25 cached input, $10 output per MTok.
    uncached = bucket.input_tokens - bucket.cached_input_tokens - bucket.cache_write_tokens
    expected = (
        Decimal(uncached + bucket.cache_write_tokens) * Decimal("2.5")
        + Decimal(bucket.cached_input_tokens) * Decimal("1.25")
        + Decimal(bucket.output_tokens) * Decimal("10")
    ) / 1_000_000
    assert bucket.estimated_cost == expected
    assert bucket.provider_key.key_id == bucket.api_key_id


def test_keys_unknown_to_metron_are_registered_unmapped_with_last_seen(
    org, openai_fake, openai_connection
):
    provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    keys = ProviderKey.objects.filter(organization=org, provider="openai")
    assert sorted(keys.values_list("key_id", flat=True)) == sorted(OPENAI_KEYS)
    assert all(key.feature_id is None and key.last_seen_at is not None for key in keys)


def test_resyncing_the_last_days_updates_rows_instead_of_adding_them(
    org, openai_fake, openai_connection
):
    provider_sync(connection=openai_connection, kind=USAGE, since=first_day())
    count = ProviderUsageBucket.objects.count()
    # The provider revises yesterday: one call gets 1,000 more output tokens.
    revised = openai_fake.calls[-1]
    openai_fake.calls[-1] = type(revised)(
        **{**revised.__dict__, "output_tokens": revised.output_tokens + 1000}
    )

    (run,) = provider_sync(connection=openai_connection, kind=USAGE)  # default: last 3 days

    assert run.status == SyncRun.Status.SUCCEEDED
    assert ProviderUsageBucket.objects.count() == count
    assert stored_buckets(org) == openai_fake.expected_buckets()


def test_hourly_buckets_on_demand(org, openai_fake, openai_connection):
    (run,) = provider_sync(connection=openai_connection, kind=USAGE, width="1h", since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert stored_buckets(org, "1h") == openai_fake.expected_buckets("1h")


def test_429_is_backed_off_per_retry_after_and_retried(org, openai_fake, openai_connection):
    openai_fake.fail_next(429, times=2, headers={"Retry-After": "0.2"})

    (run,) = provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED
    # Two refused attempts, then the 3 pages.
    assert len(openai_fake.usage_requests()) == 5
    retries = [r.headers.get("x-stainless-retry-count") for r in openai_fake.usage_requests()]
    assert retries[:3] == ["0", "1", "2"]
    assert stored_buckets(org) == openai_fake.expected_buckets()


def test_5xx_is_retried(org, openai_fake, openai_connection):
    openai_fake.fail_next(503, times=1)
    openai_fake.fail_next(500, times=1)

    (run,) = provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(openai_fake.usage_requests()) == 5


def test_a_provider_that_keeps_failing_fails_the_run_after_bounded_attempts(
    org, openai_fake, openai_connection
):
    openai_fake.fail_next(500, times=50, headers={"Retry-After": "0.05"})

    (run,) = provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.FAILED
    assert len(openai_fake.requests) == 5  # 1 attempt + 4 retries, then the run gives up
    assert "HTTP 500" in run.error and "/organization/usage/completions" in run.error


def test_a_wrong_admin_key_fails_the_run_with_a_clear_message(org, openai_fake, openai_connection):
    openai_fake.admin_key = "sk-admin-rotated"

    (run,) = provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("OpenAI refused the admin key (HTTP 401): Incorrect API key")
    assert len(openai_fake.requests) == 1  # 401 is not retried
    openai_connection.refresh_from_db()
    assert openai_connection.status == ProviderConnection.Status.FAILED
    assert not ProviderUsageBucket.objects.exists()


def test_cost_lines_are_exact_decimals(org, openai_fake, openai_connection):
    (run,) = provider_sync(connection=openai_connection, kind=COSTS, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    expected = openai_fake.expected_cost_lines()
    stored = {
        (line.day, line.line_item, line.project_id, line.api_key_id): line.amount
        for line in ProviderCostLine.objects.filter(organization=org)
    }
    assert stored == expected
    assert ProviderCostLine.objects.aggregate(total=Sum("amount"))["total"] == sum(
        expected.values()
    )
    line = ProviderCostLine.objects.filter(line_item="gpt-4o, output").first()
    assert (line.model, line.token_type, line.currency) == ("gpt-4o", "output", "USD")
    assert run.pages == 3 and DAYS == 5


def test_provider_usage_flows_to_features_through_the_key_mapping(
    org, openai_fake, openai_connection, staff_client_factory
):
    chat = FeatureFactory(organization=org, key="chat", name="Chat")
    ProviderKeyFactory(organization=org, provider="openai", key_id="key_chat", feature=chat)
    provider_sync(connection=openai_connection, kind=USAGE, since=first_day())

    rows = provider_usage_by_feature(
        organization=org, since=first_day(), until=first_day() + timedelta(days=DAYS)
    )

    by_feature = {row["feature"]: row for row in rows}
    assert set(by_feature) == {"chat", None}  # None: spend on unmapped keys
    mapped = [c for c in openai_fake.calls if c.api_key_id == "key_chat"]
    assert by_feature["chat"]["input_tokens"] == sum(c.input_tokens for c in mapped)
    assert by_feature["chat"]["requests"] == len(mapped)
    assert by_feature[None]["requests"] == len(openai_fake.calls) - len(mapped)
    assert by_feature["chat"]["cost"] > 0 and by_feature["chat"]["unpriced_buckets"] == 0
    # The keys the sync registered wait in the ops queue of unmapped keys.
    queue = staff_client_factory(org, "ops").get("/admin/accounts/providerkey/", {"mapped": "no"})
    listed = {key.key_id for key in queue.context_data["cl"].result_list}
    assert listed == {"key_search", "key_batch"}
