"""Remediation items in the admin: the approval queue, one item's evidence, approvals and
transition log, and its workflow buttons.

The admin never writes an item itself: requests go through ``remediation_create``, a
draft's edits through ``remediation_update`` (its requester only), every step through
its service. Maker-checker and the role rules are the services'; the admin shows the
buttons ``remediation_allowed_actions`` offers and reports the services' refusals.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from unfold.decorators import display

from findings.admin.approvals import ACTION_BUTTONS, RemediationStepsMixin
from findings.admin.common import (
    AUDIT_FIELDS,
    CONFIDENCE_LABELS,
    DASH,
    MEDIA_CSS,
    STATE_LABELS,
    ReadOnlyInline,
    admin_url,
    amounts_text,
    evidence_context,
    transition_text,
    usd,
)
from findings.admin.forms import RemediationRequestForm
from findings.models import (
    Finding,
    RemediationApproval,
    RemediationItem,
    RemediationState,
    RemediationTransition,
)
from findings.services.errors import WorkflowError
from findings.services.remediation import (
    remediation_allowed_actions,
    remediation_create,
    remediation_policy,
    remediation_submit,
    remediation_update,
)
from findings.services.verification import verification_windows
from metron.tenancy.admin import OrganizationScopedAdmin
from metron.tenancy.scoping import scope_queryset

# What a draft's requester may edit (remediation_update's content fields, in the form).
EDITABLE_FIELDS = (
    "title", "kind", "estimated_monthly_savings", "description", "parameters", "plan",
    "customer", "feature",
)  # fmt: skip
REFUSED = "_findings_remediation_refused"


def approvals_given(item: RemediationItem) -> int:
    """Approvals recorded so far (annotated by the admin's queryset; counted otherwise)."""
    given = getattr(item, "approvals_given", None)
    if given is None:
        given = item.approvals.filter(decision=RemediationApproval.Decision.APPROVE).count()
    return given


class RemediationApprovalInline(ReadOnlyInline):
    model = RemediationApproval
    fields = ("created_at", "approver", "decision", "reason")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name = "approval"
    verbose_name_plural = "Approvals"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("approver")


class RemediationTransitionInline(ReadOnlyInline):
    model = RemediationTransition
    fields = ("created_at", "actor", "change", "reason", "amounts_shown")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name = "transition"
    verbose_name_plural = "Transition log"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="State")
    def change(self, obj):
        return transition_text(obj.from_state, obj.to_state)

    @admin.display(description="Amounts")
    def amounts_shown(self, obj):
        return amounts_text(obj.amounts)


@admin.register(RemediationItem)
class RemediationItemAdmin(RemediationStepsMixin, OrganizationScopedAdmin):
    """The approval queue and each item's workflow; every write is a service call."""

    list_display = (
        "title", "state_label", "kind", "savings", "requested_by", "needs_finance",
        "approvals", "created_at",
    )  # fmt: skip
    list_display_links = ("title",)
    list_filter = ("state", "kind", "needs_finance", "requested_by")
    list_select_related = ("requested_by",)
    search_fields = ("title", "description", "finding__title", "requested_by__username")
    ordering = ("-created_at", "-id")
    actions = ("approve_selected", "reject_selected")
    autocomplete_fields = ("customer",)
    inlines = (RemediationApprovalInline, RemediationTransitionInline)
    change_form_outer_before_template = "admin/findings/remediationitem/panel.html"
    fieldsets = (
        ("Request", {"fields": ("title", "kind", "estimated_monthly_savings", "description",
                                "parameters")}),
        ("Scope", {"fields": ("finding_link", "plan", "customer", "feature", "provider_key",
                              "provider", "model", "environment")}),
        ("Approval", {"fields": ("state", "requested_by", "needs_finance",
                                 "approvals_required", "submitted_at", "decided_at")}),
        ("Implementation and verified savings", {"fields": (
            "implemented_at", "verified_at", "baseline_start", "baseline_end",
            "baseline_daily_cost", "verification_start", "verification_end",
            "verified_daily_cost", "realized_monthly_savings", *AUDIT_FIELDS)}),
    )  # fmt: skip

    class Media:
        css = MEDIA_CSS

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.implemented_at is None:
            # Nothing to show there before implementation: folded, the logs come sooner.
            return [
                (name, {**options, "classes": ("collapse",)}) if name.startswith("Impl")
                else (name, options)
                for name, options in self.fieldsets
            ]  # fmt: skip
        return self.fieldsets

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related(
                "organization",
                "requested_by",
                "finding",
                "plan",
                "customer",
                "feature",
                "provider_key",
            )
            .annotate(
                approvals_given=Count(
                    "approvals", filter=Q(approvals__decision=RemediationApproval.Decision.APPROVE)
                )
            )
        )

    # --- permissions: the services' rules decide what a person may do to an item ---------

    def _allowed(self, request, item: RemediationItem) -> frozenset[str]:
        """``remediation_allowed_actions`` for this request, asked once per item."""
        cache = request.__dict__.setdefault("_findings_allowed_actions", {})
        key = (item.pk, item.state)
        if key not in cache:
            cache[key] = remediation_allowed_actions(item=item, user=request.user)
        return cache[key]

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        # Model level (actions, buttons): the role may act. An item's form is editable
        # only as a draft by its requester; approved items have no editable field.
        return obj is None or "update" in self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # items are cancelled, never deleted

    def get_readonly_fields(self, request, obj=None):
        fields = [name for _, options in self.fieldsets for name in options["fields"]]
        if obj is not None and self.has_change_permission(request, obj):
            return [name for name in fields if name not in EDITABLE_FIELDS]
        return fields

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<int:object_id>/act/<slug:action>/", self.admin_site.admin_view(self.act_view),
                 name="{}_{}_act".format(*info)),
            *super().get_urls(),
        ]  # fmt: skip

    # --- columns ---------------------------------------------------------------------

    @admin.display(description="$/mo", ordering="estimated_monthly_savings")
    def savings(self, obj):
        return usd(obj.estimated_monthly_savings)

    @display(description="State", ordering="state", label=STATE_LABELS)
    def state_label(self, obj):
        return obj.state, obj.get_state_display()

    @admin.display(description="Approvals")
    def approvals(self, obj):
        return f"{approvals_given(obj)}/{obj.approvals_required}"

    @admin.display(description="Finding")
    def finding_link(self, obj):
        if obj.finding_id is None:
            return DASH
        return format_html('<a class="text-primary-600" href="{}">{}</a>',
                           admin_url(Finding, "change", obj.finding_id), obj.finding)  # fmt: skip

    # --- requesting an item (the add view) -----------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        """Request an item, from a finding (``?finding=<id>``) or from scratch, through
        ``remediation_create`` (and ``remediation_submit`` with "Create and submit")."""
        if request.organization is None or not self.has_add_permission(request):
            raise PermissionDenied
        finding = self._finding(request)
        form = RemediationRequestForm(
            request.POST if request.method == "POST" else None,
            organization=request.organization, finding=finding,
        )  # fmt: skip
        if request.method == "POST" and form.is_valid():
            submit = "_submit" in request.POST
            try:
                with transaction.atomic():
                    item = remediation_create(
                        actor=request.user, organization=request.organization, finding=finding,
                        **form.service_arguments(),
                    )  # fmt: skip
                    if submit:
                        item = remediation_submit(item=item, actor=request.user)
            except WorkflowError as error:
                form.add_error(error.field if error.field in form.fields else None, str(error))
            else:
                self.log_addition(request, item, [{"added": {}}])
                state = "submitted for approval" if submit else "saved as a draft"
                self.message_user(request, f"“{item.title}” {state}.", messages.SUCCESS)
                return HttpResponseRedirect(admin_url(RemediationItem, "change", item.pk))
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "title": "Request remediation",
            "subtitle": finding.title if finding else None,
            "form": form,
            "finding": finding,
            "finding_url": admin_url(Finding, "change", finding.pk) if finding else None,
            "evidence": evidence_context(finding.evidence) if finding else None,
            "savings_text": usd(finding.monthly_savings) if finding else None,
            "opts": self.opts,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/findings/remediationitem/request.html", context)

    def _finding(self, request) -> Finding | None:
        value = request.GET.get("finding") or request.POST.get("finding") or ""
        if not value:
            return None
        finding = None
        if value.isdigit():
            finding = (
                scope_queryset(Finding.objects.all(), request.organization)
                .select_related("organization", "plan", "customer", "provider_key")
                .filter(pk=value)
                .first()
            )
        if finding is None:
            raise Http404("No such finding in this organization.")
        return finding

    # --- editing a draft ---------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # Never obj.save(): the requester's edit of a draft goes through its service.
        if not change:
            raise PermissionDenied
        changes = {
            name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS
        }
        try:
            remediation_update(item=obj, actor=request.user, **changes)
        except WorkflowError as error:
            setattr(request, REFUSED, str(error))
            transaction.set_rollback(True)  # the admin's log entry goes too

    def response_change(self, request, obj):
        refused = getattr(request, REFUSED, None)
        if refused:
            self.message_user(request, refused, messages.ERROR)
            return HttpResponseRedirect(admin_url(RemediationItem, "change", obj.pk))
        return super().response_change(request, obj)

    # --- the change page's panel ---------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):  # fmt: skip
        if obj is not None:
            context.update(self._panel(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _panel(self, request, item: RemediationItem) -> dict:
        allowed = self._allowed(request, item) if self.has_change_permission(request) else set()
        buttons, verify_note = [], None
        for action, (label, _, variant, reason) in ACTION_BUTTONS.items():
            if action not in allowed:
                continue
            if action == "verify":
                due = self._verification_due(item)
                if due > timezone.now():
                    verify_note = f"Savings can be measured from {due:%Y-%m-%d %H:%M} UTC."
                    continue
            if action == "cancel" and item.state == RemediationState.DRAFT:
                reason = "optional"
            buttons.append({
                "action": action, "label": label, "variant": variant, "reason": reason,
                "url": admin_url(RemediationItem, "act", item.pk, action),
            })  # fmt: skip
        finding = item.finding
        approvers = (
            "finance or an admin" if item.needs_finance else "any other member of the organization"
        )
        return {
            "item": item,
            "state_type": STATE_LABELS.get(item.state, ""),
            "savings_text": usd(item.estimated_monthly_savings),
            "realized_text": usd(item.realized_monthly_savings),
            "approvals_given": approvals_given(item),
            "approvers": approvers,
            "buttons": buttons,
            "verify_note": verify_note,
            "finding": finding,
            "finding_url": admin_url(Finding, "change", finding.pk) if finding else None,
            "finding_savings": usd(finding.monthly_savings) if finding else None,
            "confidence_type": CONFIDENCE_LABELS.get(finding.confidence, "") if finding else "",
            "evidence": evidence_context(finding.evidence) if finding else None,
        }

    @staticmethod
    def _verification_due(item: RemediationItem):
        policy = remediation_policy(organization=item.organization)
        windows = verification_windows(
            implemented_at=item.implemented_at, days=policy.verification_days
        )
        return windows.due_at
