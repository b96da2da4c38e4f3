"""The findings API: the prioritized list, triage, maker-checker remediation, weekly review.

Staff act through their session; service keys only read. Every workflow rule is the
services' (tests/findings/test_triage.py, test_remediation.py): these tests pin how the
API reaches them and answers their refusals.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.middleware import ACTIVE_ORGANIZATION_SESSION_KEY
from accounts.models import Role
from findings.models import (
    Budget,
    BudgetTransition,
    FindingActivity,
    FindingComment,
    FindingConfidence,
    FindingKind,
    FindingStatus,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationState,
    RemediationTransition,
)
from findings.services.remediation import remediation_create, remediation_submit
from findings.services.triage import DISMISS_REASON_REQUIRED
from tests.accounts.factories import (
    CustomerFactory,
    FeatureFactory,
    PlanFactory,
    ProviderKeyFactory,
    UserFactory,
)
from tests.findings.workflow_builders import finding_create, member

pytestmark = pytest.mark.django_db

D = Decimal
PERSON_REQUIRED = (
    "Triage and remediation actions are taken by a person: sign in as a staff member. "
    "A service key can read findings, remediation items and budgets, but not act on them."
)


# --- helpers --------------------------------------------------------------------------


@pytest.fixture
def people(org, roles):
    return {
        "ops": member(org, Role.OPS, username="olivia"),
        "ops2": member(org, Role.OPS, username="oscar"),
        "engineering": member(org, Role.ENGINEERING, username="eve"),
        "finance": member(org, Role.FINANCE, username="fiona"),
        "finance2": member(org, Role.FINANCE, username="frank"),
        "admin": member(org, Role.ADMIN, username="ada"),
        "root": member(org, Role.FINANCE, username="root", superuser=True),
    }


@pytest.fixture
def login(org):
    """A test client signed in as ``user``, working in ``organization`` (default: org)."""

    def make(user, organization=None) -> Client:
        client = Client()
        client.force_login(user)
        session = client.session
        session[ACTIVE_ORGANIZATION_SESSION_KEY] = (organization or org).pk
        session.save()
        return client

    return make


def post(client, path: str, data: dict | None = None):
    return client.post(path, data or {}, content_type="application/json")


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["status"] == status
    return body["error"]


def finding_url(finding, action: str = "") -> str:
    return f"/api/v1/findings/{finding.pk}/" + (f"{action}/" if action else "")


def item_url(item, action: str = "") -> str:
    return f"/api/v1/remediations/{item.pk}/" + (f"{action}/" if action else "")


def item_state(item) -> tuple:
    """Everything a refused decision must leave as it was."""
    item.refresh_from_db()
    return (
        item.state,
        item.decided_at,
        RemediationApproval.objects.filter(item=item).count(),
        RemediationTransition.objects.filter(item=item).count(),
    )


def pending_item(requester, organization, kind=RemediationKind.MODEL_SWAP, amount="1200.00"):
    item = remediation_create(
        actor=requester, organization=organization, kind=kind, title=f"{kind} item",
        estimated_monthly_savings=D(amount),
    )  # fmt: skip
    return remediation_submit(item=item, actor=requester)


# --- the list -------------------------------------------------------------------------


def test_list_shows_a_finding_with_its_fields(org, people, login):
    customer = CustomerFactory(organization=org, external_id="cust_1")
    feature = FeatureFactory(organization=org, key="support-triage")
    plan = PlanFactory(organization=org, code="pro")
    key = ProviderKeyFactory(organization=org, key_id="key_1", feature=feature)
    finding = finding_create(
        org, customer=customer, feature=feature, plan=plan, provider_key=key,
        owner=people["ops"], prompt_version="v3", evidence={"formula": "a × b", "a": "2"},
    )  # fmt: skip

    response = login(people["engineering"]).get("/api/v1/findings/")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row == {
        "id": finding.pk,
        "kind": "model_overkill",
        "category": "waste",
        "title": "gpt-4o on short classification in support-triage",
        "monthly_savings": "1200.00",
        "confidence": "high",
        "confidence_reason": "gpt-4o-mini serves the same feature at equal quality.",
        "evidence": {"formula": "a × b", "a": "2"},
        "remediation": "Swap gpt-4o for gpt-4o-mini on support-triage.",
        "remediation_kind": "model_swap",
        "status": "open",
        "owner": "olivia",
        "dismiss_reason": "",
        "snoozed_until": None,
        "auto_resolved": False,
        "customer_id": "cust_1",
        "feature": "support-triage",
        "plan": "pro",
        "api_key_id": "key_1",
        "provider": "openai",
        "model": "gpt-4o",
        "environment": "production",
        "prompt_version": "v3",
        "window_start": "2026-02-01",
        "window_end": "2026-03-01",
        "first_seen_at": "2026-03-02T15:30:00Z",
        "last_seen_at": "2026-03-02T15:30:00Z",
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


@pytest.fixture
def findings_set(org, people):
    """Four waste findings (two still open) and an alert, with distinct dollars and dates."""
    t = datetime(2026, 3, 1, tzinfo=UTC)
    return {
        "overkill": finding_create(
            org, monthly_savings=D("1200.00"), last_seen_at=t, owner=people["ops"]
        ),
        "batch": finding_create(
            org, kind=FindingKind.BATCH_ELIGIBILITY, monthly_savings=D("300.50"),
            confidence=FindingConfidence.MEDIUM, status=FindingStatus.ACKNOWLEDGED,
            last_seen_at=t + timedelta(days=3), owner=people["finance"],
        ),
        "staging": finding_create(
            org, kind=FindingKind.STAGING_ON_PRODUCTION_MODELS, monthly_savings=D("5000.00"),
            status=FindingStatus.DISMISSED, dismiss_reason="Load test", last_seen_at=t,
        ),
        "orphan": finding_create(
            org, kind=FindingKind.ORPHANED_SPEND, monthly_savings=D("80.00"),
            confidence=FindingConfidence.LOW, status=FindingStatus.RESOLVED,
            last_seen_at=t + timedelta(days=1),
        ),
        "drift": finding_create(
            org, kind=FindingKind.COST_DRIFT, monthly_savings=D("999.00"),
            last_seen_at=t + timedelta(days=2),
        ),
    }  # fmt: skip


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_is_highest_dollars_first_and_orders_on_request(people, login, findings_set):
    client = login(people["ops"])
    f = findings_set

    assert ids(client.get("/api/v1/findings/")) == [
        f["staging"].pk, f["overkill"].pk, f["drift"].pk, f["batch"].pk, f["orphan"].pk,
    ]  # fmt: skip
    assert ids(client.get("/api/v1/findings/?ordering=monthly_savings")) == [
        f["orphan"].pk, f["batch"].pk, f["drift"].pk, f["overkill"].pk, f["staging"].pk,
    ]  # fmt: skip
    # Ties on the date fall back to the id, so pages never overlap.
    assert ids(client.get("/api/v1/findings/?ordering=-last_seen_at")) == [
        f["batch"].pk, f["drift"].pk, f["orphan"].pk, f["overkill"].pk, f["staging"].pk,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=model_overkill", ["overkill"]),
        ("kind=model_overkill&kind=orphaned_spend", ["overkill", "orphan"]),
        ("category=alert", ["drift"]),
        ("category=waste", ["staging", "overkill", "batch", "orphan"]),
        ("status=open", ["overkill", "drift"]),
        ("status=open&status=acknowledged", ["overkill", "drift", "batch"]),
        ("confidence=medium", ["batch"]),
        ("confidence=high&category=waste&status=open", ["overkill"]),
        ("owner=fiona", ["batch"]),
        ("unassigned=true", ["staging", "drift", "orphan"]),
        ("min_savings=999", ["staging", "overkill", "drift"]),
        ("min_savings=300.50", ["staging", "overkill", "drift", "batch"]),
        ("owner=nobody", []),
    ],
)
def test_list_filters(people, login, findings_set, query, expected):
    response = login(people["ops"]).get(f"/api/v1/findings/?{query}")

    assert ids(response) == [findings_set[name].pk for name in expected]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("kind=bogus", {"kind": ["Select a valid choice. bogus is not one of the available "
                                 "choices."]}),
        ("category=neither", {"category": ["Select a valid choice. neither is not one of the "
                                           "available choices."]}),
        ("min_savings=lots", {"min_savings": ["Enter a number."]}),
        ("unassigned=maybe", {"unassigned": ["Use true or false."]}),
    ],
)  # fmt: skip
def test_invalid_filters_are_400(people, login, query, fields):
    response = login(people["ops"]).get(f"/api/v1/findings/?{query}")

    assert error(response, 400)["fields"] == fields


def test_summary_counts_open_waste_findings_whatever_the_filters(people, login, findings_set):
    client = login(people["finance"])

    for query in ("", "?category=alert", "?status=resolved&page_size=1"):
        summary = client.get(f"/api/v1/findings/{query}").json()["summary"]

        # Open waste: overkill 1,200.00 + batch 300.50 (acknowledged). Not the alert,
        # not the dismissed or resolved ones.
        assert summary == {
            "findings": 2,
            "monthly_savings": "1500.50",
            "text": "2 findings · $1,500.50/mo identified",
        }


def test_summary_of_an_organization_without_findings(people, login):
    summary = login(people["ops"]).get("/api/v1/findings/").json()["summary"]

    assert summary == {
        "findings": 0,
        "monthly_savings": "0.00",
        "text": "0 findings · $0.00/mo identified",
    }


def test_detail_has_the_activity_and_remediations(org, people, login):
    finding = finding_create(org)
    client = login(people["ops"])
    post(client, finding_url(finding, "acknowledge"), {"reason": "Looking"})
    post(client, "/api/v1/remediations/", {"finding": finding.pk})

    body = client.get(finding_url(finding)).json()

    assert [(a["actor"], a["action"], a["from_status"], a["to_status"], a["reason"])
            for a in body["activity"]] == [
        ("olivia", "status", "open", "acknowledged", "Looking"),
        ("olivia", "remediation", "acknowledged", "acknowledged",
         f"Remediation item #{finding.remediations.get().pk} requested: "
         "Model swap: gpt-4o on short classification in support-triage"),
    ]  # fmt: skip
    assert body["remediations"] == [
        {
            "id": finding.remediations.get().pk,
            "kind": "model_swap",
            "title": "Model swap: gpt-4o on short classification in support-triage",
            "state": "draft",
        }
    ]


def test_list_query_count_does_not_grow_with_rows(
    org, people, login, api_client_factory, django_assert_max_num_queries
):
    staff = login(people["ops"])
    key = api_client_factory(org, scopes=("read",))
    feature = FeatureFactory(organization=org)
    customer = CustomerFactory(organization=org)
    finding_create(org, feature=feature, customer=customer, owner=people["ops"])
    staff.get("/api/v1/findings/")  # warms the content-type and session caches

    for _ in range(30):
        finding_create(
            org, feature=feature, customer=customer, owner=people["finance"],
            provider_key=ProviderKeyFactory(organization=org, feature=feature),
            plan=PlanFactory(organization=org),
        )  # fmt: skip

    # session, user, memberships; count, page (scope rows and owner joined), summary
    with django_assert_max_num_queries(6):
        response = staff.get("/api/v1/findings/")
    assert response.json()["count"] == 31
    # the key; count, page, summary
    with django_assert_max_num_queries(4):
        response = key.get("/api/v1/findings/?page_size=100")
    assert len(response.json()["results"]) == 31


def test_remediation_list_query_count_does_not_grow_with_rows(
    org, people, login, django_assert_max_num_queries
):
    finance = login(people["finance"])
    pending_item(people["ops"], org)
    finance.get("/api/v1/remediations/")
    for n in range(15):
        item = pending_item(people["ops"], org, kind=RemediationKind.QUOTA, amount=f"{n}.00")
        post(finance, item_url(item, "approve"), {"reason": "ok"})

    # session, user, memberships; count, page (people and scope joined), approvals, log
    with django_assert_max_num_queries(7):
        response = finance.get("/api/v1/remediations/")
    assert response.json()["count"] == 16


# --- triage ---------------------------------------------------------------------------


def test_triage_moves_a_finding_through_its_statuses(org, people, login):
    finding = finding_create(org)
    client = login(people["ops"])

    steps = [
        ("acknowledge", {}, "acknowledged"),
        ("start", {"reason": "On it"}, "in_progress"),
        ("resolve", {"reason": "Swapped the model"}, "resolved"),
        ("reopen", {}, "open"),
        ("dismiss", {"reason": "Quality matters more here"}, "dismissed"),
        ("reopen", {"reason": "Quality was fine after all"}, "open"),
    ]
    for action, body, status in steps:
        response = post(client, finding_url(finding, action), body)

        assert response.status_code == 200, response.content
        assert response.json()["status"] == status

    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert finding.dismiss_reason == ""
    log = list(
        FindingActivity.objects.filter(finding=finding).values_list(
            "actor__username", "from_status", "to_status", "reason"
        )
    )
    assert log == [
        ("olivia", "open", "acknowledged", ""),
        ("olivia", "acknowledged", "in_progress", "On it"),
        ("olivia", "in_progress", "resolved", "Swapped the model"),
        ("olivia", "resolved", "open", ""),
        ("olivia", "open", "dismissed", "Quality matters more here"),
        ("olivia", "dismissed", "open", "Quality was fine after all"),
    ]


def test_dismiss_keeps_its_reason(org, people, login):
    finding = finding_create(org)

    response = post(
        login(people["finance"]), finding_url(finding, "dismiss"), {"reason": "  Contractual  "}
    )

    assert response.json()["status"] == "dismissed"
    assert response.json()["dismiss_reason"] == "Contractual"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_dismiss_without_a_reason_is_400_and_changes_nothing(org, people, login, body):
    finding = finding_create(org)

    response = post(login(people["ops"]), finding_url(finding, "dismiss"), body)

    assert error(response, 400)["fields"] == {"reason": [DISMISS_REASON_REQUIRED]}
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert not FindingActivity.objects.filter(finding=finding).exists()


def test_snooze_until_a_future_date(org, people, login):
    finding = finding_create(org)
    until = timezone.now().date() + timedelta(days=14)

    response = post(login(people["ops"]), finding_url(finding, "snooze"), {"until": str(until)})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "snoozed"
    assert response.json()["snoozed_until"] == until.isoformat()


@pytest.mark.parametrize(
    ("until", "message"),
    [
        (None, "This field is required."),
        ("next week", "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."),
        ("2020-01-01", "Snooze until a future date: 2020-01-01 is not after today"),
    ],
)
def test_snooze_needs_a_future_date(org, people, login, until, message):
    finding = finding_create(org)
    body = {} if until is None else {"until": until}

    response = post(login(people["ops"]), finding_url(finding, "snooze"), body)

    (text,) = error(response, 400)["fields"]["until"]
    assert text.startswith(message)
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN


def test_assign_and_unassign_by_username(org, people, login):
    finding = finding_create(org)
    client = login(people["ops"])

    assigned = post(client, finding_url(finding, "assign"), {"owner": "eve"})
    unassigned = post(client, finding_url(finding, "assign"), {"owner": None})

    assert assigned.json()["owner"] == "eve"
    assert unassigned.json()["owner"] is None
    assert FindingActivity.objects.filter(finding=finding, action="owner").count() == 2


def test_assign_to_someone_outside_the_organization_is_400(org, other_org, people, login):
    finding = finding_create(org)
    member(other_org, Role.OPS, username="rival-ops")
    UserFactory(username="loner")

    for username in ("rival-ops", "loner"):
        response = post(login(people["ops"]), finding_url(finding, "assign"), {"owner": username})

        assert error(response, 400)["fields"] == {
            "owner": [f"No user with username “{username}” in this organization."]
        }
    finding.refresh_from_db()
    assert finding.owner is None


def test_comments_are_added_and_listed(org, people, login):
    finding = finding_create(org)

    first = post(login(people["ops"]), finding_url(finding, "comments"), {"body": "Checking"})
    post(login(people["finance"]), finding_url(finding, "comments"), {"body": "Thanks"})
    listed = login(people["engineering"]).get(finding_url(finding, "comments"))

    assert first.status_code == 201
    assert first.json()["author"] == "olivia"
    assert listed.json()["count"] == 2
    assert [(c["author"], c["body"]) for c in listed.json()["results"]] == [
        ("olivia", "Checking"),
        ("fiona", "Thanks"),
    ]


def test_empty_comment_is_400(org, people, login):
    finding = finding_create(org)

    response = post(login(people["ops"]), finding_url(finding, "comments"), {"body": "  "})

    assert error(response, 400)["fields"] == {"body": ["A comment cannot be empty."]}
    assert not FindingComment.objects.exists()


def test_illegal_transition_is_409_with_the_reason(org, people, login):
    finding = finding_create(org, status=FindingStatus.RESOLVED)

    response = post(login(people["ops"]), finding_url(finding, "acknowledge"))

    assert error(response, 409) == {
        "status": 409,
        "code": "illegal_transition",
        "message": "A resolved finding cannot be acknowledged; it must be open first.",
    }
    finding.refresh_from_db()
    assert finding.status == FindingStatus.RESOLVED


def test_a_superuser_outside_the_organization_cannot_triage(org, people, login):
    finding = finding_create(org)
    outsider = UserFactory(username="root2", is_superuser=True)

    response = post(login(outsider), finding_url(finding, "acknowledge"))

    assert error(response, 403)["code"] == "permission_denied"
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN


# --- service keys ---------------------------------------------------------------------


@pytest.mark.parametrize("scopes", [("read",), ("read", "write")])
def test_service_key_reads_but_never_acts(org, people, api_client_factory, scopes):
    finding = finding_create(org)
    item = pending_item(people["ops"], org)
    key = api_client_factory(org, scopes=scopes)

    assert key.get("/api/v1/findings/").json()["count"] == 1
    assert key.get(finding_url(finding)).status_code == 200
    assert key.get(item_url(item)).json()["allowed_actions"] == []
    before = item_state(item)
    refused = [
        post(key, finding_url(finding, "acknowledge")),
        post(key, finding_url(finding, "dismiss"), {"reason": "x"}),
        post(key, finding_url(finding, "comments"), {"body": "x"}),
        post(key, "/api/v1/remediations/", {"finding": finding.pk}),
        key.patch(item_url(item), {"title": "x"}, format="json"),
        post(key, item_url(item, "approve")),
        post(key, item_url(item, "reject"), {"reason": "x"}),
    ]

    for response in refused:
        assert error(response, 403) == {
            "status": 403,
            "code": "permission_denied",
            "message": PERSON_REQUIRED,
        }
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert item_state(item) == before
    assert RemediationItem.objects.count() == 1
    assert not FindingComment.objects.exists()


# --- remediation items ----------------------------------------------------------------


def test_full_remediation_flow_through_the_api(org, people, login):
    plan = PlanFactory(organization=org, code="free")
    finding = finding_create(
        org, kind=FindingKind.FREE_TIER_SUBSIDY, title="Free tier costs $2,400/mo",
        monthly_savings=D("2400.00"), remediation="Cap free usage or reprice the free plan.",
        remediation_kind=RemediationKind.REPRICE_PLAN, plan=plan,
    )  # fmt: skip
    ops, finance = login(people["ops"]), login(people["finance"])

    created = post(ops, "/api/v1/remediations/", {"finding": finding.pk, "reason": "Worth it"})

    assert created.status_code == 201, created.content
    body = created.json()
    item_id = body["id"]
    assert body | {"created_at": None, "updated_at": None, "transitions": None} == {
        "id": item_id, "finding": finding.pk, "kind": "reprice_plan",
        "title": "Reprice plan: Free tier costs $2,400/mo",
        "description": "Cap free usage or reprice the free plan.", "parameters": {},
        "state": "draft", "needs_finance": True, "approvals_required": 1,
        "requested_by": "olivia", "estimated_monthly_savings": "2400.00",
        "realized_monthly_savings": None, "customer_id": None, "feature": None,
        "plan": "free", "api_key_id": None, "provider": "openai", "model": "gpt-4o",
        "environment": "production", "submitted_at": None, "decided_at": None,
        "implemented_at": None, "verified_at": None,
        "verification": {
            "baseline_start": None, "baseline_end": None, "baseline_daily_cost": None,
            "verification_start": None, "verification_end": None,
            "verified_daily_cost": None,
        },
        "approvals": [], "allowed_actions": ["cancel", "submit", "update"],
        "created_at": None, "updated_at": None, "transitions": None,
    }  # fmt: skip
    (created_log,) = body["transitions"]
    assert (created_log["actor"], created_log["from_state"], created_log["to_state"]) == (
        "olivia", "", "draft",
    )  # fmt: skip
    assert created_log["reason"] == "Worth it"

    edited = ops.patch(
        f"/api/v1/remediations/{item_id}/",
        {"parameters": {"plan": "free", "new_price": "9.00"}, "estimated_monthly_savings": "2000"},
        content_type="application/json",
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["estimated_monthly_savings"] == "2000.00"

    submitted = post(ops, f"/api/v1/remediations/{item_id}/submit/")
    assert submitted.json()["state"] == "pending_approval"
    assert submitted.json()["allowed_actions"] == ["cancel"]
    assert finance.get(f"/api/v1/remediations/{item_id}/").json()["allowed_actions"] == [
        "approve",
        "reject",
    ]

    approved = post(finance, f"/api/v1/remediations/{item_id}/approve/", {"reason": "Go"})
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "approved"
    (approval,) = approved.json()["approvals"]
    assert (approval["approver"], approval["decision"], approval["reason"]) == (
        "fiona", "approve", "Go",
    )  # fmt: skip

    implemented = post(ops, f"/api/v1/remediations/{item_id}/implement/", {"reason": "Live"})
    body = implemented.json()
    assert body["state"] == "implemented"
    assert body["implemented_at"] is not None
    assert (body["estimated_monthly_savings"], body["realized_monthly_savings"]) == (
        "2000.00", None,
    )  # fmt: skip
    assert [
        (t["actor"], t["from_state"], t["to_state"], t["reason"], t["amounts"])
        for t in body["transitions"]
    ] == [
        ("olivia", "", "draft", "Worth it",
         {"estimated_monthly_savings": "2400.00", "realized_monthly_savings": None}),
        ("olivia", "draft", "pending_approval",
         "Submitted: 1 approval(s) needed by finance or an admin",
         {"estimated_monthly_savings": "2000.00", "realized_monthly_savings": None}),
        ("fiona", "pending_approval", "approved", "Go",
         {"estimated_monthly_savings": "2000.00", "realized_monthly_savings": None}),
        ("olivia", "approved", "implemented", "Live",
         {"estimated_monthly_savings": "2000.00", "realized_monthly_savings": None}),
    ]  # fmt: skip

    too_early = post(ops, f"/api/v1/remediations/{item_id}/verify/")
    assert error(too_early, 409)["code"] == "verification_not_due"

    listed = finance.get("/api/v1/remediations/?state=implemented&needs_finance=true")
    assert [row["id"] for row in listed.json()["results"]] == [item_id]
    assert len(listed.json()["results"][0]["transitions"]) == 4


def test_create_from_scratch_needs_a_kind(org, people, login):
    response = post(login(people["ops"]), "/api/v1/remediations/", {"title": "Something"})

    (message,) = error(response, 400)["fields"]["kind"]
    assert message.startswith("Choose what kind of remediation this is")
    assert not RemediationItem.objects.exists()


def test_create_with_scope_by_natural_keys(org, people, login):
    customer = CustomerFactory(organization=org, external_id="cust_9")
    ProviderKeyFactory(organization=org, key_id="key_9", provider="openai")

    response = post(
        login(people["ops"]),
        "/api/v1/remediations/",
        {"kind": "revoke_key", "title": "Revoke key_9", "estimated_monthly_savings": "75.5",
         "api_key_id": "key_9", "customer_id": "cust_9", "provider": "openai"},
    )  # fmt: skip

    assert response.status_code == 201, response.content
    item = RemediationItem.objects.get()
    assert (item.provider_key.key_id, item.customer, item.estimated_monthly_savings) == (
        "key_9", customer, D("75.50"),
    )  # fmt: skip


def test_only_a_draft_can_be_edited_and_only_by_its_requester(org, people, login):
    item = remediation_create(
        actor=people["ops"], organization=org, kind="model_swap", title="Swap"
    )

    by_someone_else = login(people["ops2"]).patch(
        item_url(item), {"title": "Mine now"}, content_type="application/json"
    )
    assert (
        error(by_someone_else, 403)["message"] == "Only the requester (olivia) can edit this draft."
    )
    post(login(people["ops"]), item_url(item, "submit"))
    after_submit = login(people["ops"]).patch(
        item_url(item), {"title": "Changed"}, content_type="application/json"
    )

    assert error(after_submit, 409)["code"] == "item_locked"
    item.refresh_from_db()
    assert item.title == "Swap"


def test_requester_cannot_approve_their_own_item(org, people, login):
    """R5.1 through the API: 403 and not a single change."""
    item = pending_item(people["ops"], org)
    before = item_state(item)

    approve = post(login(people["ops"]), item_url(item, "approve"), {"reason": "LGTM"})
    reject = post(login(people["ops"]), item_url(item, "reject"), {"reason": "Hmm"})

    assert error(approve, 403) == {
        "status": 403,
        "code": "self_approval_forbidden",
        "message": "You requested this item, so you cannot approve it: someone else must "
        "(maker-checker).",
    }
    assert error(reject, 403)["code"] == "self_approval_forbidden"
    assert item_state(item) == before
    assert before[:3] == (RemediationState.PENDING_APPROVAL, None, 0)


def test_superuser_requester_cannot_approve_their_own_item(org, people, login):
    item = pending_item(people["root"], org, kind=RemediationKind.REPRICE_PLAN)
    before = item_state(item)

    response = post(login(people["root"]), item_url(item, "approve"))

    assert error(response, 403)["code"] == "self_approval_forbidden"
    assert item_state(item) == before


def test_ops_cannot_approve_a_pricing_action_and_finance_can(org, people, login):
    item = pending_item(people["engineering"], org, kind=RemediationKind.REPRICE_PLAN)
    before = item_state(item)

    refused = post(login(people["ops"]), item_url(item, "approve"))

    assert error(refused, 403) == {
        "status": 403,
        "code": "approval_permission_denied",
        "message": "Only finance or an admin can approve a pricing action (Reprice plan); "
        "your role is Ops.",
    }
    assert item_state(item) == before

    approved = post(login(people["finance"]), item_url(item, "approve"))

    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "approved"
    assert approved.json()["approvals"][0]["approver"] == "fiona"


def test_ops_may_approve_an_engineering_change(org, people, login):
    item = pending_item(people["engineering"], org, kind=RemediationKind.MODEL_SWAP)

    response = post(login(people["ops"]), item_url(item, "approve"))

    assert response.json()["state"] == "approved"


def test_a_decided_item_answers_409_to_the_next_approver(org, people, login):
    item = pending_item(people["ops"], org, kind=RemediationKind.QUOTA)
    post(login(people["finance"]), item_url(item, "approve"))
    before = item_state(item)

    late = post(login(people["finance2"]), item_url(item, "approve"))

    assert error(late, 409) == {
        "status": 409,
        "code": "already_decided",
        "message": "This item has already been approved; your decision was not recorded.",
    }
    assert item_state(item) == before


def test_reject_needs_a_reason(org, people, login):
    item = pending_item(people["ops"], org, kind=RemediationKind.REPRICE_PLAN)
    before = item_state(item)
    finance = login(people["finance"])

    without = post(finance, item_url(item, "reject"))
    assert error(without, 400)["fields"] == {
        "reason": ["Say why: a reason is required to reject an item."]
    }
    assert item_state(item) == before

    rejected = post(finance, item_url(item, "reject"), {"reason": "Too early"})
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["approvals"][0] | {"at": None} == {
        "approver": "fiona", "decision": "reject", "reason": "Too early", "at": None,
    }  # fmt: skip


def test_cancel_is_for_the_requester_or_an_admin(org, people, login):
    mine = remediation_create(actor=people["ops"], organization=org, kind="quota", title="A")
    other = remediation_create(actor=people["ops"], organization=org, kind="quota", title="B")

    refused = post(login(people["ops2"]), item_url(mine, "cancel"))
    by_requester = post(login(people["ops"]), item_url(mine, "cancel"))
    by_admin = post(login(people["admin"]), item_url(other, "cancel"))

    assert error(refused, 403)["message"] == (
        "Only the requester (olivia) or an admin can cancel this item."
    )
    assert by_requester.json()["state"] == "cancelled"
    assert by_admin.json()["state"] == "cancelled"


# --- other organizations --------------------------------------------------------------


def test_another_organization_sees_and_touches_nothing(
    org, other_org, people, login, api_client_factory
):
    finding = finding_create(org)
    item = pending_item(people["ops"], org)
    budget = Budget.objects.create(
        organization=org, name="Org", scope=Budget.Scope.ORGANIZATION, monthly_limit=D("10")
    )
    rival = member(other_org, Role.ADMIN, username="rival-admin")
    clients = [login(rival, other_org), api_client_factory(other_org, scopes=("read", "write"))]
    before = (item_state(item), FindingActivity.objects.count())

    for client in clients:
        listed = client.get("/api/v1/findings/").json()
        assert (listed["count"], listed["summary"]["findings"]) == (0, 0)
        assert client.get("/api/v1/remediations/").json()["count"] == 0
        assert client.get("/api/v1/budgets/").json()["count"] == 0
        for path in (finding_url(finding), item_url(item), f"/api/v1/budgets/{budget.pk}/"):
            assert error(client.get(path), 404)["message"] == "Not found."
        for path in (
            finding_url(finding, "acknowledge"),
            finding_url(finding, "comments"),
            item_url(item, "approve"),
            item_url(item, "cancel"),
        ):
            assert error(post(client, path, {"reason": "x", "body": "x"}), 404)["code"] == (
                "not_found"
            )

    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert (item_state(item), FindingActivity.objects.count()) == before


def test_a_finding_of_another_organization_cannot_seed_an_item(org, other_org, people, login):
    theirs = finding_create(other_org)

    response = post(login(people["ops"]), "/api/v1/remediations/", {"finding": theirs.pk})

    assert error(response, 400)["fields"] == {
        "finding": [f"No finding with id “{theirs.pk}” in this organization."]
    }
    assert not RemediationItem.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/findings/abc/", "/api/v1/findings/99999999999999999999/"]
)
def test_odd_ids_are_404(people, login, path):
    assert error(login(people["ops"]).get(path), 404)["message"] == "Not found."


# --- budgets --------------------------------------------------------------------------


def test_budgets_show_state_and_month_spend(org, people, login):
    feature = FeatureFactory(organization=org, key="summarize", name="Summarize")
    Budget.objects.create(
        organization=org, name="Summaries", scope=Budget.Scope.FEATURE, feature=feature,
        monthly_limit=D("1000.00"), warning_percent=80, state="warning",
        month=date(2026, 3, 1), month_spend=D("850.00"),
    )  # fmt: skip

    (row,) = login(people["ops"]).get("/api/v1/budgets/?state=warning").json()["results"]

    assert row | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None, "name": "Summaries", "scope": "feature", "scope_label": "Feature: Summarize",
        "customer_id": None, "feature": "summarize", "plan": None, "api_key_id": None,
        "monthly_limit": "1000.00", "warning_percent": 80, "active": True, "state": "warning",
        "month": "2026-03-01", "month_spend": "850.00", "percent_used": "85.0",
        "evaluated_at": None, "created_at": None, "updated_at": None,
    }  # fmt: skip


# --- weekly review --------------------------------------------------------------------


@pytest.fixture
def this_week(org, other_org, people):
    """A budget change and a pricing action this week, in org and (marked) in other_org."""
    today = timezone.now().astimezone(UTC).date()
    week_start = today - timedelta(days=today.weekday())
    for organization, prefix in ((org, ""), (other_org, "rival-")):
        budget = Budget.objects.create(
            organization=organization, name=f"{prefix}Support budget",
            scope=Budget.Scope.ORGANIZATION, monthly_limit=D("1000.00"),
        )  # fmt: skip
        BudgetTransition.objects.create(
            organization=organization, budget=budget, month=week_start.replace(day=1),
            from_state="ok", to_state="warning", spend=D("812.34"), limit=D("1000.00"),
        )  # fmt: skip
        requester = people["ops"] if organization == org else member(organization, Role.OPS)
        customer = CustomerFactory(
            organization=organization, external_id=f"{prefix}cust_1", name=f"{prefix}Bigco"
        )
        remediation_create(
            actor=requester, organization=organization, kind=RemediationKind.REPRICE_PLAN,
            title=f"{prefix}Reprice Bigco", customer=customer,
            estimated_monthly_savings=D("450.00"),
        )  # fmt: skip
    return week_start


def test_weekly_review_json(people, login, this_week):
    response = login(people["finance"]).get(
        f"/api/v1/findings/weekly-review/?week_start={this_week}"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["organization"], body["week_start"]) == ("Acme AI", this_week.isoformat())
    assert body["week_end"] == (this_week + timedelta(days=7)).isoformat()
    (change,) = body["budget_changes"]
    assert (change["budget_name"], change["from_state"], change["to_state"], change["spend"]) == (
        "Support budget", "ok", "warning", "812.34",
    )  # fmt: skip
    (action,) = body["tenant_actions"]
    assert (action["title"], action["customer_id"], action["estimated_monthly_savings"]) == (
        "Reprice Bigco", "cust_1", "450.00",
    )  # fmt: skip
    assert "rival" not in response.content.decode()


def test_weekly_review_csv(people, login, this_week, api_client_factory, org):
    for client in (login(people["finance"]), api_client_factory(org, scopes=("read",))):
        response = client.get(f"/api/v1/findings/weekly-review/?week_start={this_week}&format=csv")

        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == (
            f'attachment; filename="weekly-review-acme-{this_week}.csv"'
        )
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [(r["section"], r["subject"]) for r in rows] == [
            ("budget_change", "Support budget"),
            ("tenant_action", "Bigco"),
        ]
        assert rows[0]["cost"] == "812.34"


def test_weekly_review_markdown_by_accept_header(people, login, this_week):
    response = login(people["ops"]).get(
        f"/api/v1/findings/weekly-review/?week_start={this_week}", HTTP_ACCEPT="text/markdown"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("# Weekly review — Acme AI\n")
    assert "| Support budget | Organization | ok | warning | $812.34 | $1,000.00 |" in text
    assert "rival" not in text


@pytest.mark.parametrize("fmt", ["", "&format=csv", "&format=md"])
def test_weekly_review_bad_week_is_a_json_400(people, login, fmt):
    response = login(people["ops"]).get(f"/api/v1/findings/weekly-review/?week_start=soon{fmt}")

    assert response["Content-Type"] == "application/json"
    (message,) = error(response, 400)["fields"]["week_start"]
    assert message.startswith("Date has wrong format.")


def test_weekly_review_defaults_to_the_last_complete_week(people, login):
    today = timezone.now().astimezone(UTC).date()

    body = login(people["ops"]).get("/api/v1/findings/weekly-review/").json()

    assert body["week_start"] == (today - timedelta(days=today.weekday() + 7)).isoformat()
    assert body["budget_changes"] == body["tenant_actions"] == []
