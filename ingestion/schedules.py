"""The periodic jobs of every app, and their idempotent creation.

django-q2's ``Schedule.name`` is not unique, so creating schedules at every
start would pile up duplicates; ``schedules_sync`` upserts them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str  # dotted path of a task function taking only literal kwargs
    schedule_type: str = Schedule.CRON
    cron: str | None = None
    minutes: int | None = None
    kwargs: dict = field(default_factory=dict)


def all_schedules() -> list[ScheduleSpec]:
    """Every periodic job of every app: the functions named in ``METRON_SCHEDULES``.

    A setting rather than imports, so apps above ingestion (economics, findings) add
    their jobs without ingestion importing them.
    """
    return [spec for path in settings.METRON_SCHEDULES for spec in import_string(path)()]


def _first_run(spec: ScheduleSpec, now: datetime) -> datetime:
    # Without next_run a new schedule fires immediately; start at the next slot.
    if spec.schedule_type == Schedule.CRON and spec.cron:
        from croniter import croniter

        return croniter(spec.cron, now).get_next(datetime)
    return now + timedelta(minutes=spec.minutes or 60)


@transaction.atomic
def schedules_sync(*, specs: list[ScheduleSpec] | None = None) -> list[Schedule]:
    """Create or update every schedule by name; remove duplicates left by older setups."""
    now = timezone.now()
    synced = []
    for spec in all_schedules() if specs is None else specs:
        existing = list(Schedule.objects.filter(name=spec.name).order_by("id"))
        for duplicate in existing[1:]:
            duplicate.delete()
        values = {
            "func": spec.func,
            "schedule_type": spec.schedule_type,
            "cron": spec.cron,
            "minutes": spec.minutes,
            "kwargs": repr(spec.kwargs) if spec.kwargs else None,
            "repeats": -1,
        }
        if existing:
            schedule = existing[0]
            for key, value in values.items():
                setattr(schedule, key, value)
            schedule.save()
        else:
            schedule = Schedule.objects.create(
                name=spec.name, next_run=_first_run(spec, now), **values
            )
        synced.append(schedule)
    return synced
