from __future__ import annotations

from zoneinfo import available_timezones

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html
from django_q import admin as q_admin
from django_q import models as q_models
from rest_framework_api_key.models import APIKey
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from accounts import selectors, services
from accounts.models import (
    Customer,
    CustomerPlan,
    Feature,
    Membership,
    Organization,
    Plan,
    ProviderKey,
    Role,
    ServiceAPIKey,
    User,
)
from metron.tenancy.admin import (
    OrganizationScopedAdmin,
    OrganizationScopedTabularInline,
    SuperuserOnlyAdminMixin,
)

AUDIT_FIELDS = ("created_at", "updated_at")


# --- organizations and staff ----------------------------------------------------


class OrganizationForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=lambda: [(tz, tz) for tz in sorted(available_timezones())])

    class Meta:
        model = Organization
        fields = ("name", "slug", "reporting_currency", "timezone", "usage_accept_days")


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    form = OrganizationForm
    list_display = ("name", "slug", "reporting_currency", "timezone", "created_at")
    search_fields = ("name", "slug")
    list_filter = ("reporting_currency",)
    ordering = ("name",)
    readonly_fields = AUDIT_FIELDS

    def get_readonly_fields(self, request, obj=None):
        # The slug is the organization's identity in URLs, commands and webhooks.
        if obj is not None:
            return ("slug", *AUDIT_FIELDS)
        return AUDIT_FIELDS

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class MembershipInline(OrganizationScopedTabularInline):
    model = Membership
    fields = ("organization", "role", "created_at")
    readonly_fields = ("organization", "created_at")
    verbose_name_plural = "Role in this organization"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(organization=request.organization)

    def has_add_permission(self, request, obj=None):
        return False


class StaffCreationForm(UserCreationForm):
    role = forms.ChoiceField(
        choices=Role.choices, help_text="Role in the organization you are working in."
    )


@admin.register(User)
class UserAdmin(OrganizationScopedAdmin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = StaffCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "email", "full_name", "role", "is_active", "last_login")
    list_filter = ("is_active",)
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("username",)
    readonly_fields = ("last_login", "date_joined")
    inlines = (MembershipInline,)
    add_fieldsets = ((None, {"fields": ("username", "email", "role", "password1", "password2")}),)
    staff_fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_queryset(self, request):
        role = Membership.objects.filter(
            user=OuterRef("pk"), organization=request.organization
        ).values("role")[:1]
        return super().get_queryset(request).annotate(_role=Subquery(role))

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        # Organization admins manage people, never platform-wide privileges.
        return self.staff_fieldsets

    @admin.display(description="Name")
    def full_name(self, obj):
        return obj.get_full_name()

    @admin.display(description="Role", ordering="_role")
    def role(self, obj):
        return Role(obj._role).label if obj._role else "—"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.is_staff = True
        super().save_model(request, obj, form, change)
        if not change:
            services.membership_set(
                user=obj, organization=request.organization, role=form.cleaned_data["role"]
            )


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    list_display = ("user", "role", "created_at")
    list_filter = ("role",)
    list_select_related = ("user", "organization")
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ("user",)
    fields = ("user", "role", *AUDIT_FIELDS)
    readonly_fields = AUDIT_FIELDS
    ordering = ("user__username",)


# --- catalog ----------------------------------------------------------------------


@admin.register(Plan)
class PlanAdmin(OrganizationScopedAdmin):
    list_display = ("name", "code", "price_display", "interval", "is_free", "is_trial", "is_active")
    list_filter = ("interval", "is_free", "is_trial", "is_active", "currency")
    search_fields = ("name", "code", "stripe_price_ids")
    ordering = ("price", "name")
    readonly_fields = AUDIT_FIELDS
    fieldsets = (
        (None, {"fields": ("code", "name", "is_active")}),
        ("Price", {"fields": ("price", "currency", "interval", "is_free", "is_trial")}),
        ("Stripe", {"fields": ("stripe_price_ids",)}),
        ("Audit", {"fields": AUDIT_FIELDS}),
    )

    def get_readonly_fields(self, request, obj=None):
        return ("code", *AUDIT_FIELDS) if obj is not None else AUDIT_FIELDS

    @admin.display(description="Price", ordering="price")
    def price_display(self, obj):
        return f"{obj.price:,.2f} {obj.currency}"


class CustomerPlanFormSet(OrganizationScopedTabularInline.formset):
    """Refuses overlapping periods entered together in one save."""

    def clean(self):
        super().clean()
        periods = sorted(
            (form.cleaned_data["valid_from"], form.cleaned_data.get("valid_to"))
            for form in self.forms
            if form.cleaned_data.get("valid_from") and not form.cleaned_data.get("DELETE")
        )
        for (_, end), (next_start, _) in zip(periods, periods[1:], strict=False):
            if end is None or end > next_start:
                raise ValidationError("Plan periods of one customer must not overlap.")


class CustomerPlanInline(OrganizationScopedTabularInline):
    model = CustomerPlan
    formset = CustomerPlanFormSet
    fields = ("plan", "valid_from", "valid_to")
    ordering = ("-valid_from",)
    verbose_name_plural = "Plan history"


@admin.register(Customer)
class CustomerAdmin(OrganizationScopedAdmin):
    list_display = (
        "name", "external_id", "current_plan", "segment", "region", "status_badge",
        "is_internal", "needs_review", "started_on",
    )  # fmt: skip
    list_filter = ("needs_review", "status", "is_internal", "segment", "region")
    search_fields = ("name", "external_id", "stripe_customer_id")
    ordering = ("name",)
    date_hierarchy = "started_on"
    readonly_fields = AUDIT_FIELDS
    inlines = (CustomerPlanInline,)
    actions = ("mark_reviewed",)
    fieldsets = (
        (None, {"fields": ("external_id", "name", "status", "needs_review")}),
        (
            "Segmentation",
            {"fields": ("segment", "region", "started_on", "is_internal", "metadata")},
        ),
        ("Billing", {"fields": ("stripe_customer_id",)}),
        ("Audit", {"fields": AUDIT_FIELDS}),
    )

    def get_queryset(self, request):
        return selectors.customer_annotate_current_plan(queryset=super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        # The external id is what usage events carry; changing it would orphan them.
        return ("external_id", *AUDIT_FIELDS) if obj is not None else AUDIT_FIELDS

    @admin.display(description="Plan today", ordering="current_plan_name")
    def current_plan(self, obj):
        return obj.current_plan_name or "—"

    @display(
        description="Status",
        ordering="status",
        label={
            Customer.Status.ACTIVE: "success",
            Customer.Status.TRIALING: "info",
            Customer.Status.CHURNED: "danger",
        },
    )
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @admin.action(description="Mark selected as reviewed", permissions=["change"])
    def mark_reviewed(self, request, queryset):
        count = services.catalog_mark_reviewed(
            model=Customer,
            organization=request.organization,
            ids=queryset.values_list("pk", flat=True),
        )
        self.message_user(request, f"Marked {count} customer(s) as reviewed.", messages.SUCCESS)


@admin.register(CustomerPlan)
class CustomerPlanAdmin(OrganizationScopedAdmin):
    list_display = ("customer", "plan", "valid_from", "valid_to")
    list_filter = ("plan",)
    list_select_related = ("customer", "plan")
    search_fields = ("customer__name", "customer__external_id", "plan__code")
    autocomplete_fields = ("customer",)
    date_hierarchy = "valid_from"
    ordering = ("-valid_from",)
    readonly_fields = AUDIT_FIELDS
    fields = ("customer", "plan", "valid_from", "valid_to", *AUDIT_FIELDS)


@admin.register(Feature)
class FeatureAdmin(OrganizationScopedAdmin):
    list_display = ("name", "key", "team", "status_badge", "launched_on", "needs_review")
    list_filter = ("needs_review", "status", "team")
    search_fields = ("name", "key", "team")
    ordering = ("name",)
    readonly_fields = AUDIT_FIELDS
    actions = ("mark_reviewed",)
    fields = ("key", "name", "team", "status", "launched_on", "needs_review", "description",
              *AUDIT_FIELDS)  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # The key is the tag services send; changing it would split the feature's history.
        return ("key", *AUDIT_FIELDS) if obj is not None else AUDIT_FIELDS

    @display(
        description="Status",
        ordering="status",
        label={Feature.Status.ACTIVE: "success", Feature.Status.RETIRED: "warning"},
    )
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @admin.action(description="Mark selected as reviewed", permissions=["change"])
    def mark_reviewed(self, request, queryset):
        count = services.catalog_mark_reviewed(
            model=Feature,
            organization=request.organization,
            ids=queryset.values_list("pk", flat=True),
        )
        self.message_user(request, f"Marked {count} feature(s) as reviewed.", messages.SUCCESS)


class MappedFilter(admin.SimpleListFilter):
    title = "mapping"
    parameter_name = "mapped"

    def lookups(self, request, model_admin):
        return (("yes", "Mapped to a feature"), ("no", "Unmapped"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(feature__isnull=False)
        if self.value() == "no":
            return queryset.filter(feature__isnull=True)
        return queryset


@admin.register(ProviderKey)
class ProviderKeyAdmin(OrganizationScopedAdmin):
    list_display = (
        "label", "provider", "key_id", "feature", "mapping", "team", "environment", "status",
        "last_seen_at",
    )  # fmt: skip
    list_filter = (MappedFilter, "provider", "environment", "status", "feature")
    list_select_related = ("feature",)
    search_fields = ("label", "key_id", "team", "feature__name", "feature__key")
    autocomplete_fields = ("feature",)
    ordering = ("provider", "label")
    readonly_fields = ("last_seen_at", *AUDIT_FIELDS)
    actions = ("revoke",)
    fields = ("provider", "key_id", "label", "feature", "team", "environment", "status",
              "last_seen_at", *AUDIT_FIELDS)  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("provider", "key_id", "last_seen_at", *AUDIT_FIELDS)
        return self.readonly_fields

    @display(description="Mapping", label={"mapped": "success", "unmapped": "danger"})
    def mapping(self, obj):
        return ("mapped", "Mapped") if obj.feature_id else ("unmapped", "Unmapped")

    @admin.action(description="Mark selected keys revoked", permissions=["change"])
    def revoke(self, request, queryset):
        count = services.provider_key_revoke_many(
            organization=request.organization, ids=queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Marked {count} key(s) revoked.", messages.SUCCESS)


# --- service API keys --------------------------------------------------------------


class ServiceKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ServiceAPIKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ServiceAPIKey
        fields = ("name", "scopes", "expiry_date", "revoked")


@admin.register(ServiceAPIKey)
class ServiceAPIKeyAdmin(OrganizationScopedAdmin):
    form = ServiceKeyForm
    list_display = ("name", "prefix", "scope_list", "created", "expiry_date", "state", "created_by")
    list_filter = ("revoked",)
    list_select_related = ("created_by",)
    search_fields = ("name", "prefix")
    ordering = ("-created",)
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes", "expiry_date")
        return ("name", "prefix", "scopes", "expiry_date", "revoked", "created", "created_by")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.revoked:
            # Revocation is final: nothing about a revoked key can change.
            return ("name", "prefix", "scopes", "expiry_date", "revoked", "created", "created_by")
        return ("prefix", "created", "created_by")

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @display(
        description="State", label={"active": "success", "revoked": "danger", "expired": "warning"}
    )
    def state(self, obj):
        if obj.revoked:
            return "revoked", "Revoked"
        if obj.has_expired:
            return "expired", "Expired"
        return "active", "Active"

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.organization = request.organization
        obj.created_by = request.user
        plaintext = services.service_key_issue(key=obj)
        self.message_user(
            request,
            format_html(
                "The key for <b>{}</b> is <code>{}</code> — copy it now: it is stored only "
                "as a hash and will not be shown again.",
                obj.name,
                plaintext,
            ),
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys (cannot be undone)", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked=False):
            services.service_key_revoke(key=key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


# --- platform-wide models: superusers only ------------------------------------------

admin.site.unregister(APIKey)  # Metron's keys are organization-bound: ServiceAPIKey above.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(SuperuserOnlyAdminMixin, ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)
    filter_horizontal = ("permissions",)


for q_model, q_model_admin in (
    (q_models.Schedule, q_admin.ScheduleAdmin),
    (q_models.Success, q_admin.TaskAdmin),
    (q_models.Failure, q_admin.FailAdmin),
    (q_models.OrmQ, q_admin.QueueAdmin),
):
    admin.site.unregister(q_model)
    admin.site.register(
        q_model,
        type(q_model_admin.__name__, (SuperuserOnlyAdminMixin, q_model_admin, ModelAdmin), {}),
    )
