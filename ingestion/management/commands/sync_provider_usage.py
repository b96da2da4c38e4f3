"""``manage.py sync_provider_usage <org-slug> [--provider …] [--since YYYY-MM-DD]``."""

from __future__ import annotations

import sys
from datetime import date, datetime

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from ingestion.models import ProviderConnection, SyncRun
from ingestion.models.providers import ConnectionProvider
from ingestion.services.providers.sync import COSTS, USAGE, provider_sync
from ingestion.services.reconciliation import reconciliation_run

UNKNOWN_ORGANIZATION = "No organization with slug {slug!r}."
NO_CONNECTION = "{org} has no {what} connection: add one with connect_provider."
BAR = 30


class Command(BaseCommand):
    help = (
        "Sync provider usage buckets and cost lines for an organization (resuming interrupted "
        "runs first), then optionally reconcile. Re-reads the last resync_days days by default."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", metavar="org-slug")
        parser.add_argument("--provider", choices=ConnectionProvider.values)
        parser.add_argument("--since", type=date.fromisoformat, help="First UTC day to read.")
        parser.add_argument(
            "--width", choices=("1d", "1h"), default="1d", help="Usage bucket width."
        )
        parser.add_argument("--only", choices=("usage", "costs"), help="Sync only one report.")
        parser.add_argument(
            "--resume", action="store_true", help="Only resume interrupted runs; start none."
        )
        parser.add_argument(
            "--reconcile", action="store_true", help="Recompute the reconciliation after."
        )

    def handle(self, *args, organization, provider, since, width, only, resume, reconcile, **o):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(UNKNOWN_ORGANIZATION.format(slug=organization))
        connections = ProviderConnection.objects.filter(organization=org).order_by("provider")
        if provider:
            connections = connections.filter(provider=provider)
        if not connections:
            raise CommandError(NO_CONNECTION.format(org=org.name, what=provider or "provider"))
        kinds = {"usage": [USAGE], "costs": [COSTS]}.get(only, [USAGE, COSTS])
        failed = []
        for connection in connections:
            for kind in kinds:
                label = (
                    f"{connection.get_provider_display()} {'usage' if kind == USAGE else 'costs'}"
                )
                runs = provider_sync(
                    connection=connection, kind=kind, width=width, since=since,
                    resume_only=resume, on_page=self._progress(label),
                )  # fmt: skip
                for run in runs:
                    self._report(label, run)
                    if run.status != SyncRun.Status.SUCCEEDED:
                        failed.append(run)
            if reconcile:
                run = reconciliation_run(
                    organization=org, provider=connection.provider, since=since
                )
                flagged = run.cursor.get("flagged", 0)
                self.stdout.write(
                    f"{connection.get_provider_display()} reconciliation: {run.items} lines, "
                    f"{flagged} flagged."
                )
        if failed:
            raise CommandError(f"{len(failed)} sync run(s) failed: see the messages above.")

    def _progress(self, label: str):
        stream = self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr
        interactive = stream.isatty()

        def on_page(run: SyncRun, page) -> None:
            start, end = run.range_start, run.range_end
            done = 1.0
            if page.covered_until is not None and end > start:
                done = min(max((page.covered_until - start) / (end - start), 0.0), 1.0)
            filled = int(done * BAR)
            line = (
                f"{label}: [{'#' * filled}{'.' * (BAR - filled)}] {done:4.0%} "
                f"run {run.pk}, {len(page.rows)} rows this page"
            )
            stream.write(("\r" + line) if interactive else line + "\n")
            stream.flush()

        return on_page

    def _report(self, label: str, run: SyncRun) -> None:
        run.refresh_from_db()
        duration = run.duration_seconds or 0.0
        summary = (
            f"{label}: run {run.pk} {run.status}, {run.pages} pages, {run.items} rows, "
            f"{duration:.1f} s ({_day(run.range_start)} → {_day(run.range_end)})"
        )
        if run.error:
            summary += f": {run.error}"
        self.stdout.write(("\n" if self._interactive() else "") + summary)

    def _interactive(self) -> bool:
        stream = self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr
        return stream.isatty()


def _day(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"
