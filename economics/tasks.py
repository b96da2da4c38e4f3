"""django-q2 entry points of economics: follow the ledger's changes into the snapshots.

Tasks take ids, call one service and are safe to run twice (a refresh with nothing
marked changed does nothing).
"""

from __future__ import annotations

from django_q.models import Schedule

from accounts.models import Organization
from economics.services import economics_refresh
from ingestion.models import UsageChange
from ingestion.schedules import ScheduleSpec

TASKS = "economics.tasks"


def economics_refresh_task(organization_id: int) -> str:
    """Rebuild one organization's changed days and recompute the snapshots they touch."""
    organization = Organization.objects.get(pk=organization_id)
    result = economics_refresh(organization=organization)
    return f"{len(result.days)} day(s), {len(result.snapshots)} snapshot(s)"


def economics_refresh_all() -> dict[int, str]:
    """Refresh every organization with changed days (the others have nothing to do)."""
    pending = UsageChange.objects.order_by().values_list("organization_id", flat=True).distinct()
    return {organization_id: economics_refresh_task(organization_id) for organization_id in pending}


def economics_schedules() -> list[ScheduleSpec]:
    """Economics follows usage within minutes: changes are picked up every 10 minutes."""
    return [
        ScheduleSpec(name="economics refresh", func=f"{TASKS}.economics_refresh_all",
                     schedule_type=Schedule.MINUTES, minutes=10),
    ]  # fmt: skip
