"""A ``manage.py sync_stripe`` killed mid-way (SIGKILL) resumes: no gaps, no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from ingestion.fakes.stripe import start_stripe_fake
from ingestion.models import (
    RevenueLine,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLine,
    StripeSubscription,
    SyncRun,
)
from tests.commands import ROOT, SCRUBBED, database_url_for_tests, manage
from tests.ingestion.stripe.conftest import START, connect
from tests.ingestion.stripe.helpers import expected_totals, stored_totals
from tests.ingestion.stripe.test_backfill import KINDS

PAGE_SIZE = 2


def child_environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    environment["DATABASE_URL"] = database_url_for_tests()
    environment["SECRET_KEY"] = settings.SECRET_KEY  # the same key decrypts the Stripe key
    if settings.METRON_ENCRYPTION_KEY:
        environment["METRON_ENCRYPTION_KEY"] = settings.METRON_ENCRYPTION_KEY
    return environment


def wait_for(predicate, *, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


@pytest.mark.django_db(transaction=True)
def test_a_killed_backfill_resumes_with_no_gaps_and_no_duplicates(org, plans, customers):
    fake = start_stripe_fake(
        customers=customers, plans=list(plans.values()), months=6, seed=11, start=START
    )
    try:
        connect(org, fake)
        fake.delay = 0.03  # slow enough to be killed in the middle of the invoices
        child = subprocess.Popen(
            [sys.executable, "manage.py", "sync_stripe", org.slug, "--page-size", str(PAGE_SIZE)],
            cwd=ROOT, env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            # Three pages of invoices committed (of about twenty).
            wait_for(lambda: StripeInvoice.objects.count() >= 3 * PAGE_SIZE)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        killed = SyncRun.objects.get(organization=org)
        assert killed.status == SyncRun.Status.RUNNING  # it never got to say anything
        assert 0 < StripeInvoice.objects.count() < len(fake.objects["invoice"])
        pages_before, items_before = killed.pages, killed.items
        # The worker is dead: its heartbeat goes stale after the task timeout.
        SyncRun.objects.filter(pk=killed.pk).update(
            heartbeat_at=timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 1)
        )
        fake.delay = 0

        result = manage("sync_stripe", org.slug, "--page-size", str(PAGE_SIZE),
                        SECRET_KEY=settings.SECRET_KEY)  # fmt: skip

        assert result.returncode == 0, result.stderr
        assert f"Resuming run #{killed.pk} at invoices" in result.stdout
        assert "invoices: page" in result.stdout and "[########################]" in result.stdout
        run = SyncRun.objects.get(organization=org)  # the same run, finished: no second one
        assert (run.pk, run.status, run.attempts) == (killed.pk, SyncRun.Status.SUCCEEDED, 2)
        # No gap: every object of every list is mirrored. No duplicate: each counted once.
        for kind, model in KINDS.items():
            assert sorted(model.objects.values_list("stripe_id", flat=True)) == sorted(
                fake.objects[kind]
            )
        total = sum(len(fake.objects[kind]) for kind in KINDS)
        assert run.items == total and run.items > items_before
        assert run.pages == sum(max(1, -(-len(fake.objects[kind]) // PAGE_SIZE)) for kind in KINDS)
        assert run.pages > pages_before
        assert StripeInvoiceLine.objects.count() == sum(len(v) for v in fake.invoice_lines.values())
        assert RevenueLine.objects.filter(kind="payment").count() == sum(
            1 for i in fake.objects["invoice"].values() if i["amount_paid"]
        )
        expected = expected_totals(fake)
        totals = stored_totals(org)
        assert (totals["billed"], totals["collected"]) == (
            expected["billed"],
            expected["collected"],
        )
        assert StripeCustomer.objects.filter(customer__isnull=False).count() == len(customers)
        assert StripeSubscription.objects.count() == len(fake.objects["subscription"])
    finally:
        fake.stop()
