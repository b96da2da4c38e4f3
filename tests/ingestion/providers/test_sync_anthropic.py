"""Anthropic usage and cost report sync through the anthropic SDK against the fake."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from ingestion.models import ProviderCostLine, ProviderUsageBucket, SyncRun
from ingestion.services.providers.sync import COSTS, USAGE, provider_sync
from tests.ingestion.providers.conftest import first_day

pytestmark = pytest.mark.django_db


def stored_buckets(org):
    return {
        (b.bucket_start, b.project_id, b.api_key_id, b.model, b.batch, b.service_tier): {
            "input_tokens": b.input_tokens,
            "cached_input_tokens": b.cached_input_tokens,
            "cache_write_tokens": b.cache_write_tokens,
            "output_tokens": b.output_tokens,
        }
        for b in ProviderUsageBucket.objects.filter(organization=org, bucket_width="1d")
    }


def test_usage_report_is_paged_and_normalized_to_the_ledger_convention(
    org, anthropic_fake, anthropic_connection
):
    (run,) = provider_sync(connection=anthropic_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.pages, len(anthropic_fake.usage_requests())) == (3, 3)
    # input = uncached + cache read + 5m and 1h cache writes; cached = reads; writes = 5m + 1h.
    assert stored_buckets(org) == anthropic_fake.expected_buckets()
    calls = anthropic_fake.calls
    assert ProviderUsageBucket.objects.aggregate(w=Sum("cache_write_1h_tokens"))["w"] == sum(
        c.cache_creation_1h_tokens for c in calls
    )
    assert all(b.requests is None for b in ProviderUsageBucket.objects.all())
    # Batch is the service tier "batch"; the default workspace is reported as null.
    assert ProviderUsageBucket.objects.filter(batch=True).exclude(service_tier="batch").count() == 0
    assert ProviderUsageBucket.objects.filter(project_id="").exists()
    first = anthropic_fake.usage_requests()[0]
    assert first.headers["x-api-key"] == anthropic_fake.admin_key
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in first.headers
    assert first.query["group_by[]"] == ["api_key_id", "model", "service_tier", "workspace_id"]


def test_cost_report_cents_strings_become_exact_dollars(org, anthropic_fake, anthropic_connection):
    (run,) = provider_sync(connection=anthropic_connection, kind=COSTS, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    cents = anthropic_fake.expected_cost_cents()
    stored = {
        (line.day, line.project_id, line.model, line.token_type, line.service_tier): line.amount
        for line in ProviderCostLine.objects.filter(organization=org)
    }
    assert stored == {key: value.scaleb(-2) for key, value in cents.items()}
    total = ProviderCostLine.objects.aggregate(total=Sum("amount"))["total"]
    assert total == sum(cents.values()) / 100
    assert set(ProviderCostLine.objects.values_list("currency", flat=True)) == {"USD"}
    assert set(ProviderCostLine.objects.values_list("cost_type", flat=True)) == {"tokens"}


def test_429_with_retry_after_then_success(org, anthropic_fake, anthropic_connection):
    anthropic_fake.fail_next(429, times=1, headers={"Retry-After": "0.3"})
    anthropic_fake.fail_next(529, times=1)

    (run,) = provider_sync(connection=anthropic_connection, kind=USAGE, since=first_day())

    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(anthropic_fake.usage_requests()) == 5
    assert stored_buckets(org) == anthropic_fake.expected_buckets()


def test_wrong_admin_key_is_a_clear_failure(org, anthropic_fake, anthropic_connection):
    anthropic_fake.admin_key = "sk-ant-admin01-other"

    (run,) = provider_sync(connection=anthropic_connection, kind=COSTS, since=first_day())

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith(
        "Anthropic refused the admin key (HTTP 401): invalid x-api-key. Check the key"
    )
    assert not ProviderCostLine.objects.exists()
