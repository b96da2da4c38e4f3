"""``manage.py recompute_economics <org-slug> [--period YYYY-MM]``."""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from economics.selectors import PeriodError, parse_period
from economics.services import economics_recompute_months, economics_refresh
from metron.money import quantize_money


class Command(BaseCommand):
    help = (
        "Recompute economics snapshots. With --period YYYY-MM: that calendar month, rebuilt "
        "from the daily rollups. Without: every period whose inputs changed since the last "
        "refresh (the days ingestion marked changed), and the rolling 30 days if touched."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization slug.")
        parser.add_argument("--period", help="Calendar month, YYYY-MM.")

    def handle(self, *args, organization, period, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        if period:
            try:
                kind, start = parse_period(period)
            except PeriodError as error:
                raise CommandError(str(error)) from None
            if start is None:
                raise CommandError("--period takes a calendar month, YYYY-MM.")
            snapshots = economics_recompute_months(organization=org, months=[start])
        else:
            result = economics_refresh(organization=org)
            self.stdout.write(f"{len(result.days)} changed day(s) rebuilt.")
            snapshots = result.snapshots
        if not snapshots:
            self.stdout.write("Nothing changed: every snapshot is current.")
        for snapshot in snapshots:
            summary = snapshot.summary
            self.stdout.write(
                f"{snapshot}: {summary['customers']} customers, "
                f"revenue {_usd(summary['revenue'])}, AI cost {_usd(summary['ai_cost'])}, margin "
                f"{_usd(summary['contribution_margin'])}, {summary['underwater']} underwater "
                f"({snapshot.duration_ms} ms)."
            )


def _usd(value: str) -> str:
    """A snapshot's decimal string as dollars and cents, for people (the JSON stays exact)."""
    amount = quantize_money(Decimal(value))
    return f"-${-amount:,}" if amount < 0 else f"${amount:,}"
