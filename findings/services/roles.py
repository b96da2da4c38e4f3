"""Who may do what in the findings workflow: the one place the role policy is written down.

The policy (DESIGN §4, §8):

- Every action needs a membership of the item's or finding's organization. Being a
  superuser grants nothing here: no membership, no action; and a superuser who is a
  member acts with their membership's role, under the same maker-checker rule.
- Triage (status, owner, comments) and requesting remediation items: any role
  (ops, engineering, finance, admin).
- Editing and submitting a draft: only its requester (someone else's edit would make
  them a co-author, who could then approve their own words).
- Approving or rejecting: never the requester (maker-checker). Pricing kinds
  (``PRICING_KINDS``: reprice plan, restructure plan, quota) only finance or admin;
  the other kinds any role, since they are engineering changes whose check is a
  second pair of eyes rather than a budget authority.
- Implementing and verifying: any role. Cancelling: the requester or an admin.

The database repeats the approval part of this (migration 0002): an approval row by
the requester, by a non-member, or by a non-finance role on a pricing item is refused.
"""

from __future__ import annotations

from accounts.models import Membership, Organization, Role, User
from findings.models import RemediationItem
from findings.services.errors import (
    ApprovalPermissionDenied,
    SelfApprovalForbidden,
    WorkflowPermissionDenied,
)

ANY_ROLE = frozenset(Role)
PRICING_APPROVER_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
APPROVER_ROLES = ANY_ROLE
CANCEL_ANY_ROLES = frozenset({Role.ADMIN})

NOT_A_MEMBER = "You are not a member of {organization}, so you cannot act on its findings."
SELF_APPROVAL = (
    "You requested this item, so you cannot {verb} it: someone else must (maker-checker)."
)
PRICING_APPROVAL = (
    "Only finance or an admin can {verb} a pricing action ({kind}); your role is {role}."
)
ROLE_APPROVAL = "Your role ({role}) cannot {verb} remediation items."


def member_role(*, user: User | None, organization: Organization) -> str | None:
    """The user's role in the organization, or None (no membership, inactive, anonymous)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return (
        Membership.objects.filter(user_id=user.pk, organization_id=organization.pk)
        .values_list("role", flat=True)
        .first()
    )


def member_role_require(*, user: User | None, organization: Organization) -> str:
    """The user's role in the organization; raises ``WorkflowPermissionDenied`` if none."""
    role = member_role(user=user, organization=organization)
    if role is None:
        raise WorkflowPermissionDenied(NOT_A_MEMBER.format(organization=organization))
    return role


def approver_roles(*, item: RemediationItem) -> frozenset[str]:
    """The roles that may approve or reject the item (the requester never may)."""
    return PRICING_APPROVER_ROLES if item.needs_finance else APPROVER_ROLES


def approval_check(*, item: RemediationItem, user: User | None, verb: str = "approve") -> str:
    """Raise unless ``user`` may approve or reject ``item``; returns their role.

    Order matters for the message: a non-member hears that first, then the
    requester hears maker-checker even when their role would also refuse them.
    """
    role = member_role_require(user=user, organization=item.organization)
    if user.pk == item.requested_by_id:
        raise SelfApprovalForbidden(SELF_APPROVAL.format(verb=verb))
    if role not in approver_roles(item=item):
        if item.needs_finance:
            raise ApprovalPermissionDenied(
                PRICING_APPROVAL.format(
                    verb=verb, kind=item.get_kind_display(), role=Role(role).label
                )
            )
        raise ApprovalPermissionDenied(ROLE_APPROVAL.format(role=Role(role).label, verb=verb))
    return role


def can_approve(*, item: RemediationItem, user: User | None) -> bool:
    """Whether ``user`` may approve or reject ``item`` (for showing buttons; states aside)."""
    try:
        approval_check(item=item, user=user)
    except WorkflowPermissionDenied:
        return False
    return True
