"""The connect and sync commands, the tasks and the schedule specs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from ingestion.models import ProviderConnection, ProviderUsageBucket, ReconciliationLine, SyncRun
from ingestion.schedules import schedules_sync
from ingestion.services.providers.connections import provider_connection_admin_key
from ingestion.tasks import providers as tasks
from tests.ingestion.providers.conftest import first_day
from tests.ingestion.providers.helpers import ingest

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_connect_provider_upserts_and_never_prints_the_key(org, openai_fake):
    base = f"{openai_fake.url}/v1"

    created = run("connect_provider", "acme", "openai", "--admin-key", openai_fake.admin_key,
                  "--api-base", base, "--test")  # fmt: skip
    updated = run("connect_provider", "acme", "openai", "--api-base", f"{base}/")

    assert openai_fake.admin_key not in created + updated
    assert created.startswith(
        f"Connected OpenAI for Acme AI (acme): admin key …{openai_fake.admin_key[-4:]}"
    )
    assert "Connected: the usage API answered." in created
    assert updated.startswith("Updated OpenAI")
    connection = ProviderConnection.objects.get(organization=org)
    assert connection.api_base == base  # trailing slash dropped
    assert provider_connection_admin_key(connection=connection) == openai_fake.admin_key
    assert connection.status == ProviderConnection.Status.OK


def test_connect_provider_refuses_what_it_cannot_store(org, anthropic_fake):
    with pytest.raises(CommandError, match="An admin key is required"):
        run("connect_provider", "acme", "anthropic")
    with pytest.raises(CommandError, match="No organization with slug"):
        run("connect_provider", "nope", "anthropic", "--admin-key", "k")
    with pytest.raises(CommandError, match="Enter a valid URL"):
        run("connect_provider", "acme", "anthropic", "--admin-key", "k", "--api-base", "ftp://x")
    with pytest.raises(CommandError, match="Connection test failed: Anthropic refused the admin"):
        run("connect_provider", "acme", "anthropic", "--admin-key", "sk-ant-wrong",
            "--api-base", anthropic_fake.url, "--test")  # fmt: skip
    connection = ProviderConnection.objects.get(organization=org, provider="anthropic")
    assert connection.status == ProviderConnection.Status.FAILED


def test_sync_command_syncs_usage_and_costs_then_reconciles(org, openai_fake, openai_connection):
    ingest(org, openai_fake.ledger_events())

    out = run("sync_provider_usage", "acme", "--since", first_day().isoformat(), "--reconcile")

    assert "OpenAI usage: run" in out and "succeeded, 3 pages" in out
    assert "OpenAI costs: run" in out
    assert "OpenAI reconciliation: " in out and "0 flagged" in out
    assert ProviderUsageBucket.objects.filter(organization=org).count() == len(
        openai_fake.expected_buckets()
    )
    assert ReconciliationLine.objects.filter(organization=org, flagged=True).count() == 0


def test_sync_command_fails_loudly_on_a_wrong_key(org, openai_fake, openai_connection):
    openai_fake.admin_key = "sk-admin-other"

    with pytest.raises(CommandError, match="2 sync run"):
        run("sync_provider_usage", "acme", "--provider", "openai")

    assert set(SyncRun.objects.values_list("status", flat=True)) == {"failed"}


def test_sync_command_reports_a_missing_connection(org):
    with pytest.raises(CommandError, match="Acme AI has no provider connection: add one with"):
        run("sync_provider_usage", "acme")


def test_tasks_fan_out_per_enabled_connection(org, other_org, openai_fake, openai_connection):
    ProviderConnection.objects.create(
        organization=other_org, provider="anthropic", admin_key_encrypted="x", enabled=False
    )

    assert tasks.provider_usage_sync_all() == 1  # runs inline in tests (Q_CLUSTER sync)
    assert tasks.provider_costs_sync_all() == 1
    assert tasks.provider_reconcile_all(days=5) == 1

    kinds = SyncRun.objects.filter(organization=org).values_list("kind", "status")
    assert sorted(kinds) == [("provider_costs", "succeeded"), ("provider_usage", "succeeded"),
                             ("reconciliation", "succeeded")]  # fmt: skip
    assert not SyncRun.objects.filter(organization=other_org).exists()
    assert tasks.provider_usage_sync_task(connection_id=10**9) == []


def test_a_second_run_is_not_started_while_one_is_alive(org, openai_fake, openai_connection):
    alive = SyncRun.objects.create(
        organization=org,
        kind="provider_usage",
        source="openai",
        status="running",
        heartbeat_at=timezone.now(),
    )

    assert tasks.provider_usage_sync_task(connection_id=openai_connection.pk) == []
    assert list(SyncRun.objects.values_list("pk", flat=True)) == [alive.pk]


def test_schedule_specs_are_created_idempotently():
    specs = tasks.provider_schedules()

    schedules_sync(specs=specs)
    schedules_sync(specs=specs)

    rows = {s.name: (s.func, s.cron) for s in Schedule.objects.all()}
    assert rows == {
        "provider usage sync (hourly)": (
            "ingestion.tasks.providers.provider_usage_sync_all",
            "10 * * * *",
        ),
        "provider costs sync (daily)": (
            "ingestion.tasks.providers.provider_costs_sync_all",
            "30 3 * * *",
        ),
        "provider reconciliation (nightly)": (
            "ingestion.tasks.providers.provider_reconcile_all",
            "30 4 * * *",
        ),
    }
