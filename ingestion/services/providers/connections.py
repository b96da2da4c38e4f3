"""Provider connections: store an admin key (encrypted), test it, build the API client."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from ingestion.models import ProviderConnection
from ingestion.models.providers import ConnectionProvider
from ingestion.services.providers.clients import AdminClient, ProviderAPIError, admin_client
from metron.crypto import decrypt, encrypt

KEY_MISSING = "An admin key is required to create a connection."
KEY_INVALID = "The admin key must be a single token without spaces."
PROVIDER_UNKNOWN = "Unknown provider {provider!r}: use one of {choices}."
CONNECTION_OK = "Connected: the usage API answered."

_url = URLValidator(schemes=["http", "https"])


def _clean_key(admin_key: str) -> str:
    key = admin_key.strip()
    if not key:
        raise ValidationError({"admin_key": KEY_MISSING})
    if any(ch.isspace() for ch in key):
        raise ValidationError({"admin_key": KEY_INVALID})
    return key


def _clean_base(api_base: str) -> str:
    base = api_base.strip().rstrip("/")
    if base:
        try:
            _url(base)
        except ValidationError as error:
            raise ValidationError({"api_base": error.messages}) from error
    return base


def provider_connection_set_key(*, connection: ProviderConnection, admin_key: str) -> None:
    """Put a new admin key on ``connection`` (encrypted; last 4 kept in clear); not saved."""
    key = _clean_key(admin_key)
    connection.admin_key_encrypted = encrypt(key)
    connection.admin_key_last4 = key[-4:]
    connection.status = ProviderConnection.Status.UNTESTED
    connection.status_message = ""


@transaction.atomic
def provider_connection_upsert(
    *,
    organization: Organization,
    provider: str,
    admin_key: str | None = None,
    api_base: str | None = None,
) -> tuple[ProviderConnection, bool]:
    """Create or update the organization's connection to ``provider``; returns (row, created).

    ``admin_key`` None keeps the stored key (required on create); ``api_base`` None keeps
    the stored base URL, "" resets it to the provider's public API.
    """
    if provider not in ConnectionProvider.values:
        raise ValidationError(
            {
                "provider": PROVIDER_UNKNOWN.format(
                    provider=provider, choices=", ".join(ConnectionProvider.values)
                )
            }
        )
    connection = (
        ProviderConnection.objects.select_for_update()
        .filter(organization=organization, provider=provider)
        .first()
    )
    created = connection is None
    if created:
        if not admin_key:
            raise ValidationError({"admin_key": KEY_MISSING})
        connection = ProviderConnection(organization=organization, provider=provider)
    if admin_key is not None:
        provider_connection_set_key(connection=connection, admin_key=admin_key)
    if api_base is not None:
        connection.api_base = _clean_base(api_base)
    connection.full_clean(exclude=["organization", "admin_key_encrypted", "admin_key_last4"])
    connection.save()
    return connection, created


def provider_connection_admin_key(*, connection: ProviderConnection) -> str:
    """The decrypted admin key (only ever passed to the provider's client)."""
    return decrypt(connection.admin_key_encrypted)


def provider_connection_client(*, connection: ProviderConnection) -> AdminClient:
    """The usage/cost API client of ``connection``."""
    return admin_client(
        provider=connection.provider,
        admin_key=provider_connection_admin_key(connection=connection),
        api_base=connection.api_base,
    )


@dataclass(frozen=True)
class ConnectionTest:
    ok: bool
    message: str


def provider_connection_test(*, connection: ProviderConnection) -> ConnectionTest:
    """Call a cheap endpoint with the admin key and record the outcome on the connection."""
    try:
        provider_connection_client(connection=connection).check()
    except ProviderAPIError as error:
        result = ConnectionTest(False, str(error))
    except Exception as error:  # noqa: BLE001 - a broken key store or URL is reported, not raised
        result = ConnectionTest(False, f"{type(error).__name__}: {error}")
    else:
        result = ConnectionTest(True, CONNECTION_OK)
    ProviderConnection.objects.filter(pk=connection.pk).update(
        status=ProviderConnection.Status.OK if result.ok else ProviderConnection.Status.FAILED,
        status_message=result.message,
        last_tested_at=timezone.now(),
        updated_at=timezone.now(),
    )
    connection.refresh_from_db()
    return result
