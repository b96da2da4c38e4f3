"""django-q2 entry points of notifications (and the budget evaluation schedule).

Tasks take ids and are safe to run twice: an attempt first claims its delivery, and a
delivery already sent, failed or claimed elsewhere is left alone.
"""

from __future__ import annotations

from django_q.models import Schedule

from findings.models import NotificationDelivery
from findings.services.notifications import notification_deliver, notifications_retry_due
from ingestion.schedules import ScheduleSpec

TASKS = "findings.tasks_notifications"


def notification_deliver_task(delivery_id: int) -> str:
    """Attempt one delivery (after the commit that recorded it); returns its status."""
    delivery = NotificationDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:  # rolled back after the enqueue, or deleted: nothing to send
        return "missing"
    return notification_deliver(delivery=delivery).status


def notifications_retry_due_task() -> int:
    """The minute schedule: attempt the pending deliveries that are due; returns how many."""
    return len(notifications_retry_due())


def notification_schedules() -> list[ScheduleSpec]:
    """Retries every minute (the first backoff step is one minute); budgets every 15
    minutes, a little behind the economics refresh that follows usage every 10."""
    return [
        ScheduleSpec(
            name="notifications retry (1 min)",
            func=f"{TASKS}.notifications_retry_due_task",
            schedule_type=Schedule.MINUTES,
            minutes=1,
        ),
        ScheduleSpec(
            name="budgets evaluate (15 min)",
            func="findings.tasks_budgets.budgets_evaluate_all",
            schedule_type=Schedule.MINUTES,
            minutes=15,
        ),
    ]
