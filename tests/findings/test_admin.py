"""The findings workflow in the admin: triage, remediation requests and approvals (maker-
checker through every admin path), the configuration screens, the weekly review.

Every step is driven through the admin's own URLs with the Django test client, as the
role that would take it; what changed (or did not) is read back from the database.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.middleware import ACTIVE_ORGANIZATION_SESSION_KEY
from accounts.models import Role
from accounts.roles import role_group_name
from findings.demo import findings_demo_workflow_seed
from findings.models import (
    Budget,
    DetectorRun,
    Finding,
    FindingActivity,
    FindingComment,
    FindingKind,
    FindingsPolicy,
    FindingStatus,
    NotificationDelivery,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationState,
    RemediationTransition,
    WebhookEndpoint,
)
from findings.review_export import weekly_review_csv, weekly_review_markdown
from findings.selectors_review import weekly_review
from findings.services.remediation import remediation_approve
from findings.services.triage import finding_assign
from tests.accounts.factories import CustomerFactory, FeatureFactory, PlanFactory
from tests.economics.builders import Row, snapshot_create
from tests.findings.workflow_builders import finding_create, item_in_state, member

pytestmark = pytest.mark.django_db

D = Decimal
FINDINGS = "/admin/findings/finding/"
ITEMS = "/admin/findings/remediationitem/"
REVIEW = "/admin/findings/finding/review/"
SERIES = [
    {"day": "2026-02-27", "cost": "40.123456789012"},
    {"day": "2026-02-28", "cost": "0"},
    {"day": "2026-03-01", "cost": "41.50"},
]
SELF_APPROVAL = "You requested this item, so you cannot approve it: someone else must"


@pytest.fixture
def people(org, roles):
    """One staff member per role, a second ops member, and a superuser who is an admin."""
    return {
        "ops": member(org, Role.OPS, username="olivia"),
        "ops2": member(org, Role.OPS, username="oscar"),
        "finance": member(org, Role.FINANCE, username="fiona"),
        "engineering": member(org, Role.ENGINEERING, username="erin"),
        "admin": member(org, Role.ADMIN, username="ada"),
        "root": member(org, Role.ADMIN, username="root", superuser=True),
    }


def login(user, organization) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[ACTIVE_ORGANIZATION_SESSION_KEY] = organization.pk
    session.save()
    return client


@pytest.fixture
def as_(org, people):
    clients = {}

    def get(name: str) -> Client:
        if name not in clients:
            clients[name] = login(people[name], org)
        return clients[name]

    return get


@pytest.fixture
def finding(org):
    """A $1,200/mo model-overkill finding on a feature and plan, with a 3-day series."""
    return finding_create(
        org,
        feature=FeatureFactory(organization=org, key="support-triage"),
        plan=PlanFactory(organization=org, code="pro", name="Pro"),
        evidence={"formula": "savings = (cost − alternative) × 30 ÷ days",
                  "window": {"start": "2026-02-01", "days": 28},
                  "alternative_model": "gpt-4o-mini", "series": SERIES},
    )  # fmt: skip


def page(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def follow_messages(client, response) -> list[str]:
    """The messages a redirect leaves for the next page."""
    assert response.status_code == 302, page(response)[:2000]
    return messages_of(client.get(response.url))


def state_of(item) -> tuple:
    """Everything maker-checker must leave untouched: state, approvals, log length."""
    item.refresh_from_db()
    return (
        item.state,
        RemediationApproval.objects.filter(item=item).count(),
        RemediationTransition.objects.filter(item=item).count(),
        item.decided_at,
    )


def chart_data(response) -> list[dict]:
    """Every Chart.js payload on the page (unfold's chart component: canvas data-value)."""
    return [
        json.loads(html.unescape(v)) for v in re.findall(r'data-value="([^"]*)"', page(response))
    ]


# --- the triage list -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ops", "finance", "engineering", "admin"])
def test_triage_list_renders_for_every_role_with_a_fixed_number_of_queries(
    org, as_, people, role, django_assert_num_queries
):
    for n in range(3):
        finding_create(org, title=f"waste {n}", owner=people["ops"],
                       monthly_savings=D("100.00") * (n + 1))  # fmt: skip
    client = as_(role)
    client.get(FINDINGS)  # warm the session and the content types

    with django_assert_num_queries(12):
        response = client.get(FINDINGS)
    assert response.status_code == 200
    assert "3 findings · $600.00/mo identified" in page(response)

    for n in range(20):
        finding_create(org, title=f"more {n}", owner=people["finance"], status="acknowledged")
    with django_assert_num_queries(12):
        response = client.get(FINDINGS)
    assert len(response.context["cl"].result_list) == 23


def test_triage_list_filters_by_category_savings_owner_and_searches(org, as_, people):
    big = finding_create(org, title="big waste", monthly_savings=D("12000.00"),
                         owner=people["ops"])  # fmt: skip
    small = finding_create(org, title="small waste", monthly_savings=D("40.00"))
    alert = finding_create(org, title="burst", kind=FindingKind.REQUEST_BURST,
                           monthly_savings=D("500.00"))  # fmt: skip
    client = as_("ops")

    def listed(**params) -> set[int]:
        response = client.get(FINDINGS, params)
        assert response.status_code == 200
        return {f.pk for f in response.context["cl"].result_list}

    assert listed(category="alert") == {alert.pk}
    assert listed(category="waste") == {big.pk, small.pk}
    assert listed(savings="10000+") == {big.pk}
    assert listed(savings="lt100") == {small.pk}
    assert listed(owner__id__exact=people["ops"].pk) == {big.pk}
    assert listed(kind__exact="request_burst") == {alert.pk}
    assert listed(q="burst") == {alert.pk}
    # Only waste counts in the header's identified dollars.
    assert "2 findings · $12,040.00/mo identified" in page(client.get(FINDINGS))


def post_action(client, action: str, findings, **extra):
    return client.post(
        FINDINGS,
        {"action": action, "_selected_action": [f.pk for f in findings], **extra},
    )


def test_bulk_acknowledge_reports_each_finding_and_skips_the_illegal_ones(org, as_):
    first, second = finding_create(org, title="first"), finding_create(org, title="second")
    done = finding_create(org, title="done already", status=FindingStatus.RESOLVED)
    client = as_("ops")

    response = post_action(client, "acknowledge_selected", [first, second, done])

    notes = follow_messages(client, response)
    assert "Acknowledged 2 findings." in notes
    assert (
        "“done already”: A resolved finding cannot be acknowledged; it must be open first." in notes
    )
    statuses = dict(Finding.objects.values_list("title", "status"))
    assert statuses == {
        "first": "acknowledged",
        "second": "acknowledged",
        "done already": "resolved",
    }
    assert FindingActivity.objects.filter(action="status", to_status="acknowledged").count() == 2


def test_bulk_dismiss_asks_for_a_reason_and_requires_one(org, as_, finding):
    client = as_("ops")

    form = post_action(client, "dismiss_selected", [finding])
    assert form.status_code == 200
    assert 'data-action-form="dismiss_selected"' in page(form)

    refused = post_action(client, "dismiss_selected", [finding], apply="1", reason="  ")
    assert refused.status_code == 200
    assert "This field is required." in page(refused)
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN

    done = post_action(client, "dismiss_selected", [finding], apply="1", reason="Known; accepted")
    assert "Dismissed 1 finding." in follow_messages(client, done)
    finding.refresh_from_db()
    assert (finding.status, finding.dismiss_reason) == ("dismissed", "Known; accepted")
    assert FindingActivity.objects.get(to_status="dismissed").reason == "Known; accepted"


def test_bulk_snooze_and_assign_go_through_the_services(org, as_, people, finding):
    client = as_("engineering")
    until = timezone.now().date() + timedelta(days=10)

    past = post_action(client, "snooze_selected", [finding], apply="1", until="2020-01-01")
    assert any("Snooze until a future date" in m for m in follow_messages(client, past))
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN

    post_action(client, "snooze_selected", [finding], apply="1", until=until.isoformat())
    finding.refresh_from_db()
    assert (finding.status, finding.snoozed_until) == ("snoozed", until)

    post_action(client, "assign_selected", [finding], apply="1", owner=people["ops2"].pk)
    finding.refresh_from_db()
    assert finding.owner == people["ops2"]
    outsider = member(PlanFactory().organization, Role.OPS, username="outsider")
    refused = post_action(client, "assign_selected", [finding], apply="1", owner=outsider.pk)
    assert refused.status_code == 200 and "Select a valid choice" in page(refused)
    finding.refresh_from_db()
    assert finding.owner == people["ops2"]


# --- one finding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "triage"), [("ops", True), ("engineering", True), ("admin", True), ("finance", False)]
)
def test_finding_page_shows_evidence_chart_and_the_steps_the_role_may_take(
    org, as_, people, finding, role, triage, django_assert_num_queries
):
    client = as_(role)
    finding_assign(finding=finding, actor=people["ops"], owner=people["ops2"])
    url = f"{FINDINGS}{finding.pk}/change/"
    client.get(url)

    # session, user, membership, finding (scope joined), permissions ×2, activity,
    # comments, remediation items, the sidebar's Stripe check ×2, owners (triage only)
    with django_assert_num_queries(12 if triage else 11):
        response = client.get(url)

    assert response.status_code == 200
    text = page(response)
    # The chart draws exactly the evidence's daily series (decimal strings, never floats).
    (chart,) = chart_data(response)
    assert chart["labels"] == [point["day"] for point in SERIES]
    assert chart["datasets"][0]["data"] == [point["cost"] for point in SERIES]
    assert "savings = (cost − alternative) × 30 ÷ days" in text
    assert "window › days" in text and "gpt-4o-mini" in text
    assert "$1,200.00/mo" in text
    # Detector-owned fields are never inputs.
    assert 'name="title"' not in text and 'name="monthly_savings"' not in text
    assert ('data-triage-action="acknowledge"' in text) is triage
    assert ("data-request-remediation" in text) is triage
    assert "data-comment-form" in text  # every role may comment


def test_triage_buttons_call_the_services_and_show_their_refusals(org, as_, finding):
    client = as_("ops")
    base = f"{FINDINGS}{finding.pk}/triage/"

    assert client.get(base + "acknowledge/").status_code == 405
    notes = follow_messages(client, client.post(base + "acknowledge/"))
    assert "Acknowledged: the finding is now acknowledged." in notes

    notes = follow_messages(client, client.post(base + "dismiss/", {"reason": ""}))
    assert "Say why the finding is dismissed: a reason is required." in notes
    finding.refresh_from_db()
    assert finding.status == FindingStatus.ACKNOWLEDGED

    client.post(base + "dismiss/", {"reason": "Expected traffic"})
    finding.refresh_from_db()
    assert (finding.status, finding.dismiss_reason) == ("dismissed", "Expected traffic")
    assert client.post(base + "teleport/").status_code == 404


def test_finance_reads_findings_but_cannot_triage_them(org, as_, finding):
    client = as_("finance")
    assert client.post(f"{FINDINGS}{finding.pk}/triage/acknowledge/").status_code == 403
    assert client.post(FINDINGS, {"action": "acknowledge_selected",
                                  "_selected_action": [finding.pk]}).status_code == 200  # fmt: skip
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN


def test_comments_are_added_through_the_service(org, as_, people, finding):
    client = as_("finance")
    url = f"{FINDINGS}{finding.pk}/comment/"

    assert "A comment cannot be empty." in follow_messages(client, client.post(url, {"body": " "}))
    client.post(url, {"body": "Margin impact looks real."})

    comment = FindingComment.objects.get(finding=finding)
    assert (comment.author, comment.body) == (people["finance"], "Margin impact looks real.")
    assert FindingActivity.objects.filter(finding=finding, action="comment").count() == 1
    assert "Margin impact looks real." in page(client.get(f"{FINDINGS}{finding.pk}/change/"))


# --- requesting remediation ----------------------------------------------------------------


def test_request_remediation_from_a_finding_creates_and_submits_through_the_services(
    org, as_, people, finding
):
    client = as_("ops")
    form = client.get(f"{ITEMS}add/?finding={finding.pk}")
    assert form.status_code == 200
    initial = form.context["form"].initial
    assert initial["kind"] == RemediationKind.MODEL_SWAP
    assert initial["estimated_monthly_savings"] == D("1200.00")
    assert initial["parameters"] == {"from_model": "gpt-4o", "to_model": "gpt-4o-mini"}

    response = client.post(f"{ITEMS}add/?finding={finding.pk}", {
        "kind": "model_swap", "title": "", "estimated_monthly_savings": "1100.00",
        "description": "Swap it", "parameters": '{"to_model": "gpt-4o-mini"}', "_submit": "1",
    })  # fmt: skip

    item = RemediationItem.objects.get()
    assert response.status_code == 302 and response.url == f"{ITEMS}{item.pk}/change/"
    assert (item.state, item.requested_by, item.finding) == (
        "pending_approval", people["ops"], finding,
    )  # fmt: skip
    assert item.title.startswith("Model swap: ")
    assert item.estimated_monthly_savings == D("1100.00")
    assert list(item.transitions.values_list("from_state", "to_state")) == [
        ("", "draft"), ("draft", "pending_approval"),
    ]  # fmt: skip


def test_request_form_reports_the_services_refusal_and_saves_nothing(org, as_, finding):
    client = as_("ops")
    response = client.post(f"{ITEMS}add/", {
        "kind": "reprice_plan", "title": "", "estimated_monthly_savings": "10",
        "parameters": "[1, 2]",
    })  # fmt: skip
    assert response.status_code == 200
    assert "Parameters must be a JSON object" in page(response)

    response = client.post(f"{ITEMS}add/", {
        "kind": "reprice_plan", "title": "", "estimated_monthly_savings": "10",
    })  # fmt: skip
    assert response.status_code == 200
    assert "Give the item a title." in page(response)
    assert RemediationItem.objects.count() == 0
    assert client.get(f"{ITEMS}add/?finding=999999").status_code == 404


def test_finance_does_not_request_items(org, as_, finding):
    assert as_("finance").get(f"{ITEMS}add/?finding={finding.pk}").status_code == 403


# --- maker-checker and roles on items --------------------------------------------------------


@pytest.fixture
def pricing_item(org, people, finding):
    """A reprice requested and submitted by ops: finance (or an admin) must approve it."""
    plan = PlanFactory(organization=org, code="enterprise", name="Enterprise")
    return item_in_state(
        RemediationState.PENDING_APPROVAL, requester=people["ops"], organization=org,
        kind=RemediationKind.REPRICE_PLAN, title="Reprice Enterprise", plan=plan,
        amount="900.00",
    )  # fmt: skip


@pytest.mark.parametrize("requester", ["ops", "root"])
def test_the_requester_cannot_approve_through_the_button_or_the_action(org, as_, people, requester):
    """R5.1 in the admin: the requester, superuser or not, is refused with the service's
    message by the button and by the bulk action, and nothing changes."""
    item = item_in_state(
        RemediationState.PENDING_APPROVAL, requester=people[requester], organization=org,
        kind=RemediationKind.MODEL_SWAP, title="Swap", amount="300.00",
    )  # fmt: skip
    client = as_(requester)
    before = state_of(item)

    change = page(client.get(f"{ITEMS}{item.pk}/change/"))
    assert 'data-item-action="approve"' not in change  # no button for the requester

    button = client.post(f"{ITEMS}{item.pk}/act/approve/")
    assert any(SELF_APPROVAL in m for m in follow_messages(client, button))
    assert state_of(item) == before

    action = client.post(ITEMS, {"action": "approve_selected", "_selected_action": [item.pk]})
    assert any(SELF_APPROVAL in m for m in follow_messages(client, action))
    assert state_of(item) == before

    reject = client.post(ITEMS, {"action": "reject_selected", "_selected_action": [item.pk],
                                 "apply": "1", "reason": "mine"})  # fmt: skip
    assert any("so you cannot reject it" in m for m in follow_messages(client, reject))
    assert state_of(item) == before


def test_ops_cannot_approve_a_pricing_item_and_sees_no_button(org, as_, pricing_item):
    client = as_("ops2")
    before = state_of(pricing_item)

    text = page(client.get(f"{ITEMS}{pricing_item.pk}/change/"))
    assert 'data-item-action="approve"' not in text
    assert 'data-item-action="reject"' not in text

    notes = follow_messages(client, client.post(f"{ITEMS}{pricing_item.pk}/act/approve/"))
    assert (
        "Only finance or an admin can approve a pricing action (Reprice plan); your role is Ops."
        in notes
    )
    action = client.post(ITEMS, {"action": "approve_selected",
                                 "_selected_action": [pricing_item.pk]})  # fmt: skip
    assert any("Only finance or an admin" in m for m in follow_messages(client, action))
    assert state_of(pricing_item) == before


def test_finance_approves_a_pricing_item_and_the_trail_shows_it(
    org, as_, people, pricing_item, django_assert_num_queries
):
    client = as_("finance")
    url = f"{ITEMS}{pricing_item.pk}/change/"
    client.get(url)
    # session, user, membership, item (joined, approvals counted), permissions ×2, the
    # allowed actions (role, own approval), approvals, transitions, Stripe check ×2
    with django_assert_num_queries(12):
        text = page(client.get(url))
    assert 'data-item-action="approve"' in text and 'data-item-action="reject"' in text

    notes = follow_messages(
        client, client.post(f"{ITEMS}{pricing_item.pk}/act/approve/", {"reason": "Fair"})
    )
    assert "Approved: “Reprice Enterprise” is now approved." in notes
    pricing_item.refresh_from_db()
    assert pricing_item.state == RemediationState.APPROVED
    approval = pricing_item.approvals.get()
    assert (approval.approver, approval.reason) == (people["finance"], "Fair")

    text = page(client.get(url))
    assert "pending_approval → approved" in text  # the transition log inline
    assert "draft → pending_approval" in text
    assert "fiona" in text  # the approver, in the approvals inline
    # Approved: no field of it is editable, for anyone.
    for name in ("finance", "ops"):
        text = page(as_(name).get(url))
        assert 'name="title"' not in text and 'name="estimated_monthly_savings"' not in text
    assert as_("ops").post(url, {"title": "changed"}).status_code == 403
    pricing_item.refresh_from_db()
    assert pricing_item.title == "Reprice Enterprise"


@pytest.mark.parametrize(
    ("role", "queries", "decides"),
    [("ops", 11, False), ("ops2", 11, False), ("engineering", 11, False), ("finance", 12, True),
     ("admin", 12, True)],
)  # fmt: skip
def test_item_page_renders_for_every_role_with_the_buttons_the_services_allow(
    org, as_, pricing_item, role, queries, decides, django_assert_num_queries
):
    client = as_(role)
    url = f"{ITEMS}{pricing_item.pk}/change/"
    client.get(url)
    with django_assert_num_queries(queries):
        response = client.get(url)
    assert response.status_code == 200
    text = page(response)
    assert ('data-item-action="approve"' in text) is decides
    assert ('data-item-action="reject"' in text) is decides
    assert ('data-item-action="cancel"' in text) is (role in ("ops", "admin"))
    assert 'name="title"' not in text  # submitted: frozen for everyone


def test_reject_needs_a_reason_and_records_it(org, as_, pricing_item):
    client = as_("finance")
    notes = follow_messages(client, client.post(f"{ITEMS}{pricing_item.pk}/act/reject/"))
    assert "Say why: a reason is required to reject an item." in notes
    assert state_of(pricing_item)[0] == RemediationState.PENDING_APPROVAL

    form = client.post(ITEMS, {"action": "reject_selected",
                               "_selected_action": [pricing_item.pk]})  # fmt: skip
    assert 'data-action-form="reject_selected"' in page(form)
    client.post(ITEMS, {"action": "reject_selected", "_selected_action": [pricing_item.pk],
                        "apply": "1", "reason": "Too steep"})  # fmt: skip
    pricing_item.refresh_from_db()
    assert pricing_item.state == RemediationState.REJECTED
    assert pricing_item.transitions.last().reason == "Too steep"


def test_two_approvals_above_the_threshold_each_by_someone_else(org, as_, people):
    item = item_in_state(
        RemediationState.PENDING_APPROVAL, requester=people["ops"], organization=org,
        kind=RemediationKind.QUOTA, title="Quota", amount="6000.00",
    )  # fmt: skip
    assert item.approvals_required == 2
    notes = follow_messages(as_("finance"), as_("finance").post(f"{ITEMS}{item.pk}/act/approve/"))
    assert (
        "Your approval of “Quota” is recorded; it needs 2 approvals by different people." in notes
    )
    assert 'data-item-action="approve"' not in page(as_("finance").get(f"{ITEMS}{item.pk}/change/"))
    as_("admin").post(f"{ITEMS}{item.pk}/act/approve/")
    item.refresh_from_db()
    assert item.state == RemediationState.APPROVED


def test_a_draft_is_edited_by_its_requester_only_through_the_service(org, as_, people):
    item = item_in_state(
        RemediationState.DRAFT, requester=people["ops"], organization=org,
        kind=RemediationKind.ENABLE_BATCH, title="Batch it", amount="200.00",
    )  # fmt: skip
    url = f"{ITEMS}{item.pk}/change/"
    form = {
        "title": "Batch the nightly digest", "kind": "enable_batch",
        "estimated_monthly_savings": "250.00", "description": "", "parameters": "{}",
        "plan": "", "customer": "", "feature": "",
        **{f"{prefix}-{key}": value for prefix in ("approvals", "transitions")
           for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"),
                              ("MIN_NUM_FORMS", "0"), ("MAX_NUM_FORMS", "0"))},
    }  # fmt: skip

    assert as_("ops2").post(url, form).status_code == 403  # another member: read-only
    assert 'name="title"' not in page(as_("ops2").get(url))
    assert 'name="title"' in page(as_("ops").get(url))

    response = as_("ops").post(url, form)
    assert response.status_code == 302, page(response)[:3000]
    item.refresh_from_db()
    assert (item.title, item.estimated_monthly_savings) == ("Batch the nightly digest", D("250.00"))
    assert item.transitions.count() == 1  # an edit is not a transition

    as_("ops").post(f"{ITEMS}{item.pk}/act/submit/")
    item.refresh_from_db()
    assert item.state == RemediationState.PENDING_APPROVAL
    assert as_("ops").post(url, {**form, "title": "again"}).status_code == 403


@pytest.mark.parametrize("role", ["ops", "finance", "engineering", "admin"])
def test_item_list_renders_for_every_role_with_a_fixed_number_of_queries(
    org, as_, people, role, django_assert_num_queries
):
    def make(n):
        for i in range(n):
            item_in_state(
                RemediationState.PENDING_APPROVAL, requester=people["engineering"],
                organization=org, kind=RemediationKind.ENABLE_CACHING, title=f"cache {i}",
                amount="100.00",
            )  # fmt: skip

    make(2)
    client = as_(role)
    client.get(ITEMS)
    with django_assert_num_queries(11):
        response = client.get(ITEMS)
    assert response.status_code == 200
    make(10)
    with django_assert_num_queries(11):
        response = client.get(ITEMS)
    assert len(response.context["cl"].result_list) == 12
    assert "0/1" in page(response)


def test_cancel_and_implement_buttons_follow_the_allowed_actions(org, as_, people):
    item = item_in_state(
        RemediationState.PENDING_APPROVAL, requester=people["ops"], organization=org,
        kind=RemediationKind.MODEL_SWAP, title="Swap", amount="300.00",
    )  # fmt: skip
    text = page(as_("ops").get(f"{ITEMS}{item.pk}/change/"))
    assert 'data-item-action="cancel"' in text and 'data-item-action="submit"' not in text
    remediation_approve(item=item, actor=people["engineering"])
    text = page(as_("ops2").get(f"{ITEMS}{item.pk}/change/"))
    assert 'data-item-action="implement"' in text and 'data-item-action="cancel"' not in text
    as_("ops2").post(f"{ITEMS}{item.pk}/act/implement/")
    item.refresh_from_db()
    assert item.state == RemediationState.IMPLEMENTED
    assert "Savings can be measured from" in page(as_("ops2").get(f"{ITEMS}{item.pk}/change/"))


# --- runs, deliveries and configuration ------------------------------------------------------


def test_ops_run_the_detectors_from_the_runs_list_and_finance_cannot(org, as_):
    runs = "/admin/findings/detectorrun/"
    assert "data-run-detectors" in page(as_("ops").get(runs))
    assert "data-run-detectors" not in page(as_("finance").get(runs))
    assert as_("finance").post(runs + "run/").status_code == 403

    response = as_("ops").post(runs + "run/")
    assert response.status_code == 302
    run = DetectorRun.objects.get(organization=org)
    assert (run.trigger, run.status) == ("admin", "succeeded")


def test_retry_now_makes_a_failed_delivery_due_again(org, as_):
    delivery = NotificationDelivery.objects.create(
        organization=org, event_type="finding.created", channel="email",
        recipient="ops@example.com", payload={}, status="failed", attempts=6,
    )  # fmt: skip
    client = as_("ops")
    response = client.post("/admin/findings/notificationdelivery/",
                           {"action": "retry_now", "_selected_action": [delivery.pk]})  # fmt: skip
    assert "Queued again 1 delivery." in follow_messages(client, response)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 5)
    # The delivery itself is a log: its page has no editable field.
    assert as_("admin").post(f"/admin/findings/notificationdelivery/{delivery.pk}/change/",
                             {"recipient": "x@example.com"}).status_code == 403  # fmt: skip


def test_budget_form_names_exactly_the_reference_its_scope_calls_for(org, as_):
    feature = FeatureFactory(organization=org, key="chat")
    plan = PlanFactory(organization=org, code="pro")
    client = as_("finance")
    base = {
        "name": "Chat budget",
        "monthly_limit": "500.00",
        "warning_percent": "80",
        "active": "on",
    }

    missing = client.post("/admin/findings/budget/add/", {**base, "scope": "feature"})
    assert "A feature budget names its feature." in page(missing)
    assert Budget.objects.count() == 0

    # A plan chosen before the scope became "feature" is hidden on the page, and dropped.
    done = client.post(
        "/admin/findings/budget/add/",
        {**base, "scope": "feature", "feature": feature.pk, "plan": plan.pk},
    )
    assert done.status_code == 302, page(done)[:3000]
    budget = Budget.objects.get()
    assert (budget.organization, budget.feature, budget.plan, budget.state) == (
        org, feature, None, "ok",
    )  # fmt: skip
    assert (
        as_("ops")
        .post("/admin/findings/budget/add/", {**base, "scope": "organization"})
        .status_code
        == 403
    )


def test_a_webhook_secret_is_shown_once_then_masked(org, as_):
    client = as_("engineering")
    response = client.post("/admin/findings/webhookendpoint/add/", {
        "url": "https://hooks.example.com/metron", "description": "Slack relay",
        "event_types": ["approval.requested"], "active": "on",
    })  # fmt: skip
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 30
    notes = follow_messages(client, response)
    assert any(endpoint.secret in m for m in notes)
    text = page(client.get(f"/admin/findings/webhookendpoint/{endpoint.pk}/change/"))
    assert endpoint.secret not in text
    assert f"whsec_…{endpoint.secret[-4:]}" in text


def test_findings_policy_validates_thresholds_and_shows_the_defaults(org, as_):
    policy_url = "/admin/findings/findingspolicy/"
    response = as_("finance").get(policy_url)
    policy = FindingsPolicy.objects.get(organization=org)
    assert response.url == f"{policy_url}{policy.pk}/change/"
    text = page(as_("finance").get(response.url))
    assert "data-thresholds" in text and "max_avg_output_tokens" in text
    form = {
        "min_monthly_savings": "25.00",
        "notify_min_savings": "500.00",
        "second_approval_threshold": "5000.00",
        "verification_days": "14",
        "notify_emails": "",
        "thresholds": '{"model_overkill": {"nope": 1}, "x": {}}',
    }

    bad = as_("finance").post(response.url, form)
    assert "model_overkill.nope: unknown threshold" in html.unescape(page(bad))
    assert "x: unknown rule" in page(bad)
    assert as_("ops").post(response.url, form).status_code == 403

    good = {**form, "thresholds": '{"model_overkill": {"max_avg_output_tokens": 200}}'}
    assert as_("finance").post(response.url, good).status_code == 302
    policy.refresh_from_db()
    assert policy.thresholds == {"model_overkill": {"max_avg_output_tokens": 200}}
    assert '<td class="fx-overridden">200</td>' in page(as_("ops").get(response.url))


def test_role_grants_never_delete_logs(roles):
    logs = ("findingactivity", "remediationtransition", "remediationapproval",
            "budgettransition", "notificationdelivery", "detectorrun", "finding",
            "remediationitem", "findingcomment")  # fmt: skip
    for role in Role:
        codenames = set(
            Group.objects.get(name=role_group_name(role))
            .permissions.filter(content_type__app_label="findings")
            .values_list("codename", flat=True)
        )
        assert {f"view_{name}" for name in logs} <= codenames, role
        assert not {f"delete_{name}" for name in logs} & codenames, role
    finance = set(Group.objects.get(name=role_group_name(Role.FINANCE)).permissions
                  .values_list("codename", flat=True))  # fmt: skip
    assert {"change_remediationitem", "change_findingspolicy"} <= finance
    assert not {"change_finding", "add_remediationitem"} & finance


# --- the weekly review -------------------------------------------------------------------------


def test_weekly_review_page_and_its_downloads(org, as_, people):
    week = date(2026, 3, 2)
    client = as_("finance")

    response = client.get(REVIEW, {"week": "2026-03-04"})  # any day picks its Monday
    assert response.status_code == 200
    text = page(response)
    assert 'data-week="2026-03-02"' in text
    for key in ("paths", "prompt-versions", "budgets", "tenant-actions", "outliers"):
        assert f'data-section="{key}"' in text
    assert "No economics snapshot covers this week" in text
    assert f"week={week.isoformat()}&amp;format=csv" in text

    expected = weekly_review(organization=org, week_start=week)
    download = client.get(REVIEW, {"week": "2026-03-02", "format": "csv"})
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        download["Content-Disposition"]
        == 'attachment; filename="weekly-review-acme-2026-03-02.csv"'
    )
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows == list(csv.reader(io.StringIO(weekly_review_csv(expected))))

    markdown = client.get(REVIEW, {"week": "2026-03-02", "format": "md"})
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    assert markdown.content.decode() == weekly_review_markdown(expected)

    assert client.get(REVIEW, {"week": "soon"}).status_code == 400


def test_weekly_review_lists_this_weeks_pricing_actions(org, as_, people, pricing_item):
    week = timezone.now().date() - timedelta(days=timezone.now().date().weekday())
    response = as_("ops").get(REVIEW, {"week": week.isoformat()})
    text = page(response)
    assert "Reprice Enterprise" in text
    assert f"{ITEMS}{pricing_item.pk}/change/" in text


def test_sidebar_links_the_workflow_screens(org, as_):
    text = page(as_("ops").get(REVIEW))
    for title in ("Findings triage", "Awaiting approval", "Weekly review"):
        assert title in text
    assert reverse("admin:findings_weekly_review") == REVIEW


# --- the demo's workflow in flight -----------------------------------------------------------


def test_demo_workflow_seed_leaves_items_in_flight_through_the_services(org, roles):
    staff = {role: member(org, role, username=role.value) for role in Role}
    pro = PlanFactory(organization=org, code="pro", name="Pro", price=D("499.00"))
    snapshot_create(
        org,
        rows=[
            Row(CustomerFactory(organization=org, name="Beacon"), pro, ai_cost="600.00",
                revenue="499.00", band="margin_negative", underwater=True),
            Row(CustomerFactory(organization=org, name="Calm"), pro, ai_cost="20.00",
                revenue="499.00"),
        ],
    )  # fmt: skip
    overkill = finding_create(org, title="opus on short answers", monthly_savings=D("800.00"),
                              evidence={"alternative_model": "claude-sonnet-4-5"})  # fmt: skip
    caching = finding_create(
        org, kind=FindingKind.PROMPT_CACHING_GAP, title="uncached prefix",
        remediation_kind=RemediationKind.ENABLE_CACHING, monthly_savings=D("300.00"),
    )  # fmt: skip

    summary = findings_demo_workflow_seed(organization=org)

    assert summary == (
        "workflow: a model swap pending approval, a Pro repricing pending finance approval, "
        "an approved caching change implemented"
    )
    items = {item.kind: item for item in RemediationItem.objects.all()}
    swap, reprice, cache = items["model_swap"], items["reprice_plan"], items["enable_caching"]
    assert (swap.state, swap.requested_by, swap.finding) == (
        "pending_approval", staff[Role.OPS], overkill,
    )  # fmt: skip
    assert swap.parameters == {"from_model": "gpt-4o", "to_model": "claude-sonnet-4-5"}
    # Beacon brought to the 40 % threshold: 600 ÷ 0.4 − 499 = 1,001 a month.
    assert (reprice.state, reprice.requested_by, reprice.plan) == (
        "pending_approval", staff[Role.OPS], pro,
    )  # fmt: skip
    assert reprice.needs_finance and reprice.estimated_monthly_savings == D("1001.00")
    assert (cache.state, cache.requested_by, cache.finding) == (
        "implemented", staff[Role.ENGINEERING], caching,
    )  # fmt: skip
    assert [a.approver for a in cache.approvals.all()] == [staff[Role.OPS]]
    overkill.refresh_from_db()
    caching.refresh_from_db()
    assert (overkill.status, overkill.owner) == ("acknowledged", staff[Role.OPS])
    assert (caching.status, caching.owner) == ("in_progress", staff[Role.ENGINEERING])

    assert findings_demo_workflow_seed(organization=org) == "workflow already seeded"
    assert RemediationItem.objects.count() == 3
