"""Service-key authentication: ``Authorization: Api-Key <prefix>.<secret>``."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from accounts.models import ServiceAPIKey

KEYWORD = "Api-Key"
INVALID_KEY = "Invalid API key."
EXPIRED_KEY = "This API key has expired."


class ServiceKeyUser:
    """Stands in for ``request.user`` on service-key requests: authenticated, not staff."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, key: ServiceAPIKey):
        self.key = key
        self.username = f"service-key:{key.prefix}"

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm, obj=None) -> bool:
        return False


class ServiceKeyAuthentication(authentication.BaseAuthentication):
    """Resolves a service key to its organization with one indexed query.

    Revocation and expiry are read from the database on every request, so a
    revoked or expired key fails on its very next use.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, raw_key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        raw_key = raw_key.strip()
        prefix, dot, _ = raw_key.partition(".")
        if not dot:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        key = (
            ServiceAPIKey.objects.filter(prefix=prefix, revoked=False)
            .select_related("organization")
            .first()
        )
        if key is None or not key.is_valid(raw_key):
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        if key.has_expired:
            raise exceptions.AuthenticationFailed(EXPIRED_KEY)
        return ServiceKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return KEYWORD
