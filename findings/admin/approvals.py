"""The steps of a remediation item in the admin: one POST view per button of its page,
and the approve / reject actions of the list. Each calls its service; a refusal
(maker-checker, role, state) is shown as the service (or the database) worded it, and
changes nothing."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, HttpResponseRedirect

from findings.admin.common import action_with_form, admin_url, post_only, report
from findings.admin.forms import ReasonForm
from findings.models import RemediationItem, RemediationState
from findings.services.errors import WorkflowError
from findings.services.remediation import (
    remediation_approve,
    remediation_cancel,
    remediation_implement,
    remediation_reject,
    remediation_submit,
)
from findings.services.verification import remediation_verify

ACTION_SERVICES = {
    "submit": remediation_submit,
    "approve": remediation_approve,
    "reject": remediation_reject,
    "implement": remediation_implement,
    "cancel": remediation_cancel,
    "verify": remediation_verify,
}
# action → (button label, message verb, button variant, reason input: "", "optional", "required")
ACTION_BUTTONS = {
    "submit": ("Submit for approval", "Submitted for approval", "primary", ""),
    "approve": ("Approve", "Approved", "primary", "optional"),
    "reject": ("Reject…", "Rejected", "danger", "required"),
    "implement": ("Mark implemented", "Marked implemented", "primary", ""),
    "verify": ("Measure savings now", "Verified", "primary", ""),
    "cancel": ("Cancel item…", "Cancelled", "default", "required"),
}


def refusal(error: Exception) -> str:
    """What to tell the person whose step was refused: the service's message, or the
    database's when one of its guards (maker-checker, immutability) stopped the write."""
    if isinstance(error, IntegrityError):
        return f"Refused by the database, nothing changed: {str(error).splitlines()[0]}"
    return str(error)


class RemediationStepsMixin:
    """The item's workflow steps (buttons and list actions), for ``RemediationItemAdmin``."""

    def act_view(self, request, object_id, action):
        """POST: one workflow step on one item, through its service; the service's
        refusal (maker-checker, role, state) is shown as it is and changes nothing."""
        if (refused := post_only(request)) is not None:
            return refused
        item = self.get_object(request, str(object_id))
        if item is None:
            raise Http404("No such remediation item in this organization.")
        if action not in ACTION_SERVICES:
            raise Http404("Unknown step.")
        if not self.has_change_permission(request):
            raise PermissionDenied
        arguments = {"reason": request.POST.get("reason", "")}
        try:
            done = ACTION_SERVICES[action](item=item, actor=request.user, **arguments)
        except (WorkflowError, IntegrityError) as error:
            self.message_user(request, refusal(error), messages.ERROR)
        else:
            self.message_user(request, self._done_message(action, done), messages.SUCCESS)
        return HttpResponseRedirect(admin_url(RemediationItem, "change", item.pk))

    @staticmethod
    def _done_message(action: str, item: RemediationItem) -> str:
        if action == "approve" and item.state == RemediationState.PENDING_APPROVAL:
            return (
                f"Your approval of “{item.title}” is recorded; it needs "
                f"{item.approvals_required} approvals by different people."
            )
        state = item.get_state_display().lower()
        return f"{ACTION_BUTTONS[action][1]}: “{item.title}” is now {state}."

    def _decide_many(self, request, items, action: str, **arguments) -> None:
        done, partial, failed = [], [], []
        for item in items:
            try:
                result = ACTION_SERVICES[action](item=item, actor=request.user, **arguments)
            except (WorkflowError, IntegrityError) as error:
                failed.append((item.title, refusal(error)))
            else:
                pending = result.state == RemediationState.PENDING_APPROVAL
                (partial if pending else done).append(item.title)
        report(self, request, done=done, failed=failed, verb=ACTION_BUTTONS[action][1],
               noun="item")  # fmt: skip
        for title in partial:
            self.message_user(
                request, f"“{title}”: your approval is recorded; a second approver is needed.",
                messages.INFO,
            )  # fmt: skip

    @admin.action(description="Approve selected items", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide_many(request, list(queryset), "approve")

    @admin.action(description="Reject selected items… (reason required)", permissions=["change"])
    def reject_selected(self, request, queryset):
        return action_with_form(
            self, request, queryset, noun="item", action="reject_selected",
            form_class=ReasonForm, title="Reject remediation items", submit="Reject",
            intro="The requester sees the reason in the item's transition log.",
            apply=lambda items, data: self._decide_many(
                request, items, "reject", reason=data["reason"]
            ),
        )  # fmt: skip
