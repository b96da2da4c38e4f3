"""The database holds the workflow's rules whatever path a write takes (reliability R5.4–R5.7).

Each write below goes around the services: ORM save(), queryset.update(), bulk_update,
delete and raw SQL. Each must fail with an IntegrityError and change 0 rows.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Role
from findings.models import (
    FindingActivity,
    RemediationApproval,
    RemediationItem,
    RemediationTransition,
)
from findings.models import RemediationState as S
from findings.services.remediation import REMEDIATION_TRANSITIONS
from findings.services.triage import finding_acknowledge
from tests.accounts.factories import (
    CustomerFactory,
    FeatureFactory,
    OrganizationFactory,
    PlanFactory,
)
from tests.findings.workflow_builders import (
    commit_checks,
    fails_at_commit,
    finding_create,
    item_in_state,
    member,
)

pytestmark = pytest.mark.django_db

D = Decimal
LOCKED = [S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.IMPLEMENTED, S.VERIFIED, S.CANCELLED]


@pytest.fixture
def people(org):
    return {
        "ops": member(org, Role.OPS, username="olivia"),
        "finance": member(org, Role.FINANCE, username="fiona"),
        "admin": member(org, Role.ADMIN, username="ada"),
    }


def in_state(org, people, state, **fields):
    return item_in_state(
        state, requester=people["ops"], approvers=[people["finance"], people["admin"]],
        organization=org,
        finding=finding_create(org), **fields,
    )  # fmt: skip


def row(item) -> dict:
    return RemediationItem.objects.filter(pk=item.pk).values().get()


def refused(write, match: str) -> None:
    """The write raises IntegrityError saying ``match`` (rolled back to a savepoint)."""
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        write()


def raw(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- immutability of submitted items (R5.4) ---------------------------------------------------


@pytest.mark.parametrize("state", LOCKED)
def test_content_cannot_change_through_any_path(org, people, state):
    item = in_state(org, people, state)
    before = row(item)

    def orm_save():
        fresh = RemediationItem.objects.get(pk=item.pk)
        fresh.title = "Edited after the fact"
        fresh.save()

    def bulk():
        fresh = RemediationItem.objects.get(pk=item.pk)
        fresh.estimated_monthly_savings = D("99999.00")
        RemediationItem.objects.bulk_update([fresh], ["estimated_monthly_savings"])

    writes = [
        orm_save,
        lambda: RemediationItem.objects.filter(pk=item.pk).update(title="Edited"),
        lambda: RemediationItem.objects.filter(pk=item.pk).update(parameters={"x": 1}),
        bulk,
        lambda: raw(
            "UPDATE findings_remediationitem SET description = 'x' WHERE id = %s", [item.pk]
        ),
        lambda: raw(
            "UPDATE findings_remediationitem SET kind = 'quota', needs_finance = true"
            " WHERE id = %s",
            [item.pk],
        ),  # fmt: skip
    ]
    for write in writes:
        refused(write, "its content is immutable")

    assert row(item) == before


CONTENT_COLUMNS = {
    "kind": "'enable_batch'", "title": "'t'", "description": "'d'", "parameters": "'{\"a\": 1}'",
    "estimated_monthly_savings": "1.00", "requested_by_id": None, "needs_finance": "true",
    "approvals_required": "2", "customer_id": None, "feature_id": None, "plan_id": None,
    "provider": "'anthropic'", "model": "'claude'", "environment": "'staging'",
    "finding_id": "NULL", "organization_id": None,
}  # fmt: skip


@pytest.mark.parametrize("column", sorted(CONTENT_COLUMNS))
def test_each_content_column_is_frozen_once_approved(org, people, column):
    item = in_state(org, people, S.APPROVED)
    values = {
        "requested_by_id": str(people["admin"].pk),
        "customer_id": str(CustomerFactory(organization=org).pk),
        "feature_id": str(FeatureFactory(organization=org).pk),
        "plan_id": str(PlanFactory(organization=org).pk),
        "organization_id": str(org.pk + 1000),
    }
    value = CONTENT_COLUMNS[column] or values[column]
    before = row(item)

    sql = f"UPDATE findings_remediationitem SET {column} = {value} WHERE id = %s"
    who = column in ("requested_by_id", "organization_id")
    refused(lambda: raw(sql, [item.pk]), "never change" if who else "content is immutable")

    assert row(item) == before


def test_a_draft_stays_editable_and_an_unchanged_save_is_harmless(org, people):
    draft = in_state(org, people, S.DRAFT)
    approved = in_state(org, people, S.APPROVED)

    assert RemediationItem.objects.filter(pk=draft.pk).update(title="Better title") == 1
    RemediationItem.objects.get(pk=approved.pk).save()  # same values: nothing changes

    assert row(draft)["title"] == "Better title"


def test_the_requester_and_organization_never_change_even_in_a_draft(org, people):
    draft = in_state(org, people, S.DRAFT)

    refused(
        lambda: RemediationItem.objects.filter(pk=draft.pk).update(requested_by=people["finance"]),
        "organization, requester and creation time never change",
    )


# --- the state machine in the database -------------------------------------------------------

STATES = [s.value for s in S]
ILLEGAL = sorted(
    (a, b) for a in STATES for b in STATES if a != b and (a, b) not in REMEDIATION_TRANSITIONS
)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_illegal_transitions_are_refused_by_the_database(org, people, source, target):
    item = in_state(org, people, source)

    message = f"{source} → {target} is not a legal transition"
    sql = "UPDATE findings_remediationitem SET state = %s WHERE id = %s"
    refused(lambda: RemediationItem.objects.filter(pk=item.pk).update(state=target), message)
    refused(lambda: raw(sql, [target, item.pk]), message)

    assert row(item)["state"] == source


def test_an_item_is_created_as_a_draft_only(org, people):
    refused(
        lambda: RemediationItem.objects.create(
            organization=org,
            kind="quota",
            title="Born approved",
            requested_by=people["ops"],
            state=S.APPROVED,
            needs_finance=True,
        ),
        "starts as a draft",
    )


def test_approval_needs_approval_rows_by_someone_else(org, people):
    """A state change to approved through raw SQL, with no approval, is refused."""
    item = in_state(org, people, S.PENDING_APPROVAL, amount="9000.00")  # two approvals

    decide = "UPDATE findings_remediationitem SET state = %s, decided_at = now() WHERE id = %s"
    needs = "needs 2 approval.s. by someone other than its requester, has {}"

    refused(lambda: raw(decide, ["approved", item.pk]), needs.format(0))
    RemediationApproval.objects.create(
        organization=org, item=item, approver=people["finance"], decision="approve"
    )
    refused(lambda: raw(decide, ["approved", item.pk]), needs.format(1))
    refused(lambda: raw(decide, ["rejected", item.pk]), "needs a rejection")

    assert row(item)["state"] == S.PENDING_APPROVAL


def test_approval_rows_need_a_pending_item_and_a_member(org, people):
    draft = in_state(org, people, S.DRAFT)
    approved = in_state(org, people, S.APPROVED)
    pending = in_state(org, people, S.PENDING_APPROVAL)
    outsider = member(OrganizationFactory(), Role.ADMIN)

    def approve(item, approver):
        return lambda: RemediationApproval.objects.create(
            organization=org, item=item, approver=approver, decision="approve"
        )

    refused(approve(draft, people["admin"]), "is draft, not pending approval")
    refused(approve(approved, people["admin"]), "is approved, not pending approval")
    refused(approve(pending, outsider), "a member is needed")


@pytest.mark.parametrize(
    ("state", "column"),
    [(S.APPROVED, "decided_at"), (S.IMPLEMENTED, "implemented_at"), (S.VERIFIED, "verified_at"),
     (S.VERIFIED, "realized_monthly_savings"), (S.PENDING_APPROVAL, "submitted_at"),
     (S.IMPLEMENTED, "decided_at"), (S.DRAFT, "implemented_at")],
)  # fmt: skip
def test_lifecycle_columns_change_only_in_their_own_transition(org, people, state, column):
    item = in_state(org, people, state)
    value = D("1.00") if column == "realized_monthly_savings" else timezone.now()
    before = row(item)

    refused(
        lambda: RemediationItem.objects.filter(pk=item.pk).update(**{column: value}),
        "is set by the|measured savings are set by the verification only",
    )

    assert row(item) == before


def test_needs_finance_follows_the_kind(org, people):
    draft = in_state(org, people, S.DRAFT, kind="reprice_plan")

    refused(
        lambda: RemediationItem.objects.filter(pk=draft.pk).update(needs_finance=False),
        "needs_finance is true exactly for pricing kinds",
    )


def test_a_submission_above_the_threshold_needs_two_approvers(org, people):
    draft = in_state(org, people, S.DRAFT, amount="100.00")
    RemediationItem.objects.filter(pk=draft.pk).update(
        estimated_monthly_savings=D("7000.00"), approvals_required=1
    )

    submit = "UPDATE findings_remediationitem SET state = %s, submitted_at = now() WHERE id = %s"

    refused(lambda: raw(submit, ["pending_approval", draft.pk]), "needs two approvers")


@pytest.mark.parametrize("state", [S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.VERIFIED])
def test_items_are_never_deleted(org, people, state):
    item = in_state(org, people, state)

    message = "cannot be deleted: cancel it instead"
    # The ORM stops at its log's protected foreign keys; below the ORM, the trigger does.
    refused(lambda: RemediationItem.objects.filter(pk=item.pk).delete(), "protected foreign keys")
    refused(lambda: RemediationItem.objects.filter(pk=item.pk)._raw_delete("default"), message)
    refused(lambda: raw("DELETE FROM findings_remediationitem WHERE id = %s", [item.pk]), message)

    assert RemediationItem.objects.filter(pk=item.pk).exists()


# --- append-only logs (R5.6) ----------------------------------------------------------------


@pytest.fixture
def logs(org, people):
    item = in_state(org, people, S.APPROVED)
    finding = finding_create(org)
    finding_acknowledge(finding=finding, actor=people["ops"])
    return {
        RemediationTransition: RemediationTransition.objects.filter(item=item).last(),
        RemediationApproval: RemediationApproval.objects.get(item=item),
        FindingActivity: FindingActivity.objects.filter(finding=finding).last(),
    }


@pytest.mark.parametrize(
    "model", [RemediationTransition, RemediationApproval, FindingActivity],
    ids=["transition", "approval", "activity"],
)  # fmt: skip
def test_logs_are_append_only_through_every_path(logs, model):
    entry = logs[model]
    table = model._meta.db_table
    before = model.objects.filter(pk=entry.pk).values().get()

    def orm_save():
        entry.reason = "rewritten"
        entry.save()

    for write in (
        orm_save,
        lambda: model.objects.filter(pk=entry.pk).update(reason="rewritten"),
        lambda: model.objects.bulk_update([entry], ["reason"]),
        lambda: model.objects.filter(pk=entry.pk).delete(),
        lambda: raw(f"UPDATE {table} SET reason = 'rewritten' WHERE id = %s", [entry.pk]),
        lambda: raw(f"UPDATE {table} SET created_at = created_at - interval '1 day'"),
        lambda: raw(f"DELETE FROM {table} WHERE id = %s", [entry.pk]),
        lambda: raw(f"DELETE FROM {table}"),
    ):
        refused(write, f"{table} is append-only")

    assert model.objects.filter(pk=entry.pk).values().get() == before


# --- the log is complete and replays to the state (R5.5, R5.7) ------------------------------


def test_a_state_change_without_its_log_line_fails_at_commit(org, people):
    draft = in_state(org, people, S.DRAFT)

    def cancel():
        RemediationItem.objects.filter(pk=draft.pk).update(state=S.CANCELLED)

    assert fails_at_commit(cancel) is True
    assert row(draft)["state"] == S.DRAFT


def cancelled_line(org, item, actor):
    RemediationTransition.objects.create(
        organization=org, item=item, actor=actor, from_state=S.DRAFT, to_state=S.CANCELLED,
        reason="Cleanup by SQL",
        amounts={"estimated_monthly_savings": "1200.00", "realized_monthly_savings": None},
    )  # fmt: skip


def test_a_state_change_with_its_log_line_commits(org, people):
    draft = in_state(org, people, S.DRAFT)

    def cancel_and_log():
        RemediationItem.objects.filter(pk=draft.pk).update(state=S.CANCELLED)
        cancelled_line(org, draft, people["admin"])

    assert fails_at_commit(cancel_and_log) is False


def test_a_log_line_without_its_state_change_fails_at_commit(org, people):
    draft = in_state(org, people, S.DRAFT)

    assert fails_at_commit(lambda: cancelled_line(org, draft, people["admin"])) is True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"from_state": S.PENDING_APPROVAL, "to_state": S.APPROVED}, "the log is at draft"),
        ({"from_state": S.DRAFT, "to_state": S.VERIFIED}, "is not a legal transition"),
        ({"reason": "  "}, "records its actor, reason and amounts"),
        ({"amounts": {"estimated_monthly_savings": "1.00"}}, "records its actor, reason"),
        ({"amounts": []}, "records its actor, reason and amounts"),
        ({"actor": None}, "records its actor, reason and amounts"),
    ],
    ids=["out-of-chain", "illegal", "no-reason", "missing-amount", "amounts-list", "no-actor"],
)
def test_log_lines_are_complete_and_chained(org, people, fields, message):
    draft = in_state(org, people, S.DRAFT)
    values = {
        "organization": org, "item": draft, "actor": people["ops"], "from_state": S.DRAFT,
        "to_state": S.CANCELLED, "reason": "Because",
        "amounts": {"estimated_monthly_savings": "1.00", "realized_monthly_savings": None},
        **fields,
    }  # fmt: skip

    refused(lambda: RemediationTransition.objects.create(**values), message)


def test_every_transition_is_complete_and_the_log_replays_to_the_state(org, people):
    """100 % of transitions carry actor, time, from → to, reason and decimal-string amounts."""
    items = [in_state(org, people, state) for state in S]
    items.append(in_state(org, people, S.VERIFIED, amount="9000.00"))  # two approvers
    commit_checks()

    transitions = list(RemediationTransition.objects.filter(organization=org).order_by("id"))
    assert len(transitions) == sum(
        RemediationItem.objects.get(pk=i.pk).transitions.count() for i in items
    )
    for transition in transitions:
        assert transition.actor_id is not None or transition.to_state == S.VERIFIED
        assert transition.created_at is not None
        assert (transition.from_state, transition.to_state) in REMEDIATION_TRANSITIONS
        assert transition.reason.strip()
        assert set(transition.amounts) >= {"estimated_monthly_savings", "realized_monthly_savings"}
        for value in transition.amounts.values():
            assert value is None or (
                isinstance(value, str) and D(value) == D(value).quantize(D("0.01"))
            )
        # Stored as strings in the JSON, never as numbers.
        assert '": 1' not in json.dumps(transition.amounts)
    for item in items:
        state = ""
        for transition in RemediationTransition.objects.filter(item=item).order_by("id"):
            assert transition.from_state == state
            state = transition.to_state
        assert state == RemediationItem.objects.get(pk=item.pk).state
    verified = RemediationTransition.objects.filter(to_state=S.VERIFIED).first()
    assert verified.amounts["realized_monthly_savings"] == "0.00"
