"""Builders for the review-workflow tests: members, findings, items in any state, rollups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction

from accounts.models import Membership, Organization, Role, User
from findings.models import (
    Finding,
    FindingConfidence,
    FindingKind,
    FindingsPolicy,
    RemediationItem,
    RemediationKind,
    RemediationState,
)
from findings.services.remediation import (
    remediation_approve,
    remediation_cancel,
    remediation_create,
    remediation_implement,
    remediation_reject,
    remediation_submit,
)
from findings.services.verification import remediation_verify
from ingestion.models import DailyUsage
from tests.accounts.factories import UserFactory

D = Decimal
T0 = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def member(organization: Organization, role: str = Role.OPS, **user_fields) -> User:
    """A staff user with ``role`` in ``organization`` (superuser=True for a superuser)."""
    superuser = user_fields.pop("superuser", False)
    user = UserFactory(is_superuser=superuser, **user_fields)
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


def policy_set(organization: Organization, **fields) -> FindingsPolicy:
    policy, _ = FindingsPolicy.objects.update_or_create(organization=organization, defaults=fields)
    return policy


_fingerprints = iter(range(10**9))


def finding_create(organization: Organization, **fields) -> Finding:
    """A model-overkill finding worth $1,200/mo unless told otherwise."""
    values = {
        "kind": FindingKind.MODEL_OVERKILL,
        "fingerprint": f"fp-{next(_fingerprints)}",
        "title": "gpt-4o on short classification in support-triage",
        "monthly_savings": D("1200.00"),
        "confidence": FindingConfidence.HIGH,
        "confidence_reason": "gpt-4o-mini serves the same feature at equal quality.",
        "remediation": "Swap gpt-4o for gpt-4o-mini on support-triage.",
        "remediation_kind": RemediationKind.MODEL_SWAP,
        "provider": "openai",
        "model": "gpt-4o",
        "environment": "production",
        "window_start": date(2026, 2, 1),
        "window_end": date(2026, 3, 1),
        "first_seen_at": T0,
        "last_seen_at": T0,
        **fields,
    }
    return Finding.objects.create(organization=organization, **values)


def item_create(
    *, requester: User, organization: Organization | None = None, finding: Finding | None = None,
    kind: str = RemediationKind.MODEL_SWAP, amount: str | None = None, **fields,
) -> RemediationItem:  # fmt: skip
    """A draft item by ``requester``, from ``finding`` (its dollars unless ``amount``) or not."""
    if finding is None:
        fields.setdefault("title", f"{kind} item")
        amount = amount or "1200.00"
    if amount is not None:
        fields["estimated_monthly_savings"] = D(amount)
    return remediation_create(
        actor=requester, organization=organization or finding.organization, finding=finding,
        kind=kind, **fields,
    )  # fmt: skip


def item_in_state(
    state: str, *, requester: User, approvers: list[User] = (), **fields
) -> RemediationItem:
    """An item driven through the services to ``state`` (approvers decide in order)."""
    item = item_create(requester=requester, **fields)
    if state == RemediationState.DRAFT:
        return item
    if state == RemediationState.CANCELLED:
        return remediation_cancel(item=item, actor=requester)
    item = remediation_submit(item=item, actor=requester, now=T0)
    if state == RemediationState.PENDING_APPROVAL:
        return item
    if state == RemediationState.REJECTED:
        return remediation_reject(item=item, actor=approvers[0], reason="Not now", now=T0)
    for approver in approvers[: item.approvals_required]:
        item = remediation_approve(item=item, actor=approver, now=T0)
    if state == RemediationState.APPROVED:
        return item
    item = remediation_implement(item=item, actor=requester, now=T0)
    if state == RemediationState.IMPLEMENTED:
        return item
    return remediation_verify(item=item, actor=requester, now=T0 + timedelta(days=60))


def commit_checks() -> None:
    """Run the deferred (at-commit) constraint triggers now, inside the test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def fails_at_commit(write) -> bool:
    """Whether ``write`` would fail when its transaction commits; its writes are undone.

    (pytest-django also runs the deferred checks when each test ends, so leftovers of a
    failing write would fail the test's teardown.)
    """
    from django.db import IntegrityError

    try:
        with transaction.atomic():
            write()
            commit_checks()
            transaction.set_rollback(True)
    except IntegrityError:
        return True
    return False


def usage(organization: Organization, day: date, cost: str, **dimensions) -> DailyUsage:
    """One rollup row: ``cost`` USD on ``day`` for the dimensions given (others empty)."""
    values = {
        "customer": None, "feature": None, "plan": None, "provider": "openai",
        "model": "gpt-4o", "environment": "production", "batch": False, "billable": True,
        **dimensions,
    }  # fmt: skip
    return DailyUsage.objects.create(
        organization=organization, day=day, cost=D(cost), requests=1, **values
    )
