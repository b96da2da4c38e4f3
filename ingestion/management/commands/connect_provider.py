"""``manage.py connect_provider <org-slug> openai|anthropic --admin-key KEY [--api-base URL]``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from ingestion.models.providers import ConnectionProvider
from ingestion.services.providers.connections import (
    provider_connection_test,
    provider_connection_upsert,
)

UNKNOWN_ORGANIZATION = "No organization with slug {slug!r}."


class Command(BaseCommand):
    help = (
        "Create or update an organization's connection to a provider's usage and cost APIs. "
        "The admin key is stored encrypted and never printed. --test calls the provider."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", metavar="org-slug")
        parser.add_argument("provider", choices=ConnectionProvider.values)
        parser.add_argument(
            "--admin-key", help="The organization admin key (required when creating)."
        )
        parser.add_argument(
            "--api-base", help="Base URL of the API (default: the provider's public API)."
        )
        parser.add_argument("--test", action="store_true", help="Test the connection after.")

    def handle(self, *args, organization, provider, admin_key, api_base, test, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(UNKNOWN_ORGANIZATION.format(slug=organization))
        try:
            connection, created = provider_connection_upsert(
                organization=org, provider=provider, admin_key=admin_key, api_base=api_base
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        verb = "Connected" if created else "Updated"
        self.stdout.write(
            f"{verb} {connection.get_provider_display()} for {org.name} ({org.slug}): admin key "
            f"{connection.masked_key}, API {connection.api_base or '(public API)'}."
        )
        if test:
            result = provider_connection_test(connection=connection)
            if not result.ok:
                raise CommandError(f"Connection test failed: {result.message}")
            self.stdout.write(result.message)
