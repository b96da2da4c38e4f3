"""Triage of findings in the admin: one POST view per button of a finding's page, and
the bulk actions of the triage list. Each calls ``findings.services.triage`` and reports
what it said, finding by finding."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect

from findings.admin.common import action_with_form, admin_url, post_only, report
from findings.admin.forms import AssignForm, ReasonForm, SnoozeForm, members
from findings.models import Finding
from findings.services.errors import WorkflowError
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
)

COMMENT_PERMISSION = "findings.add_findingcomment"
TRIAGE_SERVICES = {
    "acknowledge": finding_acknowledge,
    "start": finding_start,
    "resolve": finding_resolve,
    "dismiss": finding_dismiss,
    "snooze": finding_snooze,
    "reopen": finding_reopen,
    "assign": finding_assign,
}
# Button label, past tense for the message, and the input the step needs (if any).
TRIAGE_BUTTONS = {
    "acknowledge": ("Acknowledge", "Acknowledged", None),
    "start": ("Start work", "Started", None),
    "resolve": ("Resolve", "Resolved", None),
    "reopen": ("Reopen", "Reopened", None),
    "snooze": ("Snooze until…", "Snoozed", "until"),
    "dismiss": ("Dismiss…", "Dismissed", "reason"),
}


class TriageViewsMixin:
    """The finding's triage steps as POST views (one per button) and bulk actions."""

    def _finding_or_404(self, request, object_id) -> Finding:
        finding = self.get_object(request, str(object_id))
        if finding is None:
            raise Http404("No such finding in this organization.")
        return finding

    def _change_url(self, finding) -> str:
        return admin_url(Finding, "change", finding.pk)

    def _triage_arguments(self, request, action: str) -> dict:
        """The service's keyword arguments from the posted button; raises WorkflowError."""
        post = request.POST
        arguments = {}
        if action != "assign":
            arguments["reason"] = post.get("reason", "")
        if action == "snooze":
            try:
                arguments["until"] = forms.DateField().clean(post.get("until"))
            except forms.ValidationError:
                raise WorkflowError("Snooze until a date (YYYY-MM-DD).", field="until") from None
        if action == "assign":
            owner_id = post.get("owner") or ""
            owner = None
            if owner_id:
                if owner_id.isdigit():
                    owner = members(request.organization).filter(pk=owner_id).first()
                if owner is None:
                    raise WorkflowError("Choose a member of this organization.", field="owner")
            arguments["owner"] = owner
        return arguments

    def triage_view(self, request, object_id, action):
        """POST: one triage step on one finding, through its service."""
        if (refused := post_only(request)) is not None:
            return refused
        finding = self._finding_or_404(request, object_id)
        if action not in TRIAGE_SERVICES:
            raise Http404("Unknown triage step.")
        if not self.has_change_permission(request):
            raise PermissionDenied
        try:
            arguments = self._triage_arguments(request, action)
            done = TRIAGE_SERVICES[action](finding=finding, actor=request.user, **arguments)
        except WorkflowError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            if action == "assign":
                owner = done.owner.get_username() if done.owner_id else "nobody"
                self.message_user(request, f"Owner: {owner}.", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{TRIAGE_BUTTONS[action][1]}: the finding is now "
                    f"{done.get_status_display().lower()}.", messages.SUCCESS,
                )  # fmt: skip
        return HttpResponseRedirect(self._change_url(finding))

    def comment_view(self, request, object_id):
        """POST: add a comment to a finding, through ``finding_comment_add``."""
        if (refused := post_only(request)) is not None:
            return refused
        finding = self._finding_or_404(request, object_id)
        if not request.user.has_perm(COMMENT_PERMISSION):
            raise PermissionDenied
        try:
            finding_comment_add(finding=finding, actor=request.user, body=request.POST.get("body"))
        except WorkflowError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, "Comment added.", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(finding) + "#comments")

    # --- bulk actions ----------------------------------------------------------------

    def _bulk(self, request, findings, action: str, **arguments) -> None:
        results = findings_bulk_transition(
            actor=request.user, findings=findings, action=action, **arguments
        )
        titles = {finding.pk: finding.title for finding in findings}
        verb = "Assigned" if action == "assign" else TRIAGE_BUTTONS[action][1]
        report(
            self, request, verb=verb, noun="finding",
            done=[titles[r.finding_id] for r in results if r.ok],
            failed=[(titles[r.finding_id], r.error) for r in results if not r.ok],
        )  # fmt: skip

    @admin.action(description="Acknowledge selected findings", permissions=["change"])
    def acknowledge_selected(self, request, queryset):
        self._bulk(request, list(queryset), "acknowledge")

    @admin.action(description="Start work on selected findings", permissions=["change"])
    def start_selected(self, request, queryset):
        self._bulk(request, list(queryset), "start")

    @admin.action(description="Resolve selected findings", permissions=["change"])
    def resolve_selected(self, request, queryset):
        self._bulk(request, list(queryset), "resolve")

    @admin.action(description="Reopen selected findings", permissions=["change"])
    def reopen_selected(self, request, queryset):
        self._bulk(request, list(queryset), "reopen")

    @admin.action(description="Dismiss selected findings… (reason required)",
                  permissions=["change"])  # fmt: skip
    def dismiss_selected(self, request, queryset):
        return action_with_form(
            self, request, queryset, noun="finding", action="dismiss_selected",
            form_class=ReasonForm,
            title="Dismiss findings", submit="Dismiss",
            intro="A dismissed finding stays dismissed while its condition holds. Say why: "
            "the reason is kept in each finding's activity log.",
            apply=lambda findings, data: self._bulk(
                request, findings, "dismiss", reason=data["reason"]
            ),
        )  # fmt: skip

    @admin.action(description="Snooze selected findings until a date…", permissions=["change"])
    def snooze_selected(self, request, queryset):
        return action_with_form(
            self, request, queryset, noun="finding", action="snooze_selected",
            form_class=SnoozeForm,
            title="Snooze findings", submit="Snooze",
            intro="Snoozed findings leave the queue and reopen by themselves on the date.",
            apply=lambda findings, data: self._bulk(
                request, findings, "snooze", until=data["until"], reason=data["reason"]
            ),
        )  # fmt: skip

    @admin.action(description="Assign selected findings to…", permissions=["change"])
    def assign_selected(self, request, queryset):
        return action_with_form(
            self, request, queryset, noun="finding", action="assign_selected",
            form_class=AssignForm,
            title="Assign findings", submit="Assign",
            intro="The owner is the person who sees the finding through.",
            organization=request.organization,
            apply=lambda findings, data: self._bulk(
                request, findings, "assign", owner=data["owner"]
            ),
        )  # fmt: skip
