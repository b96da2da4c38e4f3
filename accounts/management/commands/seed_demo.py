"""``manage.py seed_demo``: create or refresh the deterministic demo organization."""

from __future__ import annotations

import importlib
import importlib.util
import time
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import demo_seed

PRODUCTION_REFUSED = (
    "Refusing to seed demo data (with a shared, printed password) in production; "
    "pass --allow-production if this server is a demo."
)


def demo_contributors() -> list[tuple[str, object]]:
    """``(app label, <app>.demo module)`` for each local app after accounts, in INSTALLED_APPS
    order, that has a ``demo`` module. Imported by name: accounts never imports a higher app."""
    contributors = []
    for app_config in apps.get_app_configs():
        is_local = Path(app_config.path).parent == Path(settings.BASE_DIR)
        if not is_local or app_config.label == "accounts":
            continue
        module_name = f"{app_config.name}.demo"
        if importlib.util.find_spec(module_name) is not None:
            contributors.append((app_config.label, importlib.import_module(module_name)))
    return contributors


class Command(BaseCommand):
    help = (
        "Create the demo organization (slug 'demo', 'Demo AI Co') or bring it back to its seeded "
        "state: plans, ~200 customers with plan histories, features, provider keys and one staff "
        "user per role. Deterministic and safe to re-run: a second run writes nothing. "
        "Accounts are seeded by accounts.demo.demo_seed(); then, for every other local app in "
        "INSTALLED_APPS order (ingestion, economics, findings, scenarios), <app>.demo is imported "
        "if it exists and its demo_seed(organization=…) is called; it must be idempotent too, "
        "and may return an object whose str() is a one-line summary."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even when METRON_ENV=production (a public demo server).",
        )

    def handle(self, *args, allow_production, **options):
        if getattr(settings, "PRODUCTION", False) and not allow_production:
            raise CommandError(PRODUCTION_REFUSED)
        started = time.monotonic()
        try:
            result = demo_seed()
            self.stdout.write(f"accounts: {result}")
            for label, module in demo_contributors():
                summary = module.demo_seed(organization=result.organization)
                self.stdout.write(f"{label}: {summary if summary is not None else 'done'}")
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        organization = result.organization
        self.stdout.write(
            f"Demo organization {organization.name} ({organization.slug}) seeded "
            f"in {time.monotonic() - started:.1f} s."
        )
        for username in result.skipped_users:
            self.stderr.write(
                f"User {username!r} exists outside the demo and was left alone (no demo login)."
            )
        if result.logins:
            width = max(len(login.username) for login in result.logins) + 2
            self.stdout.write("\nStaff logins (/admin/):")
            self.stdout.write(f"  {'username':<{width}}{'role':<13}password")
            for login in result.logins:
                self.stdout.write(f"  {login.username:<{width}}{login.role:<13}{login.password}")
