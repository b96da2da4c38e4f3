"""Staff of organization A, in every admin path, against organization B's rows.

Every registered ModelAdmin is enumerated, so a new admin is covered the day it
is registered. Organization B's rows carry a marker string; no page served to
A may contain it, and no request of A may change B's rows.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.middleware import ACTIVE_ORGANIZATION_SESSION_KEY
from accounts.models import CustomerPlan, Organization, ProviderKey, Role
from metron.tenancy.scoping import organization_path
from tests.admin_objects import build_catalog, build_platform_objects

pytestmark = pytest.mark.django_db

MARKER = "rivalsecret"
REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
ORG_OWNED = [(m, a) for m, a in REGISTERED if organization_path(m) is not None]
PLATFORM = [(m, a) for m, a in REGISTERED if organization_path(m) is None]
ids = lambda value: getattr(value, "__name__", "")  # noqa: E731


@pytest.fixture
def setup(org, staff_client_factory, roles):
    rival = Organization.objects.create(name=f"{MARKER} Corp", slug=MARKER)
    mine = build_catalog(org, "mine")
    theirs = build_catalog(rival, MARKER)
    client = staff_client_factory(org, Role.ADMIN)
    return client, mine, theirs


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def snapshot(model, obj):
    return model._default_manager.filter(pk=obj.pk).values().first()


def assert_no_leak(response):
    assert response.status_code in (200, 302, 403, 404)
    assert MARKER not in response.content.decode().lower()


@pytest.mark.parametrize(("model", "model_admin"), ORG_OWNED, ids=ids)
def test_changelist_search_and_filters_show_only_own_rows(setup, model, model_admin):
    client, mine, theirs = setup

    plain = client.get(url(model, "changelist"))
    assert_no_leak(plain)
    if plain.status_code == 302:
        # A model with one row per organization (the economics policy): the list opens
        # the organization's own row, never B's.
        assert plain.url == url(model, "change", mine[model].pk)
    else:
        assert plain.status_code == 200
        listed = {obj.pk for obj in plain.context_data["cl"].result_list}
        # The org's own row is listed (so the check is not vacuous) and B's is not.
        assert mine[model].pk in listed
        assert theirs[model].pk not in listed
    # The term matches B's rows but is not the marker itself (the page echoes it).
    assert_no_leak(client.get(url(model, "changelist"), {"q": MARKER[5:]}))
    # Filtering by B's related ids finds nothing of B either.
    for field in ("plan", "feature", "customer", "user", "organization"):
        if hasattr(theirs[model], f"{field}_id"):
            related = getattr(theirs[model], f"{field}_id")
            if related is None:
                continue
            assert_no_leak(client.get(url(model, "changelist"), {f"{field}__id__exact": related}))


@pytest.mark.parametrize(("model", "model_admin"), ORG_OWNED, ids=ids)
def test_object_views_of_other_organization_are_unreachable(setup, model, model_admin):
    client, _, theirs = setup
    obj = theirs[model]
    before = snapshot(model, obj)

    for view in ("change", "delete", "history"):
        response = client.get(url(model, view, obj.pk))
        assert response.status_code in (302, 403, 404), view
        assert_no_leak(response)

    assert_no_leak(client.post(url(model, "change", obj.pk), {"name": "hijacked"}))
    assert_no_leak(client.post(url(model, "delete", obj.pk), {"post": "yes"}))
    assert snapshot(model, obj) == before


@pytest.mark.parametrize(("model", "model_admin"), ORG_OWNED, ids=ids)
def test_bulk_actions_ignore_other_organization_rows(setup, model, model_admin):
    client, _, theirs = setup
    obj = theirs[model]
    before = snapshot(model, obj)
    request = client.get(url(model, "changelist")).wsgi_request

    for action_name in model_admin.get_actions(request):
        client.post(
            url(model, "changelist"),
            {"action": action_name, "_selected_action": [obj.pk], "post": "yes"},
        )
    assert snapshot(model, obj) == before


@pytest.mark.parametrize(("model", "model_admin"), ORG_OWNED, ids=ids)
def test_add_form_offers_no_other_organization_choices(setup, model, model_admin):
    client, _, _ = setup
    response = client.get(url(model, "add"))
    assert response.status_code in (200, 403)
    assert_no_leak(response)


@pytest.mark.parametrize(("model", "model_admin"), ORG_OWNED, ids=ids)
def test_autocomplete_returns_no_other_organization_rows(setup, model, model_admin):
    client, _, _ = setup
    for field_name in model_admin.autocomplete_fields:
        response = client.get(
            reverse("admin:autocomplete"),
            {
                "app_label": model._meta.app_label,
                "model_name": model._meta.model_name,
                "field_name": field_name,
                "term": MARKER[5:],
            },
        )
        assert response.status_code == 200
        assert response.json()["results"] == []


def test_foreign_keys_of_other_organization_are_refused(setup):
    client, mine, theirs = setup
    periods = CustomerPlan.objects.count()
    response = client.post(
        url(CustomerPlan, "add"),
        {
            "customer": theirs[CustomerPlan].customer_id,
            "plan": theirs[CustomerPlan].plan_id,
            "valid_from_0": "2026-05-01",
            "valid_from_1": "00:00:00",
        },
    )
    assert response.status_code == 200  # the form again, with errors
    assert "Select a valid choice" in response.content.decode()
    assert CustomerPlan.objects.count() == periods

    keys = ProviderKey.objects.count()
    response = client.post(
        url(ProviderKey, "add"),
        {
            "provider": "openai",
            "key_id": "key_new",
            "feature": theirs[ProviderKey].feature_id,
            "environment": "production",
            "status": "active",
        },
    )
    assert "Select a valid choice" in response.content.decode()
    assert ProviderKey.objects.count() == keys


def test_new_rows_land_in_the_active_organization(setup, org):
    client, mine, theirs = setup
    response = client.post(
        url(ProviderKey, "add"),
        {
            "provider": "anthropic",
            "key_id": "apikey_01new",
            "label": "new key",
            "feature": mine[ProviderKey].feature_id,
            "environment": "staging",
            "status": "active",
            "organization": theirs[Organization].pk,  # ignored: never taken from input
        },
    )
    assert response.status_code == 302
    assert ProviderKey.objects.get(key_id="apikey_01new").organization == org


@pytest.mark.parametrize(("model", "model_admin"), PLATFORM, ids=ids)
def test_platform_models_are_closed_to_organization_staff(setup, model, model_admin):
    client, _, _ = setup
    objects = build_platform_objects("platform")
    assert client.get(url(model, "changelist")).status_code == 403
    assert client.get(url(model, "change", objects[model].pk)).status_code in (302, 403)


def test_cannot_switch_into_another_organization(setup, org):
    client, _, theirs = setup
    client.post(reverse("organization-switch"), {"organization": theirs[Organization].pk})
    assert client.session[ACTIVE_ORGANIZATION_SESSION_KEY] == org.pk
    assert_no_leak(client.get(reverse("admin:index")))
    assert_no_leak(client.get(reverse("organization-switch")))


def test_admin_index_shows_only_own_catalog(setup):
    client, _, _ = setup
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "mine customer" not in response.content.decode()  # not waiting for review
    assert_no_leak(response)
