"""Schedules are created once, by name, however often setup runs."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.models import Schedule

from ingestion.schedules import ScheduleSpec, schedules_sync

pytestmark = pytest.mark.django_db

SPECS = [
    ScheduleSpec(name="hourly usage", func="math.floor", cron="5 * * * *"),
    ScheduleSpec(name="daily costs", func="math.ceil", cron="30 2 * * *", kwargs={"days": 3}),
]


def test_setup_is_idempotent_and_removes_duplicates():
    Schedule.objects.create(name="daily costs", func="old.path", schedule_type=Schedule.DAILY)
    Schedule.objects.create(name="daily costs", func="old.path", schedule_type=Schedule.DAILY)

    schedules_sync(specs=SPECS)
    schedules_sync(specs=SPECS)

    assert sorted(Schedule.objects.values_list("name", "func")) == [
        ("daily costs", "math.ceil"),
        ("hourly usage", "math.floor"),
    ]
    daily = Schedule.objects.get(name="daily costs")
    assert (daily.schedule_type, daily.cron, daily.kwargs) == ("C", "30 2 * * *", "{'days': 3}")


def test_a_new_schedule_waits_for_its_first_slot():
    (hourly,) = schedules_sync(specs=SPECS[:1])

    assert hourly.next_run > timezone.now()
    assert hourly.next_run.minute == 5
