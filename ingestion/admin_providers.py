"""Admin of provider connections, synced usage and costs, reconciliation and sync runs.

Imported by ``ingestion/admin.py``. Connections keep their admin key write-only: the form
takes a new key in a password field that never renders a value, lists show "…last4".
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from unfold.decorators import display

from ingestion.models import (
    ProviderConnection,
    ProviderCostLine,
    ProviderUsageBucket,
    ReconciliationLine,
    SyncRun,
)
from ingestion.services.providers.connections import (
    provider_connection_set_key,
    provider_connection_test,
)
from ingestion.tasks.providers import provider_sync_enqueue
from metron.paginators import EstimatedCountPaginator
from metron.tenancy.admin import AppendOnlyAdminMixin, OrganizationScopedAdmin

AUDIT_FIELDS = ("created_at", "updated_at")
STATUS_LABELS = {"ok": "success", "failed": "danger", "untested": "warning"}


class ReadOnlyListAdminMixin(AppendOnlyAdminMixin):
    """Synced rows and projections: read-only, estimated counts on large tables."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


class ProviderConnectionForm(forms.ModelForm):
    api_base = forms.URLField(
        label="API base URL", required=False, max_length=300, assume_scheme="https",
        help_text=ProviderConnection._meta.get_field("api_base").help_text,
    )  # fmt: skip
    admin_key = forms.CharField(
        label="Admin key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current key.",
    )

    class Meta:
        model = ProviderConnection
        fields = ("provider", "api_base", "enabled", "resync_days", "tolerance_percent")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not cleaned.get("admin_key"):
            self.add_error("admin_key", "An admin key is required to create a connection.")
        return cleaned


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(OrganizationScopedAdmin):
    form = ProviderConnectionForm
    list_display = (
        "provider",
        "masked_key",
        "api_base_shown",
        "state",
        "status_message_short",
        "last_tested_at",
        "last_usage_synced_at",
        "last_costs_synced_at",
        "enabled",
    )
    list_filter = ("provider", "status", "enabled")
    ordering = ("provider",)
    actions = ("test_connection", "sync_now")
    readonly_fields = (
        "masked_key",
        "status",
        "status_message",
        "last_tested_at",
        "last_usage_synced_at",
        "last_costs_synced_at",
        *AUDIT_FIELDS,
    )

    def get_fieldsets(self, request, obj=None):
        return (
            (None, {"fields": ("provider", "admin_key", "masked_key", "api_base", "enabled")}),
            ("Sync and reconciliation", {"fields": ("resync_days", "tolerance_percent")}),
            ("State", {"fields": ("status", "status_message", "last_tested_at",
                                  "last_usage_synced_at", "last_costs_synced_at",
                                  *AUDIT_FIELDS)}),
        )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("provider", *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        key = form.cleaned_data.get("admin_key")
        if key:
            provider_connection_set_key(connection=obj, admin_key=key)
        super().save_model(request, obj, form, change)

    @admin.display(description="Admin key")
    def masked_key(self, obj):
        return obj.masked_key or "—"

    @admin.display(description="API base", ordering="api_base")
    def api_base_shown(self, obj):
        return obj.api_base or "(public API)"

    @display(description="Status", ordering="status", label=STATUS_LABELS)
    def state(self, obj):
        return obj.status, obj.get_status_display()

    @admin.display(description="Message")
    def status_message_short(self, obj):
        text = obj.status_message
        return text if len(text) <= 80 else f"{text[:77]}…"

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request, queryset):
        for connection in queryset:
            result = provider_connection_test(connection=connection)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{connection}: {result.message}", level)

    @admin.action(
        description="Sync now (usage, costs, then reconciliation)", permissions=["change"]
    )
    def sync_now(self, request, queryset):
        count = provider_sync_enqueue(connection_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"Queued the sync of {count} connection(s); see Sync runs.", messages.SUCCESS
        )


@admin.register(ProviderUsageBucket)
class ProviderUsageBucketAdmin(ReadOnlyListAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "bucket_start",
        "bucket_width",
        "provider",
        "model",
        "api_key_id",
        "feature",
        "project_id",
        "batch",
        "service_tier",
        "requests",
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "output_tokens",
        "estimated_cost",
    )
    list_filter = ("provider", "bucket_width", "batch", "service_tier")
    list_select_related = ("provider_key__feature",)
    search_fields = ("=model", "=api_key_id", "=project_id")
    search_help_text = "Exact model, API key id or project / workspace id."
    date_hierarchy = "bucket_start"
    ordering = ("-bucket_start",)

    @admin.display(description="Feature (key mapping)")
    def feature(self, obj):
        if obj.provider_key is None:
            return "—"
        return obj.provider_key.feature or "unmapped key"


@admin.register(ProviderCostLine)
class ProviderCostLineAdmin(ReadOnlyListAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "day",
        "provider",
        "line_item",
        "model",
        "token_type",
        "service_tier",
        "project_id",
        "api_key_id",
        "amount",
        "currency",
    )
    list_filter = ("provider", "currency", "cost_type")
    search_fields = ("=model", "=api_key_id", "=project_id", "line_item")
    date_hierarchy = "day"
    ordering = ("-day",)


@admin.register(ReconciliationLine)
class ReconciliationLineAdmin(ReadOnlyListAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "day",
        "provider",
        "model_shown",
        "level",
        "api_key_id",
        "ledger_cost",
        "provider_usage_cost",
        "invoiced_cost",
        "variance",
        "variance_percent",
        "token_variance_percent",
        "state",
        "explanation_short",
    )
    list_filter = ("flagged", "provider", "level", "invoiced_basis")
    search_fields = ("=model", "=api_key_id")
    date_hierarchy = "day"
    ordering = ("-day", "provider", "model")

    @admin.display(description="Model", ordering="model")
    def model_shown(self, obj):
        return obj.model or "(other charges)"

    @display(description="Flag", ordering="flagged", label={"flagged": "danger", "ok": "success"})
    def state(self, obj):
        return ("flagged", "Flagged") if obj.flagged else ("ok", "Within tolerance")

    @admin.display(description="Explanation")
    def explanation_short(self, obj):
        text = obj.explanation
        return text if len(text) <= 120 else f"{text[:117]}…"


class SyncRunAdmin(ReadOnlyListAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "created_at",
        "kind",
        "source",
        "state",
        "pages",
        "items",
        "attempts",
        "duration",
        "range_start",
        "range_end",
        "error_short",
    )
    list_filter = ("kind", "source", "status")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"

    @display(
        description="Status", ordering="status",
        label={"succeeded": "success", "failed": "danger", "running": "info", "pending": "warning"},
    )  # fmt: skip
    def state(self, obj):
        return obj.status, obj.get_status_display()

    @admin.display(description="Duration")
    def duration(self, obj):
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="Error")
    def error_short(self, obj):
        return obj.error if len(obj.error) <= 100 else f"{obj.error[:97]}…"


# The Stripe side may register its own sync-run admin; whichever module loads first wins.
if not admin.site.is_registered(SyncRun):
    admin.site.register(SyncRun, SyncRunAdmin)
