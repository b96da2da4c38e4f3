"""The findings workflow's logs in the admin, read-only: finding activity, detector runs
(with "Run detectors now"), remediation transitions, budget transitions and notification
deliveries (with "Retry now"). Nobody adds, changes or deletes a row of them here."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils.html import format_html
from unfold.decorators import display

from findings.admin.common import (
    AUDIT_FIELDS,
    MEDIA_CSS,
    admin_url,
    amounts_text,
    post_only,
    report,
    transition_text,
)
from findings.models import (
    BudgetTransition,
    DetectorRun,
    FindingActivity,
    NotificationDelivery,
    RemediationTransition,
)
from findings.services.detection import detectors_run
from findings.services.notifications import notification_retry_now
from metron.tenancy.admin import AppendOnlyAdminMixin, OrganizationScopedAdmin

RUN_PERMISSION = "findings.add_detectorrun"


@admin.register(FindingActivity)
class FindingActivityAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Every change of every finding (append-only; no actor: a detector run)."""

    list_display = ("created_at", "finding", "action", "change", "actor", "reason")
    list_filter = ("action", "to_status")
    list_select_related = ("finding", "actor")
    search_fields = ("finding__title", "reason")
    ordering = ("-created_at", "-id")
    fields = ("finding", "created_at", "actor", "action", "from_status", "to_status", "reason",
              "details")  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description="Status")
    def change(self, obj):
        if obj.from_status == obj.to_status:
            return obj.to_status or "—"
        return f"{obj.from_status or '∅'} → {obj.to_status}"


@admin.register(DetectorRun)
class DetectorRunAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Runs of the detectors and alert rules; ops start one from the list's button."""

    list_display = (
        "started_at", "status_label", "trigger", "window", "created", "updated", "resolved",
        "finished_at", "error_short",
    )  # fmt: skip
    list_filter = ("status", "trigger")
    search_fields = ("error",)
    ordering = ("-started_at",)
    list_before_template = "admin/findings/detectorrun/list_header.html"
    fields = ("started_at", "finished_at", "status", "trigger", "window_start", "window_end",
              "created", "updated", "resolved", "error")  # fmt: skip

    class Media:
        css = MEDIA_CSS

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("run/", self.admin_site.admin_view(self.run_view),
                 name="{}_{}_run".format(*info)),
            *super().get_urls(),
        ]  # fmt: skip

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_run": request.organization is not None and request.user.has_perm(RUN_PERMISSION),
            "run_url": admin_url(DetectorRun, "run"),
        }
        return super().changelist_view(request, extra_context)

    def run_view(self, request):
        """POST: run every detector and alert rule over the organization now."""
        if (refused := post_only(request)) is not None:
            return refused
        if request.organization is None or not request.user.has_perm(RUN_PERMISSION):
            raise PermissionDenied
        run = detectors_run(organization=request.organization, trigger="admin")
        summary = f"{run.created} new, {run.updated} updated, {run.resolved} resolved"
        if run.status == DetectorRun.Status.FAILED:
            self.message_user(request, f"Detector run failed ({summary}): {run.error}",
                              messages.ERROR)  # fmt: skip
        else:
            self.message_user(request, f"Detectors ran: {summary}.", messages.SUCCESS)
        return HttpResponseRedirect(admin_url(DetectorRun, "changelist"))

    @display(
        description="Status", ordering="status",
        label={"running": "info", "succeeded": "success", "failed": "danger"},
    )  # fmt: skip
    def status_label(self, obj):
        return obj.status, obj.get_status_display()

    @admin.display(description="Window")
    def window(self, obj):
        return f"{obj.window_start:%Y-%m-%d} – {obj.window_end:%Y-%m-%d}"

    @admin.display(description="Error")
    def error_short(self, obj):
        text = obj.error.splitlines()[0] if obj.error else ""
        return text if len(text) <= 80 else f"{text[:77]}…"


@admin.register(RemediationTransition)
class RemediationTransitionAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Every state change of every item: who, when, from → to, why, the amounts."""

    list_display = ("created_at", "item", "change", "actor", "reason", "amounts_shown")
    list_filter = ("to_state",)
    list_select_related = ("item", "actor")
    search_fields = ("item__title", "reason")
    ordering = ("-created_at", "-id")
    fields = ("item", "created_at", "actor", "from_state", "to_state", "reason", "amounts")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description="State")
    def change(self, obj):
        return transition_text(obj.from_state, obj.to_state)

    @admin.display(description="Amounts")
    def amounts_shown(self, obj):
        return amounts_text(obj.amounts)


@admin.register(BudgetTransition)
class BudgetTransitionAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ("created_at", "budget", "month", "change", "spend", "limit")
    list_filter = ("to_state",)
    list_select_related = ("budget",)
    search_fields = ("budget__name",)
    ordering = ("-created_at", "-id")
    fields = ("budget", "created_at", "month", "from_state", "to_state", "spend", "limit")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description="State")
    def change(self, obj):
        return transition_text(obj.from_state, obj.to_state)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Every email and webhook sent or being retried; "retry now" makes one due at once."""

    list_display = (
        "created_at", "event_type", "channel", "recipient", "status_label", "attempts",
        "next_attempt_at", "response_status", "sent_at", "error_short",
    )  # fmt: skip
    list_filter = ("status", "channel", "event_type")
    search_fields = ("recipient", "event_type")
    ordering = ("-created_at", "-id")
    actions = ("retry_now",)
    fields = (
        "event_type", "channel", "endpoint", "recipient", "status", "attempts",
        "next_attempt_at", "response_status", "sent_at", "last_error", "payload_shown",
        *AUDIT_FIELDS,
    )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_change_permission(self, request, obj=None):
        # "Retry now" needs the model's change permission; a delivery itself never changes.
        return obj is None and super(AppendOnlyAdminMixin, self).has_change_permission(request)

    @display(
        description="Status", ordering="status",
        label={"pending": "warning", "sent": "success", "failed": "danger"},
    )  # fmt: skip
    def status_label(self, obj):
        return obj.status, obj.get_status_display()

    @admin.display(description="Last error")
    def error_short(self, obj):
        text = obj.last_error
        return text if len(text) <= 60 else f"{text[:57]}…"

    @admin.display(description="Payload")
    def payload_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        done, skipped = [], []
        for delivery in queryset:
            result = notification_retry_now(delivery=delivery)
            if result.status == NotificationDelivery.Status.SENT:
                skipped.append((str(delivery), "already sent: nothing to retry."))
            else:
                done.append(str(delivery))
        report(self, request, done=done, failed=skipped, verb="Queued again", noun="delivery",
               plural="deliveries")  # fmt: skip
