"""Sync runs: one record per pull from a provider or Stripe, with its progress."""

from __future__ import annotations

from django.db import models

from metron.tenancy.models import OrganizationOwnedModel


class SyncRun(OrganizationOwnedModel):
    """One run of a sync job, resumable from ``cursor`` after a crash.

    A run is claimed by flipping it to RUNNING in one conditional UPDATE and
    keeps ``heartbeat_at`` fresh while it works; a RUNNING run whose heartbeat
    is older than the task timeout is considered dead and may be claimed again,
    resuming from its cursor. Writes are idempotent upserts, so a resumed run
    leaves no gaps and no duplicates.
    """

    class Kind(models.TextChoices):
        PROVIDER_USAGE = "provider_usage", "Provider usage"
        PROVIDER_COSTS = "provider_costs", "Provider costs"
        STRIPE_BACKFILL = "stripe_backfill", "Stripe backfill"
        STRIPE_EVENT = "stripe_event", "Stripe webhook event"
        RECONCILIATION = "reconciliation", "Reconciliation"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    source = models.CharField(max_length=50, help_text="openai, anthropic, stripe, …")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    range_start = models.DateTimeField(null=True, blank=True)
    range_end = models.DateTimeField(null=True, blank=True)
    cursor = models.JSONField(default=dict, blank=True, help_text="Where a resumed run continues.")
    pages = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "kind", "status"], name="sync_run_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.source}) {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return (end - self.started_at).total_seconds()
