"""Triage: every status change follows the rules and leaves one line in the activity log."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from accounts.models import Role
from findings.models import Finding, FindingActivity, FindingComment, FindingStatus
from findings.services.errors import IllegalTransition, WorkflowError, WorkflowPermissionDenied
from findings.services.triage import (
    finding_acknowledge,
    finding_assign,
    finding_comment_add,
    finding_dismiss,
    finding_reopen,
    finding_resolve,
    finding_snooze,
    finding_start,
    findings_bulk_transition,
    findings_unsnooze_due,
)
from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.findings.workflow_builders import T0, finding_create, member

pytestmark = pytest.mark.django_db

S = FindingStatus
TODAY = T0.date()


@pytest.fixture
def ops(org):
    return member(org, Role.OPS, username="olivia")


@pytest.fixture
def finding(org):
    return finding_create(org)


def activity(finding: Finding) -> list[tuple]:
    return list(
        FindingActivity.objects.filter(finding=finding)
        .order_by("id")
        .values_list("actor__username", "action", "from_status", "to_status", "reason")
    )


def test_the_happy_path_logs_each_change_with_actor_and_reason(finding, ops):
    finding = finding_acknowledge(finding=finding, actor=ops, reason="Looking")
    finding = finding_start(finding=finding, actor=ops)
    finding = finding_resolve(finding=finding, actor=ops, reason="Swapped the model")

    assert Finding.objects.get(pk=finding.pk).status == S.RESOLVED
    assert activity(finding) == [
        ("olivia", "status", "open", "acknowledged", "Looking"),
        ("olivia", "status", "acknowledged", "in_progress", ""),
        ("olivia", "status", "in_progress", "resolved", "Swapped the model"),
    ]


def test_dismiss_needs_a_reason_and_keeps_it(finding, ops):
    with pytest.raises(WorkflowError, match="reason is required") as caught:
        finding_dismiss(finding=finding, actor=ops, reason="   ")
    assert caught.value.field == "reason"
    assert activity(finding) == []

    finding_dismiss(finding=finding, actor=ops, reason="Intentional: premium tier SLA")

    finding.refresh_from_db()
    assert (finding.status, finding.dismiss_reason) == (
        S.DISMISSED,
        "Intentional: premium tier SLA",
    )
    assert activity(finding)[-1][2:] == ("open", "dismissed", "Intentional: premium tier SLA")


@pytest.mark.parametrize("until", [TODAY, TODAY - timedelta(days=3)])
def test_snooze_needs_a_future_date(finding, ops, until):
    with pytest.raises(WorkflowError, match="future date") as caught:
        finding_snooze(finding=finding, actor=ops, until=until, now=T0)

    assert caught.value.field == "until"
    finding.refresh_from_db()
    assert finding.status == S.OPEN
    assert activity(finding) == []


def test_a_snooze_ends_on_its_date_and_the_scheduler_logs_it(org, ops):
    due = finding_create(org)
    later = finding_create(org)
    finding_snooze(finding=due, actor=ops, until=TODAY + timedelta(days=2), now=T0)
    finding_snooze(finding=later, actor=ops, until=TODAY + timedelta(days=5), now=T0)

    assert findings_unsnooze_due(now=T0 + timedelta(days=1)) == []
    assert findings_unsnooze_due(now=T0 + timedelta(days=2)) == [due.pk]
    assert findings_unsnooze_due(now=T0 + timedelta(days=2)) == []  # idempotent

    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.snoozed_until) == (S.OPEN, None)
    assert later.status == S.SNOOZED
    assert activity(due)[-1] == (
        None,
        "status",
        "snoozed",
        "open",
        f"The snooze ended on {TODAY + timedelta(days=2)}.",
    )


def test_snoozing_again_moves_the_date(finding, ops):
    finding_snooze(finding=finding, actor=ops, until=date(2026, 4, 1), now=T0)
    finding = finding_snooze(finding=finding, actor=ops, until=date(2026, 5, 1), now=T0)

    assert finding.snoozed_until == date(2026, 5, 1)
    assert [row[2:4] for row in activity(finding)] == [("open", "snoozed"), ("snoozed", "snoozed")]


@pytest.mark.parametrize(
    "setup", ["resolve", "dismiss", "snooze"], ids=["resolved", "dismissed", "snoozed"]
)
def test_reopen_clears_the_old_dismissal_and_snooze(finding, ops, setup):
    {
        "resolve": lambda: finding_resolve(finding=finding, actor=ops),
        "dismiss": lambda: finding_dismiss(finding=finding, actor=ops, reason="Noise"),
        "snooze": lambda: finding_snooze(
            finding=finding, actor=ops, until=date(2026, 4, 1), now=T0
        ),
    }[setup]()

    reopened = finding_reopen(finding=finding, actor=ops, reason="It is back")

    reopened.refresh_from_db()
    assert (reopened.status, reopened.dismiss_reason, reopened.snoozed_until) == (S.OPEN, "", None)
    assert activity(finding)[-1][2:] == (activity(finding)[0][3], "open", "It is back")


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.RESOLVED, finding_acknowledge), (S.DISMISSED, finding_start),
        (S.IN_PROGRESS, finding_acknowledge), (S.OPEN, finding_reopen),
        (S.RESOLVED, finding_resolve), (S.SNOOZED, finding_acknowledge),
    ],
)  # fmt: skip
def test_illegal_status_changes_are_refused_and_leave_no_trace(org, ops, status, action):
    finding = finding_create(
        org, status=status, dismiss_reason="x" if status == S.DISMISSED else "",
        snoozed_until=date(2026, 4, 1) if status == S.SNOOZED else None,
    )  # fmt: skip

    with pytest.raises(IllegalTransition):
        action(finding=finding, actor=ops)

    assert Finding.objects.get(pk=finding.pk).status == status
    assert activity(finding) == []


def test_only_members_triage_superusers_included(org, finding):
    outsider = member(OrganizationFactory(), Role.ADMIN)
    root = UserFactory(is_superuser=True)

    for actor in (outsider, root):
        with pytest.raises(WorkflowPermissionDenied, match="not a member of Acme AI"):
            finding_acknowledge(finding=finding, actor=actor)
        with pytest.raises(WorkflowPermissionDenied):
            finding_comment_add(finding=finding, actor=actor, body="hello")

    assert Finding.objects.get(pk=finding.pk).status == S.OPEN
    assert activity(finding) == []


def test_the_owner_must_be_a_member_and_changes_are_logged(org, finding, ops):
    engineer = member(org, Role.ENGINEERING, username="eve")
    stranger = member(OrganizationFactory(), Role.ENGINEERING)

    with pytest.raises(WorkflowError, match="not a member") as caught:
        finding_assign(finding=finding, actor=ops, owner=stranger)
    assert caught.value.field == "owner"

    finding_assign(finding=finding, actor=ops, owner=engineer, reason="Her feature")
    finding_assign(finding=finding, actor=ops, owner=engineer)  # no change, no line
    finding = finding_assign(finding=finding, actor=ops, owner=None)

    assert finding.owner is None
    rows = FindingActivity.objects.filter(finding=finding, action="owner").order_by("id")
    assert [(r.details["from_owner_id"], r.details["to_owner_id"], r.reason) for r in rows] == [
        (None, engineer.pk, "Her feature"),
        (engineer.pk, None, ""),
    ]


def test_comments_are_kept_and_logged(finding, ops):
    with pytest.raises(WorkflowError, match="cannot be empty"):
        finding_comment_add(finding=finding, actor=ops, body=" ")

    comment = finding_comment_add(finding=finding, actor=ops, body="Checked with the team.")

    assert FindingComment.objects.get(finding=finding).body == "Checked with the team."
    (row,) = FindingActivity.objects.filter(finding=finding)
    assert (row.action, row.actor, row.details) == ("comment", ops, {"comment_id": comment.pk})


def test_bulk_actions_report_per_finding_and_refusals_keep_their_state(org, ops):
    open_one = finding_create(org)
    open_two = finding_create(org)
    resolved = finding_create(org, status=S.RESOLVED)

    results = findings_bulk_transition(
        actor=ops, findings=Finding.objects.filter(organization=org).order_by("id"),
        action="dismiss", reason="Accepted cost",
    )  # fmt: skip

    assert [(r.finding_id, r.ok, r.status) for r in results] == [
        (open_one.pk, True, S.DISMISSED),
        (open_two.pk, True, S.DISMISSED),
        (resolved.pk, False, S.RESOLVED),
    ]
    assert results[2].code == "illegal_transition"
    assert "resolved finding cannot be dismissed" in results[2].error
    assert FindingActivity.objects.filter(finding__organization=org).count() == 2
    assert Finding.objects.get(pk=resolved.pk).status == S.RESOLVED


def test_bulk_snooze_and_assign_pass_their_arguments(org, ops):
    findings = [finding_create(org), finding_create(org)]

    snoozed = findings_bulk_transition(
        actor=ops, findings=findings, action="snooze", until=date(2026, 4, 1), now=T0
    )
    assigned = findings_bulk_transition(actor=ops, findings=findings, action="assign", owner=ops)

    assert {r.status for r in snoozed} == {S.SNOOZED}
    assert all(r.ok for r in assigned)
    assert set(
        Finding.objects.filter(pk__in=[f.pk for f in findings]).values_list("owner", flat=True)
    ) == {ops.pk}


def test_bulk_refuses_an_unknown_action(finding, ops):
    with pytest.raises(WorkflowError, match="Unknown bulk action 'delete'"):
        findings_bulk_transition(actor=ops, findings=[finding], action="delete")


def test_every_change_appends_exactly_one_activity_line(org, ops):
    finding = finding_create(org)
    steps = [
        lambda: finding_acknowledge(finding=finding, actor=ops),
        lambda: finding_assign(finding=finding, actor=ops, owner=ops),
        lambda: finding_start(finding=finding, actor=ops),
        lambda: finding_comment_add(finding=finding, actor=ops, body="on it"),
        lambda: finding_snooze(finding=finding, actor=ops, until=date(2026, 4, 1), now=T0),
        lambda: finding_reopen(finding=finding, actor=ops),
        lambda: finding_dismiss(finding=finding, actor=ops, reason="won't fix"),
        lambda: finding_reopen(finding=finding, actor=ops),
        lambda: finding_resolve(finding=finding, actor=ops),
    ]
    for count, step in enumerate(steps, start=1):
        step()
        assert FindingActivity.objects.filter(finding=finding).count() == count

    # Status lines chain: each starts where the previous ended.
    statuses = [r[2:4] for r in activity(finding) if r[1] == "status"]
    assert all(a[1] == b[0] for a, b in zip(statuses, statuses[1:], strict=False))
    assert statuses[-1][1] == Finding.objects.get(pk=finding.pk).status
