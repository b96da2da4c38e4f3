from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats

from accounts.models import Customer, CustomerPlan, Feature, Plan, ProviderKey
from accounts.selectors import customer_plan_at
from tests.accounts.factories import (
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    PlanFactory,
    ProviderKeyFactory,
)

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
TIMESTAMPS = ("created_at", "updated_at")


@pytest.fixture
def api(org, api_client_factory):
    return api_client_factory(org, scopes=("read", "write"))


def body(response) -> dict:
    data = response.json()
    for field in TIMESTAMPS:
        data.pop(field)
    return data


def result_keys(response, field) -> list:
    assert response.status_code == 200, response.json()
    return [row[field] for row in response.json()["results"]]


# --- customers ------------------------------------------------------------------------


def test_customer_create_opens_plan_and_ignores_organization(org, other_org, api):
    PlanFactory(organization=org, code="pro")

    response = api.post(
        "/api/v1/customers/",
        {
            "customer_id": "org:acme.eu",
            "name": "Acme EU",
            "stripe_customer_id": "cus_123",
            "segment": "enterprise",
            "region": "eu",
            "metadata": {"tier": "gold", "csm": ""},
            "started_on": "2026-01-15",
            "is_internal": False,
            "status": "trialing",
            "needs_review": True,
            "plan": "pro",
            "plan_from": "2026-01-01T00:00:00Z",
            "organization": other_org.pk,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(external_id="org:acme.eu")
    assert customer.organization == org
    assert body(response) == {
        "id": customer.pk,
        "customer_id": "org:acme.eu",
        "name": "Acme EU",
        "stripe_customer_id": "cus_123",
        "segment": "enterprise",
        "region": "eu",
        "metadata": {"tier": "gold", "csm": ""},
        "started_on": "2026-01-15",
        "is_internal": False,
        "status": "trialing",
        "needs_review": True,
        "plan": "pro",
    }
    period = CustomerPlan.objects.get(customer=customer)
    assert (period.plan.code, period.valid_from, period.valid_to) == ("pro", JAN, None)


def test_customer_create_defaults_name_to_customer_id(api):
    response = api.post("/api/v1/customers/", {"customer_id": "cust_9"}, format="json")

    assert response.status_code == 201
    assert response.json()["name"] == "cust_9"
    assert response.json()["plan"] is None


def test_customer_read_by_customer_id_and_by_id(org, api):
    customer = CustomerFactory(organization=org, external_id="tenant:42.eu")

    by_key = api.get("/api/v1/customers/tenant:42.eu/")
    by_id = api.get(f"/api/v1/customers/{customer.pk}/")

    assert by_key.status_code == by_id.status_code == 200
    assert by_key.json() == by_id.json()
    assert by_key.json()["id"] == customer.pk


def test_customer_lookup_prefers_customer_id_over_numeric_id(org, api):
    target = CustomerFactory(organization=org, external_id="cust_target")
    named_like_id = CustomerFactory(organization=org, external_id=str(target.pk))

    response = api.get(f"/api/v1/customers/{target.pk}/")

    assert response.json()["id"] == named_like_id.pk


def test_customer_unknown_lookup_is_404(org, api):
    CustomerFactory(organization=org, external_id="cust_1")

    assert api.get("/api/v1/customers/cust_2/").status_code == 404
    assert api.get("/api/v1/customers/999999999/").status_code == 404


def test_customer_patch_updates_fields(org, api):
    customer = CustomerFactory(organization=org, external_id="cust_1", name="Old")

    response = api.patch(
        "/api/v1/customers/cust_1/",
        {"name": "New", "status": "churned", "metadata": {"a": "b"}, "customer_id": "cust_1"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    customer.refresh_from_db()
    assert (customer.name, customer.status, customer.metadata) == ("New", "churned", {"a": "b"})
    assert response.json()["name"] == "New"


def test_customer_put_replaces_fields(org, api):
    customer = CustomerFactory(organization=org, external_id="cust_1", segment="smb")

    response = api.put(
        f"/api/v1/customers/{customer.pk}/",
        {"customer_id": "cust_1", "name": "Put", "segment": "enterprise"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    customer.refresh_from_db()
    assert (customer.name, customer.segment) == ("Put", "enterprise")


def test_customer_put_requires_customer_id(org, api):
    CustomerFactory(organization=org, external_id="cust_1")

    response = api.put("/api/v1/customers/cust_1/", {"name": "Put"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"customer_id": ["This field is required."]}


def test_customer_id_cannot_change(org, api):
    customer = CustomerFactory(organization=org, external_id="cust_1")

    response = api.patch("/api/v1/customers/cust_1/", {"customer_id": "cust_2"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "customer_id": ["customer_id cannot be changed once created."]
    }
    customer.refresh_from_db()
    assert customer.external_id == "cust_1"


def test_customer_duplicate_customer_id_is_400(org, api):
    CustomerFactory(organization=org, external_id="cust_1")

    response = api.post("/api/v1/customers/", {"customer_id": "cust_1"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "customer_id": ["A customer with customer_id 'cust_1' already exists in this organization."]
    }
    assert Customer.objects.filter(external_id="cust_1").count() == 1


def test_customer_same_customer_id_in_another_org_is_allowed(org, other_org, api):
    CustomerFactory(organization=other_org, external_id="cust_1")

    response = api.post("/api/v1/customers/", {"customer_id": "cust_1"}, format="json")

    assert response.status_code == 201
    assert Customer.objects.get(organization=org).external_id == "cust_1"


def test_customer_cannot_be_deleted(org, api):
    CustomerFactory(organization=org, external_id="cust_1")

    response = api.delete("/api/v1/customers/cust_1/")

    assert response.status_code == 405
    assert Customer.objects.filter(external_id="cust_1").exists()


def test_customer_plan_change_opens_new_period_and_history_resolves(org, api):
    PlanFactory(organization=org, code="free")
    PlanFactory(organization=org, code="pro")
    api.post(
        "/api/v1/customers/",
        {"customer_id": "cust_1", "plan": "free", "plan_from": JAN.isoformat()},
        format="json",
    )

    response = api.patch(
        "/api/v1/customers/cust_1/",
        {"plan": "pro", "plan_from": FEB.isoformat()},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["plan"] == "pro"
    customer = Customer.objects.get(external_id="cust_1")
    periods = [
        (p.plan.code, p.valid_from, p.valid_to)
        for p in CustomerPlan.objects.filter(customer=customer).order_by("valid_from")
    ]
    assert periods == [("free", JAN, FEB), ("pro", FEB, None)]
    assert customer_plan_at(customer=customer, at=JAN - timedelta(seconds=1)) is None
    assert customer_plan_at(customer=customer, at=JAN).code == "free"
    assert customer_plan_at(customer=customer, at=FEB - timedelta(seconds=1)).code == "free"
    assert customer_plan_at(customer=customer, at=FEB).code == "pro"
    assert customer_plan_at(customer=customer, at=MAR).code == "pro"


def test_customer_same_plan_again_keeps_history(org, api):
    plan = PlanFactory(organization=org, code="pro")
    customer = CustomerFactory(organization=org, external_id="cust_1")
    CustomerPlanFactory(customer=customer, plan=plan, valid_from=JAN)

    response = api.patch("/api/v1/customers/cust_1/", {"plan": "pro"}, format="json")

    assert response.status_code == 200
    assert CustomerPlan.objects.filter(customer=customer).count() == 1


def test_customer_plan_shows_plan_in_force_now(org, api):
    customer = CustomerFactory(organization=org, external_id="cust_1")
    CustomerPlanFactory(
        customer=customer, plan=PlanFactory(organization=org, code="old"), valid_from=JAN
    )
    future = datetime.now(tz=UTC) + timedelta(days=30)
    api.patch(
        "/api/v1/customers/cust_1/",
        {"plan": PlanFactory(organization=org, code="next").code, "plan_from": future.isoformat()},
        format="json",
    )

    assert api.get("/api/v1/customers/cust_1/").json()["plan"] == "old"


def test_customer_backdated_plan_change_is_400(org, api):
    customer = CustomerFactory(organization=org, external_id="cust_1")
    CustomerPlanFactory(
        customer=customer, plan=PlanFactory(organization=org, code="pro"), valid_from=FEB
    )
    PlanFactory(organization=org, code="free")

    response = api.patch(
        "/api/v1/customers/cust_1/", {"plan": "free", "plan_from": JAN.isoformat()}, format="json"
    )

    assert response.status_code == 400
    assert "already has a plan period" in response.json()["error"]["fields"]["non_field_errors"][0]
    assert CustomerPlan.objects.filter(customer=customer).count() == 1


def test_customer_plan_from_without_plan_is_400(api):
    response = api.post(
        "/api/v1/customers/",
        {"customer_id": "cust_1", "plan_from": JAN.isoformat()},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "plan_from": ["Send plan_from together with plan."]
    }


def test_customer_metadata_must_map_strings(api):
    response = api.post(
        "/api/v1/customers/", {"customer_id": "cust_1", "metadata": {"n": 1.5}}, format="json"
    )
    listed = api.post(
        "/api/v1/customers/", {"customer_id": "cust_1", "metadata": ["a"]}, format="json"
    )

    assert response.status_code == listed.status_code == 400
    assert response.json()["error"]["fields"] == {"metadata": {"n": ["Not a valid string."]}}
    assert listed.json()["error"]["fields"] == {
        "metadata": ['Expected a dictionary of items but got type "list".']
    }
    assert not Customer.objects.exists()


def test_customer_filters(org, api):
    pro = PlanFactory(organization=org, code="pro")
    a = CustomerFactory(
        organization=org,
        external_id="a",
        name="Alpha",
        status="active",
        segment="smb",
        region="eu",
        is_internal=False,
        needs_review=True,
        started_on=date(2025, 6, 1),
    )
    CustomerPlanFactory(customer=a, plan=pro, valid_from=JAN)
    CustomerFactory(
        organization=org,
        external_id="b",
        name="Beta",
        status="churned",
        segment="enterprise",
        region="us",
        is_internal=True,
        started_on=date(2026, 1, 1),
    )

    def ids(query):
        return result_keys(api.get(f"/api/v1/customers/?{query}"), "customer_id")

    assert ids("customer_id=a") == ["a"]
    assert ids("status=churned") == ["b"]
    assert ids("segment=smb") == ["a"]
    assert ids("region=us") == ["b"]
    assert ids("is_internal=true") == ["b"]
    assert ids("is_internal=false") == ["a"]
    assert ids("needs_review=true") == ["a"]
    assert ids("plan=pro") == ["a"]
    assert ids("plan=free") == []
    assert ids("started_on=2026-01-01") == ["b"]
    assert ids("started_after=2025-12-01") == ["b"]
    assert ids("started_before=2025-12-01") == ["a"]
    assert ids("search=bet") == ["b"]
    assert ids("ordering=-customer_id") == ["b", "a"]
    assert ids("ordering=name") == ["a", "b"]


# --- plans ----------------------------------------------------------------------------


def test_plan_create_and_read(org, api):
    response = api.post(
        "/api/v1/plans/",
        {
            "code": "pro",
            "name": "Pro",
            "price": "49.50",
            "currency": "EUR",
            "interval": "year",
            "stripe_price_ids": ["price_1", "price_2"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    plan = Plan.objects.get(code="pro")
    assert (plan.organization, plan.price) == (org, Decimal("49.50"))
    expected = {
        "id": plan.pk,
        "code": "pro",
        "name": "Pro",
        "price": "49.50",
        "currency": "EUR",
        "interval": "year",
        "is_free": False,
        "is_trial": False,
        "stripe_price_ids": ["price_1", "price_2"],
        "is_active": True,
    }
    assert body(response) == expected
    assert body(api.get("/api/v1/plans/pro/")) == expected
    assert body(api.get(f"/api/v1/plans/{plan.pk}/")) == expected


def test_plan_update_and_retire(org, api):
    plan = PlanFactory(organization=org, code="pro", price=Decimal("10.00"))

    response = api.patch(
        "/api/v1/plans/pro/", {"price": "12.00", "is_active": False}, format="json"
    )

    assert response.status_code == 200, response.json()
    plan.refresh_from_db()
    assert (plan.price, plan.is_active) == (Decimal("12.00"), False)


def test_plan_put_with_same_code(org, api):
    plan = PlanFactory(organization=org, code="pro")

    response = api.put(
        f"/api/v1/plans/{plan.pk}/",
        {"code": "pro", "name": "Professional", "price": "99.00"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    plan.refresh_from_db()
    assert (plan.name, plan.price) == ("Professional", Decimal("99.00"))


def test_plan_code_cannot_change(org, api):
    PlanFactory(organization=org, code="pro")

    response = api.patch("/api/v1/plans/pro/", {"code": "max"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"code": ["code cannot be changed once created."]}
    assert Plan.objects.filter(code="pro").exists()


def test_plan_duplicate_code_is_400(org, api):
    PlanFactory(organization=org, code="pro")

    response = api.post(
        "/api/v1/plans/", {"code": "pro", "name": "Pro 2", "price": "1.00"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "code": ["A plan with code 'pro' already exists in this organization."]
    }


def test_plan_negative_price_is_400(api):
    response = api.post(
        "/api/v1/plans/", {"code": "neg", "name": "Neg", "price": "-1.00"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "price": ["Ensure this value is greater than or equal to 0."]
    }


def test_plan_cannot_be_deleted(org, api):
    PlanFactory(organization=org, code="pro")

    assert api.delete("/api/v1/plans/pro/").status_code == 405
    assert Plan.objects.filter(code="pro").exists()


def test_plan_filters(org, api):
    PlanFactory(organization=org, code="free", price=Decimal("0"), is_free=True)
    PlanFactory(organization=org, code="trial", price=Decimal("0"), is_trial=True)
    PlanFactory(organization=org, code="pro", price=Decimal("49"), currency="EUR")
    PlanFactory(organization=org, code="legacy", price=Decimal("19"), is_active=False)

    def codes(query):
        return result_keys(api.get(f"/api/v1/plans/?{query}"), "code")

    assert codes("code=pro") == ["pro"]
    assert codes("is_free=true") == ["free"]
    assert codes("is_trial=1") == ["trial"]
    assert codes("is_active=false") == ["legacy"]
    assert codes("currency=EUR") == ["pro"]
    assert codes("search=leg") == ["legacy"]
    assert codes("ordering=-price") == ["pro", "legacy", "free", "trial"]


# --- features -------------------------------------------------------------------------


def test_feature_create_read_update(org, api):
    response = api.post(
        "/api/v1/features/",
        {"key": "semantic-search", "team": "search", "launched_on": "2026-02-01"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    feature = Feature.objects.get(key="semantic-search")
    assert feature.organization == org
    expected = {
        "id": feature.pk,
        "key": "semantic-search",
        "name": "semantic-search",
        "team": "search",
        "description": "",
        "status": "active",
        "launched_on": "2026-02-01",
        "needs_review": False,
    }
    assert body(response) == expected
    assert body(api.get(f"/api/v1/features/{feature.pk}/")) == expected

    retired = api.patch("/api/v1/features/semantic-search/", {"status": "retired"}, format="json")

    assert retired.status_code == 200
    feature.refresh_from_db()
    assert feature.status == "retired"


def test_feature_key_cannot_change_and_duplicates_are_refused(org, api):
    FeatureFactory(organization=org, key="search")

    changed = api.patch("/api/v1/features/search/", {"key": "find"}, format="json")
    duplicate = api.post("/api/v1/features/", {"key": "search"}, format="json")

    assert changed.status_code == duplicate.status_code == 400
    assert changed.json()["error"]["fields"] == {"key": ["key cannot be changed once created."]}
    assert duplicate.json()["error"]["fields"] == {
        "key": ["A feature with key 'search' already exists in this organization."]
    }


def test_feature_filters(org, api):
    FeatureFactory(organization=org, key="chat", name="Chat", team="core", needs_review=True)
    FeatureFactory(organization=org, key="summary", name="Summary", team="docs", status="retired")

    def keys(query):
        return result_keys(api.get(f"/api/v1/features/?{query}"), "key")

    assert keys("key=chat") == ["chat"]
    assert keys("status=retired") == ["summary"]
    assert keys("team=core") == ["chat"]
    assert keys("needs_review=true") == ["chat"]
    assert keys("needs_review=false") == ["summary"]
    assert keys("search=summ") == ["summary"]
    assert keys("ordering=-key") == ["summary", "chat"]


# --- provider keys --------------------------------------------------------------------


def test_provider_key_create_maps_feature_by_key(org, api):
    feature = FeatureFactory(organization=org, key="chat")

    response = api.post(
        "/api/v1/provider-keys/",
        {
            "provider": "anthropic",
            "key_id": "apikey_01.abc:x",
            "label": "Chat prod",
            "feature": "chat",
            "team": "core",
            "environment": "staging",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    key = ProviderKey.objects.get(key_id="apikey_01.abc:x")
    assert (key.organization, key.feature) == (org, feature)
    expected = {
        "id": key.pk,
        "provider": "anthropic",
        "key_id": "apikey_01.abc:x",
        "label": "Chat prod",
        "feature": "chat",
        "mapped": True,
        "team": "core",
        "environment": "staging",
        "status": "active",
        "last_seen_at": None,
    }
    assert body(response) == expected
    assert body(api.get("/api/v1/provider-keys/apikey_01.abc:x/")) == expected
    assert body(api.get(f"/api/v1/provider-keys/{key.pk}/")) == expected


def test_provider_key_unmap_and_revoke(org, api):
    key = ProviderKeyFactory(organization=org, key_id="key_1")

    response = api.patch(
        "/api/v1/provider-keys/key_1/", {"feature": None, "status": "revoked"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["feature"], response.json()["mapped"]) == (None, False)
    key.refresh_from_db()
    assert (key.feature, key.status) == (None, "revoked")


def test_provider_key_id_of_two_providers_needs_provider(org, api):
    openai = ProviderKeyFactory(organization=org, provider="openai", key_id="key_1")
    anthropic = ProviderKeyFactory(organization=org, provider="anthropic", key_id="key_1")

    ambiguous = api.get("/api/v1/provider-keys/key_1/")
    patched = api.patch("/api/v1/provider-keys/key_1/", {"label": "x"}, format="json")

    assert ambiguous.status_code == patched.status_code == 400
    assert ambiguous.json()["error"]["fields"] == {
        "key_id": ["'key_1' matches 2 rows; narrow it down with ?provider=."]
    }
    assert api.get("/api/v1/provider-keys/key_1/?provider=openai").json()["id"] == openai.pk
    assert api.get("/api/v1/provider-keys/key_1/?provider=anthropic").json()["id"] == anthropic.pk
    assert api.get(f"/api/v1/provider-keys/{openai.pk}/").json()["id"] == openai.pk


def test_provider_key_provider_and_key_id_cannot_change(org, api):
    ProviderKeyFactory(organization=org, provider="openai", key_id="key_1")

    response = api.patch(
        "/api/v1/provider-keys/key_1/", {"provider": "anthropic", "key_id": "key_2"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "provider": ["provider cannot be changed once created."],
        "key_id": ["key_id cannot be changed once created."],
    }


def test_provider_key_duplicate_is_400(org, api):
    ProviderKeyFactory(organization=org, provider="openai", key_id="key_1")

    duplicate = api.post(
        "/api/v1/provider-keys/", {"provider": "openai", "key_id": "key_1"}, format="json"
    )
    other_provider = api.post(
        "/api/v1/provider-keys/", {"provider": "anthropic", "key_id": "key_1"}, format="json"
    )

    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["fields"] == {
        "key_id": [
            "A provider key with provider 'openai' and key_id 'key_1' already exists "
            "in this organization."
        ]
    }
    assert other_provider.status_code == 201


def test_provider_key_unknown_feature_is_400(api):
    response = api.post(
        "/api/v1/provider-keys/",
        {"provider": "openai", "key_id": "key_1", "feature": "nope"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "feature": ["No feature with key “nope” in this organization."]
    }


def test_provider_key_filters(org, api):
    chat = FeatureFactory(organization=org, key="chat")
    ProviderKeyFactory(
        organization=org, provider="openai", key_id="k1", label="A", feature=chat, team="core"
    )
    ProviderKeyFactory(
        organization=org,
        provider="anthropic",
        key_id="k2",
        label="B",
        feature=None,
        environment="staging",
        status="revoked",
        team="labs",
    )

    def key_ids(query):
        return result_keys(api.get(f"/api/v1/provider-keys/?{query}"), "key_id")

    assert key_ids("provider=anthropic") == ["k2"]
    assert key_ids("key_id=k1") == ["k1"]
    assert key_ids("feature=chat") == ["k1"]
    assert key_ids("environment=staging") == ["k2"]
    assert key_ids("status=revoked") == ["k2"]
    assert key_ids("team=core") == ["k1"]
    assert key_ids("mapped=true") == ["k1"]
    assert key_ids("mapped=false") == ["k2"]
    assert key_ids("search=chat") == ["k1"]
    assert key_ids("ordering=-key_id") == ["k2", "k1"]


# --- lists: pagination and query counts -----------------------------------------------


def test_list_pagination_shape(org, api):
    for n in range(3):
        PlanFactory(organization=org, code=f"p{n}", price=Decimal(n))

    first = api.get("/api/v1/plans/?page_size=2")
    second = api.get("/api/v1/plans/?page_size=2&page=2")

    assert first.json() == {
        "count": 3,
        "next": "http://testserver/api/v1/plans/?page=2&page_size=2",
        "previous": None,
        "results": first.json()["results"],
    }
    assert [r["code"] for r in first.json()["results"]] == ["p0", "p1"]
    assert second.json()["next"] is None
    assert second.json()["previous"] == "http://testserver/api/v1/plans/?page_size=2"
    assert [r["code"] for r in second.json()["results"]] == ["p2"]


def test_list_page_size_is_capped(org, api, settings):
    Plan.objects.bulk_create(
        Plan(organization=org, code=f"p{n:03d}", name=f"P{n}", price=Decimal("1"))
        for n in range(settings.API_MAX_PAGE_SIZE + 2)
    )

    response = api.get("/api/v1/plans/?page_size=100000")

    assert settings.API_MAX_PAGE_SIZE == 500
    assert response.json()["count"] == 502
    assert len(response.json()["results"]) == 500
    assert response.json()["next"].endswith("page=2&page_size=100000")


def _seed(org, n):
    for _ in range(n):
        plan = PlanFactory(organization=org)
        customer = CustomerFactory(organization=org)
        CustomerPlanFactory(customer=customer, plan=plan)
        ProviderKeyFactory(organization=org)  # with its own feature


@pytest.mark.parametrize("path", ["customers", "plans", "features", "provider-keys"])
@pytest.mark.parametrize("rows", [1, 25])
def test_list_query_count_does_not_grow_with_rows(
    org, api, django_assert_max_num_queries, path, rows
):
    _seed(org, rows)

    # key lookup, count, page
    with django_assert_max_num_queries(3):
        response = api.get(f"/api/v1/{path}/")

    assert response.json()["count"] >= rows


@pytest.mark.parametrize("path", ["customers", "plans", "features", "provider-keys"])
def test_list_query_count_for_staff_session(
    org, staff_client_factory, django_assert_max_num_queries, path
):
    client = staff_client_factory(org)
    _seed(org, 1)
    client.get(f"/api/v1/{path}/")  # the first request warms the content-type cache
    _seed(org, 20)

    # session, user, memberships, user and group permissions, count, page
    with django_assert_max_num_queries(7):
        response = client.get(f"/api/v1/{path}/")

    assert response.json()["count"] >= 21


# --- OpenAPI --------------------------------------------------------------------------


def test_openapi_schema_has_no_warnings(tmp_path):
    reset_generator_stats()

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3")


def test_openapi_schema_documents_lookup_and_no_delete(client):
    response = client.get("/api/schema/?format=json")

    paths = response.json()["paths"]
    detail = paths["/api/v1/customers/{customer_id}/"]
    (parameter,) = detail["get"]["parameters"]
    assert parameter["description"] == (
        "The customer_id (matched first) or, if no row has that customer_id and the value "
        "is all digits, Metron's numeric id."
    )
    assert sorted(detail) == ["get", "patch", "put"]
    assert sorted(paths["/api/v1/provider-keys/"]) == ["get", "post"]
    assert detail["patch"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PatchedCustomerRequest"
    }
