"""Nothing of another organization can be read or changed through the API.

Routes come from the URL resolver, so a route added later is swept automatically;
a route whose model has no row in ``other_org_rows`` or no body in
``create_payload`` fails here until it gets one. References to other rows are
found in each view's input serializer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework import serializers

from accounts.models import Customer, CustomerPlan, Feature, Plan, ProviderKey, Role
from economics.models import CustomerEconomics, EconomicsSnapshot
from findings.api.views import FindingsAccess
from findings.models import Budget, Finding, RemediationItem
from findings.services.remediation import remediation_create, remediation_submit
from ingestion.models import DailyUsage, ReconciliationLine, RevenueLine, UsageEvent
from ingestion.services.ingest import usage_events_ingest
from ingestion.services.revenue import manual_revenue_entry_create
from tests.accounts.factories import (
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    PlanFactory,
    ProviderKeyFactory,
)
from tests.economics.helpers import customer_economics_create, snapshot_create
from tests.findings.workflow_builders import finding_create, member
from tests.ingestion.providers.objects import build_provider_objects

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
MARKER = "zz-rival-only"  # in every natural key of the other organization's rows


@dataclass(frozen=True)
class Route:
    name: str
    view: type
    methods: tuple[str, ...]
    kwargs: tuple[str, ...]

    @property
    def is_detail(self) -> bool:
        return bool(self.kwargs)

    @property
    def model(self):
        queryset = getattr(self.view, "queryset", None)
        return getattr(self.view, "model", None) or getattr(queryset, "model", None)

    def __str__(self) -> str:
        return self.name


def api_routes() -> list[Route]:
    """Every route under /api/v1/, read from the URL resolver."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIX):
                view = pattern.callback.cls
                actions = getattr(pattern.callback, "actions", None)
                methods = (
                    tuple(actions)
                    if actions
                    else tuple(m for m in view.http_method_names if hasattr(view, m))
                )
                kwargs = tuple(pattern.pattern.regex.groupindex)
                found.append(Route(pattern.name, view, methods, kwargs))

    walk(get_resolver().url_patterns, "")
    return found


ROUTES = api_routes()
LIST_ROUTES = [r for r in ROUTES if not r.is_detail and "get" in r.methods]
DETAIL_ROUTES = [r for r in ROUTES if r.is_detail]
CREATE_ROUTES = [r for r in ROUTES if not r.is_detail and "post" in r.methods]


def writes_need_a_person(route, client) -> bool:
    """Findings workflow writes are a person's: a service key is refused them (403)."""
    return hasattr(client, "plaintext_key") and FindingsAccess in route.view.permission_classes


def other_row(rows, route):
    if route.model not in rows:
        pytest.fail(f"Add a {route.model} row of the other organization for {route}.")
    return rows[route.model]


def other_org_rows(other_org) -> dict:
    """One row of every API model in the other organization, named with MARKER."""
    plan = PlanFactory(organization=other_org, code=f"{MARKER}-plan", name=f"{MARKER} plan")
    customer = CustomerFactory(
        organization=other_org, external_id=f"{MARKER}-customer", name=f"{MARKER} customer"
    )
    CustomerPlanFactory(customer=customer, plan=plan, valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    feature = FeatureFactory(organization=other_org, key=f"{MARKER}-feature", name=MARKER)
    key = ProviderKeyFactory(
        organization=other_org, key_id=f"{MARKER}-key", label=MARKER, feature=feature
    )
    usage_events_ingest(
        organization=other_org,
        raw_events=[
            {
                "event_id": f"{MARKER}-event", "timestamp": timezone.now().isoformat(),
                "customer_id": customer.external_id, "feature": feature.key,
                "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5,
            }
        ],
    )  # fmt: skip
    entry = manual_revenue_entry_create(
        organization=other_org, customer=customer, period_start=date(2026, 1, 1),
        period_end=date(2026, 2, 1), amount=Decimal("100.00"), currency="USD",
        description=MARKER,
    )  # fmt: skip
    # June: newer than the caller's own May, so an unscoped "latest" would pick it.
    economics = snapshot_create(
        other_org, period_start=date(2026, 6, 1), period_end=date(2026, 7, 1), label=MARKER
    )
    customer_economics = customer_economics_create(
        economics, customer, plan, ai_cost="9", revenue="10", band="at_risk", underwater=True,
        profitability="profitable",
        feature_costs=[{"feature_id": feature.pk, "feature": feature.key, "name": MARKER,
                        "cost": "9"}],
    )  # fmt: skip
    finding = finding_create(
        other_org, title=f"{MARKER} finding", fingerprint=MARKER, customer=customer,
        feature=feature, plan=plan, provider_key=key,
    )  # fmt: skip
    item = remediation_submit(
        item=remediation_create(
            actor=member(other_org, username=f"{MARKER}-ops"), finding=finding,
            kind="reprice_plan", title=f"{MARKER} item",
        ),
        actor=finding.remediations.get().requested_by,
    )  # fmt: skip
    budget = Budget.objects.create(
        organization=other_org, name=f"{MARKER} budget", scope=Budget.Scope.FEATURE,
        feature=feature, monthly_limit=Decimal("100.00"),
    )  # fmt: skip
    return {
        Customer: customer, Plan: plan, Feature: feature, ProviderKey: key,
        EconomicsSnapshot: economics, CustomerEconomics: customer_economics,
        RevenueLine: RevenueLine.objects.get(manual_entry=entry),
        UsageEvent: UsageEvent.objects.get(organization=other_org),
        DailyUsage: DailyUsage.objects.get(organization=other_org),
        ReconciliationLine: build_provider_objects(other_org, MARKER)[ReconciliationLine],
        Finding: finding, RemediationItem: item, Budget: budget,
    }  # fmt: skip


def create_payload(model, suffix: str) -> dict:
    """A valid create body for ``model``'s route; natural keys end with ``suffix``."""
    payloads = {
        Customer: {"customer_id": f"new-customer-{suffix}"},
        Plan: {"code": f"new-plan-{suffix}", "name": "New", "price": "1.00"},
        Feature: {"key": f"new-feature-{suffix}"},
        ProviderKey: {"provider": "openai", "key_id": f"new-key-{suffix}"},
        RevenueLine: {
            "customer_id": "own-customer", "period_start": "2026-01-01",
            "period_end": "2026-02-01", "amount": "100.00", "currency": "USD",
            "description": f"offline {suffix}",
        },
        UsageEvent: {
            "event_id": f"new-event-{suffix}", "timestamp": timezone.now().isoformat(),
            "provider": "openai", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1,
        },
        # Findings have no create; this is the body of their triage actions.
        Finding: {"reason": f"triage {suffix}", "until": "2099-01-01", "body": suffix},
        RemediationItem: {
            "kind": "model_swap", "title": f"new item {suffix}",
            "estimated_monthly_savings": "10.00",
        },
        Budget: {"name": f"new budget {suffix}"},  # read-only: never sent
    }  # fmt: skip
    if model not in payloads:
        pytest.fail(f"Add a create payload for {model.__name__} to the tenancy test.")
    return payloads[model]


def reference_fields(route) -> list[tuple[str, serializers.SlugRelatedField]]:
    """The writable fields of ``route`` that name another row by its natural key."""
    serializer_class = getattr(route.view, "input_serializer_class", None)
    if serializer_class is None:
        return []
    return [
        (name, field)
        for name, field in serializer_class().fields.items()
        if isinstance(field, serializers.SlugRelatedField) and not field.read_only
    ]


def foreign_references(route, rows) -> list[tuple[str, str, str]]:
    """(field, value, expected error) naming the other organization's rows, by key and by id."""
    references = []
    for name, field in reference_fields(route):
        model = field.queryset.model
        if model not in rows:
            pytest.fail(f"Add a {model} row of the other organization for {route}.{name}.")
        row = rows[model]
        for value in (getattr(row, field.slug_field), str(row.pk)):
            message = field.error_messages["does_not_exist"].format(
                slug_name=field.slug_field, value=value
            )
            references.append((name, value, message))
    return references


SNAPSHOT_MODELS = sorted(
    {route.model for route in ROUTES if route.model} | {CustomerPlan},
    key=lambda model: model._meta.label,
)


def snapshot(organization) -> dict:
    """Every API-reachable row of ``organization``, field by field."""
    return {
        model.__name__: [
            model_to_dict(row) | {"updated_at": getattr(row, "updated_at", None)}
            for row in model.objects.filter(organization=organization).order_by("pk")
        ]
        for model in SNAPSHOT_MODELS
    }


def send(client, method: str, path: str, data=None):
    if data is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, data=json.dumps(data), content_type="application/json")


@pytest.fixture(params=["service_key", "staff_session"])
def client_a(request, org, api_client_factory, staff_client_factory):
    if request.param == "service_key":
        return api_client_factory(org, scopes=("read", "write", "ingest"))
    return staff_client_factory(org, Role.ADMIN)


@pytest.fixture
def rows_b(other_org):
    return other_org_rows(other_org)


@pytest.fixture
def rows_a(org):
    """Rows of the caller's own organization, so lists are not trivially empty."""
    plan = PlanFactory(organization=org, code="own-plan")
    customer = CustomerFactory(organization=org, external_id="own-customer")
    CustomerPlanFactory(customer=customer, plan=plan)
    FeatureFactory(organization=org, key="own-feature")
    ProviderKeyFactory(organization=org, key_id="own-key")
    economics = snapshot_create(org)  # May 2026
    customer_economics_create(
        economics, customer, plan, ai_cost="1", revenue="10", band="healthy", underwater=False,
        profitability="profitable",
    )  # fmt: skip
    finding = finding_create(org, title="own finding")
    remediation_create(actor=member(org, username="own-requester"), finding=finding)
    Budget.objects.create(
        organization=org, name="own budget", scope=Budget.Scope.ORGANIZATION,
        monthly_limit=Decimal("100.00"),
    )  # fmt: skip


# Routes answering one object of figures, not a list of rows.
OBJECT_ROUTES = {"economics-summary-list", "finding-weekly-review-list"}


def test_every_api_route_is_swept():
    names = {route.name for route in ROUTES}

    assert {"customer-list", "customer-detail", "plan-list", "plan-detail"} <= names
    assert {"feature-list", "feature-detail", "provider-key-list", "provider-key-detail"} <= names
    for route in ROUTES:
        assert route.model is not None, f"{route} names no model; set `model` on its view"


@pytest.mark.parametrize("route", LIST_ROUTES, ids=str)
def test_list_never_shows_other_organization(route, client_a, rows_a, rows_b, other_org):
    path = reverse(route.name)

    for query in ("", f"?search={MARKER}", "?page_size=500"):
        response = client_a.get(path + query)

        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert MARKER not in text
        assert other_org.name not in text
        other = other_row(rows_b, route)
        public = route.view.lookup_url_kwarg or route.view.lookup_field
        rows = [] if route.name in OBJECT_ROUTES else response.json()["results"]
        listed = {str(row.get(public, row.get("id"))) for row in rows}
        assert str(getattr(other, route.view.lookup_field)) not in listed


@pytest.mark.parametrize("route", LIST_ROUTES, ids=str)
def test_list_filter_by_other_organization_key_is_empty(route, client_a, rows_b):
    row = other_row(rows_b, route)
    lookup_param = route.view.lookup_url_kwarg
    filterset = getattr(route.view, "filterset_class", None)
    if filterset is None or lookup_param not in filterset.base_filters:
        pytest.skip(f"{route} has no ?{lookup_param}= filter")
    value = getattr(row, route.view.lookup_field)

    response = client_a.get(reverse(route.name) + f"?{lookup_param}={value}")

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
@pytest.mark.parametrize("by", ["natural_key", "id"])
def test_detail_of_other_organization_is_404_and_unchanged(
    route, by, client_a, rows_a, rows_b, org, other_org
):
    row = other_row(rows_b, route)
    value = getattr(row, route.view.lookup_field) if by == "natural_key" else str(row.pk)
    path = reverse(route.name, kwargs={route.kwargs[0]: value})
    before = snapshot(other_org)
    own_before = snapshot(org)
    payload = create_payload(route.model, "hijack") | {"name": "hijacked", "label": "hijacked"}

    for method in route.methods:
        data = payload if method in ("post", "put", "patch") else None

        response = send(client_a, method, path, data)

        assert response.status_code == 404, (method, response.content)
        assert response.json()["error"] == {
            "status": 404,
            "code": "not_found",
            "message": "Not found.",
        }
        assert MARKER not in response.content.decode()
    assert snapshot(other_org) == before
    assert snapshot(org) == own_before


@pytest.mark.parametrize("route", CREATE_ROUTES, ids=str)
def test_create_with_other_organization_in_body_lands_in_own(
    route, client_a, rows_a, org, other_org
):
    claims = {"organization": other_org.pk, "organization_id": other_org.pk}
    payload = create_payload(route.model, "org")
    # An event names no organization at all (an unknown field is rejected), so the
    # claim goes on the batch envelope, which must ignore it.
    body = {"events": [payload]} | claims if route.model is UsageEvent else payload | claims

    count_before = route.model.objects.filter(organization=org).count()

    response = send(client_a, "post", reverse(route.name), body)

    if writes_need_a_person(route, client_a):
        assert response.status_code == 403, response.content
        assert route.model.objects.filter(organization=org).count() == count_before
        assert not route.model.objects.filter(organization=other_org).exists()
        return
    if route.model is UsageEvent and not hasattr(client_a, "plaintext_key"):
        # Usage arrives from services with an ingest key; staff sessions cannot send it.
        assert response.status_code == 403, response.content
        assert not UsageEvent.objects.filter(event_id=payload["event_id"]).exists()
        return
    if route.model is UsageEvent:  # a batch answer: per-event outcomes, not the row
        assert response.status_code == 200, response.content
        created = UsageEvent.objects.get(event_id=payload["event_id"])
    else:
        assert response.status_code == 201, response.content
        created = route.model.objects.get(pk=response.json()["id"])
    assert created.organization_id == org.pk
    assert not route.model.objects.filter(organization=other_org).exists()


@pytest.mark.parametrize("route", [r for r in CREATE_ROUTES if reference_fields(r)], ids=str)
def test_create_referencing_other_organization_rows_is_400(route, client_a, rows_b, org):
    references = foreign_references(route, rows_b)
    count_before = route.model.objects.filter(organization=org).count()

    for field, value, message in references:
        payload = create_payload(route.model, "fk") | {field: value}

        response = send(client_a, "post", reverse(route.name), payload)

        if writes_need_a_person(route, client_a):
            assert response.status_code == 403, response.content
            continue
        assert response.status_code == 400, response.content
        assert response.json()["error"]["fields"] == {field: [message]}
    assert route.model.objects.filter(organization=org).count() == count_before


@pytest.mark.parametrize(
    "route", [r for r in DETAIL_ROUTES if "patch" in r.methods and reference_fields(r)], ids=str
)
def test_update_referencing_other_organization_rows_is_400(route, client_a, rows_a, rows_b, org):
    references = foreign_references(route, rows_b)
    own = route.model.objects.filter(organization=org).first()
    path = reverse(route.name, kwargs={route.kwargs[0]: str(own.pk)})
    before = snapshot(org)

    for field, value, message in references:
        response = send(client_a, "patch", path, {field: value})

        if writes_need_a_person(route, client_a):
            assert response.status_code == 403, response.content
            continue
        assert response.status_code == 400, response.content
        assert response.json()["error"]["fields"] == {field: [message]}
    assert snapshot(org) == before
