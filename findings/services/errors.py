"""Errors of the findings workflow: one message a person can read, one status an API can send.

Every rule the triage and remediation services enforce fails with a subclass of
``WorkflowError``. It is a Django ``ValidationError`` (forms and the admin show it
as is), ``str(error)`` is the human message, ``error.code`` a stable machine code
and ``error.status_code`` the HTTP status an API should answer with:

- ``WorkflowError`` (400 ``invalid``): bad input (a missing reason, a past date, …).
- ``WorkflowPermissionDenied`` (403 ``permission_denied``): the actor may not do this.
  - ``ApprovalPermissionDenied`` (403 ``approval_permission_denied``): the actor's role
    may not approve or reject this kind of item.
    - ``SelfApprovalForbidden`` (403 ``self_approval_forbidden``): maker-checker.
- ``IllegalTransition`` (409 ``illegal_transition``): not from the current state.
  - ``ConcurrentDecision`` (409 ``already_decided``): someone decided first.
- ``ItemLocked`` (409 ``item_locked``): the item's content can no longer change.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class WorkflowError(ValidationError):
    """A workflow rule refused the action; the message says which and why."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message, code=code or self.default_code)
        # The input field at fault (e.g. "reason"), for forms and API error bodies.
        self.field = field

    def __str__(self) -> str:
        return self.message


class WorkflowPermissionDenied(WorkflowError):
    status_code = 403
    default_code = "permission_denied"


class ApprovalPermissionDenied(WorkflowPermissionDenied):
    default_code = "approval_permission_denied"


class SelfApprovalForbidden(ApprovalPermissionDenied):
    default_code = "self_approval_forbidden"


class IllegalTransition(WorkflowError):
    status_code = 409
    default_code = "illegal_transition"


class ConcurrentDecision(IllegalTransition):
    default_code = "already_decided"


class ItemLocked(WorkflowError):
    status_code = 409
    default_code = "item_locked"
