"""``manage.py sync_stripe <org-slug> [--since YYYY-MM-DD]``: mirror Stripe now, with progress."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from ingestion.services.stripe.backfill import (
    PHASE_COUNT,
    PageReport,
    StripeNotConnected,
    stripe_backfill_execute,
    stripe_backfill_start,
)
from ingestion.services.stripe.client import PAGE_SIZE

BAR_WIDTH = 24


class Command(BaseCommand):
    help = (
        "Backfill the organization's Stripe mirror (customers, products, prices, subscriptions, "
        "invoices with all lines, credit notes, refunds) and rebuild its revenue lines and plan "
        "history. Resumes an interrupted run from its last committed page."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization slug.")
        parser.add_argument("--since", help="Only objects created on or after this day (UTC).")
        parser.add_argument("--page-size", type=int, default=PAGE_SIZE, help="1 to 100.")

    def progress(self, report: PageReport) -> None:
        done = round(BAR_WIDTH * (report.phase_index - 1) / PHASE_COUNT)
        bar = "#" * done + "." * (BAR_WIDTH - done)
        self.stdout.write(
            f"[{bar}] {report.phase_index}/{PHASE_COUNT} {report.phase}: page {report.page}, "
            f"{report.items} item(s); {report.total_items} in all"
        )
        self.stdout.flush()

    def handle(self, *args, organization, since, page_size, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        if not 1 <= page_size <= 100:
            raise CommandError("--page-size must be between 1 and 100.")
        try:
            day = date.fromisoformat(since) if since else None
        except ValueError:
            raise CommandError(f"{since!r} is not a date (YYYY-MM-DD).") from None
        try:
            run = stripe_backfill_start(organization=org, since=day)
        except StripeNotConnected as error:
            raise CommandError(str(error)) from None
        if run.cursor:
            self.stdout.write(f"Resuming run #{run.pk} at {run.cursor.get('phase')}.")
        finished = stripe_backfill_execute(
            run_id=run.pk, page_size=page_size, on_page=self.progress
        )
        if finished is None:
            raise CommandError(
                f"Run #{run.pk} is running in another process (last heartbeat "
                f"{run.heartbeat_at:%H:%M:%S}); it is resumed once it goes stale."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"[{'#' * BAR_WIDTH}] run #{finished.pk} {finished.status}: "
                f"{finished.pages} page(s), {finished.items} object(s)."
            )
        )
