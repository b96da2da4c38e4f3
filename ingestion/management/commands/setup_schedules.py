"""``manage.py setup_schedules``: create or update Metron's periodic jobs (idempotent)."""

from django.core.management.base import BaseCommand

from ingestion.schedules import schedules_sync


class Command(BaseCommand):
    help = "Create or update the periodic sync and reconciliation jobs; safe to run every deploy."

    def handle(self, *args, **options):
        for schedule in schedules_sync():
            self.stdout.write(
                f"{schedule.name}: {schedule.func} next at {schedule.next_run:%Y-%m-%d %H:%M}"
            )
