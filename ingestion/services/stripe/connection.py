"""An organization's Stripe connection: keys stored encrypted, a connection test."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Organization
from ingestion.models import StripeConnection
from ingestion.models.stripe import DEFAULT_API_BASE
from ingestion.services.stripe import client as api

API_KEY_INVALID = "A Stripe secret or restricted key starts with sk_ or rk_."
WEBHOOK_SECRET_INVALID = "A webhook signing secret starts with whsec_."


def _check_secrets(api_key: str | None, webhook_secret: str | None) -> None:
    errors = {}
    if api_key is not None and not api_key.startswith(("sk_", "rk_")):
        errors["api_key"] = [API_KEY_INVALID]
    if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
        errors["webhook_secret"] = [WEBHOOK_SECRET_INVALID]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def stripe_connection_set(
    *,
    organization: Organization,
    api_key: str | None = None,
    webhook_secret: str | None = None,
    api_base: str | None = None,
    customer_metadata_key: str | None = None,
    status: str | None = None,
) -> StripeConnection:
    """Create or update the organization's connection; secrets left None are kept.

    A new connection needs both secrets. They are encrypted before they are saved.
    """
    _check_secrets(api_key, webhook_secret)
    connection = (
        StripeConnection.objects.select_for_update().filter(organization=organization).first()
    )
    if connection is None:
        if not (api_key and webhook_secret):
            raise ValidationError(
                "A new Stripe connection needs the API key and the webhook secret."
            )
        connection = StripeConnection(organization=organization, api_base=DEFAULT_API_BASE)
    if api_key:
        connection.set_api_key(api_key)
    if webhook_secret:
        connection.set_webhook_secret(webhook_secret)
    if api_base:
        connection.api_base = api_base.rstrip("/")
    if customer_metadata_key:
        connection.customer_metadata_key = customer_metadata_key
    if status:
        connection.status = status
    connection.full_clean()
    connection.save()
    return connection


def stripe_connection_test(*, connection: StripeConnection) -> str:
    """Ask Stripe for one customer with the stored key; returns a short verdict.

    Raises the stripe error (authentication, network) if the key does not work.
    """
    client = api.stripe_client(connection)
    objects, _ = api.list_page(client, "customers", params={"limit": 1})
    return f"Connected to {connection.api_base}: the key can list customers ({len(objects)} seen)."
