"""Findings in the admin: the triage list, one finding's evidence and workflow, the
activity log and the detector runs.

Every change goes through ``findings.services.triage``: the change view is read-only
(detectors own a finding's fields) and its buttons post to small views that call the
services and report what they said.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.urls import include, path
from unfold.decorators import display

from findings.admin.common import (
    AUDIT_FIELDS,
    CONFIDENCE_LABELS,
    MEDIA_CSS,
    STATE_LABELS,
    STATUS_LABELS,
    ReadOnlyInline,
    admin_url,
    category,
    evidence_context,
    usd,
)
from findings.admin.forms import CommentForm, members
from findings.admin.triage import COMMENT_PERMISSION, TRIAGE_BUTTONS, TriageViewsMixin
from findings.models import (
    ALERT_KINDS,
    WASTE_KINDS,
    Finding,
    FindingActivity,
    FindingComment,
    RemediationItem,
    RemediationKind,
)
from findings.selectors import findings_identified
from findings.services.triage import (
    FINDING_TRANSITIONS,
)
from metron.tenancy.admin import OrganizationScopedAdmin

REQUEST_PERMISSION = "findings.add_remediationitem"


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return (("waste", "Waste"), ("alert", "Alert"))

    def queryset(self, request, queryset):
        if self.value() == "waste":
            return queryset.filter(kind__in=WASTE_KINDS)
        if self.value() == "alert":
            return queryset.filter(kind__in=ALERT_KINDS)
        return queryset


# (parameter value, label, from USD inclusive, to USD exclusive)
SAVINGS_RANGES = (
    ("lt100", "Under $100/mo", None, 100),
    ("100-1000", "$100 – $1,000/mo", 100, 1000),
    ("1000-10000", "$1,000 – $10,000/mo", 1000, 10000),
    ("10000+", "$10,000/mo and more", 10000, None),
)


class SavingsFilter(admin.SimpleListFilter):
    title = "dollars a month"
    parameter_name = "savings"

    def lookups(self, request, model_admin):
        return [(value, label) for value, label, _, _ in SAVINGS_RANGES]

    def queryset(self, request, queryset):
        for value, _, low, high in SAVINGS_RANGES:
            if self.value() == value:
                if low is not None:
                    queryset = queryset.filter(monthly_savings__gte=low)
                if high is not None:
                    queryset = queryset.filter(monthly_savings__lt=high)
        return queryset


class FindingActivityInline(ReadOnlyInline):
    model = FindingActivity
    fields = ("created_at", "actor", "action", "change", "reason")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name = "activity"
    verbose_name_plural = "Activity log"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="Status")
    def change(self, obj):
        if obj.from_status == obj.to_status:
            return obj.to_status or "—"
        return f"{obj.from_status or '∅'} → {obj.to_status}"


class FindingCommentInline(ReadOnlyInline):
    model = FindingComment
    fields = ("created_at", "author", "body")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name = "comment"
    verbose_name_plural = "Comments"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


@admin.register(Finding)
class FindingAdmin(TriageViewsMixin, OrganizationScopedAdmin):
    """The triage queue. Detector-owned fields are read-only; triage goes through services."""

    list_display = (
        "title", "kind", "savings", "confidence_label", "status_label", "owner", "last_seen",
    )  # fmt: skip
    list_display_links = ("title",)
    list_filter = ("kind", CategoryFilter, "status", "confidence", "owner", SavingsFilter)
    list_select_related = ("owner",)
    search_fields = (
        "title", "model", "provider", "feature__key", "feature__name", "customer__name",
        "customer__external_id", "plan__code", "plan__name",
    )  # fmt: skip
    search_help_text = "Title, model, provider, feature, customer or plan."
    ordering = ("-monthly_savings", "-last_seen_at", "-id")
    actions = (
        "acknowledge_selected", "start_selected", "resolve_selected", "dismiss_selected",
        "snooze_selected", "assign_selected", "reopen_selected",
    )  # fmt: skip
    inlines = (FindingActivityInline, FindingCommentInline)
    list_before_template = "admin/findings/finding/list_header.html"
    change_form_outer_before_template = "admin/findings/finding/panel.html"
    change_form_outer_after_template = "admin/findings/finding/comments.html"
    fieldsets = (
        ("Finding", {"fields": ("title", "kind", "category_label", "status", "owner",
                                "savings", "confidence", "confidence_reason")}),
        ("Scope", {"fields": ("customer", "feature", "plan", "provider_key", "provider",
                              "model", "environment", "prompt_version")}),
        ("Triage", {"fields": ("dismiss_reason", "snoozed_until", "auto_resolved")}),
        ("Detection", {"fields": ("window_start", "window_end", "first_seen_at",
                                  "last_seen_at", "last_run", "fingerprint", *AUDIT_FIELDS),
                       "classes": ("collapse",)}),
    )  # fmt: skip

    class Media:
        css = MEDIA_CSS

    def get_queryset(self, request):
        # The change view shows every scope reference; the list only the owner.
        return (
            super()
            .get_queryset(request)
            .select_related("owner", "customer", "feature", "plan", "provider_key", "last_run")
        )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def has_add_permission(self, request):
        return False  # detectors raise findings

    def has_change_permission(self, request, obj=None):
        # The change view is read-only (detectors own the fields); triage steps check
        # the model-level permission (obj None) and then ask the services.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # a finding's activity log is kept; resolve or dismiss it instead

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/triage/<slug:action>/", wrap(self.triage_view),
                 name="{}_{}_triage".format(*info)),
            path("<int:object_id>/comment/", wrap(self.comment_view),
                 name="{}_{}_comment".format(*info)),
            # The weekly review lives beside the findings it summarizes.
            path("", include("findings.admin_urls")),
            *super().get_urls(),
        ]  # fmt: skip

    # --- columns ---------------------------------------------------------------------

    @admin.display(description="$/mo", ordering="monthly_savings")
    def savings(self, obj):
        return usd(obj.monthly_savings)

    @display(description="Confidence", ordering="confidence", label=CONFIDENCE_LABELS)
    def confidence_label(self, obj):
        return obj.confidence, obj.get_confidence_display()

    @display(description="Status", ordering="status", label=STATUS_LABELS)
    def status_label(self, obj):
        return obj.status, obj.get_status_display()

    @admin.display(description="Last seen", ordering="last_seen_at")
    def last_seen(self, obj):
        return f"{obj.last_seen_at:%Y-%m-%d %H:%M}"

    @admin.display(description="Category")
    def category_label(self, obj):
        return category(obj.kind).capitalize()

    # --- pages -----------------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        if request.organization is not None:
            count, savings = findings_identified(organization=request.organization)
            extra_context["identified"] = {"count": count, "savings": usd(savings)}
            extra_context["pending_url"] = (
                admin_url(RemediationItem, "changelist") + "?state__exact=pending_approval"
            )
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):  # fmt: skip
        if obj is not None:
            context.update(self._panel(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _panel(self, request, finding: Finding) -> dict:
        can_triage = self.has_change_permission(request)
        buttons = []
        if can_triage:
            for action, (label, _, needs) in TRIAGE_BUTTONS.items():
                sources, _ = FINDING_TRANSITIONS[action]
                if finding.status in sources:
                    buttons.append({"action": action, "label": label, "needs": needs,
                                    "url": self._action_url(finding, action)})  # fmt: skip
        remediations = [
            {"item": item, "url": admin_url(RemediationItem, "change", item.pk),
             "state_type": STATE_LABELS.get(item.state, "")}
            for item in finding.remediations.select_related("requested_by").order_by("-created_at")
        ]  # fmt: skip
        can_request = request.user.has_perm(REQUEST_PERMISSION)
        return {
            "finding": finding,
            "finding_category": category(finding.kind),
            "status_type": STATUS_LABELS.get(finding.status, ""),
            "confidence_type": CONFIDENCE_LABELS.get(finding.confidence, ""),
            "savings_text": usd(finding.monthly_savings),
            "window_last_day": finding.window_end - timedelta(days=1),
            "evidence": evidence_context(finding.evidence),
            "triage_buttons": buttons,
            "can_triage": can_triage,
            "owners": members(request.organization) if can_triage else [],
            "assign_url": self._action_url(finding, "assign"),
            "can_comment": request.user.has_perm(COMMENT_PERMISSION),
            "comment_form": CommentForm(),
            "comment_url": admin_url(Finding, "comment", finding.pk),
            "remediations": remediations,
            "suggested_kind": (
                RemediationKind(finding.remediation_kind).label
                if finding.remediation_kind in RemediationKind.values
                else ""
            ),
            "request_url": (
                f"{admin_url(RemediationItem, 'add')}?finding={finding.pk}" if can_request else None
            ),
        }

    def _action_url(self, finding, action: str) -> str:
        return admin_url(Finding, "triage", finding.pk, action)
