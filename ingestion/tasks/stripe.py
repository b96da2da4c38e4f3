"""django-q2 entry points of the Stripe mirror. They take ids and are safe to run twice."""

from __future__ import annotations

from django.conf import settings
from django_q.tasks import async_task

from ingestion.models import StripeConnection, SyncRun
from ingestion.schedules import ScheduleSpec
from ingestion.services.stripe.backfill import stripe_backfill_execute, stripe_backfill_start
from ingestion.services.stripe.events import stripe_event_process as process_event
from ingestion.services.stripe.events import stripe_events_requeue

TASKS = "ingestion.tasks.stripe"
# Seconds of work per backfill task: a minute below the cluster's timeout.
TIME_BUDGET = max(settings.Q_CLUSTER["timeout"] - 60, 30)


def stripe_event_process(stripe_event_id: int) -> str:
    """Process one stored webhook event (re-fetch and upsert its object)."""
    return process_event(stripe_event_id=stripe_event_id)


def stripe_events_retry() -> int:
    """The schedule every 15 minutes: enqueue events whose processing got lost or failed."""
    return stripe_events_requeue()


def stripe_backfill(run_id: int) -> dict | None:
    """Run (or resume) one backfill run; a run held by a live worker is left alone.

    Works for at most TIME_BUDGET seconds, then enqueues itself to continue from the
    run's cursor, so no task comes near the cluster's timeout.
    """
    run = stripe_backfill_execute(run_id=run_id, time_budget=TIME_BUDGET)
    if run is None:
        return None
    if run.status == SyncRun.Status.PENDING:
        async_task(
            "ingestion.tasks.stripe.stripe_backfill", run.pk, task_name=f"stripe backfill {run.pk}"
        )
    return {"run": run.pk, "status": run.status, "pages": run.pages, "items": run.items}


def stripe_backfill_all() -> list[int]:
    """The daily schedule: one backfill per active connection, each its own task."""
    run_ids = []
    for connection in StripeConnection.objects.filter(
        status=StripeConnection.Status.ACTIVE
    ).select_related("organization"):
        run = stripe_backfill_start(organization=connection.organization)
        async_task(
            "ingestion.tasks.stripe.stripe_backfill", run.pk, task_name=f"stripe backfill {run.pk}"
        )
        run_ids.append(run.pk)
    return run_ids


def stripe_schedules() -> list[ScheduleSpec]:
    """The periodic Stripe jobs (UTC cron): a daily backfill, which also catches events
    lost beyond Stripe's retries, and a requeue of stuck webhook events every 15 minutes."""
    return [
        ScheduleSpec(name="stripe backfill (daily)", func=f"{TASKS}.stripe_backfill_all",
                     cron="15 2 * * *"),
        ScheduleSpec(name="stripe webhook events retry (15 min)",
                     func=f"{TASKS}.stripe_events_retry", cron="*/15 * * * *"),
    ]  # fmt: skip
