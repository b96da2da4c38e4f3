"""Sync-run bookkeeping shared by the provider and Stripe syncs.

A sync is run by a django-q2 task that may be delivered twice or killed at any
point. The run row is claimed atomically, records progress and a resume cursor
after every committed page, and is reclaimable once its heartbeat goes stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Organization
from ingestion.models import SyncRun

MAX_ERROR = 4000  # characters of an error message kept on the run


def stale_after() -> timedelta:
    """A RUNNING run silent for longer than the task timeout is dead."""
    return timedelta(seconds=settings.Q_CLUSTER["timeout"])


def sync_run_create(
    *,
    organization: Organization,
    kind: str,
    source: str,
    range_start: datetime | None = None,
    range_end: datetime | None = None,
) -> SyncRun:
    """Record a new, pending run."""
    return SyncRun.objects.create(
        organization=organization, kind=kind, source=source, range_start=range_start,
        range_end=range_end,
    )  # fmt: skip


def sync_run_claim(*, run_id: int) -> SyncRun | None:
    """Take the run for this worker, or None if it is done or alive elsewhere.

    One conditional UPDATE: two workers cannot both claim it.
    """
    now = timezone.now()
    claimable = Q(status__in=[SyncRun.Status.PENDING, SyncRun.Status.FAILED]) | Q(
        status=SyncRun.Status.RUNNING, heartbeat_at__lt=now - stale_after()
    )
    claimed = (
        SyncRun.objects.filter(claimable, pk=run_id)
        .exclude(status=SyncRun.Status.SUCCEEDED)
        .update(
            status=SyncRun.Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            error="",
        )
    )
    return SyncRun.objects.get(pk=run_id) if claimed else None


def sync_run_progress(
    *, run: SyncRun, pages: int = 0, items: int = 0, cursor: dict[str, Any] | None = None
) -> None:
    """Count a committed page and move the resume cursor (call after the page's commit)."""
    fields: dict[str, Any] = {
        "pages": F("pages") + pages,
        "items": F("items") + items,
        "heartbeat_at": timezone.now(),
    }
    if cursor is not None:
        fields["cursor"] = cursor
        run.cursor = cursor
    SyncRun.objects.filter(pk=run.pk).update(**fields)


def sync_run_succeed(*, run: SyncRun) -> None:
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.SUCCEEDED, finished_at=now, heartbeat_at=now
    )


def sync_run_fail(*, run: SyncRun, error: BaseException | str) -> None:
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED, finished_at=now, heartbeat_at=now,
        error=str(error)[:MAX_ERROR],
    )  # fmt: skip
