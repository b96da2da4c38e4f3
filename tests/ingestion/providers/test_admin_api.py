"""Admin screens and the reconciliation API: they open, keep secrets write-only, stay scoped."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import Organization, Role
from ingestion.models import (
    ProviderConnection,
    ProviderCostLine,
    ProviderUsageBucket,
    ReconciliationLine,
    SyncRun,
)
from ingestion.services.providers.connections import provider_connection_admin_key
from tests.ingestion.providers.objects import build_provider_objects

pytestmark = pytest.mark.django_db

MARKER = "rivalsecret"
MODELS = [ProviderConnection, ProviderUsageBucket, ProviderCostLine, ReconciliationLine, SyncRun]
API = "/api/v1/reconciliation/"


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def act(client, changelist, action, connection):
    return client.post(
        changelist, {"action": action, "_selected_action": [connection.pk]}, follow=True
    )


@pytest.fixture
def both(org):
    rival = Organization.objects.create(name=f"{MARKER} Corp", slug=MARKER)
    return build_provider_objects(org, "mine"), build_provider_objects(rival, MARKER)


def test_every_provider_model_has_an_admin():
    assert all(admin.site.is_registered(model) for model in MODELS)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("role", [Role.OPS, Role.FINANCE, Role.ENGINEERING, Role.ADMIN])
def test_lists_open_for_every_role_and_show_only_the_organizations_rows(
    staff_client_factory, org, both, model, role
):
    mine, theirs = both
    client = staff_client_factory(org, role)

    response = client.get(url(model, "changelist"))

    assert response.status_code == 200
    listed = {obj.pk for obj in response.context_data["cl"].result_list}
    assert listed == {mine[model].pk}
    assert MARKER not in response.content.decode().lower()
    assert client.get(url(model, "change", theirs[model].pk)).status_code in (302, 404)
    assert client.get(url(model, "change", mine[model].pk)).status_code == 200


@pytest.mark.parametrize("model", [ProviderUsageBucket, ReconciliationLine])
def test_list_queries_do_not_grow_with_rows(
    staff_client_factory, org, model, django_assert_max_num_queries
):
    client = staff_client_factory(org, Role.OPS)
    build_provider_objects(org, "a")
    with django_assert_max_num_queries(40) as few:
        assert client.get(url(model, "changelist")).status_code == 200
    for index in range(20):
        ProviderUsageBucket.objects.create(
            organization=org, provider="openai", bucket_start="2026-11-02T00:00Z",
            bucket_width="1d", api_key_id=f"k{index}", model="gpt-4o",
        )  # fmt: skip
        ReconciliationLine.objects.create(
            organization=org, provider="openai", day="2026-11-02", model=f"m{index}",
            variance=0, tolerance_percent=2,
        )  # fmt: skip

    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url(model, "changelist")).status_code == 200


def test_the_admin_key_is_write_only(staff_client_factory, org):
    client = staff_client_factory(org, Role.ADMIN)
    secret = "sk-admin-very-secret-1234"

    created = client.post(
        url(ProviderConnection, "add"),
        {
            "provider": "anthropic",
            "admin_key": secret,
            "api_base": "",
            "enabled": "on",
            "resync_days": 3,
            "tolerance_percent": "2.00",
        },
    )

    assert created.status_code == 302, created.context["adminform"].form.errors
    connection = ProviderConnection.objects.get(organization=org, provider="anthropic")
    assert secret not in connection.admin_key_encrypted
    assert provider_connection_admin_key(connection=connection) == secret
    for page in (
        url(ProviderConnection, "changelist"),
        url(ProviderConnection, "change", connection.pk),
    ):
        html = client.get(page).content.decode()
        assert secret not in html and "very-secret" not in html
        assert "…1234" in html
    # Saving without a new key keeps the stored one.
    kept = client.post(
        url(ProviderConnection, "change", connection.pk),
        {
            "admin_key": "",
            "api_base": "https://api.anthropic.com",
            "enabled": "on",
            "resync_days": 5,
            "tolerance_percent": "1.50",
        },
    )
    assert kept.status_code == 302
    connection.refresh_from_db()
    assert provider_connection_admin_key(connection=connection) == secret
    assert (connection.resync_days, connection.tolerance_percent) == (5, Decimal("1.50"))


def test_test_connection_and_sync_now_actions(staff_client_factory, org, openai_fake,
                                              openai_connection):  # fmt: skip
    client = staff_client_factory(org, Role.OPS)
    changelist = url(ProviderConnection, "changelist")

    tested = act(client, changelist, "test_connection", openai_connection)
    openai_connection.refresh_from_db()
    assert openai_connection.status == ProviderConnection.Status.OK
    assert "Connected: the usage API answered." in tested.content.decode()

    # Tasks run inline in tests (Q_CLUSTER sync): usage, costs, then reconciliation.
    synced = act(client, changelist, "sync_now", openai_connection)
    assert synced.status_code == 200
    kinds = set(SyncRun.objects.filter(organization=org).values_list("kind", "status"))
    assert kinds == {("provider_usage", "succeeded"), ("provider_costs", "succeeded"),
                     ("reconciliation", "succeeded")}  # fmt: skip
    assert ProviderUsageBucket.objects.filter(organization=org).exists()

    openai_fake.admin_key = "sk-admin-revoked"
    failed = act(client, changelist, "test_connection", openai_connection)
    openai_connection.refresh_from_db()
    assert openai_connection.status == ProviderConnection.Status.FAILED
    assert "OpenAI refused the admin key (HTTP 401)" in failed.content.decode()


@pytest.mark.urls("tests.ingestion.providers.urls")
def test_reconciliation_api_lists_figures_as_decimal_strings(api_client_factory, org, both):
    mine, _ = both
    ReconciliationLine.objects.create(
        organization=org, provider="anthropic", day="2026-11-02", model="claude-haiku-4-5",
        variance=0, tolerance_percent=2, explanation="Within tolerance.",
    )  # fmt: skip
    ReconciliationLine.objects.create(
        organization=org, provider="openai", day="2026-11-01", model="mine-model", level="key",
        api_key_id="key_1", variance=0, tolerance_percent=2,
    )  # fmt: skip
    api = api_client_factory(org, scopes=("read",))

    everything = api.get(API)
    flagged = api.get(API, {"flagged": "true", "provider": "openai", "since": "2026-11-01",
                            "until": "2026-11-02"})  # fmt: skip
    keys = api.get(API, {"api_key_id": "key_1"})

    assert everything.status_code == 200
    assert [row["model"] for row in everything.json()["results"]] == [
        "claude-haiku-4-5",
        "mine-model",
    ]
    (row,) = flagged.json()["results"]
    assert row["model"] == "mine-model" and row["level"] == "model"
    assert (row["ledger_cost"], row["invoiced_cost"], row["variance"]) == (
        "1.000000000000",
        "1.100000000000",
        "0.100000000000",
    )
    assert (row["variance_percent"], row["tolerance_percent"]) == ("9.0909", "2.00")
    assert row["reasons"] == ["missing_events"] and row["flagged"] is True
    assert [r["api_key_id"] for r in keys.json()["results"]] == ["key_1"]
    assert api.get(API, {"flagged": "maybe"}).status_code == 400
    assert MARKER not in everything.content.decode()
    assert mine[ReconciliationLine].pk


@pytest.mark.urls("tests.ingestion.providers.urls")
def test_reconciliation_api_needs_the_read_scope(api_client_factory, org):
    assert api_client_factory(org, scopes=("ingest",)).get(API).status_code == 403
