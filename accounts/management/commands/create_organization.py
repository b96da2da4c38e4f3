"""``manage.py create_organization <slug> --name "<name>"``: add a tenant."""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from accounts.services import organization_create

ORGANIZATION_EXISTS = "Organization {slug!r} already exists."


def validation_error_text(error: ValidationError) -> str:
    """One line naming each invalid field, for a CommandError."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        " ".join(messages) if name == NON_FIELD_ERRORS else f"{name}: {' '.join(messages)}"
        for name, messages in error.message_dict.items()
    )


class Command(BaseCommand):
    help = "Create an organization (a tenant). Refuses a slug that already exists."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="Unique short name, e.g. acme.")
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme AI'.")
        parser.add_argument("--currency", default="USD", help="Reporting currency (ISO 4217).")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone, e.g. Europe/Paris.")

    def handle(self, *args, slug, name, currency, timezone, **options):
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(ORGANIZATION_EXISTS.format(slug=slug))
        try:
            organization = organization_create(
                slug=slug, name=name, reporting_currency=currency.upper(), timezone=timezone
            )
        except ValidationError as error:
            raise CommandError(validation_error_text(error)) from error
        self.stdout.write(
            f"Created organization {organization.name} ({organization.slug}): "
            f"currency {organization.reporting_currency}, time zone {organization.timezone}."
        )
