"""``manage.py reprice_usage <org-slug> --since YYYY-MM-DD [--until YYYY-MM-DD]``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organization
from ingestion.services.repricing import usage_reprice


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Recompute the cost of the organization's usage events from --since (inclusive) to "
        "--until (exclusive, default: now) with the current prices and overrides, rebuild the "
        "daily rollups of those days and record a repricing run with totals before and after."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization slug.")
        parser.add_argument("--since", required=True, help="First day (UTC), YYYY-MM-DD.")
        parser.add_argument("--until", help="Day after the last one (UTC), YYYY-MM-DD.")
        parser.add_argument("--reason", default="", help="Why the run is needed (recorded).")

    def handle(self, *args, organization, since, until, reason, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        start = datetime.combine(_day(since), time(), tzinfo=UTC)
        end = datetime.combine(_day(until), time(), tzinfo=UTC) if until else timezone.now()
        if end <= start:
            raise CommandError("--until must be after --since.")
        run = usage_reprice(organization=org, start=start, end=end, reason=reason)
        self.stdout.write(
            f"Repriced {run.events_touched} event(s) of {org.slug} in [{start:%Y-%m-%d}, "
            f"{end:%Y-%m-%d %H:%M}): {run.events_changed} changed; cost "
            f"${run.cost_before} → ${run.cost_after}; unpriced {run.unpriced_before} → "
            f"{run.unpriced_after}."
        )
