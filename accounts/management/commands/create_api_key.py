"""``manage.py create_api_key <org-slug> --scopes ingest,read``: issue a service API key."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organization
from accounts.services import service_key_create

UNKNOWN_ORGANIZATION = "No organization with slug {slug!r}."
NOT_POSITIVE = "--expires-in-days must be a positive number of days."


class Command(BaseCommand):
    help = (
        "Create a service API key for an organization. The key is printed alone on the last "
        "line of output (use `tail -n1` in scripts) and is never shown again: only its hash "
        "is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", metavar="org-slug")
        parser.add_argument("--scopes", required=True, help="Comma-separated: ingest, read, write.")
        parser.add_argument("--name", help="Label shown in the admin (default: a dated label).")
        parser.add_argument("--expires-in-days", type=int, help="Expire after N days.")

    def handle(self, *args, organization, scopes, name, expires_in_days, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(UNKNOWN_ORGANIZATION.format(slug=organization))
        if expires_in_days is not None and expires_in_days <= 0:
            raise CommandError(NOT_POSITIVE)
        now = timezone.now()
        expiry = now + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            key, plaintext = service_key_create(
                organization=org,
                name=name or f"CLI key {now:%Y-%m-%d %H:%M}",
                scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
                expiry_date=expiry,
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        expires = f"expires {expiry:%Y-%m-%d %H:%M} UTC" if expiry else "does not expire"
        self.stdout.write(
            f"Created service key {key.name!r} (prefix {key.prefix}) for {org.name} ({org.slug}): "
            f"scopes {', '.join(key.scopes)}; {expires}."
        )
        self.stdout.write("Store it now; it is not shown again:")
        self.stdout.write(plaintext)
