from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Plan, ServiceAPIKey
from tests.accounts.factories import PlanFactory, service_key
from tests.test_api_tenancy import LIST_ROUTES

pytestmark = pytest.mark.django_db

INVALID = {"status": 401, "code": "authentication_failed", "message": "Invalid API key."}


def key_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return client


def database_dump() -> str:
    """Every row of every table in the schema, as JSON text (what ``pg_dump`` would hold)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        chunks = []
        for table in tables:
            cursor.execute(f"SELECT row_to_json(t)::text FROM {connection.ops.quote_name(table)} t")
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def test_database_holds_no_plaintext_key(org, other_org):
    plaintexts = [
        service_key(organization, scopes=("read", "ingest"), name=f"key {n}")[1]
        for n in range(20)
        for organization in (org, other_org)
    ]

    dump = database_dump()

    assert ServiceAPIKey.objects.count() == 40
    for plaintext in plaintexts:
        prefix, secret = plaintext.split(".")
        assert prefix in dump  # the dump does see the key rows
        assert plaintext not in dump
        assert secret not in dump
    for hashed in ServiceAPIKey.objects.values_list("hashed_key", flat=True):
        assert hashed.startswith("sha512$$")
        assert len(hashed) == len("sha512$$") + 128


def test_key_is_shown_by_no_api_response(org, api_client_factory):
    api = api_client_factory(org)
    _, other_plaintext = service_key(org, scopes=("read",))

    for route in LIST_ROUTES:
        text = api.get(reverse(route.name)).content.decode()

        assert api.plaintext_key.split(".")[1] not in text
        assert other_plaintext.split(".")[1] not in text


def test_revoked_key_is_refused_on_next_request(org):
    key, plaintext = service_key(org, scopes=("read",))
    client = key_client(plaintext)
    assert client.get("/api/v1/plans/").status_code == 200

    services.service_key_revoke(key=key)
    response = client.get("/api/v1/plans/")

    assert response.status_code == 401
    assert response.json() == {"error": INVALID}


def test_expired_key_is_refused(org):
    _, plaintext = service_key(org, scopes=("read",), expiry_date=timezone.now() - timedelta(1))

    response = key_client(plaintext).get("/api/v1/plans/")

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "status": 401,
            "code": "authentication_failed",
            "message": "This API key has expired.",
        }
    }


def test_key_expiring_after_use_is_refused_on_next_request(org):
    key, plaintext = service_key(org, scopes=("read",), expiry_date=timezone.now() + timedelta(1))
    client = key_client(plaintext)
    assert client.get("/api/v1/plans/").status_code == 200

    ServiceAPIKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - timedelta(1))

    assert client.get("/api/v1/plans/").status_code == 401


def test_revocation_cannot_be_undone_by_the_model(org):
    key, _ = service_key(org)
    services.service_key_revoke(key=key)
    key = ServiceAPIKey.objects.get(pk=key.pk)

    key.revoked = False
    with pytest.raises(ValidationError, match="cannot be undone"):
        key.save()

    assert ServiceAPIKey.objects.get(pk=key.pk).revoked is True


def test_revocation_cannot_be_undone_by_a_queryset_update(org):
    key, plaintext = service_key(org)
    services.service_key_revoke(key=key)

    with pytest.raises(IntegrityError, match="revocation cannot be undone"), transaction.atomic():
        ServiceAPIKey.objects.filter(pk=key.pk).update(revoked=False)

    assert ServiceAPIKey.objects.get(pk=key.pk).revoked is True
    assert key_client(plaintext).get("/api/v1/plans/").status_code == 401


def test_read_only_key_cannot_write(org):
    PlanFactory(organization=org, code="pro", name="Pro")
    _, plaintext = service_key(org, scopes=("read",))
    client = key_client(plaintext)

    created = client.post(
        "/api/v1/plans/", {"code": "max", "name": "Max", "price": "9.00"}, format="json"
    )
    patched = client.patch("/api/v1/plans/pro/", {"name": "Renamed"}, format="json")

    assert created.status_code == patched.status_code == 403
    assert created.json() == {
        "error": {
            "status": 403,
            "code": "permission_denied",
            "message": "This API key lacks the 'write' scope.",
        }
    }
    assert list(Plan.objects.values_list("code", "name")) == [("pro", "Pro")]


def test_write_only_key_cannot_read(org):
    _, plaintext = service_key(org, scopes=("write",))

    response = key_client(plaintext).get("/api/v1/plans/")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This API key lacks the 'read' scope."


@pytest.mark.parametrize("route", LIST_ROUTES, ids=str)
def test_ingest_only_key_cannot_read(org, route):
    _, plaintext = service_key(org, scopes=("ingest",))
    if getattr(route.view, "scopes", {}).get("GET") == ServiceAPIKey.Scope.INGEST:
        pytest.skip(f"{route} is an ingest route")

    response = key_client(plaintext).get(reverse(route.name))

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This API key lacks the 'read' scope."


def test_key_lookup_is_one_query(org, django_assert_num_queries):
    PlanFactory(organization=org)
    _, plaintext = service_key(org, scopes=("read",))
    client = key_client(plaintext)

    # key (with its organization), count, page
    with django_assert_num_queries(3) as captured:
        response = client.get("/api/v1/plans/")

    assert response.status_code == 200
    key_queries = [q["sql"] for q in captured.captured_queries if "serviceapikey" in q["sql"]]
    assert len(key_queries) == 1
    assert '"accounts_organization"' in key_queries[0]


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key",
        "Api-Key ",
        "Api-Key nodot",
        "Api-Key abc.def",
        "Api-Key ..",
        "Bearer abc.def",
        "api-key abc.def",
        "random",
        "",
    ],
)
def test_malformed_or_unknown_key_is_401_json(org, header):
    response = APIClient().get("/api/v1/plans/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    error = response.json()["error"]
    assert error["status"] == 401
    assert error["code"] in ("authentication_failed", "not_authenticated")
    assert error["message"] in (
        "Invalid API key.",
        "Authentication credentials were not provided.",
    )


def test_right_prefix_wrong_secret_is_401(org):
    _, plaintext = service_key(org, scopes=("read",))
    prefix = plaintext.split(".")[0]

    response = key_client(f"{prefix}.{'x' * 32}").get("/api/v1/plans/")

    assert response.status_code == 401
    assert response.json() == {"error": INVALID}
