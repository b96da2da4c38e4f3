from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from unfold.decorators import display

from accounts.models import Customer
from ingestion.models import (
    DailyUsage,
    EventConflict,
    PriceOverride,
    RepricingRun,
    UnreviewedCustomer,
    UnreviewedFeature,
    UsageEvent,
)
from ingestion.selectors import rollup_values, usage_event_search
from ingestion.services.catalog import catalog_confirm, customer_merge, feature_merge
from ingestion.services.repricing import usage_reprice
from metron.paginators import EstimatedCountPaginator
from metron.tenancy.admin import AppendOnlyAdminMixin, OrganizationScopedAdmin
from metron.tenancy.scoping import scope_queryset

AUDIT_FIELDS = ("created_at", "updated_at")


class LedgerAdminMixin(AppendOnlyAdminMixin):
    """Read-only lists over tables of millions of rows: estimated counts, no N+1."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


class RollupValueFilter(admin.SimpleListFilter):
    """Choices from the rollups: a DISTINCT over the ledger would scan millions of rows."""

    def lookups(self, request, model_admin):
        values = rollup_values(organization=request.organization, field=self.parameter_name)
        return [(value, value) for value in values]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class ProviderFilter(RollupValueFilter):
    title = parameter_name = "provider"


class ModelFilter(RollupValueFilter):
    title = parameter_name = "model"


@admin.register(UsageEvent)
class UsageEventAdmin(LedgerAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "timestamp", "event_id", "customer", "feature", "provider", "model", "environment",
        "input_tokens", "output_tokens", "cost_usd", "cost_state", "attribution_source",
    )  # fmt: skip
    list_filter = (
        "cost_status", "environment", ProviderFilter, ModelFilter, "attribution_source",
        "batch", "billable", "status",
    )  # fmt: skip
    list_select_related = ("customer", "feature")
    search_fields = ("event_id",)  # the search itself is get_search_results below
    search_help_text = "An exact event id, customer id or model name."
    date_hierarchy = "timestamp"
    raw_id_fields = ("customer", "feature", "plan", "provider_key")
    ordering = ("-timestamp",)

    @admin.display(description="Cost (USD)", ordering="cost")
    def cost_usd(self, obj):
        # Stored to 12 places; six are what a person reads per request.
        return "—" if obj.cost is None else f"${obj.cost:,.6f}"

    def get_search_results(self, request, queryset, search_term):
        # Exact, indexed lookups only: a substring search would scan the whole ledger.
        term = search_term.strip()
        if not term:
            return queryset, False
        return usage_event_search(
            queryset=queryset, organization=request.organization, term=term
        ), False

    @display(
        description="Cost status",
        ordering="cost_status",
        label={"priced": "success", "unpriced": "danger"},
    )
    def cost_state(self, obj):
        return obj.cost_status, obj.get_cost_status_display()


@admin.register(DailyUsage)
class DailyUsageAdmin(LedgerAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "day", "customer", "feature", "plan", "provider", "model", "environment", "batch",
        "billable", "requests", "errors", "cost", "unpriced_requests",
    )  # fmt: skip
    list_filter = ("environment", ProviderFilter, ModelFilter, "batch", "billable")
    list_select_related = ("customer", "feature", "plan")
    search_fields = ("=customer__external_id", "=model", "=feature__key")
    date_hierarchy = "day"
    raw_id_fields = ("customer", "feature", "plan")
    ordering = ("-day",)


@admin.register(EventConflict)
class EventConflictAdmin(OrganizationScopedAdmin):
    list_display = ("created_at", "external_event_id", "differing", "resolved")
    list_filter = ("resolved",)
    search_fields = ("=external_event_id",)
    raw_id_fields = ("original",)
    ordering = ("-created_at",)
    actions = ("mark_resolved",)
    readonly_fields = ("original", "external_event_id", "payload", "differing_fields",
                       *AUDIT_FIELDS)  # fmt: skip
    fields = ("original", "external_event_id", "differing_fields", "payload", "resolved",
              *AUDIT_FIELDS)  # fmt: skip

    def has_add_permission(self, request):
        return False

    @admin.display(description="Differing fields")
    def differing(self, obj):
        return ", ".join(obj.differing_fields)

    @admin.action(description="Mark selected conflicts resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        count = queryset.filter(resolved=False).update(resolved=True, updated_at=timezone.now())
        self.message_user(request, f"Marked {count} conflict(s) resolved.", messages.SUCCESS)


@admin.register(PriceOverride)
class PriceOverrideAdmin(OrganizationScopedAdmin):
    list_display = (
        "provider", "model_pattern", "effective_from", "effective_to", "input_per_mtok",
        "cached_input_per_mtok", "cache_write_per_mtok", "output_per_mtok", "discount_percent",
    )  # fmt: skip
    list_filter = ("provider",)
    search_fields = ("model_pattern", "note")
    ordering = ("provider", "model_pattern", "-effective_from")
    readonly_fields = ("created_by", *AUDIT_FIELDS)
    actions = ("reprice_range",)
    fieldsets = (
        (None, {"fields": ("provider", "model_pattern", "note")}),
        ("In force", {"fields": ("effective_from", "effective_to")}),
        (
            "Prices (USD per million tokens; empty = list price)",
            {
                "fields": (
                    "input_per_mtok",
                    "cached_input_per_mtok",
                    "cache_write_per_mtok",
                    "output_per_mtok",
                    "discount_percent",
                )
            },
        ),  # fmt: skip
        ("Audit", {"fields": ("created_by", *AUDIT_FIELDS)}),
    )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        # Nothing reprices silently: say how to apply the change to past events.
        self.message_user(
            request,
            "Saved. Events already stored keep their cost until you run “Reprice events in "
            "the selected overrides' ranges” on this override.",
            messages.INFO,
        )

    @admin.action(description="Reprice events in the selected overrides' ranges",
                  permissions=["change"])  # fmt: skip
    def reprice_range(self, request, queryset):
        now = timezone.now()
        for override in queryset:
            end = min(override.effective_to or now, now)
            if end <= override.effective_from:
                continue
            run = usage_reprice(
                organization=request.organization, start=override.effective_from, end=end,
                started_by=request.user, reason=f"price override {override.pk}: {override}",
            )  # fmt: skip
            self.message_user(
                request,
                f"Repriced {run.events_touched} event(s) ({run.events_changed} changed): "
                f"${run.cost_before:,.6f} → ${run.cost_after:,.6f}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:ingestion_repricingrun_changelist"))


@admin.register(RepricingRun)
class RepricingRunAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "created_at", "range_start", "range_end", "status", "events_touched", "events_changed",
        "cost_before", "cost_after", "unpriced_before", "unpriced_after", "started_by",
    )  # fmt: skip
    list_filter = ("status",)
    list_select_related = ("started_by",)
    search_fields = ("reason",)
    ordering = ("-created_at",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


# --- review queues ------------------------------------------------------------------


class MergeForm(forms.Form):
    target = forms.ModelChoiceField(queryset=Customer.objects.none())


class ReviewQueueAdmin(OrganizationScopedAdmin):
    """Rows registered automatically from usage: confirm them as they are, or merge them."""

    actions = ("confirm", "merge")
    merge_service = None
    kind = ""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(needs_review=True)

    def has_add_permission(self, request):
        return False

    def merge_targets(self, request):
        return scope_queryset(
            self.model._meta.concrete_model.objects.filter(needs_review=False),
            request.organization,
        )

    @admin.action(description="Confirm as they are", permissions=["change"])
    def confirm(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        field = "customer_ids" if self.kind == "customer" else "feature_ids"
        count = catalog_confirm(organization=request.organization, **{field: ids})
        self.message_user(request, f"Confirmed {count} {self.kind}(s).", messages.SUCCESS)

    @admin.action(description="Merge into an existing one…", permissions=["change"])
    def merge(self, request, queryset):
        form = MergeForm(request.POST if "apply" in request.POST else None)
        form.fields["target"].queryset = self.merge_targets(request)
        if form.is_valid():
            moved = 0
            for source in queryset:
                try:
                    moved += type(self).merge_service(
                        source=source, target=form.cleaned_data["target"]
                    )
                except ValidationError as error:
                    self.message_user(request, " ".join(error.messages), messages.ERROR)
                    return None
            self.message_user(
                request,
                f"Merged {queryset.count() or 'the selected'} into {form.cleaned_data['target']}; "
                f"{moved} event(s) moved.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Merge {self.kind}s",
            "queryset": list(queryset),
            "form": form,
            "kind": self.kind,
            "action": "merge",
        }
        return TemplateResponse(request, "admin/ingestion/merge.html", context)


@admin.register(UnreviewedCustomer)
class UnreviewedCustomerAdmin(ReviewQueueAdmin):
    kind = "customer"
    merge_service = staticmethod(customer_merge)
    list_display = ("external_id", "name", "created_at")
    search_fields = ("external_id", "name")
    ordering = ("-created_at",)
    fields = ("external_id", "name", "segment", "region", "is_internal", "needs_review")
    readonly_fields = ("external_id",)


@admin.register(UnreviewedFeature)
class UnreviewedFeatureAdmin(ReviewQueueAdmin):
    kind = "feature"
    merge_service = staticmethod(feature_merge)
    list_display = ("key", "name", "created_at")
    search_fields = ("key", "name")
    ordering = ("-created_at",)
    fields = ("key", "name", "team", "status", "needs_review")
    readonly_fields = ("key",)


# The provider and Stripe sync screens live in their own modules.
from ingestion import admin_providers, admin_stripe  # noqa: E402, F401
