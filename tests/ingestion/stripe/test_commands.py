"""``connect_stripe`` and ``sync_stripe``, and the daily backfill task."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ingestion.models import StripeConnection, StripeInvoice, SyncRun
from ingestion.services.stripe.backfill import stripe_backfill_start
from ingestion.tasks.stripe import stripe_backfill, stripe_backfill_all
from tests.commands import manage

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_connect_stripe_stores_the_secrets_encrypted_and_never_prints_them(org):
    key, secret = "sk_test_connect_secret_987654", "whsec_connect_secret"

    result = manage(
        "connect_stripe", org.slug, "--api-key", key, "--webhook-secret", secret,
        "--api-base", "http://127.0.0.1:12111", SECRET_KEY=settings.SECRET_KEY,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert key not in result.stdout and secret not in result.stdout
    assert "sk_test_…7654" in result.stdout and f"/webhooks/stripe/{org.slug}/" in result.stdout
    connection = StripeConnection.objects.get(organization=org)
    assert key not in connection.api_key_encrypted
    assert (connection.api_key, connection.webhook_secret) == (key, secret)
    assert connection.api_base == "http://127.0.0.1:12111"

    refused = manage("connect_stripe", org.slug, "--api-key", "pk_live_publishable",
                     "--webhook-secret", secret, SECRET_KEY=settings.SECRET_KEY)  # fmt: skip
    assert refused.returncode != 0
    assert "starts with sk_ or rk_" in refused.stderr
    unknown = manage("connect_stripe", "nobody", "--api-key", key, "--webhook-secret", secret)
    assert "No organization with slug 'nobody'" in unknown.stderr


def test_sync_stripe_prints_progress_and_reports_the_run(org, connection, stripe_fake):
    out = StringIO()

    call_command("sync_stripe", org.slug, "--page-size", "10", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[........................] 1/8 customers: page 1")
    assert any(" 5/8 invoices: page 5, " in line for line in lines)  # 42 invoices, 10 a page
    run = SyncRun.objects.get(organization=org)
    assert lines[-1] == (
        f"[########################] run #{run.pk} succeeded: {run.pages} page(s), "
        f"{run.items} object(s)."
    )
    assert StripeInvoice.objects.count() == len(stripe_fake.objects["invoice"])


def test_sync_stripe_refuses_what_it_cannot_do(org):
    with pytest.raises(CommandError, match="has no active Stripe connection"):
        call_command("sync_stripe", org.slug)
    with pytest.raises(CommandError, match="No organization"):
        call_command("sync_stripe", "nobody")
    with pytest.raises(CommandError, match="is not a date"):
        call_command("sync_stripe", org.slug, "--since", "2026-13-01")


def test_the_daily_task_backfills_every_connected_organization(org, connection, stripe_fake):
    run_ids = stripe_backfill_all()  # tasks run inline in tests (Q_CLUSTER sync)

    run = SyncRun.objects.get(pk=run_ids[0])
    assert (len(run_ids), run.kind, run.status) == (1, "stripe_backfill", "succeeded")
    assert StripeInvoice.objects.count() == len(stripe_fake.objects["invoice"])
    connection.refresh_from_db()
    assert connection.last_synced_at is not None and connection.last_error == ""


def test_a_long_backfill_continues_in_chained_tasks(org, connection, stripe_fake, monkeypatch):
    monkeypatch.setattr("ingestion.tasks.stripe.TIME_BUDGET", 0)  # hand back after every page
    run = stripe_backfill_start(organization=org)

    stripe_backfill(run.pk)  # each task enqueues the next (inline in tests)

    run.refresh_from_db()
    # Seven lists of one page each, one task per page, and an eighth for the plan history.
    assert (run.status, run.pages, run.attempts) == ("succeeded", 7, 8)
    assert StripeInvoice.objects.count() == len(stripe_fake.objects["invoice"])


def test_the_schedules_name_importable_tasks():
    import importlib

    from ingestion.tasks.stripe import stripe_schedules

    specs = stripe_schedules()
    assert [spec.cron for spec in specs] == ["15 2 * * *", "*/15 * * * *"]
    for spec in specs:
        module, name = spec.func.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name))
