"""django-q2 entry points of findings: detectors after each economics refresh.

Tasks take ids and call services; a rerun updates the same findings (fingerprints), so
running a task twice is harmless.
"""

from __future__ import annotations

from accounts.models import Organization
from economics.services import economics_refresh
from findings.models import DetectorRun
from findings.services.detection import detectors_run
from ingestion.schedules import ScheduleSpec

TASKS = "findings.tasks"


def detectors_run_task(organization_id: int) -> str:
    """Run every rule for one organization; raises when a rule failed (the queue logs it)."""
    organization = Organization.objects.get(pk=organization_id)
    run = detectors_run(organization=organization, trigger="schedule")
    if run.status == DetectorRun.Status.FAILED:
        raise RuntimeError(f"detector run {run.pk} failed: {run.error}")
    return f"{run.created} new, {run.updated} updated, {run.resolved} resolved"


def findings_refresh_all() -> dict[int, str]:
    """Per organization: bring economics up to date, then run the detectors on it.

    One organization's failing rule does not hold up the others; the task raises at the
    end if any run failed, so the queue records it.
    """
    results, failed = {}, []
    for organization in Organization.objects.order_by("pk"):
        # Free-tier subsidy reads the economics snapshots: refresh them first.
        economics_refresh(organization=organization)
        run = detectors_run(organization=organization, trigger="schedule")
        results[organization.pk] = f"{run.status}: {run.created} new, {run.updated} updated"
        if run.status == DetectorRun.Status.FAILED:
            failed.append(f"{organization.slug}: {run.error}")
    if failed:
        raise RuntimeError("detector runs failed: " + "; ".join(failed))
    return results


def findings_schedules() -> list[ScheduleSpec]:
    """Detectors run hourly: findings move with the day's usage, not minute by minute."""
    return [
        ScheduleSpec(name="findings refresh", func=f"{TASKS}.findings_refresh_all",
                     cron="17 * * * *"),
    ]  # fmt: skip
