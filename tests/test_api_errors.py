"""Bad input gets a clear 4xx in the one error shape, never a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Customer, Plan, Role
from metron.api.viewsets import NaturalKeyViewSet
from tests.accounts.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(org, api_client_factory):
    return api_client_factory(org, scopes=("read", "write"))


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["status"] == status
    return body["error"]


def test_malformed_json_is_400(api):
    response = api.post("/api/v1/plans/", '{"code": "pro", ', content_type="application/json")

    err = error(response, 400)
    assert err["code"] == "parse_error"
    assert err["message"].startswith("JSON parse error")
    assert not Plan.objects.exists()


def test_json_that_is_not_an_object_is_400(api):
    response = api.post("/api/v1/plans/", "[1, 2]", content_type="application/json")

    assert error(response, 400)["fields"] == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }


def test_unsupported_media_type_is_415(api):
    response = api.post("/api/v1/plans/", "code=pro", content_type="text/plain")

    assert error(response, 415)["code"] == "unsupported_media_type"


def test_wrong_types_are_400_per_field(api):
    response = api.post(
        "/api/v1/plans/",
        {
            "code": "not a slug!",
            "name": ["x"],
            "price": "abc",
            "is_free": "maybe",
            "stripe_price_ids": "price_1",
            "interval": "weekly",
        },
        format="json",
    )

    err = error(response, 400)
    assert err["code"] == "invalid"
    assert err["message"] == "Invalid input."
    assert err["fields"] == {
        "code": ['Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.'],
        "name": ["Not a valid string."],
        "price": ["A valid number is required."],
        "is_free": ["Must be a valid boolean."],
        "stripe_price_ids": ['Expected a list of items but got type "str".'],
        "interval": ['"weekly" is not a valid choice.'],
    }


def test_customer_wrong_types_are_400(api):
    response = api.post(
        "/api/v1/customers/",
        {"customer_id": {"a": 1}, "started_on": "garbage", "plan_from": "soon", "plan": "x"},
        format="json",
    )

    fields = error(response, 400)["fields"]
    assert fields["customer_id"] == ["Not a valid string."]
    assert fields["started_on"][0].startswith("Date has wrong format.")
    assert fields["plan_from"][0].startswith("Datetime has wrong format.")
    assert not Customer.objects.exists()


def test_duplicate_created_concurrently_is_400_not_500(org, api, monkeypatch):
    CustomerFactory(organization=org, external_id="cust_1")
    # As if another request committed cust_1 after this one's checks ran:
    # only the database constraint is left to notice.
    monkeypatch.setattr(NaturalKeyViewSet, "_refuse_taken_natural_key", lambda self, data: None)
    monkeypatch.setattr(Customer, "validate_constraints", lambda self, exclude=None: None)

    response = api.post("/api/v1/customers/", {"customer_id": "cust_1"}, format="json")

    assert error(response, 400)["fields"] == {
        "customer_id": ["A customer with customer_id 'cust_1' already exists in this organization."]
    }
    assert Customer.objects.filter(external_id="cust_1").count() == 1


def test_unknown_plan_code_is_400(api):
    response = api.post(
        "/api/v1/customers/", {"customer_id": "cust_1", "plan": "nope"}, format="json"
    )

    assert error(response, 400)["fields"] == {
        "plan": ["No plan with code “nope” in this organization."]
    }
    assert not Customer.objects.exists()


def test_missing_required_fields_are_400(api):
    response = api.post("/api/v1/plans/", {}, format="json")

    assert error(response, 400)["fields"] == {
        "code": ["This field is required."],
        "name": ["This field is required."],
        "price": ["This field is required."],
    }


def test_overlong_values_are_400(api):
    response = api.post("/api/v1/customers/", {"customer_id": "x" * 256}, format="json")

    assert error(response, 400)["fields"] == {
        "customer_id": ["Ensure this field has no more than 255 characters."]
    }


def test_nul_characters_are_400(api):
    response = api.post(
        "/api/v1/customers/",
        {"customer_id": "a\u0000b", "metadata": {"k\u0000": "v"}},
        format="json",
    )

    fields = error(response, 400)["fields"]
    assert fields["customer_id"] == ["Null characters are not allowed."]
    assert fields["metadata"] == ["Metadata keys must be non-empty strings without NUL characters."]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", ""])
def test_malformed_page_is_400(org, api, page):
    PlanFactory(organization=org)

    response = api.get(f"/api/v1/plans/?page={page}")

    assert error(response, 400)["fields"] == {"page": ["Use a whole number from 1."]}


def test_page_past_the_end_is_404(org, api):
    PlanFactory(organization=org)

    err = error(api.get("/api/v1/plans/?page=999"), 404)

    assert err == {"status": 404, "code": "not_found", "message": "Invalid page."}


def test_last_page_keyword_works(org, api):
    PlanFactory(organization=org)

    assert api.get("/api/v1/plans/?page=last").status_code == 200


@pytest.mark.parametrize("page_size", ["abc", "0", "-5", "1e3", ""])
def test_malformed_page_size_is_400(org, api, page_size):
    response = api.get(f"/api/v1/plans/?page_size={page_size}")

    assert error(response, 400)["fields"] == {"page_size": ["Use a whole number from 1."]}


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("is_internal=maybe", {"is_internal": ["Use true or false."]}),
        ("needs_review=yes", {"needs_review": ["Use true or false."]}),
        ("started_on=garbage", {"started_on": ["Enter a valid date."]}),
        ("started_after=2026-13-01", {"started_after": ["Enter a valid date."]}),
        (
            "status=bogus",
            {"status": ["Select a valid choice. bogus is not one of the available choices."]},
        ),
    ],
)
def test_invalid_filter_values_are_400(org, api, query, fields):
    CustomerFactory(organization=org)

    response = api.get(f"/api/v1/customers/?{query}")

    assert error(response, 400)["fields"] == fields


def test_invalid_provider_key_filter_is_400(api):
    response = api.get("/api/v1/provider-keys/?mapped=sometimes&environment=moon")

    assert error(response, 400)["fields"] == {
        "mapped": ["Use true or false."],
        "environment": ["Select a valid choice. moon is not one of the available choices."],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope/",
        "/api/nope",
        "/api/v1/customers/a/b/",
        "/api/v2/customers/",
    ],
)
def test_unknown_api_route_is_json_404(api, path):
    assert error(api.get(path), 404) == {
        "status": 404,
        "code": "not_found",
        "message": "Not found.",
    }


@pytest.mark.parametrize(
    "lookup", ["cust_missing", "99999999999999999999999999", "%00", "9223372036854775808"]
)
def test_unknown_or_odd_lookup_is_404(org, api, lookup):
    CustomerFactory(organization=org, external_id="cust_1")

    assert error(api.get(f"/api/v1/customers/{lookup}/"), 404)["message"] == "Not found."


def test_delete_is_405(org, api):
    CustomerFactory(organization=org, external_id="cust_1")

    err = error(api.delete("/api/v1/customers/cust_1/"), 405)

    assert err == {
        "status": 405,
        "code": "method_not_allowed",
        "message": 'Method "DELETE" not allowed.',
    }


def test_unauthenticated_is_401(org):
    err = error(APIClient().get("/api/v1/customers/"), 401)

    assert err == {
        "status": 401,
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }


def test_staff_role_without_permission_is_403(org, staff_client_factory):
    client = staff_client_factory(org, Role.ENGINEERING)

    listed = client.get("/api/v1/plans/")
    created = client.post(
        "/api/v1/plans/",
        {"code": "pro", "name": "Pro", "price": "1.00"},
        content_type="application/json",
    )

    assert listed.status_code == 200
    assert error(created, 403) == {
        "status": 403,
        "code": "permission_denied",
        "message": "You do not have permission to perform this action.",
    }
    assert not Plan.objects.exists()


def test_staff_role_may_write_what_the_role_grants(org, staff_client_factory):
    client = staff_client_factory(org, Role.FINANCE)

    response = client.post(
        "/api/v1/plans/",
        {"code": "pro", "name": "Pro", "price": "1.00"},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert Plan.objects.get().organization == org


def test_non_staff_session_is_403(org, client, django_user_model):
    user = django_user_model.objects.create_user("outsider", password="x", is_staff=False)
    client.force_login(user)

    err = error(client.get("/api/v1/customers/"), 403)

    assert err["code"] == "permission_denied"
