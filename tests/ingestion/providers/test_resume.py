"""A sync whose worker is SIGKILLed mid-way resumes from its cursor: no gaps, no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from ingestion.fakes.openai import start_openai_fake
from ingestion.models import ProviderUsageBucket, SyncRun
from ingestion.services.providers.connections import provider_connection_upsert
from tests.commands import ROOT, SCRUBBED, database_url_for_tests
from tests.ingestion.providers.conftest import DAYS, OPENAI_KEYS, OPENAI_MODELS, SEED, first_day

PAGES = DAYS + 1  # one bucket per page: the fixture's days and today


def child_environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    environment["DATABASE_URL"] = database_url_for_tests()
    environment["SECRET_KEY"] = settings.SECRET_KEY  # the same key decrypts the admin key
    if settings.METRON_ENCRYPTION_KEY:
        environment["METRON_ENCRYPTION_KEY"] = settings.METRON_ENCRYPTION_KEY
    return environment


def wait_for(predicate, *, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def stored(org):
    return {
        (b.bucket_start, b.project_id, b.api_key_id, b.model, b.batch, b.service_tier): {
            "requests": b.requests,
            "input_tokens": b.input_tokens,
            "cached_input_tokens": b.cached_input_tokens,
            "cache_write_tokens": b.cache_write_tokens,
            "output_tokens": b.output_tokens,
        }
        for b in ProviderUsageBucket.objects.filter(organization=org)
    }


@pytest.mark.django_db(transaction=True)
def test_a_killed_sync_resumes_from_its_cursor_with_no_gaps_and_no_duplicates(org):
    fake = start_openai_fake(
        key_ids=OPENAI_KEYS, models=OPENAI_MODELS, days=DAYS, seed=SEED, page_size=1
    )
    try:
        provider_connection_upsert(
            organization=org, provider="openai", admin_key=fake.admin_key,
            api_base=f"{fake.url}/v1",
        )  # fmt: skip
        fake.slow_page(index=3, seconds=120)  # the 4th page hangs: the worker dies waiting
        child = subprocess.Popen(
            [sys.executable, "manage.py", "sync_provider_usage", org.slug, "--provider",
             "openai", "--only", "usage", "--since", first_day().isoformat()],
            cwd=ROOT, env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            run = wait_for(lambda: SyncRun.objects.filter(organization=org, pages__gte=3).first())
            wait_for(lambda: len(fake.usage_requests()) >= 4)  # it is stuck on page 4
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)

        run.refresh_from_db()
        assert child.returncode == -signal.SIGKILL
        assert (run.status, run.pages, run.attempts) == (SyncRun.Status.RUNNING, 3, 1)
        cursor_page = run.cursor["page"]
        assert cursor_page == fake.usage_requests()[3].param("page")
        # What three committed pages hold, exactly: the first three days' buckets.
        expected = fake.expected_buckets()
        first_three = {
            key: value
            for key, value in expected.items()
            if key[0].date() < first_day() + timedelta(days=3)
        }
        assert stored(org) == first_three

        # Time passes: the dead worker's heartbeat goes stale (older than the task timeout).
        SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        before = len(fake.usage_requests())
        call_command(
            "sync_provider_usage", org.slug, "--provider", "openai", "--only", "usage", "--resume"
        )

        run.refresh_from_db()
        assert (run.status, run.pages, run.attempts) == (SyncRun.Status.SUCCEEDED, PAGES, 2)
        resumed = [request.param("page") for request in fake.usage_requests()[before:]]
        assert resumed[0] == cursor_page  # continued from the cursor, did not start over
        assert len(resumed) == PAGES - 3
        assert SyncRun.objects.filter(organization=org).count() == 1
        assert stored(org) == expected  # no gaps, no duplicates
        totals = ProviderUsageBucket.objects.aggregate(
            input=Sum("input_tokens"), output=Sum("output_tokens"), requests=Sum("requests")
        )
        assert totals == {
            "input": sum(c.input_tokens for c in fake.calls),
            "output": sum(c.output_tokens for c in fake.calls),
            "requests": len(fake.calls),
        }
        assert ProviderUsageBucket.objects.count() == len(expected)
    finally:
        fake.stop()
