"""Remediation items: requested from a finding, approved maker-checker, implemented, verified.

States: draft → pending approval → approved / rejected → implemented → verified, or
cancelled from draft, pending approval or approved (``REMEDIATION_TRANSITIONS``).

These services are the one way in for the admin, the API and the tasks. Each locks
the item (``select_for_update``) before it decides, so two people acting at once are
serialized and the second sees the first's decision; each appends a
``RemediationTransition`` (actor, from → to, reason, amounts as decimal strings) for
every change of state. The database holds the same rules (migration 0002): legal
transitions only, content frozen once submitted, no approval by the requester, logs
append-only, and the log always ends at the item's state.

Roles: ``findings.services.roles``. Notifications go out after commit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Feature, Organization, Plan, ProviderKey, User
from findings.models import (
    PRICING_KINDS,
    Finding,
    FindingActivity,
    FindingsPolicy,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationState,
    RemediationTransition,
)
from findings.services import notifications
from findings.services.errors import (
    ConcurrentDecision,
    IllegalTransition,
    ItemLocked,
    WorkflowError,
    WorkflowPermissionDenied,
)
from findings.services.roles import (
    CANCEL_ANY_ROLES,
    approval_check,
    approver_roles,
    member_role,
    member_role_require,
)
from metron.money import quantize_money

S = RemediationState
# The legal (from, to) pairs; "" is "not yet created". Migration 0002 holds the same list.
REMEDIATION_TRANSITIONS = frozenset(
    {
        ("", S.DRAFT),
        (S.DRAFT, S.PENDING_APPROVAL),
        (S.DRAFT, S.CANCELLED),
        (S.PENDING_APPROVAL, S.APPROVED),
        (S.PENDING_APPROVAL, S.REJECTED),
        (S.PENDING_APPROVAL, S.CANCELLED),
        (S.APPROVED, S.IMPLEMENTED),
        (S.APPROVED, S.CANCELLED),
        (S.IMPLEMENTED, S.VERIFIED),
    }
)
CANCELLABLE_STATES = frozenset({S.DRAFT, S.PENDING_APPROVAL, S.APPROVED})
# Approving or rejecting one of these means someone else decided first.
DECIDED_STATES = frozenset({S.APPROVED, S.REJECTED, S.IMPLEMENTED, S.VERIFIED})

SCOPE_FIELDS = ("customer", "feature", "plan", "provider_key", "provider", "model", "environment")
SCOPE_MODELS = {"customer": Customer, "feature": Feature, "plan": Plan, "provider_key": ProviderKey}
CONTENT_FIELDS = (
    "kind", "title", "description", "parameters", "estimated_monthly_savings", *SCOPE_FIELDS,
)  # fmt: skip

NOT_DRAFT = (
    "This item is {state}: its content is frozen once submitted. Cancel it and request a new one."
)
ONLY_REQUESTER = "Only the requester ({requester}) can {verb} this draft."
CANCEL_FORBIDDEN = "Only the requester ({requester}) or an admin can cancel this item."
ILLEGAL = "A {state} item cannot be {verb}."
ALREADY_DECIDED = "This item has already been {state}; your decision was not recorded."
ALREADY_APPROVED_BY_YOU = (
    "You have already approved this item; it needs {missing} more approval(s) by someone else."
)
REASON_REQUIRED = "Say why: a reason is required to {verb} an item."
ORGANIZATION_MISMATCH = "The finding belongs to another organization."
ORGANIZATION_REQUIRED = "Give the organization (or a finding) the item belongs to."
SCOPE_OTHER_ORGANIZATION = "The {field} belongs to another organization."
KIND_REQUIRED = "Choose what kind of remediation this is ({kinds})."
TITLE_REQUIRED = "Give the item a title."
BAD_AMOUNT = 'The estimated monthly savings must be a decimal amount of USD ≥ 0, e.g. "1200.00".'
BAD_PARAMETERS = "Parameters must be an object (a dict)."
UNKNOWN_FIELD = "{field!r} cannot be set on a remediation item; editable: {fields}."


def remediation_policy(*, organization: Organization) -> FindingsPolicy:
    """The organization's findings policy, or the defaults when it has none (not saved)."""
    return FindingsPolicy.objects.filter(organization=organization).first() or FindingsPolicy(
        organization=organization
    )


def _money(value) -> Decimal:
    # Floats are refused rather than converted: 0.1 + 0.2 is not a dollar amount.
    if isinstance(value, float | bool) or value is None:
        raise WorkflowError(BAD_AMOUNT, field="estimated_monthly_savings")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as error:
        raise WorkflowError(BAD_AMOUNT, field="estimated_monthly_savings") from error
    if not amount.is_finite() or amount < 0:
        raise WorkflowError(BAD_AMOUNT, field="estimated_monthly_savings")
    return quantize_money(amount)


def _amounts(item: RemediationItem, **extra: Decimal | None) -> dict:
    """The USD figures of a transition, as decimal strings (None when not measured yet)."""
    realized = item.realized_monthly_savings
    amounts = {
        "estimated_monthly_savings": str(quantize_money(item.estimated_monthly_savings)),
        "realized_monthly_savings": None if realized is None else str(quantize_money(realized)),
    }
    amounts.update({key: None if v is None else str(v) for key, v in extra.items()})
    return amounts


def _log(
    *, item: RemediationItem, actor: User | None, from_state: str, reason: str, **extra
) -> RemediationTransition:
    return RemediationTransition.objects.create(
        organization_id=item.organization_id, item=item, actor=actor, from_state=from_state,
        to_state=item.state, reason=reason, amounts=_amounts(item, **extra),
    )  # fmt: skip


def _locked(item: RemediationItem | int) -> RemediationItem:
    # Lock the item row only (not its organization or requester): every decision
    # on the item queues behind this one, and sees its outcome.
    pk = item if isinstance(item, int) else item.pk
    return (
        RemediationItem.objects.select_for_update(of=("self",))
        .select_related("organization", "requested_by")
        .get(pk=pk)
    )


def _label(state: str) -> str:
    return RemediationState(state).label.lower()


def _notify(*, item: RemediationItem, event_type: str, **extra) -> None:
    payload = {
        "remediation_id": item.pk,
        "title": item.title,
        "kind": item.kind,
        "state": item.state,
        "needs_finance": item.needs_finance,
        "approvals_required": item.approvals_required,
        "estimated_monthly_savings": str(item.estimated_monthly_savings),
        "requested_by": item.requested_by.get_username(),
        "finding_id": item.finding_id,
        **extra,
    }
    organization = item.organization
    # After commit: a rolled-back approval must not tell anyone it happened.
    transaction.on_commit(
        lambda: notifications.notifications_enqueue(
            organization=organization, event_type=event_type, payload=payload
        )
    )


def _apply_content(item: RemediationItem, organization: Organization, changes: dict) -> list[str]:
    """Validate and set content fields; returns the names set (derived ones included)."""
    for name in changes:
        if name not in CONTENT_FIELDS:
            raise WorkflowError(
                UNKNOWN_FIELD.format(field=name, fields=", ".join(CONTENT_FIELDS)), field=name
            )
    for name, value in changes.items():
        if name == "kind":
            if value not in RemediationKind.values:
                kinds = ", ".join(RemediationKind.values)
                raise WorkflowError(KIND_REQUIRED.format(kinds=kinds), field="kind")
        elif name == "title":
            value = (value or "").strip()[:300]
            if not value:
                raise WorkflowError(TITLE_REQUIRED, field="title")
        elif name == "description":
            value = (value or "").strip()
        elif name == "parameters":
            value = {} if value is None else value
            if not isinstance(value, dict):
                raise WorkflowError(BAD_PARAMETERS, field="parameters")
        elif name == "estimated_monthly_savings":
            value = _money(value)
        elif name in SCOPE_MODELS:
            if value is not None and (
                not isinstance(value, SCOPE_MODELS[name])
                or value.organization_id != organization.pk
            ):
                raise WorkflowError(SCOPE_OTHER_ORGANIZATION.format(field=name), field=name)
        else:  # provider, model, environment
            value = (value or "").strip()
        setattr(item, name, value)
    policy = remediation_policy(organization=organization)
    item.needs_finance = item.kind in PRICING_KINDS
    item.approvals_required = (
        2 if item.estimated_monthly_savings >= policy.second_approval_threshold else 1
    )
    try:
        item.full_clean(
            exclude=["organization", "finding", "requested_by", *SCOPE_MODELS],
            validate_unique=False, validate_constraints=False,
        )  # fmt: skip
    except ValidationError as error:
        # One error shape for callers: the first field at fault and its message.
        name, messages = next(iter(error.message_dict.items()))
        raise WorkflowError(f"{name}: {messages[0]}", field=name) from error
    return [*changes, "needs_finance", "approvals_required"]


@transaction.atomic
def remediation_create(
    *,
    actor: User,
    organization: Organization | None = None,
    finding: Finding | None = None,
    kind: str | None = None,
    title: str | None = None,
    description: str | None = None,
    parameters: dict | None = None,
    estimated_monthly_savings: Decimal | str | None = None,
    reason: str = "",
    **scope,
) -> RemediationItem:
    """Request a remediation item (a draft), from a finding or from scratch.

    From a finding, the kind (its suggested ``remediation_kind``), description,
    estimated monthly savings (USD) and scope are copied; any argument given
    overrides them (scope keywords: customer, feature, plan, provider_key, provider,
    model, environment; None or "" clears). ``needs_finance`` follows the kind and
    ``approvals_required`` is 2 from the policy's second-approval threshold.
    """
    if finding is not None:
        if organization is not None and organization.pk != finding.organization_id:
            raise WorkflowError(ORGANIZATION_MISMATCH, field="finding")
        organization = finding.organization
    if organization is None:
        raise WorkflowError(ORGANIZATION_REQUIRED, field="organization")
    member_role_require(user=actor, organization=organization)

    content: dict = {}
    if finding is not None:
        content = {name: getattr(finding, name) for name in SCOPE_FIELDS}
        content["description"] = finding.remediation
        content["estimated_monthly_savings"] = finding.monthly_savings
        content["kind"] = finding.remediation_kind or None
    content.update(scope)
    given = {
        "kind": kind, "title": title, "description": description, "parameters": parameters,
        "estimated_monthly_savings": estimated_monthly_savings,
    }  # fmt: skip
    content.update({name: value for name, value in given.items() if value is not None})
    content.setdefault("estimated_monthly_savings", Decimal("0.00"))
    if content.get("kind") in RemediationKind.values and not content.get("title") and finding:
        content["title"] = f"{RemediationKind(content['kind']).label}: {finding.title}"

    item = RemediationItem(
        organization=organization, finding=finding, requested_by=actor, state=S.DRAFT
    )
    _apply_content(item, organization, {"kind": None, "title": None, **content})
    item.save()
    default_reason = (
        f"Requested from finding #{finding.pk}: {finding.title}" if finding else "Requested"
    )
    _log(item=item, actor=actor, from_state="", reason=(reason or "").strip() or default_reason)
    if finding is not None:
        FindingActivity.objects.create(
            organization_id=organization.pk, finding=finding, actor=actor, action="remediation",
            from_status=finding.status, to_status=finding.status,
            reason=f"Remediation item #{item.pk} requested: {item.title}",
            details={"remediation_id": item.pk, "kind": item.kind},
        )  # fmt: skip
    return item


@transaction.atomic
def remediation_update(*, item: RemediationItem, actor: User, **changes) -> RemediationItem:
    """Change a draft's content (its requester only); needs_finance and approvals follow."""
    locked = _locked(item)
    member_role_require(user=actor, organization=locked.organization)
    if locked.state != S.DRAFT:
        raise ItemLocked(NOT_DRAFT.format(state=_label(locked.state)))
    if actor.pk != locked.requested_by_id:
        raise WorkflowPermissionDenied(
            ONLY_REQUESTER.format(requester=locked.requested_by, verb="edit")
        )
    if not changes:
        return locked
    fields = _apply_content(locked, locked.organization, changes)
    locked.save(update_fields=[*fields, "updated_at"])
    return locked


@transaction.atomic
def remediation_submit(
    *, item: RemediationItem, actor: User, reason: str = "", now: datetime | None = None
) -> RemediationItem:
    """Draft → pending approval (its requester only); approvers are notified after commit.

    The approvals needed are fixed here, from the policy in force at submission.
    """
    locked = _locked(item)
    member_role_require(user=actor, organization=locked.organization)
    if locked.state != S.DRAFT:
        raise IllegalTransition(ILLEGAL.format(state=_label(locked.state), verb="submitted"))
    if actor.pk != locked.requested_by_id:
        raise WorkflowPermissionDenied(
            ONLY_REQUESTER.format(requester=locked.requested_by, verb="submit")
        )
    fields = _apply_content(locked, locked.organization, {})
    locked.state = S.PENDING_APPROVAL
    locked.submitted_at = now or timezone.now()
    locked.save(update_fields=["state", "submitted_at", *fields, "updated_at"])
    who = "finance or an admin" if locked.needs_finance else "another member"
    default_reason = f"Submitted: {locked.approvals_required} approval(s) needed by {who}"
    _log(
        item=locked, actor=actor, from_state=S.DRAFT,
        reason=(reason or "").strip() or default_reason,
    )  # fmt: skip
    _notify(item=locked, event_type="approval.requested", submitted_by=actor.get_username())
    return locked


def _decide(
    *, item: RemediationItem, actor: User, decision: str, reason: str, now: datetime | None
) -> RemediationItem:
    """Record one approver's decision; the item is decided when enough agree (or one rejects)."""
    verb = "approve" if decision == RemediationApproval.Decision.APPROVE else "reject"
    locked = _locked(item)
    member_role_require(user=actor, organization=locked.organization)
    if locked.state in DECIDED_STATES:
        raise ConcurrentDecision(ALREADY_DECIDED.format(state=_label(locked.state)))
    if locked.state != S.PENDING_APPROVAL:
        raise IllegalTransition(ILLEGAL.format(state=_label(locked.state), verb=f"{verb}d"))
    approval_check(item=locked, user=actor, verb=verb)
    approvers = set(
        RemediationApproval.objects.filter(
            item=locked, decision=RemediationApproval.Decision.APPROVE
        ).values_list("approver_id", flat=True)
    )
    if actor.pk in approvers:
        # Only a second approval can be pending here: the first was this actor's.
        raise ConcurrentDecision(
            ALREADY_APPROVED_BY_YOU.format(missing=locked.approvals_required - len(approvers))
        )
    RemediationApproval.objects.create(
        organization_id=locked.organization_id, item=locked, approver=actor, decision=decision,
        reason=reason,
    )  # fmt: skip
    if decision == RemediationApproval.Decision.APPROVE:
        approvers.add(actor.pk)
        if len(approvers) < locked.approvals_required:
            return locked  # a second approver is still needed; no state change
        target = S.APPROVED
        default_reason = f"Approved ({len(approvers)} of {locked.approvals_required})"
    else:
        target = S.REJECTED
        default_reason = "Rejected"
    locked.state = target
    locked.decided_at = now or timezone.now()
    locked.save(update_fields=["state", "decided_at", "updated_at"])
    _log(
        item=locked, actor=actor, from_state=S.PENDING_APPROVAL,
        reason=reason or default_reason,
    )  # fmt: skip
    _notify(
        item=locked, event_type="approval.decided", decision=decision,
        decided_by=actor.get_username(), reason=reason,
    )  # fmt: skip
    return locked


@transaction.atomic
def remediation_approve(
    *, item: RemediationItem, actor: User, reason: str = "", now: datetime | None = None
) -> RemediationItem:
    """Approve a pending item as ``actor`` (never its requester; pricing: finance or admin).

    With two approvals required the first leaves it pending and the second, by
    someone else, approves it. Raises ``ConcurrentDecision`` if it was decided first.
    """
    return _decide(
        item=item, actor=actor, decision=RemediationApproval.Decision.APPROVE,
        reason=(reason or "").strip(), now=now,
    )  # fmt: skip


@transaction.atomic
def remediation_reject(
    *, item: RemediationItem, actor: User, reason: str, now: datetime | None = None
) -> RemediationItem:
    """Reject a pending item (same approvers as approval); ``reason`` is required."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError(REASON_REQUIRED.format(verb="reject"), field="reason")
    return _decide(
        item=item, actor=actor, decision=RemediationApproval.Decision.REJECT, reason=reason,
        now=now,
    )  # fmt: skip


@transaction.atomic
def remediation_implement(
    *, item: RemediationItem, actor: User, reason: str = "", now: datetime | None = None
) -> RemediationItem:
    """Approved → implemented: the change is live from ``now``; verification counts from it."""
    locked = _locked(item)
    member_role_require(user=actor, organization=locked.organization)
    if locked.state != S.APPROVED:
        raise IllegalTransition(ILLEGAL.format(state=_label(locked.state), verb="implemented"))
    locked.state = S.IMPLEMENTED
    locked.implemented_at = now or timezone.now()
    locked.save(update_fields=["state", "implemented_at", "updated_at"])
    _log(
        item=locked, actor=actor, from_state=S.APPROVED,
        reason=(reason or "").strip() or "Implemented",
    )  # fmt: skip
    return locked


@transaction.atomic
def remediation_cancel(*, item: RemediationItem, actor: User, reason: str = "") -> RemediationItem:
    """Cancel a draft, pending or approved item (its requester or an admin).

    A reason is required once the item was submitted.
    """
    locked = _locked(item)
    role = member_role_require(user=actor, organization=locked.organization)
    if locked.state not in CANCELLABLE_STATES:
        raise IllegalTransition(ILLEGAL.format(state=_label(locked.state), verb="cancelled"))
    if actor.pk != locked.requested_by_id and role not in CANCEL_ANY_ROLES:
        raise WorkflowPermissionDenied(CANCEL_FORBIDDEN.format(requester=locked.requested_by))
    reason = (reason or "").strip()
    if not reason and locked.state != S.DRAFT:
        raise WorkflowError(REASON_REQUIRED.format(verb="cancel"), field="reason")
    previous = locked.state
    locked.state = S.CANCELLED
    locked.save(update_fields=["state", "updated_at"])
    _log(item=locked, actor=actor, from_state=previous, reason=reason or "Cancelled draft")
    return locked


def remediation_allowed_actions(*, item: RemediationItem, user: User | None) -> frozenset[str]:
    """The actions ``user`` may take on ``item`` now (for buttons; the services still decide).

    Verification also needs its window to have passed (``verification_due_at``).
    """
    role = member_role(user=user, organization=item.organization)
    if role is None:
        return frozenset()
    requester = user.pk == item.requested_by_id
    actions = set()
    if item.state == S.DRAFT and requester:
        actions |= {"update", "submit"}
    if (
        item.state == S.PENDING_APPROVAL
        and not requester
        and role in approver_roles(item=item)
        # One decision per approver: a first approver waits for the second.
        and not item.approvals.filter(approver_id=user.pk).exists()
    ):
        actions |= {"approve", "reject"}
    if item.state == S.APPROVED:
        actions.add("implement")
    if item.state == S.IMPLEMENTED:
        actions.add("verify")
    if item.state in CANCELLABLE_STATES and (requester or role in CANCEL_ANY_ROLES):
        actions.add("cancel")
    return frozenset(actions)
