"""django-q2 entry points of the provider usage and cost syncs and the reconciliation.

Tasks take ids and literal arguments, call one service and are safe to run twice: the
syncs upsert by natural key and resume interrupted runs, reconciliation replaces its
projection. The ``*_all`` tasks are what the schedules call: they fan out one task per
enabled connection.
"""

from __future__ import annotations

import logging

from django_q.tasks import async_task

from ingestion.models import ProviderConnection
from ingestion.schedules import ScheduleSpec
from ingestion.services.providers.sync import COSTS, USAGE, provider_sync, provider_sync_execute
from ingestion.services.reconciliation import DEFAULT_DAYS, reconciliation_run

logger = logging.getLogger(__name__)
TASKS = "ingestion.tasks.providers"


def _connection(connection_id: int) -> ProviderConnection | None:
    connection = (
        ProviderConnection.objects.select_related("organization").filter(pk=connection_id).first()
    )
    if connection is None:
        logger.info("provider connection %s is gone; nothing to sync", connection_id)
    return connection


def provider_usage_sync_task(*, connection_id: int, width: str = "1d") -> list[int]:
    """Sync one connection's usage (resuming interrupted runs first); returns the run ids."""
    connection = _connection(connection_id)
    if connection is None:
        return []
    return [run.pk for run in provider_sync(connection=connection, kind=USAGE, width=width)]


def provider_costs_sync_task(*, connection_id: int) -> list[int]:
    """Sync one connection's cost lines (resuming interrupted runs first); returns the run ids."""
    connection = _connection(connection_id)
    if connection is None:
        return []
    return [run.pk for run in provider_sync(connection=connection, kind=COSTS)]


def provider_sync_resume_task(*, run_id: int) -> str:
    """Resume one provider sync run from its cursor; returns its status."""
    return provider_sync_execute(run_id=run_id).status


def provider_reconcile_task(
    *, organization_id: int, provider: str, days: int = DEFAULT_DAYS
) -> int:
    """Recompute the reconciliation of the last ``days`` full days; returns the run id."""
    connection = (
        ProviderConnection.objects.select_related("organization")
        .filter(organization_id=organization_id, provider=provider)
        .first()
    )
    if connection is None:
        return 0
    return reconciliation_run(organization=connection.organization, provider=provider, days=days).pk


def _enabled():
    return ProviderConnection.objects.filter(enabled=True).order_by("pk")


def provider_usage_sync_all(*, width: str = "1d") -> int:
    """Queue a usage sync for every enabled connection; returns how many were queued."""
    ids = list(_enabled().values_list("pk", flat=True))
    for pk in ids:
        async_task(f"{TASKS}.provider_usage_sync_task", connection_id=pk, width=width,
                   task_name=f"provider usage {pk}")  # fmt: skip
    return len(ids)


def provider_costs_sync_all() -> int:
    """Queue a cost sync for every enabled connection; returns how many were queued."""
    ids = list(_enabled().values_list("pk", flat=True))
    for pk in ids:
        async_task(f"{TASKS}.provider_costs_sync_task", connection_id=pk,
                   task_name=f"provider costs {pk}")  # fmt: skip
    return len(ids)


def provider_reconcile_all(*, days: int = DEFAULT_DAYS) -> int:
    """Queue the reconciliation of every enabled connection; returns how many were queued."""
    pairs = list(_enabled().values_list("organization_id", "provider"))
    for organization_id, provider in pairs:
        async_task(f"{TASKS}.provider_reconcile_task", organization_id=organization_id,
                   provider=provider, days=days,
                   task_name=f"reconcile {provider} {organization_id}")  # fmt: skip
    return len(pairs)


def provider_sync_enqueue(*, connection_ids: list[int]) -> int:
    """Queue usage and cost syncs, then reconciliation, for these connections ("sync now")."""
    for pk in connection_ids:
        async_task(f"{TASKS}.provider_usage_sync_task", connection_id=pk)
        async_task(f"{TASKS}.provider_costs_sync_task", connection_id=pk)
    for organization_id, provider in ProviderConnection.objects.filter(
        pk__in=connection_ids
    ).values_list("organization_id", "provider"):
        async_task(f"{TASKS}.provider_reconcile_task", organization_id=organization_id,
                   provider=provider)  # fmt: skip
    return len(connection_ids)


def provider_schedules() -> list[ScheduleSpec]:
    """The periodic provider jobs (UTC cron): usage hourly, costs daily, reconciliation nightly.

    The hourly usage sync re-reads the last ``resync_days`` days of daily buckets, so the
    current day stays fresh and revised days are corrected; costs are daily data.
    """
    return [
        ScheduleSpec(name="provider usage sync (hourly)", func=f"{TASKS}.provider_usage_sync_all",
                     cron="10 * * * *", kwargs={"width": "1d"}),
        ScheduleSpec(name="provider costs sync (daily)", func=f"{TASKS}.provider_costs_sync_all",
                     cron="30 3 * * *"),
        ScheduleSpec(name="provider reconciliation (nightly)",
                     func=f"{TASKS}.provider_reconcile_all", cron="30 4 * * *",
                     kwargs={"days": DEFAULT_DAYS}),
    ]  # fmt: skip


__all__ = [
    "provider_costs_sync_all",
    "provider_costs_sync_task",
    "provider_reconcile_all",
    "provider_reconcile_task",
    "provider_schedules",
    "provider_sync_enqueue",
    "provider_sync_resume_task",
    "provider_usage_sync_all",
    "provider_usage_sync_task",
]
