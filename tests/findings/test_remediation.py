"""Remediation items: requested from findings, approved maker-checker, one winner under races."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import Role
from findings.models import (
    FindingActivity,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationTransition,
)
from findings.models import RemediationState as S
from findings.services import notifications
from findings.services.errors import (
    ApprovalPermissionDenied,
    ConcurrentDecision,
    IllegalTransition,
    ItemLocked,
    SelfApprovalForbidden,
    WorkflowError,
    WorkflowPermissionDenied,
)
from findings.services.remediation import (
    remediation_allowed_actions,
    remediation_approve,
    remediation_cancel,
    remediation_create,
    remediation_implement,
    remediation_reject,
    remediation_submit,
    remediation_update,
)
from findings.services.roles import can_approve
from tests.accounts.factories import (
    CustomerFactory,
    FeatureFactory,
    OrganizationFactory,
    PlanFactory,
    UserFactory,
)
from tests.findings.workflow_builders import (
    T0,
    finding_create,
    item_create,
    item_in_state,
    member,
    policy_set,
)

D = Decimal
PRICING = [RemediationKind.REPRICE_PLAN, RemediationKind.RESTRUCTURE_PLAN, RemediationKind.QUOTA]


@pytest.fixture
def people(org):
    """One member per role, a superuser member, and a superuser who is not a member."""
    return {
        "ops": member(org, Role.OPS, username="olivia"),
        "ops2": member(org, Role.OPS, username="oscar"),
        "engineering": member(org, Role.ENGINEERING, username="eve"),
        "finance": member(org, Role.FINANCE, username="fiona"),
        "finance2": member(org, Role.FINANCE, username="frank"),
        "admin": member(org, Role.ADMIN, username="ada"),
        "root": member(org, Role.FINANCE, username="root", superuser=True),
        "root_outsider": UserFactory(username="root2", is_superuser=True),
    }


@pytest.fixture
def sent(monkeypatch):
    """Notifications enqueued (after commit), as (event_type, payload)."""
    calls = []
    monkeypatch.setattr(
        notifications,
        "notifications_enqueue",
        lambda *, organization, event_type, payload: calls.append((event_type, payload)),
    )
    return calls


def log(item) -> list[tuple]:
    return list(
        RemediationTransition.objects.filter(item=item)
        .order_by("id")
        .values_list("from_state", "to_state", "actor__username")
    )


def state_of(item) -> str:
    return RemediationItem.objects.values_list("state", flat=True).get(pk=item.pk)


# --- creation -------------------------------------------------------------------------------


def test_an_item_from_a_finding_copies_its_scope_kind_and_dollars(org, people):
    customer, feature, plan = (
        CustomerFactory(organization=org), FeatureFactory(organization=org),
        PlanFactory(organization=org),
    )  # fmt: skip
    finding = finding_create(
        org, customer=customer, feature=feature, plan=plan, monthly_savings=D("812.40")
    )

    item = remediation_create(actor=people["ops"], finding=finding)

    item.refresh_from_db()
    assert (item.kind, item.estimated_monthly_savings, item.description) == (
        RemediationKind.MODEL_SWAP, D("812.40"), finding.remediation)  # fmt: skip
    assert item.title == f"Model swap: {finding.title}"
    assert (item.customer, item.feature, item.plan) == (customer, feature, plan)
    assert (item.provider, item.model, item.environment) == ("openai", "gpt-4o", "production")
    assert (item.state, item.requested_by, item.organization) == (S.DRAFT, people["ops"], org)
    assert (item.needs_finance, item.approvals_required) == (False, 1)
    (created,) = RemediationTransition.objects.filter(item=item)
    assert (created.from_state, created.to_state, created.actor) == ("", S.DRAFT, people["ops"])
    assert created.reason == f"Requested from finding #{finding.pk}: {finding.title}"
    assert created.amounts == {
        "estimated_monthly_savings": "812.40",
        "realized_monthly_savings": None,
    }
    assert FindingActivity.objects.get(finding=finding).details == {
        "remediation_id": item.pk, "kind": "model_swap"}  # fmt: skip


@pytest.mark.parametrize("kind", PRICING)
def test_pricing_kinds_need_finance(org, people, kind):
    item = item_create(requester=people["ops"], organization=org, kind=kind)

    assert item.needs_finance is True


@pytest.mark.parametrize(("amount", "required"), [("4999.99", 1), ("5000.00", 2), ("25000.00", 2)])
def test_a_second_approver_from_the_threshold_on(org, people, amount, required):
    assert (
        item_create(requester=people["ops"], organization=org, amount=amount).approvals_required
        == required
    )


def test_the_threshold_comes_from_the_policy_at_submission(org, people):
    item = item_create(requester=people["ops"], organization=org, amount="800.00")
    assert item.approvals_required == 1

    policy_set(org, second_approval_threshold=D("500.00"))
    item = remediation_submit(item=item, actor=people["ops"])

    assert item.approvals_required == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"estimated_monthly_savings": 12.5}, "estimated_monthly_savings"),
        ({"estimated_monthly_savings": "-1"}, "estimated_monthly_savings"),
        ({"estimated_monthly_savings": "lots"}, "estimated_monthly_savings"),
        ({"kind": "rewrite_everything"}, "kind"),
        ({"title": "  "}, "title"),
        ({"parameters": ["a"]}, "parameters"),
        ({"colour": "red"}, "colour"),
        ({"environment": "production-eu-west-1-canary"}, "environment"),
    ],
)
def test_bad_input_is_refused_with_the_field_at_fault(org, people, kwargs, field):
    base = {"kind": RemediationKind.QUOTA, "title": "Cap the free tier", **kwargs}

    with pytest.raises(WorkflowError) as caught:
        remediation_create(actor=people["ops"], organization=org, **base)

    assert caught.value.field == field
    assert not RemediationItem.objects.exists()


def test_scope_and_finding_must_belong_to_the_organization(org, people):
    other = OrganizationFactory()
    with pytest.raises(WorkflowError, match="customer belongs to another organization"):
        remediation_create(
            actor=people["ops"], organization=org, kind="quota", title="Cap",
            customer=CustomerFactory(organization=other),
        )  # fmt: skip
    with pytest.raises(WorkflowError, match="finding belongs to another organization"):
        remediation_create(actor=people["ops"], organization=org, finding=finding_create(other))
    with pytest.raises(WorkflowPermissionDenied):
        remediation_create(actor=people["root_outsider"], organization=org, kind="quota", title="x")


# --- editing and submission -------------------------------------------------------------------


def test_only_the_requester_edits_a_draft_and_derived_fields_follow(org, people):
    item = item_create(requester=people["ops"], organization=org, amount="100.00")

    with pytest.raises(WorkflowPermissionDenied, match="Only the requester"):
        remediation_update(item=item, actor=people["admin"], title="Mine now")
    item = remediation_update(
        item=item, actor=people["ops"], kind=RemediationKind.REPRICE_PLAN,
        estimated_monthly_savings="6000", parameters={"new_price": "59.00"},
    )  # fmt: skip

    item.refresh_from_db()
    assert (item.kind, item.needs_finance, item.approvals_required) == ("reprice_plan", True, 2)
    assert (item.estimated_monthly_savings, item.parameters) == (
        D("6000.00"),
        {"new_price": "59.00"},
    )
    assert log(item) == [("", "draft", "olivia")]  # edits are not transitions


@pytest.mark.parametrize("state", [S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.CANCELLED])
def test_content_is_frozen_once_submitted(org, people, state):
    item = item_in_state(
        state, requester=people["ops"], approvers=[people["admin"]], organization=org
    )

    with pytest.raises(ItemLocked, match="frozen once submitted"):
        remediation_update(item=item, actor=people["ops"], title="Changed my mind")

    assert RemediationItem.objects.get(pk=item.pk).title == item.title


def test_submission_notifies_approvers_after_commit(
    org, people, sent, django_capture_on_commit_callbacks
):
    item = item_create(requester=people["ops"], organization=org, kind="quota", amount="300.00")

    with pytest.raises(WorkflowPermissionDenied):
        remediation_submit(item=item, actor=people["finance"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        item = remediation_submit(item=item, actor=people["ops"], now=T0)

    assert len(callbacks) == 1
    assert (item.state, item.submitted_at) == (S.PENDING_APPROVAL, T0)
    ((event, payload),) = sent
    assert event == "approval.requested"
    assert payload == {
        "remediation_id": item.pk, "title": item.title, "kind": "quota",
        "state": "pending_approval", "needs_finance": True, "approvals_required": 1,
        "estimated_monthly_savings": "300.00",
        "requested_by": "olivia", "finding_id": None, "submitted_by": "olivia",
    }  # fmt: skip
    assert log(item)[-1] == ("draft", "pending_approval", "olivia")


def test_nothing_is_notified_when_the_transaction_rolls_back(
    org, people, sent, django_capture_on_commit_callbacks
):
    item = item_create(requester=people["ops"], organization=org)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                remediation_submit(item=item, actor=people["ops"])
                raise RuntimeError("the admin view failed after the service")
        except RuntimeError:
            pass

    assert callbacks == []
    assert sent == []
    assert state_of(item) == S.DRAFT


# --- maker-checker (reliability R5.1) --------------------------------------------------------


@pytest.mark.parametrize("requester", ["ops", "finance", "admin", "root"])
@pytest.mark.parametrize("kind", [RemediationKind.MODEL_SWAP, RemediationKind.REPRICE_PLAN])
def test_the_requester_can_never_approve_or_reject_their_own_item(org, people, requester, kind):
    """Whatever the requester's role, superusers included: 0 state changes, 0 rows."""
    item = item_in_state(
        S.PENDING_APPROVAL, requester=people[requester], organization=org, kind=kind
    )
    before = (RemediationApproval.objects.count(), RemediationTransition.objects.count())

    with pytest.raises(SelfApprovalForbidden, match="You requested this item"):
        remediation_approve(item=item, actor=people[requester])
    with pytest.raises(SelfApprovalForbidden, match="cannot reject it"):
        remediation_reject(item=item, actor=people[requester], reason="Never mind")

    assert state_of(item) == S.PENDING_APPROVAL
    assert (RemediationApproval.objects.count(), RemediationTransition.objects.count()) == before
    assert can_approve(item=item, user=people[requester]) is False
    assert remediation_allowed_actions(item=item, user=people[requester]) == {"cancel"}


@pytest.mark.parametrize("requester", ["ops", "root"])
def test_the_database_refuses_a_self_approval_that_skips_the_service(org, people, requester):
    item = item_in_state(S.PENDING_APPROVAL, requester=people[requester], organization=org)

    with pytest.raises(IntegrityError, match="maker-checker"), transaction.atomic():
        RemediationApproval.objects.create(
            organization=org, item=item, approver=people[requester], decision="approve"
        )
    with (
        pytest.raises(IntegrityError, match="maker-checker"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO findings_remediationapproval (created_at, updated_at, organization_id,"
            " item_id, approver_id, decision, reason) VALUES (now(), now(), %s, %s, %s,"
            " 'reject', 'mine')",
            [org.pk, item.pk, people[requester].pk],
        )

    assert RemediationApproval.objects.filter(item=item).count() == 0


@pytest.mark.parametrize(
    ("role", "pricing_ok", "other_ok"),
    [("ops", False, True), ("engineering", False, True), ("finance", True, True),
     ("admin", True, True), ("root", True, True), ("root_outsider", False, False)],
)  # fmt: skip
def test_who_may_approve(org, people, role, pricing_ok, other_ok):
    requester = people["ops2"]
    pricing = item_in_state(
        S.PENDING_APPROVAL, requester=requester, organization=org, kind="reprice_plan"
    )
    swap = item_in_state(
        S.PENDING_APPROVAL, requester=requester, organization=org, kind="model_swap"
    )

    for item, ok in ((pricing, pricing_ok), (swap, other_ok)):
        assert can_approve(item=item, user=people[role]) is ok
        if ok:
            assert remediation_approve(item=item, actor=people[role]).state == S.APPROVED
        else:
            with pytest.raises(WorkflowPermissionDenied):
                remediation_approve(item=item, actor=people[role])
            assert state_of(item) == S.PENDING_APPROVAL


def test_ops_cannot_approve_pricing_and_is_told_why(org, people):
    item = item_in_state(
        S.PENDING_APPROVAL, requester=people["finance"], organization=org, kind="quota"
    )

    with pytest.raises(
        ApprovalPermissionDenied, match="Only finance or an admin can approve a pricing action"
    ):
        remediation_approve(item=item, actor=people["ops"])
    with pytest.raises(IntegrityError, match="finance or admin for pricing"), transaction.atomic():
        RemediationApproval.objects.create(
            organization=org, item=item, approver=people["ops"], decision="approve"
        )


# --- decisions -------------------------------------------------------------------------------


def test_two_approvals_above_the_threshold_by_two_people(
    org, people, sent, django_capture_on_commit_callbacks
):
    item = item_in_state(
        S.PENDING_APPROVAL, requester=people["ops"], organization=org, kind="reprice_plan",
        amount="9000.00",
    )  # fmt: skip
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        item = remediation_approve(item=item, actor=people["finance"], reason="Margin is thin")
    assert item.state == S.PENDING_APPROVAL
    assert sent == []  # not decided yet
    with pytest.raises(ConcurrentDecision, match="needs 1 more approval"):
        remediation_approve(item=item, actor=people["finance"])
    assert remediation_allowed_actions(item=item, user=people["finance"]) == frozenset()
    assert remediation_allowed_actions(item=item, user=people["finance2"]) == {"approve", "reject"}

    with django_capture_on_commit_callbacks(execute=True):
        item = remediation_approve(item=item, actor=people["finance2"], now=T0)

    assert (item.state, item.decided_at) == (S.APPROVED, T0)
    assert sorted(item.approvals.values_list("approver__username", flat=True)) == ["fiona", "frank"]
    assert log(item)[-1] == ("pending_approval", "approved", "frank")
    assert RemediationTransition.objects.filter(item=item).last().reason == "Approved (2 of 2)"
    ((event, payload),) = sent
    assert (event, payload["decision"], payload["decided_by"], payload["state"]) == (
        "approval.decided", "approve", "frank", "approved")  # fmt: skip


def test_reject_needs_a_reason_and_decides_at_once(
    org, people, sent, django_capture_on_commit_callbacks
):
    item = item_in_state(
        S.PENDING_APPROVAL, requester=people["ops"], organization=org, amount="9000"
    )

    with pytest.raises(WorkflowError, match="reason is required"):
        remediation_reject(item=item, actor=people["admin"], reason="")
    with django_capture_on_commit_callbacks(execute=True):
        item = remediation_reject(item=item, actor=people["admin"], reason="Quality risk")

    assert item.state == S.REJECTED
    transition = RemediationTransition.objects.filter(item=item).last()
    assert (transition.reason, transition.actor) == ("Quality risk", people["admin"])
    assert sent[-1][0] == "approval.decided"
    assert sent[-1][1]["decision"] == "reject"


@pytest.mark.parametrize("state", [S.APPROVED, S.REJECTED, S.IMPLEMENTED, S.VERIFIED])
def test_deciding_a_decided_item_is_a_concurrent_decision(org, people, state):
    item = item_in_state(
        state, requester=people["ops"], approvers=[people["admin"]], organization=org
    )
    count = RemediationTransition.objects.filter(item=item).count()

    with pytest.raises(ConcurrentDecision, match=f"already been {S(state).label.lower()}"):
        remediation_approve(item=item, actor=people["finance"])

    assert RemediationTransition.objects.filter(item=item).count() == count


@pytest.mark.parametrize(
    ("state", "action"),
    [(S.DRAFT, "approve"), (S.CANCELLED, "approve"), (S.DRAFT, "implement"),
     (S.PENDING_APPROVAL, "implement"), (S.REJECTED, "implement"), (S.CANCELLED, "submit"),
     (S.IMPLEMENTED, "cancel"), (S.REJECTED, "cancel"), (S.VERIFIED, "cancel")],
)  # fmt: skip
def test_illegal_transitions_are_refused(org, people, state, action):
    item = item_in_state(
        state, requester=people["ops"], approvers=[people["admin"]], organization=org
    )
    calls = {
        "approve": lambda: remediation_approve(item=item, actor=people["finance"]),
        "implement": lambda: remediation_implement(item=item, actor=people["admin"]),
        "submit": lambda: remediation_submit(item=item, actor=people["ops"]),
        "cancel": lambda: remediation_cancel(item=item, actor=people["ops"], reason="stop"),
    }

    with pytest.raises(IllegalTransition):
        calls[action]()

    assert state_of(item) == state


def test_cancel_by_the_requester_or_an_admin_with_a_reason_once_submitted(org, people):
    draft = item_create(requester=people["ops"], organization=org)
    pending = item_in_state(S.PENDING_APPROVAL, requester=people["ops"], organization=org)
    approved = item_in_state(
        S.APPROVED, requester=people["ops"], approvers=[people["finance"]], organization=org
    )

    assert remediation_cancel(item=draft, actor=people["ops"]).state == S.CANCELLED
    with pytest.raises(WorkflowPermissionDenied, match="or an admin can cancel"):
        remediation_cancel(item=pending, actor=people["finance"], reason="no")
    with pytest.raises(WorkflowError, match="reason is required"):
        remediation_cancel(item=pending, actor=people["ops"])
    assert (
        remediation_cancel(item=pending, actor=people["ops"], reason="Superseded").state
        == S.CANCELLED
    )
    assert (
        remediation_cancel(item=approved, actor=people["admin"], reason="Plan retired").state
        == S.CANCELLED
    )
    assert log(approved)[-1] == ("approved", "cancelled", "ada")


def test_the_full_lifecycle_is_logged_in_order(org, people):
    item = item_in_state(
        S.VERIFIED, requester=people["ops"], approvers=[people["finance"]], organization=org
    )

    assert log(item) == [
        ("", "draft", "olivia"), ("draft", "pending_approval", "olivia"),
        ("pending_approval", "approved", "fiona"), ("approved", "implemented", "olivia"),
        ("implemented", "verified", "olivia"),
    ]  # fmt: skip


def test_allowed_actions_follow_state_and_role(org, people):
    item = item_create(requester=people["ops"], organization=org, kind="quota")
    assert remediation_allowed_actions(item=item, user=people["ops"]) == {
        "update",
        "submit",
        "cancel",
    }
    assert remediation_allowed_actions(item=item, user=people["admin"]) == {"cancel"}
    item = remediation_submit(item=item, actor=people["ops"])
    assert remediation_allowed_actions(item=item, user=people["engineering"]) == frozenset()
    assert remediation_allowed_actions(item=item, user=people["finance"]) == {"approve", "reject"}
    assert remediation_allowed_actions(item=item, user=people["root_outsider"]) == frozenset()
    item = remediation_approve(item=item, actor=people["finance"])
    assert remediation_allowed_actions(item=item, user=people["engineering"]) == {"implement"}


# --- concurrency (reliability R5.3): real connections, a barrier, one winner ----------------


def race(calls: list) -> list:
    """Run each call in its own thread and DB connection, released together; outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:  # noqa: BLE001 - the outcome is the test's subject
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_have_exactly_one_winner():
    org = OrganizationFactory()
    requester = member(org, Role.OPS)
    approvers = [member(org, Role.FINANCE), member(org, Role.ADMIN), member(org, Role.FINANCE)]

    for _ in range(10):  # rounds: one flush of the database for all of them
        item = item_in_state(
            S.PENDING_APPROVAL, requester=requester, organization=org, kind="quota"
        )
        outcomes = race(
            [lambda a=a, i=item: remediation_approve(item=i, actor=a) for a in approvers]
        )

        winners = [o for o in outcomes if isinstance(o, RemediationItem)]
        losers = [o for o in outcomes if isinstance(o, ConcurrentDecision)]
        assert (len(winners), len(losers)) == (1, 2), outcomes
        assert state_of(item) == S.APPROVED
        assert RemediationTransition.objects.filter(item=item, to_state=S.APPROVED).count() == 1
        assert RemediationApproval.objects.filter(item=item).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_approve_and_reject_decide_once():
    org = OrganizationFactory()
    requester = member(org, Role.OPS)
    finance, admin = member(org, Role.FINANCE), member(org, Role.ADMIN)
    item = item_in_state(S.PENDING_APPROVAL, requester=requester, organization=org)

    outcomes = race([
        lambda: remediation_approve(item=item, actor=finance),
        lambda: remediation_reject(item=item, actor=admin, reason="No"),
    ])  # fmt: skip

    assert sum(isinstance(o, RemediationItem) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, ConcurrentDecision) for o in outcomes) == 1
    assert RemediationTransition.objects.filter(item=item).exclude(
        to_state__in=[S.DRAFT, S.PENDING_APPROVAL]).count() == 1  # fmt: skip
    assert RemediationApproval.objects.filter(item=item).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_approver_items_need_two_people_even_when_racing():
    org = OrganizationFactory()
    requester = member(org, Role.OPS)
    finance, admin = member(org, Role.FINANCE), member(org, Role.ADMIN)
    same = item_in_state(S.PENDING_APPROVAL, requester=requester, organization=org, amount="9000")
    pair = item_in_state(S.PENDING_APPROVAL, requester=requester, organization=org, amount="9000")

    # One person twice at once: one approval recorded, still pending.
    twice = race([lambda: remediation_approve(item=same, actor=finance)] * 2)
    # Two people at once: both count, approved once.
    both = race([
        lambda: remediation_approve(item=pair, actor=finance),
        lambda: remediation_approve(item=pair, actor=admin),
    ])  # fmt: skip

    assert sorted(type(o).__name__ for o in twice) == ["ConcurrentDecision", "RemediationItem"]
    assert state_of(same) == S.PENDING_APPROVAL
    assert RemediationApproval.objects.filter(item=same).count() == 1
    assert all(isinstance(o, RemediationItem) for o in both), both
    assert state_of(pair) == S.APPROVED
    assert RemediationTransition.objects.filter(item=pair, to_state=S.APPROVED).count() == 1
    assert RemediationApproval.objects.filter(item=pair).count() == 2
