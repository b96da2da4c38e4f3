"""``manage.py connect_stripe <org-slug> --api-key <key> --webhook-secret <secret>
[--api-base <url>]``: store an organization's Stripe keys, encrypted."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from ingestion.services.stripe.connection import stripe_connection_set


class Command(BaseCommand):
    help = (
        "Connect (or reconnect) an organization's Stripe account. The API key and the "
        "webhook signing secret are stored encrypted and never printed; point Stripe's "
        "webhook endpoint at /webhooks/stripe/<org-slug>/."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization slug.")
        parser.add_argument(
            "--api-key", required=True, help="Secret (sk_…) or restricted (rk_…) key."
        )
        parser.add_argument(
            "--webhook-secret", required=True, help="Endpoint signing secret, whsec_…."
        )
        parser.add_argument("--api-base", help="API base URL (default https://api.stripe.com).")
        parser.add_argument(
            "--metadata-key", help="Customer metadata key holding the Metron customer id."
        )

    def handle(self, *args, organization, api_key, webhook_secret, api_base, metadata_key, **opts):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        try:
            connection = stripe_connection_set(
                organization=org, api_key=api_key, webhook_secret=webhook_secret,
                api_base=api_base, customer_metadata_key=metadata_key, status="active",
            )  # fmt: skip
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Stripe connected for {org.slug}: key {connection.api_key_hint}, "
                f"API {connection.api_base}, webhooks at /webhooks/stripe/{org.slug}/."
            )
        )
