"""Admin of the Stripe mirror and revenue: connection, mirrored objects (read-only),
the unmatched-customer queue, webhook events, revenue lines, FX rates and manual
revenue entries. Imported by ``ingestion/admin.py``; every admin is organization
scoped and thin (the writes go through services).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Q
from django.template import engines
from django.template.response import TemplateResponse
from django.utils.html import format_html
from unfold.decorators import display

from accounts.models import Customer
from ingestion.models import (
    FxRate,
    ManualRevenueEntry,
    RevenueLine,
    StripeConnection,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePrice,
    StripeProduct,
    StripeRefund,
    StripeSubscription,
    StripeSubscriptionItem,
    SyncRun,
    UnmatchedStripeCustomer,
)
from ingestion.models.stripe import DEFAULT_API_BASE
from ingestion.services import revenue
from ingestion.services.stripe.connection import stripe_connection_set, stripe_connection_test
from ingestion.services.stripe.events import stripe_events_reprocess
from ingestion.services.stripe.mirror import stripe_customer_link
from metron.tenancy.admin import (
    AppendOnlyAdminMixin,
    OrganizationScopedAdmin,
    OrganizationScopedTabularInline,
)
from metron.tenancy.scoping import scope_queryset

AUDIT_FIELDS = ("created_at", "updated_at")
RAW_FIELDSET = ("Raw Stripe object", {"classes": ["collapse"], "fields": ["raw_json"]})
STATUS_LABELS = {
    "active": "success",
    "paid": "success",
    "processed": "success",
    "succeeded": "success",
    "issued": "success",
    "trialing": "info",
    "open": "info",
    "received": "info",
    "processing": "info",
    "running": "info",
    "pending": "info",
    "draft": "warning",
    "past_due": "warning",
    "ignored": "warning",
    "canceled": "danger",
    "void": "danger",
    "failed": "danger",
    "uncollectible": "danger",
    "error": "danger",
    "disabled": "warning",
}


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; max-height: 40rem; overflow: auto;">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, default=str),
    )


class ReadOnlyMirrorAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    """Mirrored Stripe objects: written by the sync only, read here."""

    ordering = ("-stripe_created", "-pk")
    date_hierarchy = "stripe_created"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "raw"] + ["raw_json"]

    @admin.display(description="Raw object")
    def raw_json(self, obj):
        return _pretty_json(obj.raw)

    @display(description="Status", label=STATUS_LABELS)
    def status_label(self, obj):
        return obj.status


class ReadOnlyInline(OrganizationScopedTabularInline):
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- connection -------------------------------------------------------------------------


class StripeConnectionForm(forms.ModelForm):
    """Secrets are write-only: never rendered back; left empty on change, they are kept."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=(
            "sk_… or rk_…; stored encrypted and never shown again. Empty keeps the current key."
        ),
    )
    webhook_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=(
            "whsec_… of the endpoint /webhooks/stripe/<org-slug>/. Empty keeps the current one."
        ),
    )

    api_base = forms.URLField(
        label="API base URL", assume_scheme="https", initial=DEFAULT_API_BASE,
        help_text="Only changed for tests and demos.",
    )  # fmt: skip

    class Meta:
        model = StripeConnection
        fields = ("api_base", "customer_metadata_key", "status")

    def _update_errors(self, errors):
        # One connection per organization: the form has no organization field to show it on.
        if hasattr(errors, "error_dict") and "organization" in errors.error_dict:
            moved = dict(errors.error_dict)
            moved.setdefault(NON_FIELD_ERRORS, []).extend(moved.pop("organization"))
            errors = ValidationError(moved)
        super()._update_errors(errors)

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            for name in ("api_key", "webhook_secret"):
                if not cleaned.get(name):
                    self.add_error(name, "Required for a new connection.")
        return cleaned


@admin.register(StripeConnection)
class StripeConnectionAdmin(OrganizationScopedAdmin):
    form = StripeConnectionForm
    list_display = ("__str__", "api_base", "status_label", "last_synced_at", "last_error_short")
    readonly_fields = ("api_key_hint", "last_synced_at", "last_error", *AUDIT_FIELDS)
    fieldsets = (
        (None, {"fields": ("api_key", "api_key_hint", "webhook_secret", "status")}),
        ("Matching", {"fields": ("customer_metadata_key",)}),
        ("Advanced", {"fields": ("api_base",)}),
        ("State", {"fields": ("last_synced_at", "last_error", *AUDIT_FIELDS)}),
    )
    actions = ("test_connection", "sync_now")

    def has_add_permission(self, request):
        # One connection per organization: once it exists, it is edited, not added.
        exists = StripeConnection.objects.filter(organization=request.organization).exists()
        return not exists and super().has_add_permission(request)

    @display(description="Status", label=STATUS_LABELS)
    def status_label(self, obj):
        return obj.status

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    def save_model(self, request, obj, form, change):
        connection = stripe_connection_set(
            organization=request.organization,
            api_key=form.cleaned_data.get("api_key") or None,
            webhook_secret=form.cleaned_data.get("webhook_secret") or None,
            api_base=form.cleaned_data.get("api_base"),
            customer_metadata_key=form.cleaned_data.get("customer_metadata_key"),
            status=form.cleaned_data.get("status"),
        )
        obj.pk = connection.pk

    @admin.action(description="Test connection", permissions=["view"])
    def test_connection(self, request, queryset):
        for connection in queryset:
            try:
                self.message_user(
                    request, stripe_connection_test(connection=connection), messages.SUCCESS
                )
            except Exception as error:  # noqa: BLE001 - shown to staff, whatever Stripe said
                self.message_user(request, f"Stripe refused: {error}", messages.ERROR)

    @admin.action(description="Sync now (backfill in the background)", permissions=["change"])
    def sync_now(self, request, queryset):
        from django_q.tasks import async_task

        from ingestion.services.stripe.backfill import stripe_backfill_start

        for connection in queryset:
            run = stripe_backfill_start(organization=connection.organization)
            transaction.on_commit(
                lambda pk=run.pk: async_task("ingestion.tasks.stripe.stripe_backfill", pk)
            )
            self.message_user(request, f"Backfill run #{run.pk} queued.", messages.SUCCESS)


# --- mirror ---------------------------------------------------------------------------------


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "stripe_id",
        "name",
        "email",
        "customer",
        "matched_by",
        "deleted",
        "stripe_created",
    )
    list_filter = ("matched_by", "deleted")
    list_select_related = ("customer",)
    search_fields = ("stripe_id", "name", "email", "customer__external_id")
    fieldsets = (
        (None, {"fields": ("stripe_id", "name", "email", "currency", "deleted", "metadata")}),
        ("Match", {"fields": ("customer", "matched_by")}),
        RAW_FIELDSET,
    )


class LinkForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), label="Metron customer")


# The action's intermediate page (kept here: the admin module owns no template files).
LINK_TEMPLATE = """{% extends "admin/base_site.html" %}
{% block breadcrumbs %}{% endblock %}
{% block content %}
<form method="post" class="max-w-2xl flex flex-col gap-4">{% csrf_token %}
  <p>Link the Stripe customer{{ queryset|length|pluralize }} below to a Metron customer.
  Its invoices, revenue and plan history follow, and later syncs keep the link.</p>
  <ul class="list-disc pl-6">{% for obj in queryset %}<li>{{ obj }}</li>{% endfor %}</ul>
  <label class="flex flex-col gap-1">
    <span class="font-semibold">Metron customer</span>{{ form.customer }}
    {% if form.customer.errors %}
      <span class="text-red-600">{{ form.customer.errors|join:" " }}</span>
    {% endif %}
  </label>
  {% for obj in queryset %}
    <input type="hidden" name="_selected_action" value="{{ obj.pk }}">
  {% endfor %}
  <input type="hidden" name="action" value="link_to_customer">
  <input type="hidden" name="apply" value="1">
  <div><button type="submit"
    class="bg-primary-600 text-white rounded-default px-3 py-1.5 font-medium">Link</button></div>
</form>
{% endblock %}"""


@admin.register(UnmatchedStripeCustomer)
class UnmatchedStripeCustomerAdmin(ReadOnlyMirrorAdmin):
    """The queue of Stripe customers no Metron customer matched; link them by hand."""

    list_display = ("stripe_id", "name", "email", "metadata", "stripe_created")
    search_fields = ("stripe_id", "name", "email")
    actions = ("link_to_customer",)
    fieldsets = StripeCustomerAdmin.fieldsets

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__isnull=True, deleted=False)

    def has_change_permission(self, request, obj=None):
        # The link action changes rows; the form itself stays read-only.
        return obj is None and request.user.has_perm("ingestion.change_stripecustomer")

    @admin.action(description="Link to a Metron customer…", permissions=["change"])
    def link_to_customer(self, request, queryset):
        form = LinkForm(request.POST if "apply" in request.POST else None)
        form.fields["customer"].queryset = scope_queryset(
            Customer.objects.all(), request.organization
        )
        if form.is_valid():
            target = form.cleaned_data["customer"]
            rows = list(queryset)
            for stripe_customer in rows:
                stripe_customer_link(stripe_customer=stripe_customer, customer=target)
            self.message_user(
                request, f"Linked {len(rows)} Stripe customer(s) to {target}.", messages.SUCCESS
            )
            return None
        template = engines["django"].from_string(LINK_TEMPLATE)
        context = {
            **self.admin_site.each_context(request),
            "title": "Link Stripe customers",
            "queryset": list(queryset),
            "form": form,
        }
        return TemplateResponse(request, template, context)


@admin.register(StripeProduct)
class StripeProductAdmin(ReadOnlyMirrorAdmin):
    list_display = ("stripe_id", "name", "active", "deleted", "stripe_created")
    list_filter = ("active", "deleted")
    search_fields = ("stripe_id", "name")
    fieldsets = ((None, {"fields": ("stripe_id", "name", "active", "deleted")}), RAW_FIELDSET)


@admin.register(StripePrice)
class StripePriceAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "stripe_id",
        "nickname",
        "product_stripe_id",
        "currency",
        "unit_amount_minor",
        "recurring_interval",
        "plan",
        "active",
    )
    list_filter = ("currency", "recurring_interval", "active")
    list_select_related = ("plan",)
    search_fields = ("stripe_id", "nickname", "lookup_key", "product_stripe_id")
    fieldsets = (
        (None, {"fields": ("stripe_id", "nickname", "lookup_key", "product_stripe_id", "plan")}),
        (
            "Price",
            {
                "fields": (
                    "currency",
                    "unit_amount_minor",
                    "type",
                    "recurring_interval",
                    "recurring_interval_count",
                    "active",
                    "deleted",
                )
            },
        ),
        RAW_FIELDSET,
    )


class SubscriptionItemInline(ReadOnlyInline):
    model = StripeSubscriptionItem
    fields = (
        "stripe_id",
        "price_stripe_id",
        "plan",
        "quantity",
        "current_period_start",
        "current_period_end",
    )
    readonly_fields = fields


@admin.register(StripeSubscription)
class StripeSubscriptionAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "stripe_id",
        "customer_stripe_id",
        "customer",
        "status_label",
        "start_date",
        "ended_at",
    )
    list_filter = ("status",)
    list_select_related = ("customer",)
    search_fields = ("stripe_id", "customer_stripe_id", "customer__external_id")
    inlines = (SubscriptionItemInline,)
    fieldsets = (
        (None, {"fields": ("stripe_id", "customer_stripe_id", "customer", "status", "currency")}),
        (
            "Dates",
            {
                "fields": (
                    "start_date",
                    "trial_start",
                    "trial_end",
                    "cancel_at",
                    "canceled_at",
                    "ended_at",
                )
            },
        ),
        RAW_FIELDSET,
    )


class InvoiceLineInline(ReadOnlyInline):
    model = StripeInvoiceLine
    fields = (
        "stripe_id",
        "description",
        "amount_minor",
        "currency",
        "period_start",
        "period_end",
        "price_stripe_id",
        "proration",
    )
    readonly_fields = fields


@admin.register(StripeInvoice)
class StripeInvoiceAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "stripe_id",
        "number",
        "customer",
        "status_label",
        "currency",
        "total_minor",
        "amount_paid_minor",
        "lines_count",
        "stripe_created",
    )
    list_filter = ("status", "currency", "billing_reason")
    list_select_related = ("customer",)
    search_fields = ("stripe_id", "number", "customer_stripe_id", "customer__external_id")
    inlines = (InvoiceLineInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "stripe_id",
                    "number",
                    "customer_stripe_id",
                    "customer",
                    "subscription_stripe_id",
                    "status",
                    "billing_reason",
                )
            },
        ),
        (
            "Amounts (minor units)",
            {
                "fields": (
                    "currency",
                    "total_minor",
                    "amount_due_minor",
                    "amount_paid_minor",
                    "amount_remaining_minor",
                )
            },
        ),
        (
            "Dates",
            {
                "fields": (
                    "stripe_created",
                    "finalized_at",
                    "paid_at",
                    "voided_at",
                    "marked_uncollectible_at",
                )
            },
        ),
        ("Lines", {"fields": ("lines_count", "lines_complete", "payment_intent_ids")}),
        RAW_FIELDSET,
    )


@admin.register(StripeCreditNote)
class StripeCreditNoteAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "stripe_id",
        "number",
        "invoice_stripe_id",
        "customer",
        "status_label",
        "currency",
        "total_minor",
        "stripe_created",
    )
    list_filter = ("status", "type", "currency")
    list_select_related = ("customer",)
    search_fields = ("stripe_id", "number", "invoice_stripe_id")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "stripe_id",
                    "number",
                    "invoice_stripe_id",
                    "customer_stripe_id",
                    "customer",
                    "status",
                    "type",
                    "reason",
                )
            },
        ),
        ("Amount", {"fields": ("currency", "total_minor", "effective_at", "voided_at")}),
        RAW_FIELDSET,
    )


@admin.register(StripeRefund)
class StripeRefundAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "stripe_id",
        "charge_stripe_id",
        "invoice_stripe_id",
        "customer",
        "status_label",
        "currency",
        "amount_minor",
        "stripe_created",
    )
    list_filter = ("status", "currency")
    list_select_related = ("customer",)
    search_fields = (
        "stripe_id",
        "charge_stripe_id",
        "payment_intent_stripe_id",
        "invoice_stripe_id",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "stripe_id",
                    "charge_stripe_id",
                    "payment_intent_stripe_id",
                    "invoice_stripe_id",
                    "customer_stripe_id",
                    "customer",
                    "status",
                    "reason",
                )
            },
        ),
        ("Amount", {"fields": ("currency", "amount_minor", "stripe_created")}),
        RAW_FIELDSET,
    )


@admin.register(StripeEvent)
class StripeEventAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "created_at",
        "type",
        "event_id",
        "object_id",
        "status_label",
        "attempts",
        "error_short",
        "processed_at",
    )
    list_filter = ("status", "type")
    search_fields = ("=event_id", "=object_id", "type")
    ordering = ("-created_at",)
    actions = ("process_again",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "event_id",
                    "type",
                    "object_type",
                    "object_id",
                    "api_version",
                    "livemode",
                    "stripe_created",
                )
            },
        ),
        (
            "Processing",
            {
                "fields": (
                    "status",
                    "attempts",
                    "error",
                    "claimed_at",
                    "processed_at",
                    *AUDIT_FIELDS,
                )
            },
        ),
        ("Payload", {"classes": ["collapse"], "fields": ["payload_json"]}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "payload"] + ["payload_json"]

    def has_change_permission(self, request, obj=None):
        # Only the action (re-queue failed events) changes anything.
        return obj is None and request.user.has_perm("ingestion.change_stripeevent")

    @display(description="Status", label=STATUS_LABELS)
    def status_label(self, obj):
        return obj.status

    @admin.display(description="Error")
    def error_short(self, obj):
        return obj.error[:80]

    @admin.display(description="Payload")
    def payload_json(self, obj):
        return _pretty_json(obj.payload)

    @admin.action(description="Process failed events again", permissions=["change"])
    def process_again(self, request, queryset):
        count = stripe_events_reprocess(
            organization=request.organization, ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"Queued {count} failed event(s) again.", messages.SUCCESS)


# --- revenue ----------------------------------------------------------------------------


@admin.register(RevenueLine)
class RevenueLineAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = (
        "service_start",
        "service_end",
        "kind",
        "customer",
        "description",
        "currency",
        "billed",
        "recognized",
        "collected",
        "plan",
    )
    list_filter = ("kind", "currency")
    list_select_related = ("customer", "plan")
    search_fields = (
        "=source_id",
        "=invoice_stripe_id",
        "=stripe_customer_id",
        "customer__external_id",
    )
    date_hierarchy = "service_start"
    ordering = ("-service_start", "-pk")
    raw_id_fields = ("customer", "plan", "manual_entry")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(FxRate)
class FxRateAdmin(OrganizationScopedAdmin):
    """The organization's own rates (editable by finance) and the global ones (read-only)."""

    list_display = ("currency", "quote_currency", "day", "rate", "scope", "source")
    list_filter = ("currency", "quote_currency")
    search_fields = ("currency", "quote_currency", "source")
    ordering = ("currency", "quote_currency", "-day")
    fields = ("currency", "quote_currency", "day", "rate", "source")

    def get_queryset(self, request):
        queryset = FxRate.objects.all()
        if request.organization is None:
            return queryset.none()
        return queryset.filter(Q(organization=request.organization) | Q(organization__isnull=True))

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.organization_id is None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.organization_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="Scope")
    def scope(self, obj):
        return "organization" if obj.organization_id else "global"


class ManualRevenueEntryForm(forms.ModelForm):
    class Meta:
        model = ManualRevenueEntry
        fields = ("customer", "period_start", "period_end", "amount", "currency", "description")

    def clean(self):
        cleaned = super().clean()
        needed = ("customer", "period_start", "period_end", "amount", "currency")
        if all(cleaned.get(name) is not None for name in needed):
            try:
                revenue.manual_revenue_entry_validate(
                    organization=self.instance.organization,
                    **{name: cleaned[name] for name in needed},
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    self.add_error(None if field == "__all__" else field, errors)
        return cleaned


@admin.register(ManualRevenueEntry)
class ManualRevenueEntryAdmin(OrganizationScopedAdmin):
    form = ManualRevenueEntryForm
    list_display = (
        "customer",
        "period_start",
        "period_end",
        "amount",
        "currency",
        "description",
        "source",
        "created_by",
    )
    list_filter = ("currency", "source")
    list_select_related = ("customer", "created_by")
    search_fields = ("customer__external_id", "customer__name", "description")
    autocomplete_fields = ("customer",)
    readonly_fields = ("source", "created_by", *AUDIT_FIELDS)
    ordering = ("-period_start", "-pk")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.organization = request.organization
            obj.created_by = request.user
            obj.source = ManualRevenueEntry.Source.ADMIN
        revenue.manual_revenue_entry_save(entry=obj)

    def get_deleted_objects(self, objs, request):
        # The entry's revenue line goes with it: a projection, not something to ask about.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(RevenueLine._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        revenue.manual_revenue_entry_delete(entry=obj)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            revenue.manual_revenue_entry_delete(entry=entry)


if not admin.site.is_registered(SyncRun):

    @admin.register(SyncRun)
    class SyncRunAdmin(AppendOnlyAdminMixin, OrganizationScopedAdmin):
        list_display = (
            "created_at",
            "kind",
            "source",
            "status",
            "pages",
            "items",
            "attempts",
            "duration",
            "error_short",
        )
        list_filter = ("kind", "source", "status")
        search_fields = ("error",)
        ordering = ("-created_at",)

        def get_readonly_fields(self, request, obj=None):
            return [field.name for field in self.model._meta.fields]

        @admin.display(description="Duration (s)")
        def duration(self, obj):
            seconds = obj.duration_seconds
            return None if seconds is None else round(seconds, 1)

        @admin.display(description="Error")
        def error_short(self, obj):
            return obj.error[:80]
