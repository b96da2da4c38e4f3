"""django-q2 entry points of the review workflow: snoozes that end, savings to verify.

Each task calls one service and is safe to run twice (a finding already reopened or
an item already verified is left alone).
"""

from __future__ import annotations

from django.utils import timezone

from findings.services.triage import findings_unsnooze_due
from findings.services.verification import remediations_verify_due
from ingestion.schedules import ScheduleSpec

TASKS = "findings.tasks_workflow"


def findings_unsnooze_due_task() -> str:
    """Reopen the snoozed findings whose date has come."""
    reopened = findings_unsnooze_due(now=timezone.now())
    return f"{len(reopened)} finding(s) reopened"


def remediations_verify_due_task() -> str:
    """Measure realized savings of the items whose verification window is over."""
    verified = remediations_verify_due(now=timezone.now())
    return f"{len(verified)} remediation item(s) verified"


def workflow_schedules() -> list[ScheduleSpec]:
    """Snoozes end at 00:00 UTC (checked hourly, so a missed run costs an hour at most);
    verification runs daily after the night's rollups and economics refresh."""
    return [
        ScheduleSpec(name="findings unsnooze", func=f"{TASKS}.findings_unsnooze_due_task",
                     cron="7 * * * *"),
        ScheduleSpec(name="remediations verify", func=f"{TASKS}.remediations_verify_due_task",
                     cron="40 4 * * *"),
    ]  # fmt: skip
