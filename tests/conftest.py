from __future__ import annotations

from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIServer
from rest_framework.test import APIClient

from accounts.middleware import ACTIVE_ORGANIZATION_SESSION_KEY
from accounts.models import Role
from accounts.roles import roles_sync
from tests.accounts.factories import MembershipFactory, OrganizationFactory, service_key

# The live test server accepts 10 pending connections by default; the
# concurrency tests open 50 at once, as real clients would.
WSGIServer.request_queue_size = 128


def pytest_report_header(config):
    # Lives here because pytest reads report headers from the rootmost conftest only.
    from tests.browser.conftest import CHROMIUM

    if not Path(CHROMIUM).exists():
        return f"browser tests: SKIPPED, no Chromium at {CHROMIUM} (install Debian's chromium)"
    return f"browser tests: Chromium at {CHROMIUM}"


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme AI", slug="acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Rival Corp", slug="rival")


@pytest.fixture
def roles(db):
    """Role groups with their permissions (migrate creates them; flushes may drop them)."""
    roles_sync()


@pytest.fixture
def staff_factory(db, roles):
    """Make a staff user with ``role`` in ``organization``."""

    def make(organization, role=Role.ADMIN, **user_fields):
        return MembershipFactory(
            organization=organization,
            role=role,
            user__username=user_fields.pop("username", None) or f"{role}-{organization.slug}",
            **{f"user__{k}": v for k, v in user_fields.items()},
        ).user

    return make


@pytest.fixture
def staff_client_factory(client, staff_factory):
    """A logged-in Django test client for a staff user of ``organization`` with ``role``."""

    def make(organization, role=Role.ADMIN):
        user = staff_factory(organization, role)
        client.force_login(user)
        session = client.session
        session[ACTIVE_ORGANIZATION_SESSION_KEY] = organization.pk
        session.save()
        return client

    return make


@pytest.fixture
def api_client_factory(db):
    """An API client authenticated with a new service key of ``organization``."""

    def make(organization, scopes=("read", "write", "ingest"), **kwargs):
        _, plaintext = service_key(organization, scopes=scopes, **kwargs)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
        api.plaintext_key = plaintext
        return api

    return make
