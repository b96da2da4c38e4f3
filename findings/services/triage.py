"""Triage of findings: status, owner, comments, in bulk, each change in the activity log.

Statuses (DESIGN §8): open → acknowledged → in progress → resolved, dismissed (with a
reason) or snoozed (until a date); resolved, dismissed and snoozed findings can be
reopened, and a snooze ends by itself on its date (``findings_unsnooze_due``).

Every service takes the acting staff user, who must be a member of the finding's
organization (``findings.services.roles``), locks the finding while it decides, and
appends a ``FindingActivity`` (actor, from → to, reason) for every change. Snooze dates
are UTC calendar dates: a finding snoozed until D is open again from D 00:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from findings.models import Finding, FindingActivity, FindingComment, FindingStatus
from findings.services.errors import IllegalTransition, WorkflowError
from findings.services.roles import member_role, member_role_require

S = FindingStatus
# action → (statuses it may start from, status it leads to)
FINDING_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "acknowledge": (frozenset({S.OPEN}), S.ACKNOWLEDGED),
    "start": (frozenset({S.OPEN, S.ACKNOWLEDGED}), S.IN_PROGRESS),
    "resolve": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.IN_PROGRESS}), S.RESOLVED),
    "dismiss": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.IN_PROGRESS, S.SNOOZED}), S.DISMISSED),
    # Snoozing a snoozed finding moves its date.
    "snooze": (frozenset({S.OPEN, S.ACKNOWLEDGED, S.IN_PROGRESS, S.SNOOZED}), S.SNOOZED),
    "reopen": (frozenset({S.RESOLVED, S.DISMISSED, S.SNOOZED}), S.OPEN),
}
BULK_ACTIONS = (*FINDING_TRANSITIONS, "assign")

ILLEGAL_STATUS = "A {status} finding cannot be {verb}; it must be {allowed} first."
VERBS = {
    "acknowledge": "acknowledged", "start": "started", "resolve": "resolved",
    "dismiss": "dismissed", "snooze": "snoozed", "reopen": "reopened",
}  # fmt: skip
DISMISS_REASON_REQUIRED = "Say why the finding is dismissed: a reason is required."
SNOOZE_DATE_PAST = "Snooze until a future date: {until} is not after today ({today}, UTC)."
OWNER_NOT_MEMBER = "{owner} is not a member of {organization}, so cannot own its findings."
COMMENT_EMPTY = "A comment cannot be empty."
UNKNOWN_ACTION = "Unknown bulk action {action!r}; use one of: {actions}."
SNOOZE_ENDED = "The snooze ended on {until}."


@dataclass(frozen=True)
class BulkResult:
    """The outcome of a bulk action on one finding: its status after, or why it failed."""

    finding_id: int
    ok: bool
    status: str
    error: str = ""
    code: str = ""


def _locked(finding: Finding) -> Finding:
    # Detector runs update findings too: decide on the row as it is now, not as read.
    return (
        Finding.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=finding.pk)
    )


def _transition(
    *,
    finding: Finding,
    actor: User,
    action: str,
    reason: str = "",
    details: dict | None = None,
    **fields,
) -> Finding:
    """Move a finding by ``action`` (FINDING_TRANSITIONS), set ``fields``, log it.

    Callers hold a transaction (the public services are atomic).
    """
    locked = _locked(finding)
    member_role_require(user=actor, organization=locked.organization)
    sources, target = FINDING_TRANSITIONS[action]
    if locked.status not in sources:
        allowed = " or ".join(sorted(FindingStatus(s).label.lower() for s in sources))
        raise IllegalTransition(
            ILLEGAL_STATUS.format(
                status=locked.get_status_display().lower(), verb=VERBS[action], allowed=allowed
            )
        )
    previous = locked.status
    locked.status = target
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", *fields, "updated_at"])
    FindingActivity.objects.create(
        organization_id=locked.organization_id, finding=locked, actor=actor, action="status",
        from_status=previous, to_status=target, reason=(reason or "").strip(),
        details=details or {},
    )  # fmt: skip
    return locked


@transaction.atomic
def finding_acknowledge(*, finding: Finding, actor: User, reason: str = "") -> Finding:
    """Open → acknowledged: someone has seen it. Returns the updated finding."""
    return _transition(finding=finding, actor=actor, action="acknowledge", reason=reason)


@transaction.atomic
def finding_start(*, finding: Finding, actor: User, reason: str = "") -> Finding:
    """Open or acknowledged → in progress: someone is working on it."""
    return _transition(finding=finding, actor=actor, action="start", reason=reason)


@transaction.atomic
def finding_resolve(*, finding: Finding, actor: User, reason: str = "") -> Finding:
    """Open, acknowledged or in progress → resolved by hand (not a detector's auto-resolve)."""
    return _transition(
        finding=finding, actor=actor, action="resolve", reason=reason, auto_resolved=False
    )


@transaction.atomic
def finding_dismiss(*, finding: Finding, actor: User, reason: str) -> Finding:
    """Dismiss a finding that is not worth acting on; ``reason`` is required and kept."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError(DISMISS_REASON_REQUIRED, field="reason")
    return _transition(
        finding=finding, actor=actor, action="dismiss", reason=reason, dismiss_reason=reason,
        snoozed_until=None,
    )  # fmt: skip


@transaction.atomic
def finding_snooze(
    *, finding: Finding, actor: User, until: date, reason: str = "", now: datetime | None = None
) -> Finding:
    """Hide a finding until ``until`` (a UTC date after today), when it reopens by itself."""
    today = timezone.localdate(now or timezone.now(), UTC)
    if isinstance(until, datetime) or not isinstance(until, date):
        raise WorkflowError("Snooze until a date (YYYY-MM-DD).", field="until")
    if until <= today:
        raise WorkflowError(SNOOZE_DATE_PAST.format(until=until, today=today), field="until")
    return _transition(
        finding=finding, actor=actor, action="snooze", reason=reason,
        details={"snoozed_until": until.isoformat()}, snoozed_until=until,
    )  # fmt: skip


@transaction.atomic
def finding_reopen(*, finding: Finding, actor: User, reason: str = "") -> Finding:
    """Resolved, dismissed or snoozed → open; the old dismissal and snooze are cleared."""
    return _transition(
        finding=finding, actor=actor, action="reopen", reason=reason, dismiss_reason="",
        snoozed_until=None, auto_resolved=False,
    )  # fmt: skip


@transaction.atomic
def finding_assign(
    *, finding: Finding, actor: User, owner: User | None, reason: str = ""
) -> Finding:
    """Give a finding an owner (a member of its organization) or none; logged when it changes."""
    locked = _locked(finding)
    member_role_require(user=actor, organization=locked.organization)
    if owner is not None and member_role(user=owner, organization=locked.organization) is None:
        raise WorkflowError(
            OWNER_NOT_MEMBER.format(owner=owner, organization=locked.organization), field="owner"
        )
    new_owner_id = owner.pk if owner is not None else None
    if locked.owner_id == new_owner_id:
        return locked
    previous_owner_id = locked.owner_id
    locked.owner = owner
    locked.save(update_fields=["owner", "updated_at"])
    FindingActivity.objects.create(
        organization_id=locked.organization_id, finding=locked, actor=actor, action="owner",
        from_status=locked.status, to_status=locked.status, reason=(reason or "").strip(),
        details={"from_owner_id": previous_owner_id, "to_owner_id": new_owner_id},
    )  # fmt: skip
    return locked


@transaction.atomic
def finding_comment_add(*, finding: Finding, actor: User, body: str) -> FindingComment:
    """Add a staff note to a finding (and a line in its activity log)."""
    body = (body or "").strip()
    if not body:
        raise WorkflowError(COMMENT_EMPTY, field="body")
    member_role_require(user=actor, organization=finding.organization)
    comment = FindingComment.objects.create(
        organization_id=finding.organization_id, finding=finding, author=actor, body=body
    )
    FindingActivity.objects.create(
        organization_id=finding.organization_id, finding=finding, actor=actor, action="comment",
        from_status=finding.status, to_status=finding.status, details={"comment_id": comment.pk},
    )  # fmt: skip
    return comment


BULK_SERVICES = {
    "acknowledge": finding_acknowledge,
    "start": finding_start,
    "resolve": finding_resolve,
    "dismiss": finding_dismiss,
    "snooze": finding_snooze,
    "reopen": finding_reopen,
    "assign": finding_assign,
}


def findings_bulk_transition(
    *, actor: User, findings: Iterable[Finding], action: str, **kwargs
) -> list[BulkResult]:
    """Apply one triage action to many findings, each on its own; one result per finding.

    ``kwargs`` go to the single-finding service (``reason``, ``until``, ``owner``).
    A finding the rule refuses keeps its state and reports why; the others proceed.
    """
    service = BULK_SERVICES.get(action)
    if service is None:
        raise WorkflowError(
            UNKNOWN_ACTION.format(action=action, actions=", ".join(BULK_ACTIONS)), field="action"
        )
    results = []
    for finding in findings:
        try:
            # One savepoint per finding: a refusal undoes only that finding's writes.
            with transaction.atomic():
                done = service(finding=finding, actor=actor, **kwargs)
        except WorkflowError as error:
            results.append(
                BulkResult(
                    finding_id=finding.pk,
                    ok=False,
                    status=finding.status,
                    error=str(error),
                    code=error.code,
                )  # fmt: skip
            )
        else:
            results.append(BulkResult(finding_id=finding.pk, ok=True, status=done.status))
    return results


@transaction.atomic
def findings_unsnooze_due(*, now: datetime | None = None) -> list[int]:
    """Reopen every snoozed finding whose date has come (UTC); returns their ids.

    Logged with no actor: the scheduler did it. Safe to run twice.
    """
    today = timezone.localdate(now or timezone.now(), UTC)
    # skip_locked: a finding someone is triaging right now is picked up next run.
    due = list(
        Finding.objects.select_for_update(skip_locked=True)
        .filter(status=FindingStatus.SNOOZED, snoozed_until__lte=today)
        .only("id", "organization_id", "snoozed_until")
    )
    if not due:
        return []
    ids = [finding.pk for finding in due]
    Finding.objects.filter(pk__in=ids).update(
        status=FindingStatus.OPEN, snoozed_until=None, updated_at=timezone.now()
    )
    FindingActivity.objects.bulk_create(
        FindingActivity(
            organization_id=finding.organization_id,
            finding_id=finding.pk,
            actor=None,
            action="status",
            from_status=FindingStatus.SNOOZED,
            to_status=FindingStatus.OPEN,
            reason=SNOOZE_ENDED.format(until=finding.snoozed_until),
            details={"snoozed_until": finding.snoozed_until.isoformat()},
        )  # fmt: skip
        for finding in due
    )
    return ids
