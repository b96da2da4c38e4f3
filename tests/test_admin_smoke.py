"""Every registered ModelAdmin opens: changelist, search, add and change views."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.middleware import ACTIVE_ORGANIZATION_SESSION_KEY
from accounts.models import Role
from tests.accounts.factories import MembershipFactory
from tests.admin_objects import build_catalog, build_platform_objects

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def superuser_client(client, org):
    membership = MembershipFactory(
        organization=org, role=Role.ADMIN, user__username="root", user__is_superuser=True
    )
    client.force_login(membership.user)
    session = client.session
    session[ACTIVE_ORGANIZATION_SESSION_KEY] = org.pk
    session.save()
    return client


@pytest.fixture
def objects(org):
    return {**build_catalog(org, "smoke"), **build_platform_objects("smoke")}


def test_every_registered_admin_has_a_test_object(objects):
    missing = [model._meta.label for model, _ in REGISTERED if model not in objects]
    assert missing == []


@pytest.mark.parametrize(
    ("model", "model_admin"), REGISTERED, ids=lambda v: getattr(v, "__name__", "")
)
def test_admin_views_open(superuser_client, objects, model, model_admin):
    info = model._meta.app_label, model._meta.model_name
    obj = objects[model]

    changelist = superuser_client.get(reverse("admin:{}_{}_changelist".format(*info)))
    if changelist.status_code == 302:
        # A model with one row per organization (the economics policy): the list opens it.
        assert changelist.url == reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
    else:
        assert changelist.status_code == 200
    if model_admin.search_fields:
        search = superuser_client.get(
            reverse("admin:{}_{}_changelist".format(*info)), {"q": "smoke"}
        )
        assert search.status_code == 200
    change = superuser_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
    assert change.status_code == 200
    add = superuser_client.get(reverse("admin:{}_{}_add".format(*info)))
    assert add.status_code == (200 if model_admin.has_add_permission(add.wsgi_request) else 403)
