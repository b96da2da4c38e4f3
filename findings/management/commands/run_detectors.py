"""``manage.py run_detectors <org-slug> [--kind K …]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from findings.models import ALERT_KINDS, DetectorRun
from findings.selectors import finding_open_list, findings_identified
from findings.services.detection import detectors_run
from metron.money import quantize_money


class Command(BaseCommand):
    help = (
        "Run the waste detectors and alert rules over the last 30 full days and update the "
        "organization's findings (reruns update, cleared conditions resolve). Prints the "
        "open findings, highest dollars first."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization slug.")
        parser.add_argument(
            "--kind", action="append", dest="kinds", metavar="KIND",
            help="Run only this rule (repeatable), e.g. model_overkill.",
        )  # fmt: skip

    def handle(self, *args, organization, kinds, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        try:
            run = detectors_run(organization=org, kinds=kinds)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Run {run.status}: {run.created} new, {run.updated} updated, {run.resolved} "
            f"resolved (window {run.window_start} → {run.window_end}, exclusive)."
        )
        count, savings = findings_identified(organization=org)
        self.stdout.write(f"{count} findings · ${quantize_money(savings):,}/mo identified")
        open_findings = finding_open_list(organization=org, kinds=kinds)
        for finding in open_findings:
            label = "at stake" if finding.kind in ALERT_KINDS else "/mo"
            amount = f"${finding.monthly_savings:,}"
            self.stdout.write(
                f"  {amount:>12} {label:<8} {finding.confidence:<6} {finding.kind:<28} "
                f"{finding.title}"
            )
        if run.status == DetectorRun.Status.FAILED:
            raise CommandError(f"Some rules failed:\n{run.error}")
